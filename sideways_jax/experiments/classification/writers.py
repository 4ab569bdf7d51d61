"""Metric logs: a JSON-lines file (read by the plots) and TensorBoard events.

`metrics.jsonl` holds one record per line, {"step": int, "split": str,
<name>: float, ...}; it needs nothing but the standard library to read, and
TensorBoard event files (written with tensorboardX, without TensorFlow) sit
next to it for interactive browsing.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping

METRICS_FILE = 'metrics.jsonl'


def read_metrics(path: str | pathlib.Path, split: str | None = None
                ) -> list[dict]:
  """Records of a metrics.jsonl file (or of the run folder holding one)."""
  path = pathlib.Path(path)
  if path.is_dir():
    path = path / METRICS_FILE
  if not path.exists():
    raise FileNotFoundError(f'no metrics log at {path}')
  records = [json.loads(line) for line in path.read_text().splitlines()
             if line.strip()]
  return [r for r in records if split is None or r['split'] == split]


def truncate_metrics(path: str | pathlib.Path, last_step: int) -> None:
  """Drops records after `last_step` (logged after the checkpoint we resume)."""
  path = pathlib.Path(path)
  if not path.exists():
    return
  kept = [line for line in path.read_text().splitlines()
          if line.strip() and json.loads(line)['step'] <= last_step]
  path.write_text(''.join(line + '\n' for line in kept))


def _jsonable(value: float) -> float | None:
  value = float(value)
  return value if math.isfinite(value) else None  # JSON has no NaN.


class MetricWriter:
  """Writes scalar metrics to metrics.jsonl and TensorBoard in `logdir`."""

  def __init__(self, logdir: str | pathlib.Path, *, resume_step: int,
               tensorboard: bool):
    """Opens the logs, discarding what was logged after `resume_step`.

    Args:
      logdir: the run's folder.
      resume_step: the step training continues from (0 for a new run).
      tensorboard: also write TensorBoard event files (needs tensorboardX).
    """
    self.logdir = pathlib.Path(logdir)
    self.logdir.mkdir(parents=True, exist_ok=True)
    self.path = self.logdir / METRICS_FILE
    truncate_metrics(self.path, resume_step)
    self._file = self.path.open('a')
    self._tb = None
    if tensorboard:
      try:
        import tensorboardX  # pylint: disable=g-import-not-at-top
      except ImportError as e:
        raise ImportError(
            'TensorBoard logs need tensorboardX (pip install tensorboardX), '
            'or set --config.tensorboard=False') from e
      # purge_step makes TensorBoard drop events after the resumed step.
      self._tb = tensorboardX.SummaryWriter(
          str(self.logdir / 'tensorboard'),
          purge_step=resume_step + 1 if resume_step else None)

  def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
    """Logs one record; TensorBoard tags are '<split>/<name>'."""
    record = {'step': int(step), 'split': split}
    record.update({k: _jsonable(v) for k, v in metrics.items()})
    self._file.write(json.dumps(record) + '\n')
    if self._tb is not None:
      for name, value in metrics.items():
        self._tb.add_scalar(f'{split}/{name}', float(value), int(step))

  def flush(self) -> None:
    self._file.flush()
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    self.flush()
    self._file.close()
    if self._tb is not None:
      self._tb.close()

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()

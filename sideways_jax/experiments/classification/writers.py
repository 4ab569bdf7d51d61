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
from typing import Any

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
    # What was logged after the checkpoint we resume from is dropped (it
    # will be logged again); the rest stays in memory for the summary.
    self.records = [r for r in (read_metrics(self.path)
                                if self.path.exists() else [])
                    if r['step'] <= resume_step]
    self.path.write_text(''.join(json.dumps(r) + '\n' for r in self.records))
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

  def write(self, step: int, split: str, metrics: Mapping[str, float]
            ) -> dict[str, Any]:
    """Logs one record and returns it; TensorBoard tags are '<split>/<name>'."""
    record = {'step': int(step), 'split': split}
    record.update({k: _jsonable(v) for k, v in metrics.items()})
    self._file.write(json.dumps(record) + '\n')
    self.records.append(record)
    if self._tb is not None:
      for name, value in metrics.items():
        self._tb.add_scalar(f'{split}/{name}', float(value), int(step))
    return record

  def logged(self, step: int, split: str) -> dict[str, float] | None:
    """The metrics logged for (step, split), e.g. a finished run's eval."""
    for record in reversed(self.records):
      if record['step'] == step and record['split'] == split:
        return {k: v for k, v in record.items() if k not in ('step', 'split')}
    return None

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

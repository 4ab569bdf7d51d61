"""Metric logs: a JSON-lines file (read by the plots) and TensorBoard events.

`metrics.jsonl` holds one record per line, {"step": int, "split": str,
<name>: float | null, ...}; it needs nothing but the standard library to
read, and TensorBoard event files (written with tensorboardX, without
TensorFlow) sit next to it for interactive browsing.

The log can never contradict the checkpoint: the writer keeps every record
in memory, each checkpoint stores them (loop.py), and a resumed run starts
from the checkpoint's records, so the file is cut back to the restored step
with no duplicate and no gap. Between checkpoints new records are appended
in one write per flush; at each checkpoint (and whenever the file has gone
missing, or lives in a bucket) it is rewritten whole through a temporary
file and a rename.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sideways_jax.experiments import workdir as workdir_lib

METRICS_FILE = 'metrics.jsonl'


def read_metrics(path: workdir_lib.PathLike, split: str | None = None
                ) -> list[dict]:
  """Records of a metrics.jsonl file (or of the run folder holding one).

  A last line cut short (a machine that lost power mid-write) is ignored.
  """
  path = workdir_lib.as_path(path)
  if path.is_dir():
    path = path / METRICS_FILE
  if not path.exists():
    raise FileNotFoundError(f'no metrics log at {path}')
  lines = [line for line in path.read_text().splitlines() if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      records.append(json.loads(line))
    except ValueError:
      if i < len(lines) - 1:
        raise
  return [r for r in records if split is None or r['split'] == split]


def _jsonable(value: Any) -> Any:
  if isinstance(value, (int, str)) and not isinstance(value, bool):
    return value
  value = float(value)
  return value if math.isfinite(value) else None  # JSON has no NaN.


def _line(record: Mapping[str, Any]) -> str:
  return workdir_lib.dumps(record) + '\n'


class MetricWriter:
  """Writes scalar metrics to metrics.jsonl and TensorBoard in `logdir`."""

  def __init__(self, logdir: workdir_lib.PathLike, *,
               records: Sequence[dict[str, Any]] = (), resume_step: int = 0,
               tensorboard: bool, enabled: bool = True):
    """Opens the logs of a run that continues after `resume_step`.

    Args:
      logdir: the run's folder.
      records: what was logged up to `resume_step` (from the checkpoint);
        the file is rewritten to hold exactly these.
      resume_step: the step training continues from (0 for a new run).
      tensorboard: also write TensorBoard event files (needs tensorboardX).
      enabled: False on processes that write no files (multi-host peers).
    """
    self.logdir = workdir_lib.as_path(logdir)
    self.path = self.logdir / METRICS_FILE
    self.records = [dict(r) for r in records]
    self._enabled, self._tensorboard = enabled, tensorboard
    self._resume_step = resume_step
    self._unwritten = 0
    self._tb = None
    if tensorboard:
      try:
        import tensorboardX  # pylint: disable=g-import-not-at-top,unused-import
      except ImportError as e:
        raise ImportError(
            'TensorBoard logs need tensorboardX (pip install tensorboardX), '
            'or set --config.tensorboard=False') from e
    if enabled and (self.records or self.path.exists()):
      self.rewrite()

  def _board(self):
    """The TensorBoard writer, opened at the first record (no empty files)."""
    if self._tb is None and self._tensorboard and self._enabled:
      import tensorboardX  # pylint: disable=g-import-not-at-top
      # purge_step makes TensorBoard drop events after the resumed step.
      self._tb = tensorboardX.SummaryWriter(
          str(self.logdir / 'tensorboard'),
          purge_step=self._resume_step + 1 if self._resume_step else None)
    return self._tb

  def write(self, step: int, split: str, metrics: Mapping[str, Any]
            ) -> dict[str, Any]:
    """Logs one record and returns it; TensorBoard tags are '<split>/<name>'."""
    record = {'step': int(step), 'split': split}
    record.update({k: _jsonable(v) for k, v in metrics.items()})
    self.records.append(record)
    self._unwritten += 1
    board = self._board()
    if board is not None:
      for name, value in record.items():
        if name not in ('step', 'split') and value is not None:
          board.add_scalar(f'{split}/{name}', float(value), int(step))
    return record

  def logged(self, step: int, split: str) -> dict[str, Any] | None:
    """The metrics logged for (step, split), e.g. a finished run's eval."""
    for record in reversed(self.records):
      if record['step'] == step and record['split'] == split:
        return {k: v for k, v in record.items() if k not in ('step', 'split')}
    return None

  def rewrite(self) -> None:
    """Writes the whole log through a temporary file and a rename."""
    if self._enabled:
      self.logdir.mkdir(parents=True, exist_ok=True)
      workdir_lib.atomic_write_text(
          self.path, ''.join(_line(r) for r in self.records))
      self._unwritten = 0

  def flush(self) -> None:
    """Appends the new records in one write (or rewrites, see the module)."""
    if not self._enabled:
      return
    if self._unwritten:
      if not workdir_lib.is_local(self.path) or not self.path.exists():
        self.rewrite()
      else:
        with open(str(self.path), 'a', encoding='utf-8') as f:
          f.write(''.join(_line(r) for r in self.records[-self._unwritten:]))
        self._unwritten = 0
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    self.flush()
    if self._tb is not None:
      self._tb.close()
      self._tb = None

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()

"""A one-line progress bar with rate and ETA (no dependency).

On a terminal the line is redrawn in place; in a log file (not a TTY) a new
line is printed at most every `log_interval` seconds, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
  """'1h02m', '3m05s' or '42s'."""
  seconds = int(round(max(seconds, 0)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f'{hours}h{minutes:02d}m'
  if minutes:
    return f'{minutes}m{secs:02d}s'
  return f'{secs}s'


class Progress:
  """Shows `step/total`, steps/s and time left for a training loop.

  The rate is measured from the first `update` on, so the compilation of the
  first step does not distort it.
  """

  def __init__(self, total: int, *, initial: int = 0, desc: str = '',
               stream: TextIO | None = None, width: int = 24,
               tty_interval: float = 0.2, log_interval: float = 15.0):
    self.total = total
    self.desc = desc
    self.stream = stream if stream is not None else sys.stdout
    self.width = width
    self._tty = bool(getattr(self.stream, 'isatty', lambda: False)())
    self._interval = tty_interval if self._tty else log_interval
    self._start_step = initial
    self._start_time: float | None = None
    self._last_print = -float('inf')
    self.step = initial
    self.postfix = ''

  def rate(self) -> float:
    """Steps per second since the first update (0 before two updates)."""
    if self._start_time is None or self.step <= self._start_step:
      return 0.0
    return (self.step - self._start_step) / max(
        time.perf_counter() - self._start_time, 1e-9)

  def update(self, step: int, postfix: str | None = None,
             force: bool = False) -> None:
    """Records that `step` steps are done; redraws when it is time."""
    now = time.perf_counter()
    if self._start_time is None:
      self._start_time, self._start_step = now, step
    self.step = step
    if postfix is not None:
      self.postfix = postfix
    if force or now - self._last_print >= self._interval:
      self._last_print = now
      self._print()

  def line(self) -> str:
    """The current progress line."""
    frac = self.step / self.total if self.total else 1.0
    filled = int(round(self.width * min(frac, 1.0)))
    bar = '#' * filled + '.' * (self.width - filled)
    rate = self.rate()
    eta = format_duration((self.total - self.step) / rate) if rate else '?'
    parts = [f'{self.desc} [{bar}] {self.step}/{self.total}',
             f'{rate:.2f} steps/s' if rate else '- steps/s', f'ETA {eta}']
    if self.postfix:
      parts.append(self.postfix)
    return ' | '.join(parts)

  def write(self, message: str) -> None:
    """Prints a message on its own line, keeping the bar below it."""
    if self._tty:
      self.stream.write('\r\033[K' + message + '\n' + self.line())
    else:
      self.stream.write(message + '\n')
    self.stream.flush()

  def _print(self) -> None:
    if self._tty:
      self.stream.write('\r\033[K' + self.line())
    else:
      self.stream.write(self.line() + '\n')
    self.stream.flush()

  def close(self) -> None:
    """Prints the final state and ends the line."""
    self._print()
    if self._tty:
      self.stream.write('\n')
    self.stream.flush()

"""One run at a time per folder: a lock file naming its holder.

`lock.json` holds the host, pid and start time of the run that writes the
folder. On a local or NFS disk the file is also `flock`ed for the run's
life: the kernel drops that lock when the process dies, however it dies, so
a lock file whose lock is free was left by a dead run and is taken over
with a warning. Where `flock` is unavailable (a bucket, some network file
systems) a lock whose pid is dead on this host is taken over; a live or
foreign holder is refused in one line that names it.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import socket
from typing import Any


from sideways_jax.experiments import common
from sideways_jax.experiments import workdir as workdir_lib

LOCK_FILE = 'lock.json'
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})


class LockedError(common.ConfigError):
  """Another run holds the folder."""


def _holder() -> dict[str, Any]:
  return {'host': socket.gethostname(), 'pid': os.getpid(),
          'started': datetime.datetime.now(datetime.timezone.utc).isoformat(
              timespec='seconds')}


def _describe(holder: dict[str, Any] | None) -> str:
  if not holder:
    return 'a run that is still starting'
  return (f'the run of pid {holder.get("pid")} on host {holder.get("host")} '
          f'(started {holder.get("started")})')


def _pid_alive(pid: Any) -> bool:
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError, TypeError):
    return True  # Someone else's process, or an unreadable pid: assume live.
  return True


def _parse(text: str) -> dict[str, Any] | None:
  try:
    value = json.loads(text)
  except ValueError:
    return None
  return value if isinstance(value, dict) else None


class WorkdirLock:
  """Held from `acquire` to `release` (or the end of a `with` block)."""

  def __init__(self, folder: workdir_lib.PathLike):
    self.path = workdir_lib.as_path(folder) / LOCK_FILE
    self._fd: int | None = None
    self._held = False

  def acquire(self) -> None:
    """Takes the lock, or raises LockedError naming the holder."""
    if workdir_lib.is_local(self.path):
      try:
        self._acquire_flock()
        return
      except OSError as e:
        if e.errno not in _NO_FLOCK:
          raise
    self._acquire_by_pid()

  def _acquire_flock(self) -> None:
    while True:
      fd = os.open(os.fspath(self.path), os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _parse(os.read(fd, 1 << 16).decode(errors='replace'))
        os.close(fd)
        raise self._refusal(holder) from None
      except OSError:
        os.close(fd)
        raise
      # The holder before us may have removed the file after we opened it:
      # then our lock is on a deleted file, so try again.
      try:
        same = os.stat(os.fspath(self.path)).st_ino == os.fstat(fd).st_ino
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    previous = os.read(fd, 1 << 16).decode(errors='replace')
    if previous.strip():
      self._warn_stale(_parse(previous))
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_holder()).encode(), 0)
    os.fsync(fd)
    self._fd, self._held = fd, True

  def _acquire_by_pid(self) -> None:
    if self.path.exists():
      holder = _parse(self.path.read_text())
      alive = holder is None or holder.get('host') != socket.gethostname() or (
          _pid_alive(holder.get('pid')))
      if alive:
        raise self._refusal(holder)
      self._warn_stale(holder)
    workdir_lib.atomic_write_text(self.path, json.dumps(_holder()))
    self._held = True

  def _refusal(self, holder: dict[str, Any] | None) -> LockedError:
    remote = holder and holder.get('host') != socket.gethostname()
    return LockedError(
        f'{self.path.parent} is in use by {_describe(holder)}: wait for it to '
        'end or pass another --workdir'
        + (f' (if that run is gone, delete {self.path})' if remote else ''))

  def _warn_stale(self, holder: dict[str, Any] | None) -> None:
    logging.warning('taking over %s: it was left by %s, which is no longer '
                    'running', self.path, _describe(holder))

  def release(self) -> None:
    """Removes the lock file (while still holding it) and lets go."""
    if not self._held:
      return
    self.path.unlink(missing_ok=True)
    if self._fd is not None:
      os.close(self._fd)
    self._fd, self._held = None, False

  def __enter__(self) -> WorkdirLock:
    self.acquire()
    return self

  def __exit__(self, *exc: object) -> None:
    self.release()

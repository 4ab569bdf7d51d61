"""Run folders on a local disk or a bucket: paths, atomic writes, checks.

Every path goes through `etils.epath`, so a workdir may be a local folder
(the default) or a `gs://bucket/...` URL where the bucket is reachable (GCS
needs `gcsfs`, or TensorFlow's gfile). Files are written whole and then
renamed into place, so a reader (or a resumed run) never sees half a file,
and JSON is strict: NaN and Inf are written as null.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import socket
from collections.abc import Mapping
from typing import Any

from etils import epath

from sideways_jax.experiments import common

PathLike = str | os.PathLike
# A user's set-up, not a failed run: exit 2 (cli.py); other OSErrors exit 1.
USER_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS,
                         errno.ENOTDIR, errno.EISDIR, errno.EEXIST})


class WorkdirError(common.ConfigError):
  """The workdir cannot hold a run (a file, or not writable)."""


def as_path(path: PathLike) -> epath.Path:
  """`path` as an `epath.Path` (local folders and `gs://` URLs alike)."""
  return epath.Path(path)


def is_local(path: PathLike) -> bool:
  """True for a path on a local (or mounted) file system."""
  return '://' not in os.fspath(path)


def _finite(value: Any) -> Any:
  """`value` with every non-finite float replaced by None (JSON null)."""
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, Mapping):
    return {k: _finite(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_finite(v) for v in value]
  return value


def dumps(value: Any, **kwargs: Any) -> str:
  """Strict JSON: NaN/Inf become null; anything else non-JSON is an error."""
  return json.dumps(_finite(value), allow_nan=False, **kwargs)


def atomic_write_text(path: PathLike, text: str) -> None:
  """Writes `text` to a temporary file beside `path`, then renames it.

  Locally the data is flushed to disk before the rename; on a bucket an
  object write is atomic by itself.
  """
  path = as_path(path)
  tmp = path.parent / f'.{path.name}.tmp-{os.getpid()}'
  if is_local(path):
    with open(os.fspath(tmp), 'w', encoding='utf-8') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
  else:
    tmp.write_text(text)
  tmp.replace(path)


def write_json(path: PathLike, value: Any) -> None:
  """Atomically writes `value` as strict, indented JSON."""
  atomic_write_text(path, dumps(value, indent=2, sort_keys=True) + '\n')


def prepare_folder(path: PathLike) -> epath.Path:
  """Creates `path` (and parents); one-line errors when it cannot hold a run.

  Raises:
    WorkdirError: `path` is a file, or the folder cannot be written.
  """
  path = as_path(path)
  if path.exists() and not path.is_dir():
    raise WorkdirError(f'the workdir {path} is a file, not a folder: pass '
                       '--workdir=<a folder>')
  probe = path / f'.write-test-{socket.gethostname()}-{os.getpid()}'
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe.write_text('')
    probe.unlink()
  except OSError as e:
    raise WorkdirError(f'cannot write to the workdir {path} '
                       f'({e.strerror or e}): pass a --workdir this user may '
                       'write to') from None
  return path


def remove_empty_dirs(root: PathLike) -> None:
  """Removes `root` and its sub-folders where they hold no file."""
  root = as_path(root)
  if not root.is_dir():
    return
  folders = [epath.Path(top) for top, _, _ in root.walk()]
  for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
    if folder.is_dir() and not any(folder.iterdir()):
      folder.rmdir()


def check_free_space(folder: PathLike, needed: int) -> None:
  """Raises ENOSPC before a write of `needed` bytes that cannot fit.

  A local disk only (a bucket has no such limit). Failing here, before a
  library starts writing, keeps the error to one line and the folder clean.
  """
  if not is_local(folder):
    return
  path = os.fspath(folder)
  while not os.path.exists(path):
    path = os.path.dirname(path) or '.'
  free = shutil.disk_usage(path).free
  if free < needed:
    raise OSError(errno.ENOSPC, f'{os.strerror(errno.ENOSPC)}: '
                  f'{needed / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB '
                  'free', os.fspath(folder))


def describe_os_error(error: OSError) -> str:
  """'<strerror> (<file>)': what a user needs from an OSError, on one line."""
  where = f' ({error.filename})' if error.filename else ''
  return f'{error.strerror or error}{where}'

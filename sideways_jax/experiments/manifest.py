"""A folder's manifest: the size and sha256 of every file, written last.

A checkpoint folder counts only once its manifest exists and every file
matches it: a save killed half-way, a truncated or zeroed file, a missing
sub-folder, a stray file or a single flipped bit all fail `verify`.
"""

from __future__ import annotations

import hashlib
import json

from etils import epath

from sideways_jax.experiments import workdir as workdir_lib

MANIFEST = 'manifest.json'
_CHUNK = 1 << 22


def _files(folder: epath.Path) -> dict[str, epath.Path]:
  """Relative path -> file, for every file under `folder` but the manifest."""
  files = {}
  for top, _, names in folder.walk():
    for name in names:
      path = epath.Path(top) / name
      relative = path.relative_to(folder).as_posix()
      if relative != MANIFEST:
        files[relative] = path
  return files


def _digest(path: epath.Path) -> str:
  sha = hashlib.sha256()
  with path.open('rb') as f:
    while chunk := f.read(_CHUNK):
      sha.update(chunk)
  return sha.hexdigest()


def write(folder: workdir_lib.PathLike) -> None:
  """Records every file of `folder` in `folder/manifest.json` (atomically)."""
  folder = workdir_lib.as_path(folder)
  entries = {name: {'bytes': path.stat().length, 'sha256': _digest(path)}
             for name, path in sorted(_files(folder).items())}
  workdir_lib.write_json(folder / MANIFEST, {'files': entries})


def verify(folder: workdir_lib.PathLike) -> str | None:
  """None when `folder` matches its manifest, else what is wrong (short)."""
  folder = workdir_lib.as_path(folder)
  path = folder / MANIFEST
  if not path.exists():
    return 'no manifest: the save did not finish'
  try:
    expected = json.loads(path.read_text())['files']
  except (ValueError, KeyError, TypeError):
    return 'unreadable manifest'
  found = _files(folder)
  missing = sorted(set(expected) - set(found))
  if missing:
    return f'missing {missing[0]}' + (f' and {len(missing) - 1} more'
                                      if len(missing) > 1 else '')
  extra = sorted(set(found) - set(expected))
  if extra:
    return f'unexpected file {extra[0]}'
  for name, entry in sorted(expected.items()):
    if found[name].stat().length != entry['bytes']:
      return f'{name} has {found[name].stat().length} bytes, not {entry["bytes"]}'
    if _digest(found[name]) != entry['sha256']:
      return f'{name} does not match its sha256'
  return None

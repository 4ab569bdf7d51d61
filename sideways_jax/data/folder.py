"""A generic folder of videos: one sub-folder per class, optional split lists.

    <root>/<class>/<video>.{avi,mp4,...}       labelled: classes sorted by name
    <root>/<video>.{avi,mp4,...}               unlabelled (no class folders)
    <root>/splits/<split>.txt                  optional: one '<class>/<video>'
                                               (or '<video>') per line

split='all' takes every video; any other split needs its list file. A class
folder without videos is an error: such a class can never be learned, and it
almost always means an incomplete copy.
"""

from __future__ import annotations

import os
import pathlib

from sideways_jax.data.files import EntryCollector
from sideways_jax.data.files import labelled_source
from sideways_jax.data.files import read_lines
from sideways_jax.data.files import VIDEO_EXTENSIONS
from sideways_jax.data.files import VideoEntry
from sideways_jax.data.files import VideoFileSource
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError
from sideways_jax.data.source import dataset_root
from sideways_jax.data.source import layout_error

SPLITS_DIR = 'splits'
_LAYOUT = """  <root>/<class>/<video>.avi (or .mp4, .mkv, ...)   one folder per class
  <root>/<video>.avi                                  or unlabelled videos
  <root>/splits/<split>.txt                           optional split lists"""
_PREPARE = 'put videos in that layout by hand (nothing to unpack)'


def _error(problem: str) -> DatasetLayoutError:
  return layout_error('video folder', problem, _LAYOUT, _PREPARE)


def _is_video(path: pathlib.Path) -> bool:
  return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def folder_entries(root: str | os.PathLike[str] | None, *, split: str = 'all'
                   ) -> tuple[list[VideoEntry], list[str]]:
  """Lists a folder of videos.

  Args:
    root: the folder (default: data/folder).
    split: 'all', or the name of <root>/splits/<split>.txt.

  Returns:
    (entries, class names); no class names for an unlabelled folder.
  """
  root = dataset_root(root, 'folder')
  if not root.is_dir():
    raise _error(f'folder {root} not found')
  class_dirs = sorted(p for p in root.iterdir() if p.is_dir()
                      and p.name != SPLITS_DIR and not p.name.startswith('.'))
  class_names = [p.name for p in class_dirs]
  for class_dir in class_dirs:
    if not any(_is_video(p) for p in class_dir.iterdir()):
      raise _error(f'class folder {class_dir} has no video '
                   f'({", ".join(VIDEO_EXTENSIONS)})')
  label_of = {name: i for i, name in enumerate(class_names)}

  if split == 'all':
    if class_dirs:
      relatives = [f'{d.name}/{p.name}' for d in class_dirs
                   for p in sorted(d.iterdir()) if _is_video(p)]
    else:
      relatives = [p.name for p in sorted(root.iterdir()) if _is_video(p)]
  else:
    list_file = root / SPLITS_DIR / f'{split}.txt'
    if not list_file.is_file():
      raise _error(f"split file {list_file} not found (split='all' needs none)")
    relatives = [line.split()[0].replace('\\', '/')
                 for line in read_lines(list_file)]

  collector = EntryCollector(root)
  for relative in relatives:
    label = 0
    if class_names:
      class_name = relative.split('/')[0]
      if '/' not in relative or class_name not in label_of:
        raise _error(f'{relative!r} is not <class>/<video> with a class '
                     f'folder of {root}')
      label = label_of[class_name]
    collector.add(relative, label)
  entries = collector.finish(_error, listed_in=f'split {split!r} of {root}',
                             name=f'folder {root.name} {split}')
  return entries, class_names


def folder_source(root: str | os.PathLike[str] | None, *, split: str,
                  spec: ClipSpec) -> VideoFileSource:
  """A folder of videos as a clip source (num_classes 0 if unlabelled)."""
  return labelled_source(folder_entries(root, split=split), spec=spec,
                         name=f'folder/{split}')

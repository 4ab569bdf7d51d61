"""CATER (pre-rendered release) videos and lists.

    <root>/videos/CATER_new_XXXXXX.avi
    <root>/lists/<task>/{train,val,train_subsetT,train_subsetV}.txt

List lines are '<video> <label>[,<label>...]' with 0-based labels. Tasks
'actions_present' (14 classes) and 'actions_order_uniq' (301) are
multi-label; 'localize' (36 grid cells) has one label per video.

The paper uses CATER for auto-encoding, which needs only frames: with
task=None the labels are ignored (num_classes 0) and the split's videos
come from the first task folder (sorted) that has that split, or, for
split='all', from every video under videos/.
"""

from __future__ import annotations

import os
import pathlib

from sideways_jax.data.files import EntryCollector
from sideways_jax.data.files import read_lines
from sideways_jax.data.files import VIDEO_EXTENSIONS
from sideways_jax.data.files import VideoEntry
from sideways_jax.data.files import VideoFileSource
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError
from sideways_jax.data.source import dataset_root
from sideways_jax.data.source import layout_error

TASK_NUM_CLASSES = {'actions_present': 14, 'actions_order_uniq': 301,
                    'localize': 36}
MULTI_LABEL_TASKS = ('actions_present', 'actions_order_uniq')
_LAYOUT = """  <root>/videos/CATER_new_XXXXXX.avi
  <root>/lists/<task>/{train,val}.txt   lines '<video> <label>[,<label>...]'"""
_PREPARE = 'bash data/prepare_cater.sh [-o root] <downloaded CATER zips or folder>'


def _error(problem: str) -> DatasetLayoutError:
  return layout_error('CATER', problem, _LAYOUT, _PREPARE)


def cater_entries(root: str | os.PathLike[str] | None, *, split: str,
                  task: str | None) -> tuple[list[VideoEntry], int, bool]:
  """Parses one CATER split.

  Args:
    root: folder holding videos/ and lists/ (default: data/cater).
    split: a list name under lists/<task>/ ('train', 'val', ...), or 'all'
      (every video; task must be None).
    task: a folder under lists/, or None for unlabelled (auto-encoding).

  Returns:
    (entries, num_classes (0 if task is None), multi_label).
  """
  root = dataset_root(root, 'cater')
  videos, lists = root / 'videos', root / 'lists'
  if not videos.is_dir():
    raise _error(f'folder {videos} not found')
  if split == 'all':
    if task is not None:
      raise ValueError("CATER split='all' lists every video without labels: "
                       'use task=None')
    files = sorted(p for p in videos.iterdir()
                   if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
      raise _error(f'no video file in {videos}')
    return [VideoEntry(str(p), 0) for p in files], 0, False

  list_file = _list_file(lists, split, task)
  collector = EntryCollector(videos)
  max_label, multi = -1, False
  for line_no, line in enumerate(read_lines(list_file), 1):
    parts = line.split()
    labels: tuple[int, ...] = ()
    if len(parts) > 2 or (task is not None and len(parts) != 2):
      raise _error(f'{list_file}:{line_no}: bad line {line!r}, expected '
                   '"<video> <label>[,<label>...]"')
    if task is not None:
      try:
        labels = tuple(int(l) for l in parts[1].split(',') if l)
      except ValueError:
        raise _error(f'{list_file}:{line_no}: labels {parts[1]!r} are not '
                     'comma-separated integers') from None
      if not labels:
        raise _error(f'{list_file}:{line_no}: no label')
      max_label = max(max_label, *labels)
      multi = multi or len(labels) > 1
    name = pathlib.PurePosixPath(parts[0].replace('\\', '/')).name
    collector.add(name, labels[0] if labels else 0, labels)
  entries = collector.finish(_error, listed_in=f'split file {list_file}',
                             name=f'CATER {task or "frames"} {split}')
  if task is None:
    return entries, 0, False
  num_classes = TASK_NUM_CLASSES.get(task, max_label + 1)
  if max_label >= num_classes:
    raise _error(f'{list_file}: label {max_label} >= {num_classes} classes '
                 f'of task {task!r}')
  return entries, num_classes, multi or task in MULTI_LABEL_TASKS


def _list_file(lists: pathlib.Path, split: str,
               task: str | None) -> pathlib.Path:
  if not lists.is_dir():
    raise _error(f'folder {lists} not found')
  if task is not None:
    path = lists / task / f'{split}.txt'
    if not path.is_file():
      tasks = sorted(p.name for p in lists.iterdir() if p.is_dir())
      raise _error(f'split file {path} not found (tasks present: {tasks})')
    return path
  for folder in sorted(p for p in lists.iterdir() if p.is_dir()):
    if (folder / f'{split}.txt').is_file():
      return folder / f'{split}.txt'
  raise _error(f"no lists/<task>/{split}.txt under {lists} (or use split='all')")


def cater_source(root: str | os.PathLike[str] | None, *, split: str,
                 spec: ClipSpec, task: str | None = None) -> VideoFileSource:
  """CATER as a clip source; multi-label tasks add 'labels': bool [C]."""
  entries, num_classes, multi = cater_entries(root, split=split, task=task)
  return VideoFileSource(entries, num_classes=num_classes, spec=spec,
                         multi_label=multi,
                         name=f'cater/{task or "frames"}/{split}')

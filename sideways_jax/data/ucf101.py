"""UCF101 in its official layout and splits (folds 1-3).

    <root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
    <root>/ucfTrainTestlist/classInd.txt        '1 ApplyEyeMakeup' (1-based)
    <root>/ucfTrainTestlist/trainlist0N.txt     '<Class>/<video>.avi <label>'
    <root>/ucfTrainTestlist/testlist0N.txt      '<Class>/<video>.avi' (no label)

The official files use CRLF line ends. One class is spelled two ways:
classInd and the folder say 'HandstandPushups', the file names
'v_HandStandPushups_...'; class names and paths are therefore matched
case-insensitively. Labels are 0-based: classInd's index minus one.
"""

from __future__ import annotations

import os
import pathlib

from sideways_jax.data.files import check_official_split
from sideways_jax.data.files import EntryCollector
from sideways_jax.data.files import labelled_source
from sideways_jax.data.files import read_lines
from sideways_jax.data.files import require_folders
from sideways_jax.data.files import VideoEntry
from sideways_jax.data.files import VideoFileSource
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError
from sideways_jax.data.source import dataset_root
from sideways_jax.data.source import layout_error

NUM_CLASSES = 101
_LAYOUT = """  <root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
  <root>/ucfTrainTestlist/classInd.txt
  <root>/ucfTrainTestlist/trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt"""
_PREPARE = ('bash data/prepare_ucf101.sh UCF101.rar '
            'UCF101TrainTestSplits-RecognitionTask.zip [root]')


def _error(problem: str) -> DatasetLayoutError:
  return layout_error('UCF101', problem, _LAYOUT, _PREPARE)


def ucf101_entries(root: str | os.PathLike[str] | None, *, split: str,
                   fold: int = 1) -> tuple[list[VideoEntry], list[str]]:
  """Parses one UCF101 split into entries and the 101 class names.

  Args:
    root: folder holding UCF-101/ and ucfTrainTestlist/ (default: data/ucf101).
    split: 'train' or 'test'.
    fold: 1, 2 or 3.

  Returns:
    (entries in list order, class names indexed by label).
  """
  check_official_split('UCF101', split, ('train', 'test'), fold)
  root = dataset_root(root, 'ucf101')
  videos, lists = root / 'UCF-101', root / 'ucfTrainTestlist'
  require_folders(_error, videos, lists)
  class_names = _read_class_index(lists / 'classInd.txt')
  by_lower = {name.lower(): i for i, name in enumerate(class_names)}

  list_file = lists / f'{split}list0{fold}.txt'
  if not list_file.is_file():
    raise _error(f'split file {list_file} not found')
  collector = EntryCollector(videos)
  per_class = [0] * len(class_names)
  for line_no, line in enumerate(read_lines(list_file), 1):
    parts = line.split()
    relative = parts[0].replace('\\', '/')
    folder_class = relative.split('/')[0].lower()
    if '/' not in relative or folder_class not in by_lower:
      raise _error(f'{list_file.name}:{line_no}: {relative!r} is not '
                   '<Class>/<video> with a class of classInd.txt')
    label = by_lower[folder_class]
    if len(parts) > 1 and not parts[1].isdigit():
      raise _error(f'{list_file.name}:{line_no}: label {parts[1]!r} is not a '
                   'number')
    if len(parts) > 1 and int(parts[1]) - 1 != label:
      raise _error(f'{list_file.name}:{line_no}: label {parts[1]} disagrees '
                   f'with the folder {relative.split("/")[0]!r} '
                   f'(classInd says {label + 1})')
    collector.add(relative, label)
    per_class[label] += 1
  entries = collector.finish(_error, listed_in=f'split file {list_file}',
                             name=f'UCF101 {split} fold {fold}')
  empty = [class_names[i] for i, n in enumerate(per_class) if n == 0]
  if empty:
    raise _error(f'{list_file.name} has no video of class(es) {empty[:5]}')
  return entries, class_names


def _read_class_index(path: pathlib.Path) -> list[str]:
  """Class names from classInd.txt, in label order (index - 1)."""
  if not path.is_file():
    raise _error(f'class index {path} not found')
  names = {}
  for line in read_lines(path):
    parts = line.split()
    if len(parts) != 2 or not parts[0].isdigit():
      raise _error(f'{path.name}: bad line {line!r}, expected "<index> <Class>"')
    names[int(parts[0])] = parts[1]
  if sorted(names) != list(range(1, len(names) + 1)):
    raise _error(f'{path.name}: indices must run 1..N (1-based), got '
                 f'{sorted(names)[:3]}...')
  if not names:
    raise _error(f'{path.name} is empty')
  return [names[i] for i in range(1, len(names) + 1)]


def ucf101_source(root: str | os.PathLike[str] | None, *, split: str,
                  fold: int, spec: ClipSpec) -> VideoFileSource:
  """UCF101 as a clip source."""
  return labelled_source(ucf101_entries(root, split=split, fold=fold),
                         spec=spec, name=f'ucf101/{split}{fold}')

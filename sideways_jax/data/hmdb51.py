"""HMDB51 in its official layout and splits (splits 1-3).

    <root>/videos/<class>/<video>.avi
    <root>/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt

Each split file lists every video of its class as '<video>.avi <tag>' with
tag 1 = train, 2 = test, 0 = not used in this split. Labels are the indices
of the class names (taken from the split file names) in sorted order, the
order used by the common HMDB51 label maps.
"""

from __future__ import annotations

import os
import re

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

NUM_CLASSES = 51
_TAGS = {'unused': '0', 'train': '1', 'test': '2'}
_LAYOUT = """  <root>/videos/<class>/<video>.avi
  <root>/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt"""
_PREPARE = 'bash data/prepare_hmdb51.sh hmdb51_org.rar test_train_splits.rar [root]'


def _error(problem: str) -> DatasetLayoutError:
  return layout_error('HMDB51', problem, _LAYOUT, _PREPARE)


def hmdb51_entries(root: str | os.PathLike[str] | None, *, split: str,
                   fold: int = 1) -> tuple[list[VideoEntry], list[str]]:
  """Parses one HMDB51 split into entries and the sorted class names.

  Args:
    root: folder holding videos/ and testTrainMulti_7030_splits/
      (default: data/hmdb51).
    split: 'train' (tag 1), 'test' (tag 2) or 'unused' (tag 0).
    fold: the official split number, 1, 2 or 3.

  Returns:
    (entries: classes in label order, videos in split-file order; class names).
  """
  check_official_split('HMDB51', split, _TAGS, fold)
  root = dataset_root(root, 'hmdb51')
  videos, splits = root / 'videos', root / 'testTrainMulti_7030_splits'
  require_folders(_error, videos, splits)
  pattern = re.compile(rf'^(.+)_test_split{fold}\.txt$')
  split_files = {}
  for path in splits.iterdir():
    match = pattern.match(path.name)
    if match:
      split_files[match.group(1)] = path
  if not split_files:
    raise _error(f'no *_test_split{fold}.txt file in {splits}')
  class_names = sorted(split_files)

  collector = EntryCollector(videos)
  for label, name in enumerate(class_names):
    count = 0
    for line_no, line in enumerate(read_lines(split_files[name]), 1):
      parts = line.split()
      if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
        raise _error(f'{split_files[name].name}:{line_no}: bad line {line!r}, '
                     'expected "<video>.avi <0|1|2>"')
      if parts[1] == _TAGS[split]:
        collector.add(f'{name}/{parts[0]}', label)
        count += 1
    if count == 0:
      raise _error(f'class {name!r} has no {split} video in '
                   f'{split_files[name].name}')
  entries = collector.finish(_error, listed_in=f'the *_test_split{fold}.txt '
                             'files', name=f'HMDB51 {split} split {fold}')
  return entries, class_names


def hmdb51_source(root: str | os.PathLike[str] | None, *, split: str,
                  fold: int, spec: ClipSpec) -> VideoFileSource:
  """HMDB51 as a clip source."""
  return labelled_source(hmdb51_entries(root, split=split, fold=fold),
                         spec=spec, name=f'hmdb51/{split}{fold}')

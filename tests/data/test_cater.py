"""CATER reader: multi-label lists, single-label tasks and frames only."""

import pathlib

import numpy as np
import pytest

from sideways_jax.data.cater import cater_entries
from sideways_jax.data.cater import cater_source
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError

SPEC = ClipSpec(clip_length=4, stride=1, resolution=8, train=False)


def test_multi_label_lists(cater_root, fx):
  entries, num_classes, multi = cater_entries(cater_root, split='train',
                                              task='actions_present')
  assert num_classes == 14 and multi
  assert [pathlib.Path(e.path).name for e in entries] == [
      fx.cater_name(i) for i in fx.CATER_TRAIN]
  assert [e.labels for e in entries] == [(1, 3), (0,), (13, 2, 5), (4,)]
  assert [e.label for e in entries] == [1, 0, 13, 4]


def test_multi_hot_labels_in_examples(cater_root):
  source = cater_source(cater_root, split='train', task='actions_present',
                        spec=SPEC)
  example = source.get(2, np.random.default_rng(0))
  assert example['labels'].dtype == np.bool_
  np.testing.assert_array_equal(np.flatnonzero(example['labels']), [2, 5, 13])
  assert int(example['label']) == 13


def test_single_label_task(cater_root):
  source = cater_source(cater_root, split='val', task='localize', spec=SPEC)
  assert source.num_classes == 36 and not source.multi_label
  labels = [int(source.get(i, np.random.default_rng(0))['label'])
            for i in range(len(source))]
  assert labels == [20, 25]  # (5 * i) % 36 for videos 4 and 5
  assert 'labels' not in source.get(0, np.random.default_rng(0))


def test_frames_only_for_auto_encoding(cater_root, fx):
  source = cater_source(cater_root, split='val', task=None, spec=SPEC)
  assert source.num_classes == 0 and len(source) == 2
  example = source.get(0, np.random.default_rng(0))
  assert int(example['label']) == 0 and 'labels' not in example
  # 20 frames, window 4: centred start 8.
  np.testing.assert_array_equal(fx.frame_ids(example['video']), [8, 9, 10, 11])
  everything = cater_source(cater_root, split='all', task=None, spec=SPEC)
  assert len(everything) == 6


def test_errors(cater_root, tmp_path, fx):
  with pytest.raises(DatasetLayoutError, match='prepare_cater.sh'):
    cater_entries(tmp_path / 'nowhere', split='train', task=None)
  with pytest.raises(DatasetLayoutError, match='tasks present'):
    cater_entries(cater_root, split='train', task='no_such_task')
  with pytest.raises(ValueError, match='task=None'):
    cater_entries(cater_root, split='all', task='localize')
  fx.write_lines(cater_root / 'lists' / 'localize' / 'train.txt',
                 [f'{fx.cater_name(0)} 36'])
  with pytest.raises(DatasetLayoutError, match='36 classes'):
    cater_entries(cater_root, split='train', task='localize')
  fx.write_lines(cater_root / 'lists' / 'localize' / 'val.txt', [])
  with pytest.raises(DatasetLayoutError, match='lists no video'):
    cater_entries(cater_root, split='val', task='localize')

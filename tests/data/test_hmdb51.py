"""HMDB51 reader on fixture files in the official layout."""

import pathlib

import numpy as np
import pytest

from sideways_jax.data.hmdb51 import hmdb51_entries
from sideways_jax.data.hmdb51 import hmdb51_source
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError


def test_tags_select_the_split_and_labels_follow_sorted_classes(hmdb51_root,
                                                                 fx):
  train, names = hmdb51_entries(hmdb51_root, split='train', fold=1)
  assert names == ['brush_hair', 'climb_stairs', 'fall_floor']
  # Tag 1 lines are videos 0 and 2 of each class, in class (label) order.
  expected = [(label, fx.hmdb_video(name, i)) for label, name in
              enumerate(names) for i in (0, 2)]
  assert [(e.label, pathlib.Path(e.path).name) for e in train] == expected
  assert all(pathlib.Path(e.path).parent.name == names[e.label] for e in train)
  test, _ = hmdb51_entries(hmdb51_root, split='test', fold=1)
  assert [(e.label, pathlib.Path(e.path).name) for e in test] == [
      (label, fx.hmdb_video(name, 1)) for label, name in enumerate(names)]
  unused, _ = hmdb51_entries(hmdb51_root, split='unused', fold=1)
  assert [pathlib.Path(e.path).name for e in unused] == [
      fx.hmdb_video(name, 3) for name in names]


def test_source_returns_the_label_of_the_class(hmdb51_root):
  spec = ClipSpec(clip_length=3, stride=2, resolution=8, train=True)
  source = hmdb51_source(hmdb51_root, split='test', fold=1, spec=spec)
  assert source.num_classes == 3
  assert source.class_names == ('brush_hair', 'climb_stairs', 'fall_floor')
  example = source.get(2, np.random.default_rng(1))
  assert int(example['label']) == 2 and example['video'].shape == (3, 8, 8, 3)


def test_missing_root_and_missing_split_number(hmdb51_root, tmp_path):
  with pytest.raises(DatasetLayoutError) as info:
    hmdb51_entries(tmp_path / 'nowhere', split='train', fold=1)
  assert 'testTrainMulti_7030_splits' in str(info.value)
  assert 'prepare_hmdb51.sh' in str(info.value)
  with pytest.raises(DatasetLayoutError, match='_test_split2.txt'):
    hmdb51_entries(hmdb51_root, split='train', fold=2)


def test_class_without_videos_in_the_split_is_an_error(hmdb51_root, fx):
  split_file = (hmdb51_root / 'testTrainMulti_7030_splits' /
                'climb_stairs_test_split1.txt')
  fx.write_lines(split_file, [f'{fx.hmdb_video("climb_stairs", 1)} 1'])
  with pytest.raises(DatasetLayoutError, match="'climb_stairs' has no test"):
    hmdb51_entries(hmdb51_root, split='test', fold=1)


def test_malformed_tag_is_an_error(hmdb51_root, fx):
  split_file = (hmdb51_root / 'testTrainMulti_7030_splits' /
                'fall_floor_test_split1.txt')
  fx.write_lines(split_file, ['video.avi 3'])
  with pytest.raises(DatasetLayoutError, match='bad line'):
    hmdb51_entries(hmdb51_root, split='train', fold=1)

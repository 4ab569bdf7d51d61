"""The generic folder-of-videos reader."""

import pathlib

import numpy as np
import pytest

from sideways_jax.data.folder import folder_entries
from sideways_jax.data.folder import folder_source
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError

SPEC = ClipSpec(clip_length=2, stride=3, resolution=8, train=False)


def test_classes_are_sorted_folders_and_non_videos_ignored(folder_root):
  entries, names = folder_entries(folder_root, split='all')
  assert names == ['cats', 'dogs']
  assert [(pathlib.Path(e.path).name, e.label) for e in entries] == [
      ('c0.avi', 0), ('c1.mp4', 0), ('d0.avi', 1), ('d1.avi', 1)]


def test_split_list(folder_root):
  entries, _ = folder_entries(folder_root, split='train')
  assert [(pathlib.Path(e.path).name, e.label) for e in entries] == [
      ('d1.avi', 1), ('c0.avi', 0)]


def test_mp4_decodes(folder_root, fx):
  source = folder_source(folder_root, split='all', spec=SPEC)
  example = source.get(1, np.random.default_rng(0))
  # 10 frames, window 4: centred start 3.
  np.testing.assert_array_equal(fx.frame_ids(example['video']), [3, 6])


def test_unlabelled_folder(tmp_path, fx):
  for name in ('b.avi', 'a.avi'):
    fx.write_video(tmp_path / 'stream' / name, 5)
  source = folder_source(tmp_path / 'stream', split='all', spec=SPEC)
  assert source.num_classes == 0 and len(source) == 2
  assert source.entries[0].path.endswith('a.avi')


def test_errors(folder_root, tmp_path):
  with pytest.raises(DatasetLayoutError, match='split file'):
    folder_entries(folder_root, split='test')
  (folder_root / 'birds').mkdir()
  with pytest.raises(DatasetLayoutError, match='birds'):
    folder_entries(folder_root, split='all')
  with pytest.raises(DatasetLayoutError, match='not found'):
    folder_entries(tmp_path / 'nowhere', split='all')
  (tmp_path / 'empty').mkdir()
  with pytest.raises(DatasetLayoutError, match='no video'):
    folder_entries(tmp_path / 'empty', split='all')

"""UCF101 reader on fixture files in the official layout."""

import pathlib

import numpy as np
import pytest

from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import DatasetLayoutError
from sideways_jax.data.source import VideoReadError
from sideways_jax.data.ucf101 import ucf101_entries
from sideways_jax.data.ucf101 import ucf101_source


def test_fixture_lists_have_crlf_line_ends(ucf101_root):
  raw = (ucf101_root / 'ucfTrainTestlist' / 'trainlist01.txt').read_bytes()
  assert b'\r\n' in raw


def test_train_labels_are_zero_based_class_index(ucf101_root, fx):
  entries, names = ucf101_entries(ucf101_root, split='train', fold=1)
  assert names == list(fx.UCF_CLASSES)
  assert len(entries) == 3 * len(fx.UCF_CLASSES)
  for entry in entries:
    class_folder = pathlib.Path(entry.path).parent.name
    assert entry.label == names.index(class_folder)
    assert pathlib.Path(entry.path).is_file()
  # classInd '1 ApplyEyeMakeup' -> label 0; '3 HandstandPushups' -> 2.
  assert entries[0].label == 0 and entries[0].path.endswith(
      'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi')
  hand = [e for e in entries if 'HandStandPushups' in e.path]
  assert len(hand) == 3 and {e.label for e in hand} == {2}


def test_unlabelled_test_list_takes_labels_from_folders(ucf101_root):
  entries, _ = ucf101_entries(ucf101_root, split='test', fold=1)
  assert [e.label for e in entries] == [0, 1, 2, 3]
  assert entries[2].path.endswith('v_HandStandPushups_g01_c01.avi')


def test_mirror_with_other_folder_case_is_resolved(tmp_path, fx):
  root = fx.build_ucf101(tmp_path / 'u',
                         folder_case={'HandstandPushups': 'HandStandPushups'})
  entries, _ = ucf101_entries(root, split='train', fold=1)
  hand = [e for e in entries if e.label == 2]
  assert all(pathlib.Path(e.path).is_file() for e in hand)
  assert all('/HandStandPushups/' in e.path for e in hand)


def test_lists_spelling_class_differently_still_match(ucf101_root):
  # Some copies of the lists say 'HandStandPushups/...' for the folder.
  test_list = ucf101_root / 'ucfTrainTestlist' / 'testlist01.txt'
  test_list.write_bytes(test_list.read_bytes().replace(
      b'HandstandPushups/', b'HandStandPushups/'))
  entries, _ = ucf101_entries(ucf101_root, split='test', fold=1)
  assert entries[2].label == 2 and pathlib.Path(entries[2].path).is_file()


def test_source_decodes_centred_clip_with_label(ucf101_root, fx):
  spec = ClipSpec(clip_length=4, stride=2, resolution=8, train=False)
  source = ucf101_source(ucf101_root, split='test', fold=1, spec=spec)
  assert len(source) == 4 and source.num_classes == 4
  example = source.get(3, np.random.default_rng(0))
  assert example['video'].shape == (4, 8, 8, 3)
  assert example['video'].dtype == np.uint8
  assert example['label'].dtype == np.int32 and example['label'].shape == ()
  assert int(example['label']) == 3
  # 12 frames, window 7: centred start (12-7)//2 = 2.
  np.testing.assert_array_equal(fx.frame_ids(example['video']), [2, 4, 6, 8])
  assert example['mask'].all()


def test_short_video_is_padded_not_dropped(tmp_path, fx):
  root = fx.build_ucf101(tmp_path / 'u', num_frames=5)
  spec = ClipSpec(clip_length=4, stride=2, resolution=8, train=True)
  source = ucf101_source(root, split='train', fold=1, spec=spec)
  example = source.get(0, np.random.default_rng(0))
  np.testing.assert_array_equal(fx.frame_ids(example['video']), [0, 2, 4, 4])
  np.testing.assert_array_equal(example['mask'], [True, True, True, False])


def test_missing_video_is_kept_and_fails_when_read(ucf101_root, caplog):
  (ucf101_root / 'UCF-101' / 'YoYo' / 'v_YoYo_g01_c01.avi').unlink()
  spec = ClipSpec(clip_length=2, stride=1, resolution=8, train=False)
  source = ucf101_source(ucf101_root, split='test', fold=1, spec=spec)
  assert len(source) == 4 and 'missing' in caplog.text
  with pytest.raises(VideoReadError, match='no such file'):
    source.get(3, np.random.default_rng(0))


def test_missing_root_names_layout_and_preparation(tmp_path):
  with pytest.raises(DatasetLayoutError) as info:
    ucf101_entries(tmp_path / 'nowhere', split='train', fold=1)
  message = str(info.value)
  assert 'UCF-101/<Class>' in message and 'prepare_ucf101.sh' in message


def test_missing_split_file_is_an_error(ucf101_root):
  with pytest.raises(DatasetLayoutError, match='trainlist02.txt'):
    ucf101_entries(ucf101_root, split='train', fold=2)


def test_default_root_comes_from_environment(tmp_path, monkeypatch):
  monkeypatch.setenv('SIDEWAYS_JAX_DATA_ROOT', str(tmp_path))
  with pytest.raises(DatasetLayoutError, match=str(tmp_path / 'ucf101')):
    ucf101_entries(None, split='train', fold=1)


def test_empty_split_and_empty_class_are_errors(ucf101_root, fx):
  lists = ucf101_root / 'ucfTrainTestlist'
  train = (lists / 'trainlist01.txt').read_text().splitlines()
  fx.write_lines(lists / 'trainlist01.txt',
                 [l for l in train if not l.startswith('YoYo/')])
  with pytest.raises(DatasetLayoutError, match='YoYo'):
    ucf101_entries(ucf101_root, split='train', fold=1)
  fx.write_lines(lists / 'trainlist01.txt', ['', '  '], newline='\r\n')
  with pytest.raises(DatasetLayoutError, match='lists no video'):
    ucf101_entries(ucf101_root, split='train', fold=1)


def test_inconsistent_label_and_bad_class_index_are_errors(ucf101_root, fx):
  lists = ucf101_root / 'ucfTrainTestlist'
  fx.write_lines(lists / 'trainlist01.txt',
                 ['Archery/v_Archery_g08_c01.avi 1'])
  with pytest.raises(DatasetLayoutError, match='disagrees'):
    ucf101_entries(ucf101_root, split='train', fold=1)
  fx.write_lines(lists / 'classInd.txt', ['0 ApplyEyeMakeup', '1 Archery'])
  with pytest.raises(DatasetLayoutError, match='1-based'):
    ucf101_entries(ucf101_root, split='train', fold=1)


def test_bad_split_or_fold_arguments(ucf101_root):
  with pytest.raises(ValueError, match='split'):
    ucf101_entries(ucf101_root, split='val', fold=1)
  with pytest.raises(ValueError, match='fold'):
    ucf101_entries(ucf101_root, split='train', fold=4)

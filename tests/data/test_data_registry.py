"""make_source: every name builds the right source with the right spec."""

import numpy as np
import pytest

from sideways_jax.data import registry
from sideways_jax.data.registry import make_source
from sideways_jax.data.source import ClipSource
from sideways_jax.data.synthetic import RandomVideos

COMMON = dict(clip_length=4, stride=2, resolution=8, train=False)


@pytest.mark.parametrize('name, root_fixture, split, kwargs, classes', [
    ('ucf101', 'ucf101_root', 'test', {}, 4),
    ('hmdb51', 'hmdb51_root', 'train', {}, 3),
    ('cater', 'cater_root', 'train', {'task': 'actions_present'}, 14),
    ('cater', 'cater_root', 'val', {}, 0),
    ('folder', 'folder_root', 'all', {'crop_fraction': 1.0}, 2),
])
def test_file_sources(name, root_fixture, split, kwargs, classes, request):
  root = request.getfixturevalue(root_fixture)
  source = make_source(name, split=split, root=str(root), **COMMON, **kwargs)
  assert isinstance(source, ClipSource)
  assert source.num_classes == classes
  assert source.spec.window == 7 and not source.spec.train
  example = source.get(0, np.random.default_rng(0))
  assert example['video'].shape == (4, 8, 8, 3)


def test_crop_fraction_reaches_the_spec(folder_root):
  source = make_source('folder', split='all', root=str(folder_root),
                       crop_fraction=0.5, **COMMON)
  assert source.spec.crop_fraction == 0.5


def test_tfds_source_takes_an_injected_data_source():
  frames = np.zeros((9, 8, 8, 3), np.uint8)
  source = make_source('tfds_ucf101', split='train', root=None,
                       data_source=[{'video': frames, 'label': 3}], **COMMON)
  assert int(source.get(0, np.random.default_rng(0))['label']) == 3


def test_synthetic_stride_keeps_every_sth_frame_of_the_window():
  source = make_source('random', split='train', root=None, seed=4,
                       num_videos=3, num_classes=2, **COMMON)
  assert len(source) == 3 and source.num_classes == 2
  got = source.get(1, np.random.default_rng(11))
  full = RandomVideos(3, 7, 8, 2, 4).get(1, np.random.default_rng(11))
  np.testing.assert_array_equal(got['video'], full['video'][::2])
  np.testing.assert_array_equal(got['mask'], full['mask'][::2])
  assert got['video'].shape == (4, 8, 8, 3)


def test_synthetic_splits_differ():
  kwargs = dict(root=None, seed=0, num_videos=2, **COMMON)
  train = make_source('cater_like', split='train', **kwargs)
  val = make_source('cater_like', split='val', **kwargs)
  a = train.get(0, np.random.default_rng(0))['video']
  b = val.get(0, np.random.default_rng(0))['video']
  assert a.shape == b.shape == (4, 8, 8, 3)
  assert (a != b).any()
  assert registry.split_seed(3, 'train') == 3
  shapes = make_source('moving_shapes', split='test', root=None, seed=0,
                       num_videos=2, **COMMON)
  assert shapes.get(1, np.random.default_rng(0))['video'].shape == (4, 8, 8, 3)


def test_errors():
  with pytest.raises(ValueError, match='unknown data source'):
    make_source('kinetics', split='train', root=None, **COMMON)
  with pytest.raises(TypeError, match='num_videos'):
    make_source('moving_shapes', split='train', root=None, **COMMON)
  with pytest.raises(TypeError, match='num_classes'):
    make_source('random', split='train', root=None, num_videos=2, **COMMON)
  with pytest.raises(TypeError):
    make_source('hmdb51', split='train', root=None, no_such_option=1, **COMMON)

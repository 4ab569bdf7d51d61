"""make_source: every name or import path builds the right source; caching."""

import numpy as np
import pytest

from sideways_jax.data import registry
from sideways_jax.data.cache import cache_source
from sideways_jax.data.registry import make_source
from sideways_jax.data.source import ClipSource
from sideways_jax.data.synthetic import RandomVideos
from sideways_jax.models.registry import RegistryError

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
  with pytest.raises(ValueError, match="did you mean 'textured_objects'"):
    make_source('texturd_objects', split='train', root=None, **COMMON)
  with pytest.raises(TypeError, match='num_videos'):
    make_source('moving_shapes', split='train', root=None, **COMMON)
  with pytest.raises(TypeError, match='num_classes'):
    make_source('random', split='train', root=None, num_videos=2, **COMMON)
  with pytest.raises(TypeError):
    make_source('hmdb51', split='train', root=None, no_such_option=1, **COMMON)


_USER_MODULE = """
import numpy as np

class Flat:
  num_classes = 2
  deterministic = True

  def __init__(self, n, k, r):
    self.n, self.k, self.r = n, k, r

  def __len__(self):
    return self.n

  def get(self, index, rng):
    return {'video': np.full((self.k, self.r, self.r, 3), index, np.uint8),
            'label': np.asarray(index % 2, np.int32),
            'mask': np.ones(self.k, bool)}

def make(*, split, root, clip_length, stride, resolution, train, fold, seed,
         num_videos):
  return Flat(num_videos, clip_length, resolution)

def not_a_source(**kwargs):
  return 3
"""


def test_a_user_source_by_import_path(tmp_path, monkeypatch):
  (tmp_path / 'user_videos_for_test.py').write_text(_USER_MODULE)
  monkeypatch.syspath_prepend(str(tmp_path))
  source = make_source('user_videos_for_test:make', split='train', root=None,
                       num_videos=3, **COMMON)
  assert len(source) == 3 and source.num_classes == 2
  cached = cache_source(source, name='user_videos_for_test:make')
  rng = np.random.default_rng(0)
  assert cached.get(1, rng) is cached.get(1, rng)
  for name, message in [
      ('user_videos_for_test:mkae', 'did you mean user_videos_for_test:make'),
      ('user_videos_for_test:not_a_source', 'not a ClipSource'),
      ('user_videos_for_test:Flat', 'cannot take these arguments .*a source'),
      ('no_such_module_for_test:make', "cannot import 'no_such_module_for"),
      ('user_videos_for_test.make', "written 'package.module:function'")]:
    with pytest.raises(RegistryError, match=message) as info:
      make_source(name, split='train', root=None, num_videos=3, **COMMON)
    assert '\n' not in str(info.value)


def test_only_deterministic_sources_are_cached(folder_root):
  kwargs = dict(split='all', root=str(folder_root), clip_length=2, stride=1,
                resolution=8)
  with pytest.raises(ValueError, match="'folder' cannot be cached"):
    cache_source(make_source('folder', train=True, **kwargs), name='folder')
  cache_source(make_source('folder', train=False, **kwargs), name='folder')
  synthetic = make_source('moving_shapes', split='train', root=None,
                          num_videos=2, **COMMON)
  assert cache_source(synthetic, name='moving_shapes').deterministic

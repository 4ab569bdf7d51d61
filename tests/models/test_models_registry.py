"""The model table: built-in names per kind, import paths, one-line errors."""

import inspect

import flax.linen as nn
import pytest

from sideways_jax import models

_USER_MODULE = '''
import flax.linen as nn

class Head(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x, train):
    return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))

def build(num_classes, *, num_stages=None, frame_shape=None, width=4):
  return (Head(width), Head(num_classes))

def layers(num_classes):
  return [('body', Head(4)), ('head', Head(num_classes))]

def broken(num_classes, **kwargs):
  return 'stages'
'''


@pytest.fixture(name='user_module')
def _user_module(tmp_path, monkeypatch):
  (tmp_path / 'user_model_for_test.py').write_text(_USER_MODULE)
  monkeypatch.syspath_prepend(str(tmp_path))
  return 'user_model_for_test'


def test_one_table_serves_every_kind():
  assert models.model_names('classifier') == (
      'simple_cnn', 'vgg8', 'temporal_simple_cnn')
  assert models.model_names('autoencoder') == ('conv_autoencoder',)
  assert models.model_names('layers') == ('simple_cnn', 'vgg8')
  assert models.get_model_builder('vgg8') is models.vgg8
  assert models.get_model_builder('vgg8', 'layers') is models.vgg8_layers
  stages = models.build_model('vgg8', 'classifier', 3, num_stages=2,
                              frame_shape=(32, 32, 3), width=0.125)
  assert [s.names[-1] for s in stages] == ['conv2', 'fc8']  # Balanced.
  stages = models.build_model('conv_autoencoder', 'autoencoder',
                              num_stages=None, frame_shape=(32, 32, 3))
  assert len(stages) == 6
  layers = models.build_model('simple_cnn', 'layers', 3, channels=(4,) * 5)
  assert [l.name for l in layers][-1] == 'head'


def test_built_in_builders_show_their_whole_signature():
  # Every runner passes num_stages and frame_shape, with model.kwargs.
  for name in models.model_names('classifier'):
    params = inspect.signature(models.get_model_builder(name)).parameters
    assert {'num_classes', 'num_stages', 'frame_shape', 'impl',
            'dtype'} <= set(params)


def test_a_user_model_by_import_path(user_module):
  stages = models.build_model(f'{user_module}:build', 'classifier', 5,
                              num_stages=None, frame_shape=(8, 8, 3),
                              width=6)
  assert [s.num_classes for s in stages] == [6, 5]
  layers = models.build_model(f'{user_module}:layers', 'layers', 5)
  assert [l.name for l in layers] == ['body', 'head']
  assert isinstance(layers[0], models.Layer)
  assert isinstance(layers[0].module, nn.Module)


@pytest.mark.parametrize('name, kind, kwargs, message', [
    ('vgg9', 'classifier', {}, "did you mean 'vgg8'"),
    ('simple_cn', 'layers', {}, "did you mean 'simple_cnn'"),
    ('resnet18', 'classifier', {}, 'choose one of simple_cnn, vgg8, temporal_simple_cnn'),
    ('conv_autoencoder', 'classifier', {}, 'has no classifier builder'),
    ('vgg8', 'classifier', {'widht': 0.5}, "unexpected keyword .*'widht'"),
    ('{m}:buidl', 'classifier', {}, 'did you mean {m}:build'),
    ('{m}:build', 'classifier', {'depth': 3}, 'a classifier builder is fn'),
    ('{m}:broken', 'classifier', {}, 'returned str, not a non-empty tuple'),
    ('no_such_module_for_test:build', 'classifier', {},
     "cannot import 'no_such_module_for_test': ModuleNotFoundError"),
    ('vgg8', 'cnn', {}, 'model kind must be one of'),
])
def test_mistakes_are_one_line_value_errors(user_module, name, kind, kwargs,
                                            message):
  name, message = (x.replace('{m}', user_module) for x in (name, message))
  args = () if kind == 'autoencoder' else (3,)
  with pytest.raises(ValueError, match=message) as info:
    models.build_model(name, kind, *args, num_stages=None, frame_shape=None,
                       **kwargs)
  assert '\n' not in str(info.value)
  # Runners catch exactly this class (a misused kind is a code bug).
  assert isinstance(info.value, models.RegistryError) == (kind != 'cnn')

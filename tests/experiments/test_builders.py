"""Config -> optimizer, schedule and sources."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import load_config
from sideways_jax import data
from sideways_jax.experiments import classification as train
from sideways_jax.experiments import common
from sideways_jax.experiments.classification import builders


def test_schedule_warms_up_then_decays_to_zero():
  config = load_config('synthetic_simplecnn', None)
  schedule = train.build_schedule(config)
  lr, warmup = config.optimizer.learning_rate, config.optimizer.warmup_steps
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(float(schedule(warmup)), lr, rtol=1e-6)
  assert float(schedule(config.num_train_steps)) < 1e-9
  config.optimizer.schedule = 'constant'
  schedule = train.build_schedule(config)
  np.testing.assert_allclose(float(schedule(config.num_train_steps)), lr)


@pytest.mark.parametrize('name', ['adamw', 'sgd'])
def test_optimizer_clips_gradients_when_asked(name):
  config = load_config('synthetic_simplecnn', None)
  config.optimizer.name = name
  config.optimizer.schedule = 'constant'
  config.optimizer.warmup_steps = 0
  config.optimizer.weight_decay = 0.0
  config.optimizer.learning_rate = 1.0
  config.optimizer.b1 = 0.0  # SGD without momentum: the update is -grad.
  params = {'w': jnp.zeros(4)}
  grads = {'w': jnp.full(4, 100.0)}
  config.optimizer.grad_clip_norm = 1.0
  tx, _ = train.build_optimizer(config)
  updates, _ = tx.update(grads, tx.init(params), params)
  norm = float(optax.tree.norm(updates))
  if name == 'sgd':
    np.testing.assert_allclose(norm, 1.0, rtol=1e-6)  # Clipped to norm 1.
  else:
    np.testing.assert_allclose(norm, 2.0, rtol=1e-3)  # Adam: |u_i| ~ lr.
  config.optimizer.grad_clip_norm = 0.0
  tx, _ = train.build_optimizer(config)
  updates, _ = tx.update(grads, tx.init(params), params)
  if name == 'sgd':
    np.testing.assert_allclose(float(optax.tree.norm(updates)), 200.0)


def test_cached_source_renders_each_clip_once():
  config = load_config('synthetic_simplecnn', 'smoke')
  source = train.build_source(config, train=True)
  assert isinstance(source, data.CachedSource)
  calls = []
  original = source.source.get
  source.source.get = lambda i, rng: calls.append(i) or original(i, rng)
  first = source.get(3, None)
  again = source.get(3, None)
  assert calls == [3] and again is first
  assert first['video'].shape == (11, 32, 32, 3)


class _RandomCrops:
  """A user's source whose clips depend on the generator (not cacheable)."""
  num_classes = 2

  def __len__(self):
    return 4

  def get(self, index, rng):
    del index
    return {'video': rng.integers(0, 255, (3, 8, 8, 3), np.uint8),
            'label': np.int32(0), 'mask': np.ones(3, bool)}


def make_random_crops(**kwargs):
  del kwargs
  return _RandomCrops()


def test_cache_is_refused_for_sources_that_draw_randomly():
  config = load_config('synthetic_simplecnn', 'smoke')
  config.data.name = 'test_builders:make_random_crops'  # by import path
  config.data.cache = False
  assert len(train.build_source(config, train=True)) == 4
  config.data.cache = True
  with pytest.raises(common.ConfigError, match='data.cache=True'):
    train.build_source(config, train=True)


def test_model_names_come_from_the_table_or_an_import_path():
  config = load_config('synthetic_simplecnn', 'smoke')
  config.model.name = 'sideways_jax.models:simple_cnn'  # as a user's builder
  stages = builders.build_stages(config, 10)
  assert len(stages) == config.model.num_stages
  config.model.name = 'simpel_cnn'
  with pytest.raises(common.ConfigError, match="did you mean 'simple_cnn'"):
    train.validate_config(config)

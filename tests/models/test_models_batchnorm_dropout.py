"""Batchnorm and dropout behave differently in training and eval (VGG-8)."""

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np
import pytest

from sideways_jax import models
import models_testlib

EPS = 1e-5      # nn.BatchNorm's default epsilon.
MOMENTUM = 0.9  # vgg8's default bn_momentum.


def _conv3_setup():
  """VGG-8's conv3 stage (3x3 conv, BN, ReLU, no pool), small and random."""
  stages = models.vgg8(3, width=0.125, impl='xla')
  stage = stages[2]
  x = jax.random.normal(jax.random.key(0), (3, 4, 4, 32)) + 0.5
  (variables,) = models_testlib.random_variables((stage,), x, seed=1)
  return stage, variables, x


def _conv(x, variables):
  kernel = variables['params']['conv3']['conv']['kernel']
  return lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                  precision=lax.Precision.HIGHEST)


def _bn_relu(y, mean, var, variables):
  bn = variables['params']['conv3']['bn']
  return jax.nn.relu((y - mean) / jnp.sqrt(var + EPS) * bn['scale']
                     + bn['bias'])


def test_batchnorm_train_uses_batch_stats_and_updates_running_averages():
  stage, variables, x = _conv3_setup()
  out, updates = jax.jit(lambda v, x: stage.apply(
      v, x, train=True, mutable=['batch_stats']))(variables, x)
  y = _conv(x, variables)
  mean, var = jnp.mean(y, axis=(0, 1, 2)), jnp.var(y, axis=(0, 1, 2))
  np.testing.assert_allclose(out, _bn_relu(y, mean, var, variables),
                             rtol=1e-4, atol=1e-4)
  old = variables['batch_stats']['conv3']['bn']
  new = updates['batch_stats']['conv3']['bn']
  np.testing.assert_allclose(
      new['mean'], MOMENTUM * old['mean'] + (1 - MOMENTUM) * mean,
      rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      new['var'], MOMENTUM * old['var'] + (1 - MOMENTUM) * var,
      rtol=1e-4, atol=1e-5)
  assert float(jnp.max(jnp.abs(new['mean'] - old['mean']))) > 1e-3


def test_batchnorm_eval_uses_running_averages():
  stage, variables, x = _conv3_setup()
  apply = jax.jit(lambda v, x: stage.apply(v, x, train=False))
  out = apply(variables, x)
  stats = variables['batch_stats']['conv3']['bn']
  expected = _bn_relu(_conv(x, variables), stats['mean'], stats['var'],
                      variables)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
  # Eval output of one frame does not depend on the rest of the batch...
  np.testing.assert_allclose(apply(variables, x[:1]), out[:1], rtol=1e-5,
                             atol=1e-5)
  # ...while in training it does (batch statistics).
  train = jax.jit(lambda v, x: stage.apply(v, x, train=True,
                                           mutable=['batch_stats'])[0])
  assert float(jnp.max(jnp.abs(train(variables, x[:2])[:1]
                               - train(variables, x)[:1]))) > 1e-3


@pytest.fixture(scope='module')
def dropout_chain():
  rate = 0.5
  # impl='xla': see models_testlib.chain_apply.
  stages = models.vgg8(3, dropout_rate=rate, width=0.125, impl='xla')
  plain = models.vgg8(3, dropout_rate=0.0, width=0.125, impl='xla')
  frame = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  variables = models_testlib.random_variables(stages, frame)
  # fc6 and its input: the first stage with dropout.
  x = models_testlib.chain_apply(stages[:5], variables[:5], frame)
  return rate, stages[5], plain[5], variables[5], x


def test_dropout_active_only_in_training(dropout_chain):
  rate, stage, plain, variables, x = dropout_chain
  apply = jax.jit(lambda x, key, train: stage.apply(
      variables, x, train=train, rngs={'dropout': key}), static_argnums=2)
  key_a, key_b = jax.random.key(1), jax.random.key(2)
  eval_a, eval_b = apply(x, key_a, False), apply(x, key_b, False)
  np.testing.assert_array_equal(eval_a, eval_b)
  np.testing.assert_array_equal(
      eval_a, plain.apply(variables, x, train=True))  # eval = no dropout.
  train_a, train_b = apply(x, key_a, True), apply(x, key_b, True)
  np.testing.assert_array_equal(train_a, apply(x, key_a, True))
  assert not np.array_equal(train_a, train_b)
  # Every unit is either dropped or kept and rescaled by 1 / (1 - rate).
  kept = train_a != 0
  np.testing.assert_allclose(train_a[kept], eval_a[kept] / (1 - rate),
                             rtol=1e-5)
  alive = np.asarray(eval_a) != 0
  dropped = float(np.mean(~kept[alive]))
  assert 0.3 < dropped < 0.7, dropped


def test_dropout_needs_a_key_in_training(dropout_chain):
  _, stage, _, variables, x = dropout_chain
  with pytest.raises(Exception, match='dropout'):
    stage.apply(variables, x, train=True)

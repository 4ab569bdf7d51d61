"""One training step of every config in smoke size, on its own data source."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import CONFIG_NAMES
from conftest import smoke_config
import sideways_jax
from sideways_jax.experiments import classification as train
from sideways_jax.experiments import common

# Sideways for every config; BP too where the model differs (BP is the
# baseline, so its path through batchnorm/dropout must run as well).
CASES = [(name, 'sideways') for name in CONFIG_NAMES] + [
    ('synthetic_simplecnn', 'bp'), ('ucf101_vgg8_dropout', 'bp')]


@pytest.mark.parametrize('name, algorithm', CASES)
def test_one_train_step(name, algorithm, dataset_roots):
  config = smoke_config(name, dataset_roots)
  _, config = common.expand_sweep(config)[0]  # Stride 2 for the sweep.
  source = train.build_source(config, train=True)
  stages = train.build_stages(config, source.num_classes)
  assert len(stages) == config.model.num_stages
  optimizer, schedule = train.build_optimizer(config)
  res = config.data.resolution
  state = train.create_train_state(
      stages, optimizer, seed=config.seed,
      example_frame=jnp.zeros((config.batch_size, res, res, 3)))
  step = train.make_train_step(
      stages, optimizer,
      sideways_jax.grad_fn(algorithm, **config.options[algorithm]),
      input_mean=config.data.mean, input_std=config.data.std,
      learning_rate_fn=schedule)
  with train.build_loader(config, source, train=True) as loader:
    batch = next(loader)
  assert batch['video'].shape == (config.data.clip_length, config.batch_size,
                                  res, res, 3)
  assert batch['mask'].all()
  before = jax.device_get(state.params)
  state, metrics = step(state, {k: batch[k] for k in ('video', 'label',
                                                      'mask')})
  metrics = jax.device_get(metrics)
  assert int(state.step) == 1
  assert metrics['loss_is_finite']
  assert 0.5 < metrics['loss'] < 10.0  # About log(num_classes) at the start.
  assert metrics['grad_norm'] > 0
  # Warm-up starts from 0: step 1 gives the first non-zero learning rate.
  assert metrics['learning_rate'] == 0.0
  assert float(schedule(1)) > 0
  changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), before,
                         jax.device_get(state.params))
  assert not any(jax.tree.leaves(changed))  # lr 0: Adam moves nothing yet.
  state, _ = step(state, {k: batch[k] for k in ('video', 'label', 'mask')})
  changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), before,
                         jax.device_get(state.params))
  assert all(jax.tree.leaves(changed))  # Every stage learns.

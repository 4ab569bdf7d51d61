"""One training step of every config in smoke size, on its own data source."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conftest import CONFIG_NAMES
from conftest import smoke_config
from sideways_jax.experiments import classification as train
from sideways_jax.experiments import common
from sideways_jax.experiments.classification import loop

# The three VGG-8 configs differ only in their data source and dropout:
# the dropout one (the superset) trains; the other two build their loader
# and model and must equal it in every other key.
TRAINED_VGG8 = 'ucf101_vgg8_dropout'
SAME_VGG8 = {'hmdb_vgg8': ('data.name', 'data.root',
                           'model.kwargs.dropout_rate'),
             'ucf101_vgg8': ('model.kwargs.dropout_rate',)}
# Sideways for every trained config; BP too where the model differs (BP is
# the baseline, so its path through batchnorm/dropout must run as well).
CASES = [(name, 'sideways') for name in CONFIG_NAMES
         if name not in SAME_VGG8] + [
             ('synthetic_simplecnn', 'bp'), (TRAINED_VGG8, 'bp'),
             ('synthetic_temporal', 'bp')]


def _config(name, dataset_roots):
  config = smoke_config(name, dataset_roots)
  # Stride 2 for the stride sweep; the temporal model for the model sweep.
  point = -1 if name == 'synthetic_temporal' else 0
  return common.expand_sweep(config)[point][1]


def _first_batch(config, run):
  """The loader's first batch, checked: the config's shape, all real."""
  res = config.data.resolution
  with train.build_loader(config, run.train_source, train=True) as loader:
    batch = next(loader)
  assert batch['video'].shape == (config.data.clip_length, config.batch_size,
                                  res, res, 3)
  assert batch['mask'].all()
  return {k: batch[k] for k in ('video', 'label', 'mask')}


@pytest.mark.parametrize('name, algorithm', CASES)
def test_one_train_step(name, algorithm, dataset_roots):
  config = _config(name, dataset_roots)
  run = loop.prepare(config, algorithm)
  batch = _first_batch(config, run)
  # Host copies: the step donates (and so deletes) the state's buffers.
  before = jax.tree.map(np.array, [v['params'] for v in
                                   run.backend.variables(run.state)])
  assert len(before) == config.model.num_stages
  state, metrics = run.backend.train_step(run.state, batch)
  metrics = jax.device_get(metrics)
  assert int(state.step) == 1
  assert metrics['loss_is_finite']
  assert 0.5 < metrics['loss'] < 10.0  # About log(num_classes) at the start.
  assert metrics['grad_norm'] > 0
  # Warm-up starts from 0: step 1 gives the first non-zero learning rate.
  assert metrics['learning_rate'] == 0.0
  schedule = train.build_schedule(config)
  assert float(schedule(1)) > 0
  def changed():
    after = [v['params'] for v in run.backend.variables(state)]
    return jax.tree.map(lambda a, b: bool(np.any(a != b)), before, after)
  assert not any(jax.tree.leaves(changed()))  # lr 0: Adam moves nothing yet.
  state, _ = run.backend.train_step(state, batch)
  assert all(jax.tree.leaves(changed()))  # Every stage learns.


def _flat(config, prefix=''):
  """{dotted key: value} of a nested ConfigDict's leaves."""
  out = {}
  for key, value in config.items():
    if hasattr(value, 'items'):
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[prefix + key] = value
  return out


@pytest.mark.parametrize('name', sorted(SAME_VGG8))
def test_vgg8_configs_build_the_trained_model(name, dataset_roots):
  config = _config(name, dataset_roots)
  got, want = _flat(config), _flat(_config(TRAINED_VGG8, dataset_roots))
  assert got.keys() == want.keys()
  assert {k for k in got if got[k] != want[k]} == set(SAME_VGG8[name])
  assert got['model.kwargs.dropout_rate'] == 0.0
  run = loop.prepare(config, 'sideways')
  _first_batch(config, run)
  params = [v['params'] for v in run.backend.variables(run.state)]
  assert len(params) == config.model.num_stages
  leaves = jax.tree.leaves(params)
  assert leaves and all(np.isfinite(np.asarray(x)).all() for x in leaves)

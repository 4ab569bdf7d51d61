"""Every config loads, is locked, and carries the paper's settings."""

from __future__ import annotations

import pytest

from conftest import CONFIG_NAMES
from conftest import load_config

# The configs that train both algorithms and print a table.
COMPARING = ('synthetic_simplecnn', 'stride_sweep', 'synthetic_temporal')
from sideways_jax.experiments import cli
from sideways_jax.experiments import common
from sideways_jax.experiments.classification import validate
from sideways_jax.experiments import classification as train


@pytest.mark.parametrize('name', CONFIG_NAMES)
@pytest.mark.parametrize('arg', [None, 'smoke'])
def test_config_is_valid_and_locked(name, arg):
  config = load_config(name, arg)
  train.validate_config(config)
  assert config.algorithm in ('bp', 'sideways')
  assert validate.algorithms(config) == (
      ('bp', 'sideways') if name in COMPARING else (config.algorithm,))
  with pytest.raises(AttributeError, match='batch_sise'):
    config.batch_sise = 3  # A typo is an error, not a new key.
  with pytest.raises(AttributeError, match='clip_lenght'):
    config.data.clip_lenght = 3


@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_smoke_is_small_and_sideways_ready(name):
  full, smoke = load_config(name, None), load_config(name, 'smoke')
  assert smoke.num_train_steps < 5 < full.num_train_steps
  assert smoke.data.clip_length == 2 * smoke.model.num_stages - 1
  assert smoke.data.resolution <= full.data.resolution


def test_unknown_config_argument_is_an_error():
  with pytest.raises(ValueError, match="unknown config argument.*'smok'"):
    load_config('hmdb_simplecnn', 'smok')


def test_paper_settings():
  hmdb = load_config('hmdb_simplecnn', None)
  assert (hmdb.data.name, hmdb.model.name, hmdb.model.num_stages) == (
      'hmdb51', 'simple_cnn', 6)
  assert (hmdb.batch_size, hmdb.data.clip_length, hmdb.data.resolution) == (
      8, 64, 112)
  assert 1e-5 <= hmdb.optimizer.learning_rate <= 1e-4
  assert hmdb.optimizer.weight_decay > 0
  vgg = load_config('ucf101_vgg8', None)
  assert (vgg.data.name, vgg.model.name, vgg.model.num_stages) == (
      'ucf101', 'vgg8', 8)
  assert vgg.model.kwargs.dropout_rate == 0.0
  assert load_config('ucf101_vgg8_dropout', None).model.kwargs.dropout_rate == (
      0.9)
  sweep = load_config('stride_sweep', None)
  assert (sweep.sweep.field, tuple(sweep.sweep.choices)) == (
      'data.stride', (2, 3, 4, 5, 6))
  assert load_config('hmdb_simplecnn', None).sweep.field == ''


def test_sweep_expands_to_one_config_per_value():
  config = load_config('stride_sweep', 'smoke')
  runs = common.expand_sweep(config)
  assert [common.sweep_label(config, v) for v, _ in runs] == [
      f'stride={s}' for s in range(2, 7)]
  assert [c.data.stride for _, c in runs] == [2, 3, 4, 5, 6]


def test_short_clip_is_caught_with_what_to_change():
  config = load_config('synthetic_simplecnn', None)
  config.data.clip_length = 8
  with pytest.raises(common.ConfigError) as error:
    train.validate_config(config)
  message = str(error.value)
  assert '--config.data.clip_length=11' in message
  assert '--config.model.num_stages=4' in message
  assert '--config.algorithm=bp --config.compare=False' in message
  config.algorithm = 'sideways'
  config.compare = False
  with pytest.raises(common.ConfigError):
    train.validate_config(config)
  config.algorithm = 'bp'  # BP has no minimum clip length.
  train.validate_config(config)


@pytest.mark.parametrize('field, value, words', [
    ('algorithm', 'sidways', 'algorithm'),
    ('algorithm', 'both', 'algorithm'),
    ('options.bp.mode', 'loop', 'options.bp: mode'),
    ('options.sideways.target_alignment', 'late', 'target_alignment'),
    ('mesh.data', 2, 'mesh.data'),
    ('batch_size', 0, 'batch_size'),
])
def test_bad_values_are_named(field, value, words):
  config = common.with_field(load_config('synthetic_simplecnn', 'smoke'),
                             field, value)
  with pytest.raises(common.ConfigError, match=words):
    train.validate_config(config)


def test_default_workdir_names_config_and_argument():
  assert str(common.default_workdir('configs/hmdb_vgg8.py')) == (
      'workdirs/hmdb_vgg8')
  assert str(common.default_workdir('configs/hmdb_vgg8.py:smoke')) == (
      'workdirs/hmdb_vgg8_smoke')


def test_every_classification_config_names_its_runner():
  for name in CONFIG_NAMES:
    assert load_config(name, None).runner == 'classification'


def test_unknown_runner_is_an_error(capsys):
  config = load_config('hmdb_simplecnn', 'smoke')
  config.runner = 'regression'
  with pytest.raises(SystemExit) as exit_info:
    cli.run(config, config_file='configs/hmdb_simplecnn.py', workdir=None)
  assert exit_info.value.code == 2
  assert "error: runner='regression'" in capsys.readouterr().err


def test_a_sweep_over_a_missing_or_mistyped_key_is_named():
  config = load_config('stride_sweep', 'smoke')
  config.sweep.field = 'data.strid'
  with pytest.raises(common.ConfigError, match="no config key 'strid'"):
    common.expand_sweep(config)
  config.sweep.field = 'data.stride'
  config.sweep.choices = ('two',)
  with pytest.raises(common.ConfigError, match="cannot take 'two'"):
    common.expand_sweep(config)

"""The streaming configs load, are locked, and run end to end (tiny)."""

import importlib
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))  # Makes `configs` importable.

import optax  # pylint: disable=g-import-not-at-top

from sideways_jax import data  # pylint: disable=g-import-not-at-top
from sideways_jax.experiments import common
from sideways_jax.experiments.streaming import builders
from sideways_jax.experiments.streaming import experiment


def _config(name, arg='smoke'):
  return importlib.import_module(f'configs.{name}').get_config(arg)


@pytest.mark.parametrize('name', ['cater_autoencoder', 'synthetic_autoencoder'])
@pytest.mark.parametrize('arg', [None, 'smoke'])
def test_configs_are_locked_and_valid(name, arg):
  c = _config(name, arg)
  builders.check_config(c)
  with pytest.raises(AttributeError):
    c.learning_rate = 1.0  # A typo: the field is optimizer.learning_rate.
  with pytest.raises(ValueError, match='unknown config argument'):
    _config(name, 'smok')


def test_bad_values_are_clear_errors():
  c = _config('synthetic_autoencoder')
  for key, value, match in [('algorithm', 'sidways', 'choose one of'),
                            ('target_alignment', 'now', "'current'"),
                            ('num_train_steps', 0, 'num_train_steps')]:
    bad = c.copy_and_resolve_references()
    bad[key] = value
    with pytest.raises(common.ConfigError, match=match):
      builders.check_config(bad)
  clip = c.data.clip_length
  bad = c.copy_and_resolve_references()
  bad.num_train_steps = 2 * clip + 1
  with pytest.raises(common.ConfigError,
                     match=f'multiple of data.clip_length={clip}.*use '
                     f'{2 * clip} or {3 * clip}'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.optimizer.learning_rate.sideways_delay_lr = 0.0
  with pytest.raises(common.ConfigError,
                     match='learning_rate.sideways_delay_lr'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.data.clip_length = 2 * bad.model.num_stages - 2
  with pytest.raises(common.ConfigError, match='clip_length'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.data.resolution = 20
  with pytest.raises(common.ConfigError, match='multiple of 8'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.staleness.compare = ('delay_lr', 'momentum')
  with pytest.raises(common.ConfigError, match="'momentum'"):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.optimizer.name = 'sgd'
  with pytest.raises(common.ConfigError, match='spike_compensation'):
    builders.check_config(bad)


def test_every_variant_is_checked_before_the_workdir_exists(tmp_path):
  c = _config('synthetic_autoencoder')
  c.sweep.field = 'data.kwargs.sped'
  with pytest.raises(common.ConfigError, match="no config key 'sped'"):
    experiment.run(c, tmp_path / 'a')
  c = _config('synthetic_autoencoder')
  c.sweep.field = 'data.clip_length'
  c.sweep.choices = (c.data.clip_length, 5)  # The second cannot work.
  with pytest.raises(common.ConfigError, match='clip_length=5'):
    experiment.run(c, tmp_path / 'b')
  assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()


def test_rows_and_their_optimizers():
  c = _config('synthetic_autoencoder')
  assert builders.rows(c) == ('bp', 'sideways', 'sideways_delay_lr',
                              'sideways_spike_compensation',
                              'sideways_origin_target')
  assert builders.row_alignment(c, 'sideways_origin_target') == 'origin'
  assert builders.row_alignment(c, 'sideways') == c.target_alignment
  # Off: the plain optax optimizer, shared by the stages (today's numbers).
  assert isinstance(builders.build_optimizer(c, 'sideways'),
                    optax.GradientTransformation)
  assert len(builders.build_optimizer(c, 'sideways_delay_lr')) == (
      c.model.num_stages)
  c.compare = False
  assert builders.rows(c) == ('sideways',)
  c.staleness.spike_compensation = True
  assert builders.row_fixes(c, 'sideways') == {'spike_compensation'}


def test_cater_without_data_says_how_to_prepare_it(tmp_path):
  c = _config('cater_autoencoder')
  c.data.root = str(tmp_path)
  with pytest.raises(data.DatasetLayoutError, match='prepare_cater'):
    builders.build_source(c, train=True)


def test_synthetic_smoke_run_writes_tables_and_figures(tmp_path):
  c = _config('synthetic_autoencoder')
  c.model.num_stages = 2  # Two stages compile fastest; same code paths.
  c.staleness.compare = ('delay_lr',)
  c.diagnostic.streams = 1
  c.sweep.field = 'data.kwargs.speed'
  c.sweep.choices = (0.0, 0.02)
  results = experiment.run(c, tmp_path, log=lambda message: None)

  for name in ('results.json', 'results.md', 'scores.png', 'step_errors.png',
               'sweep.png'):
    assert (tmp_path / name).stat().st_size > 0, name
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert saved['field'] == 'data.kwargs.speed'
  assert [p['value'] for p in saved['points']] == [0.0, 0.02]
  clip_length = c.data.clip_length
  batches = c.num_train_steps // clip_length
  for point in results['points']:
    bp, sw = point['bp'], point['sideways']
    assert sw['cosines'] is not None and len(sw['cosines']) == 2
    assert point['sideways_delay_lr']['cosines'] is not None
    assert bp['cosines'] is None
    assert bp['train_steps'] == sw['train_steps'] == c.num_train_steps
    assert sw['frames_taken'] == c.num_train_steps
    # D = 2: BP takes frames 0, 3, 6, ... of each video.
    assert bp['frames_taken'] == batches * len(range(0, clip_length, 3))
    assert bp['updates'] == bp['frames_taken']
    assert sw['updates'] == batches * (clip_length - 1)
    for r in (bp, sw):
      assert 0.0 < r['shown_mse'] < 1.0 and 0.0 < r['frame_mse'] < 1.0
      assert 0.0 < r['recon_mse'] < 1.0
      assert len(r['eval_step_mse']) == clip_length
    # Sideways reconstructs every frame: its score (b) has no lag floor.
    assert sw['frame_copy_mse'] == 0.0
    # No motion: showing an old frame costs nothing, so what is shown at
    # step t is the model's own reconstruction of frame t.
    if point['value'] == 0.0:
      assert bp['shown_copy_mse'] == sw['shown_copy_mse'] == 0.0
      for r in (bp, sw):
        assert r['shown_mse'] == pytest.approx(r['recon_mse'], rel=1e-5)
    else:
      assert bp['shown_copy_mse'] > sw['shown_copy_mse'] > 0.0
      assert bp['shown_copy_mse'] > bp['frame_copy_mse'] > 0.0
  table = (tmp_path / 'results.md').read_text()
  for text in ('| BP |', '| Sideways |', 'BP / Sideways', '(b) each frame'):
    assert text in table, text

"""The streaming configs load, are locked, and run end to end (tiny)."""

import importlib
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))  # Makes `configs` importable.

from sideways_jax import data  # pylint: disable=g-import-not-at-top
from sideways_jax.streaming import builders
from sideways_jax.streaming import experiment


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
                            ('train_batches', 0, 'train_batches')]:
    bad = c.copy_and_resolve_references()
    bad[key] = value
    with pytest.raises(builders.ConfigError, match=match):
      builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.optimizer.learning_rate.sideways = 0.0
  with pytest.raises(builders.ConfigError, match='learning_rate.sideways'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.data.num_frames = 2 * bad.model.num_stages - 2
  with pytest.raises(builders.ConfigError, match='num_frames'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.data.resolution = 20
  with pytest.raises(builders.ConfigError, match='multiple of 8'):
    builders.check_config(bad)
  bad = c.copy_and_resolve_references()
  bad.sweep.field = 'data.kwargs.sped'
  with pytest.raises(builders.ConfigError, match="no config key 'sped'"):
    experiment.settings(bad)


def test_cater_without_data_says_how_to_prepare_it(tmp_path):
  c = _config('cater_autoencoder')
  c.data.root = str(tmp_path)
  with pytest.raises(data.DatasetLayoutError, match='prepare_cater'):
    builders.build_source(c, train=True)


def test_synthetic_smoke_run_writes_table_and_sweep(tmp_path):
  pytest.importorskip('matplotlib')
  c = _config('synthetic_autoencoder')
  c.model.num_stages = 2  # Two stages compile fastest; same code paths.
  c.sweep.choices = (0.0,)
  results = experiment.run(c, tmp_path, log=lambda message: None)

  for name in ('results.json', 'results.md', 'sweep.png', 'step_errors.png'):
    assert (tmp_path / name).stat().st_size > 0, name
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert saved['field'] == 'data.kwargs.speed'
  assert [p['value'] for p in saved['points']] == [0.0, 0.02]
  num_frames, batches = c.data.num_frames, c.train_batches
  for point in results['points']:
    bp, sw = point['bp'], point['sideways']
    steps = num_frames * batches
    assert bp['train_steps'] == sw['train_steps'] == steps
    assert sw['frames_taken'] == steps
    # D = 2: BP takes frames 0, 3, 6, ... of each video.
    assert bp['frames_taken'] == batches * len(range(0, num_frames, 3))
    assert bp['updates'] == bp['frames_taken']
    assert sw['updates'] == batches * (num_frames - 1)
    for r in (bp, sw):
      assert 0.0 < r['eval_mse'] < 1.0
      assert 0.0 < r['recon_mse'] < 1.0
      assert len(r['eval_step_mse']) == num_frames
    # No motion: showing an old frame costs nothing, so what is shown at
    # step t is the model's own reconstruction of frame t.
    if point['value'] == 0.0:
      assert bp['perfect_copy_mse'] == sw['perfect_copy_mse'] == 0.0
      for r in (bp, sw):
        assert r['eval_mse'] == pytest.approx(r['recon_mse'], rel=1e-5)
    else:
      assert bp['perfect_copy_mse'] > sw['perfect_copy_mse'] > 0.0
  table = (tmp_path / 'results.md').read_text()
  assert '| BP |' in table and '| Sideways |' in table
  assert 'BP / Sideways' in table

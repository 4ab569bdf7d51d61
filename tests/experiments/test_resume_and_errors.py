"""Resuming a run, and the errors a run stops with (in process)."""

from __future__ import annotations

import shutil

import jax
import numpy as np
import pytest

from conftest import smoke_config
from sideways_jax.experiments import cli
from sideways_jax.experiments import common
from sideways_jax.experiments.classification import validate
from sideways_jax.experiments import classification as train
from sideways_jax.data import DatasetLayoutError


def _train_records(run_dir):
  return [r for r in train.read_metrics(run_dir) if r['split'] == 'train']


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path):
  config = smoke_config('synthetic_simplecnn', num_train_steps=5,
                        checkpoint_every=2, eval_every=5,
                        compare=False)
  full = train.train_and_evaluate(config, 'sideways', tmp_path / 'full')
  cut = tmp_path / 'cut'
  part = train.train_and_evaluate(config, 'sideways', cut, max_steps=3)
  assert part.steps == 3 and part.eval == {}
  # As if killed after logging step 3 but before checkpointing it: the run
  # must go back to step 2 and re-log step 3.
  shutil.rmtree(cut / 'checkpoints' / '3')
  resumed = train.train_and_evaluate(config, 'sideways', cut)
  assert resumed.steps == full.steps == 5
  assert resumed.eval == full.eval
  assert resumed.train_loss == full.train_loss
  assert _train_records(cut) == _train_records(tmp_path / 'full')
  assert [r['step'] for r in _train_records(cut)] == [1, 2, 3, 4, 5]

  # A finished run re-run reports the same numbers without training again.
  again = train.train_and_evaluate(config, 'sideways', cut)
  assert (again.steps, again.eval) == (5, full.eval)


def test_resuming_with_a_different_config_is_refused(tmp_path):
  config = smoke_config('synthetic_simplecnn', num_train_steps=1,
                        compare=False)
  train.train_and_evaluate(config, 'sideways', tmp_path)
  config.optimizer.learning_rate = 0.5
  with pytest.raises(ValueError, match='optimizer.learning_rate'):
    train.train_and_evaluate(config, 'sideways', tmp_path)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  config = smoke_config('synthetic_simplecnn', num_train_steps=4,
                        checkpoint_every=1, algorithm='bp', compare=False,
                        optimizer__learning_rate=1e38,
                        optimizer__warmup_steps=0)
  with pytest.raises(train.NonFiniteLossError) as error:
    train.train_and_evaluate(config, 'bp', tmp_path)
  message = str(error.value)
  assert 'NaN/Inf at step 2' in message
  assert 'from step 1 (before it)' in message and 'learning_rate' in message
  checkpoints = sorted(p.name for p in (tmp_path / 'checkpoints').iterdir())
  assert checkpoints == ['1']
  # The kept checkpoint is finite: resuming it restores finite weights.
  source = train.build_source(config, train=True)
  stages = train.build_stages(config, source.num_classes)
  optimizer, _ = train.build_optimizer(config)
  template = train.create_train_state(
      stages, optimizer, seed=0, example_frame=np.zeros((2, 32, 32, 3)))
  with train.Checkpointer(tmp_path / 'checkpoints', max_to_keep=2) as ckpt:
    state = ckpt.restore_latest(template)
  assert int(state.step) == 1
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_missing_dataset_is_one_line_with_the_fix(tmp_path, capsys):
  config = smoke_config('hmdb_simplecnn')
  config.data.root = str(tmp_path / 'no_hmdb')
  with pytest.raises(DatasetLayoutError, match='prepare_hmdb51.sh'):
    train.train_and_evaluate(config, 'sideways', tmp_path / 'run')
  assert not (tmp_path / 'run' / 'config.json').exists()  # Not pinned.
  with pytest.raises(SystemExit) as exit_info:
    cli.run(config, config_file='configs/hmdb_simplecnn.py:smoke',
            workdir=str(tmp_path / 'cli'))
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1
  assert 'prepare_hmdb51.sh' in err and '--config.data.root=' in err
  assert "pip install -e '.[video]'" in err
  assert not (tmp_path / 'cli').exists()  # A failed start leaves no folder.


def test_short_clips_fail_before_anything_is_built(tmp_path):
  config = smoke_config('synthetic_simplecnn', data__clip_length=10)
  with pytest.raises(common.ConfigError, match='clip_length=11'):
    train.run(config, tmp_path / 'run')
  assert not (tmp_path / 'run').exists()

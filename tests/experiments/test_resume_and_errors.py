"""Resuming a run, and the errors a run stops with (in process)."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO
from conftest import smoke_config
from sideways_jax.data import DatasetLayoutError
from sideways_jax.experiments import cli
from sideways_jax.experiments import common
from sideways_jax.experiments import lock as lock_lib
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments import classification as train
from sideways_jax.experiments.classification import checkpoint as ckpt_lib
from sideways_jax.experiments.classification import loop
from sideways_jax.experiments.classification import resumption

CONFIG = 'configs/synthetic_simplecnn.py:smoke'


def _train_records(run_dir):
  return [r for r in train.read_metrics(run_dir) if r['split'] == 'train']


def _flip_a_bit(step_dir):
  target = max((p for p in step_dir.rglob('*') if p.is_file()
                and p.name != 'manifest.json'), key=lambda p: p.stat().st_size)
  data = bytearray(target.read_bytes())
  data[len(data) // 2] ^= 1
  target.write_bytes(bytes(data))


def _summary(run_dir):
  text = (run_dir / 'summary.json').read_text()
  assert 'NaN' not in text and 'Infinity' not in text  # Strict JSON.
  summary = json.loads(text)
  summary.pop('workdir')
  return summary


# A 3-stage Simple-CNN (a mesh of 3 fake CPU devices holds one stage each),
# 5 steps: the uninterrupted run below is the reference of both resume tests.
# The other runs here train the same 3-stage model: half the stages of the
# smoke config's to compile.
_STAGES = dict(model__num_stages=3)
_RUN = dict(num_train_steps=5, checkpoint_every=1, log_every=1, eval_every=5,
            compare=False, **_STAGES)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """(config, run folder, summary) of the reference run."""
  config = smoke_config('synthetic_simplecnn', **_RUN)
  folder = tmp_path_factory.mktemp('uninterrupted') / 'full'
  return config, folder, train.train_and_evaluate(config, 'sideways', folder)


def test_resume_after_interruption_equals_an_uninterrupted_run(
    tmp_path, caplog, uninterrupted):
  config, full_dir, full = uninterrupted
  cut = tmp_path / 'cut'
  part = train.train_and_evaluate(config, 'sideways', cut, max_steps=3)
  assert part.steps == 3 and part.eval == {}
  # As if killed after logging step 3 but before checkpointing it, with the
  # log deleted: the run goes back to step 2, and the log to the
  # checkpoint's copy of steps 1-2 (no gap), then re-logs step 3.
  shutil.rmtree(cut / 'checkpoints' / '3')
  (cut / 'metrics.jsonl').unlink()
  resumed = train.train_and_evaluate(config, 'sideways', cut)
  assert resumed.steps == full.steps == 5
  assert resumed.eval == full.eval
  assert resumed.train_loss == full.train_loss
  assert resumed.data_faults == full.data_faults
  assert _train_records(cut) == _train_records(full_dir)
  assert [r['step'] for r in _train_records(cut)] == [1, 2, 3, 4, 5]
  assert train.read_metrics(cut)[-1]['step'] == 5  # The final eval.

  # A finished run whose log and summary were deleted and whose newest
  # checkpoint lost a bit: the bad checkpoint is set aside, step 5 is
  # trained again from step 4, and nothing differs.
  (cut / 'metrics.jsonl').unlink()
  (cut / 'summary.json').unlink()
  _flip_a_bit(cut / 'checkpoints' / '5')
  again = train.train_and_evaluate(config, 'sideways', cut)
  assert 'checkpoint 5 in' in caplog.text and 'rejected_checkpoints' in (
      caplog.text)
  assert (again.steps, again.eval) == (5, full.eval)
  assert train.read_metrics(cut) == train.read_metrics(full_dir)
  summary = _summary(cut)
  for key in ('steps_per_second', 'train_seconds'):
    summary.pop(key)  # Timings differ between runs.
  assert summary == {k: v for k, v in _summary(full_dir).items()
                     if k not in ('steps_per_second', 'train_seconds')}


def test_resuming_with_another_config(tmp_path):
  config = smoke_config('synthetic_simplecnn', num_train_steps=1,
                        compare=False, **_STAGES)
  run_dir = tmp_path / 'sideways'
  train.train_and_evaluate(config, 'sideways', run_dir)
  # Keys that leave the numbers alone, and a longer run: accepted and named.
  config.num_train_steps, config.log_every, config.data.num_threads = 2, 3, 2
  out = io.StringIO()
  assert train.train_and_evaluate(config, 'sideways', run_dir,
                                  stream=out).steps == 2
  info = [line for line in out.getvalue().splitlines() if 'changes that' in
          line]
  assert len(info) == 1 and 'num_train_steps: 1 -> 2' in info[0]
  assert 'log_every: 1 -> 3' in info[0] and 'data.num_threads' in info[0]

  # A key that changes the numbers (refused: see the CLI test below), taken
  # with --resume=fork.
  config.optimizer.learning_rate, config.num_train_steps = 0.5, 3
  forked = train.train_and_evaluate(config, 'sideways', run_dir,
                                    resume='fork')
  assert forked.steps == 3
  assert [r['step'] for r in _train_records(run_dir)] == [1, 2, 3]
  kept = list((run_dir / 'replaced').glob('*-fork-at-2/config.json'))
  assert len(kept) == 1
  assert json.loads(kept[0].read_text())['optimizer']['learning_rate'] == (
      0.002)
  assert json.loads((run_dir / 'config.json').read_text())['optimizer'][
      'learning_rate'] == 0.5

  # --resume=restart moves the whole run aside (nothing is deleted).
  call = resumption.RunCall(config, 'sideways', workdir_lib.as_path(run_dir),
                            3, io.StringIO(), True, 'restart')
  assert resumption.plan(call, frozenset(), None) == -1
  old = [p for p in (run_dir / 'replaced').iterdir()
         if (p / 'checkpoints').is_dir()]
  assert len(old) == 1 and (old[0] / 'metrics.jsonl').exists()
  assert not (run_dir / 'checkpoints').exists()


_ON_A_MESH = """
import sys
sys.path.insert(0, 'tests/experiments')
from conftest import smoke_config
from sideways_jax.experiments import classification as train
config = smoke_config('synthetic_simplecnn', mesh__stages=3, **%r)
print(train.train_and_evaluate(config, 'sideways', sys.argv[1],
                               max_steps=4).steps)
"""


def test_a_run_moves_between_one_device_and_a_mesh(tmp_path, uninterrupted):
  """Steps 1-2 on one device, 3-4 on a 3-stage mesh, 5 on one device."""
  config, full_dir, full = uninterrupted
  moved = tmp_path / 'moved'
  train.train_and_evaluate(config, 'sideways', moved, max_steps=2)
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             # Compile fast: the programs are tiny and run once.
             XLA_FLAGS='--xla_force_host_platform_device_count=3 '
             '--xla_backend_optimization_level=0')
  result = subprocess.run(
      [sys.executable, '-c', _ON_A_MESH % _RUN, str(moved)], cwd=REPO,
      env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'mesh.stages: 0 -> 3' in result.stdout
  assert 'resuming' in result.stdout and result.stdout.split()[-1] == '4'
  out = io.StringIO()
  back = train.train_and_evaluate(config, 'sideways', moved, stream=out)
  assert 'mesh.stages: 3 -> 0' in out.getvalue() and back.steps == 5
  records, expected = train.read_metrics(moved), train.read_metrics(full_dir)
  assert [(r['step'], r['split']) for r in records] == [
      (r['step'], r['split']) for r in expected]
  assert [r['step'] for r in records if r['split'] == 'train'] == list(
      range(1, 6))
  for got, want in zip(records, expected):
    keys = sorted(k for k in want if k != 'split')
    assert sorted(got) == sorted(want)
    # The mesh's tolerance (tests/parallel): sums in another order.
    np.testing.assert_allclose([got[k] for k in keys], [want[k] for k in keys],
                               rtol=2e-5, atol=1e-6, err_msg=str(got['step']))
  assert back.steps == full.steps


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  config = smoke_config('synthetic_simplecnn', num_train_steps=4,
                        checkpoint_every=1, algorithm='bp', compare=False,
                        optimizer__learning_rate=1e38,
                        optimizer__warmup_steps=0, **_STAGES)
  with pytest.raises(train.NonFiniteLossError) as error:
    train.train_and_evaluate(config, 'bp', tmp_path)
  message = str(error.value)
  assert 'NaN/Inf at step 2' in message
  assert 'from step 1 (before it)' in message and 'learning_rate' in message
  assert ckpt_lib.saved_steps(tmp_path / 'checkpoints') == [1]
  # The kept checkpoint is finite: resuming it restores finite weights.
  run = loop.prepare(config, 'bp')
  with train.Checkpointer(tmp_path / 'checkpoints', max_to_keep=2) as ckpt:
    state, _ = ckpt.restore(1, run.state)
  assert int(state.step) == 1
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_a_non_finite_state_is_not_saved_and_the_fix_is_accepted(tmp_path):
  # 1e39 overflows float32 in the update: the loss and gradients of step 1
  # are finite, its new weights are not.
  config = smoke_config('synthetic_simplecnn', num_train_steps=2,
                        checkpoint_every=1, algorithm='bp', compare=False,
                        optimizer__learning_rate=1e39,
                        optimizer__warmup_steps=0, **_STAGES)
  with pytest.raises(train.NonFiniteLossError) as error:
    train.train_and_evaluate(config, 'bp', tmp_path)
  message = str(error.value)
  assert 'training state' in message and 'no checkpoint' in message
  assert ckpt_lib.saved_steps(tmp_path / 'checkpoints') == []
  # The message's advice, in the same workdir: nothing to resume, so the
  # new rate is taken.
  config.optimizer.learning_rate = 1e-3
  assert train.train_and_evaluate(config, 'bp', tmp_path).steps == 2


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


def _one_line_exit(capsys, config, workdir, **kwargs) -> tuple[int, str]:
  with pytest.raises(SystemExit) as exit_info:
    cli.run(config, config_file=CONFIG, workdir=str(workdir), **kwargs)
  err = capsys.readouterr().err.strip()
  assert err.startswith('error: ') and len(err.splitlines()) == 1, err
  return exit_info.value.code, err


def test_what_a_user_or_machine_can_break_is_one_line(tmp_path, capsys,
                                                      monkeypatch):
  config = smoke_config('synthetic_simplecnn', num_train_steps=3,
                        checkpoint_every=1, eval_every=3, compare=False)
  afile = tmp_path / 'afile'
  afile.write_text('')
  code, err = _one_line_exit(capsys, config, afile)
  assert code == 2 and 'is a file' in err
  code, err = _one_line_exit(capsys, config, afile / 'below')
  assert code == 2 and 'cannot write to the workdir' in err
  assert afile.read_text() == ''

  # Another run holds the folder.
  (tmp_path / 'busy' / 'sideways').mkdir(parents=True)
  with lock_lib.WorkdirLock(tmp_path / 'busy' / 'sideways'):
    code, err = _one_line_exit(capsys, config, tmp_path / 'busy')
  assert code == 2 and 'is in use by the run of pid' in err

  # The disk fills up at the second checkpoint.
  save = ckpt_lib.Checkpointer.save
  def full_disk(self, step, state, record):
    if step == 2:
      raise OSError(errno.ENOSPC, 'No space left on device',
                    str(self.directory / '2'))
    return save(self, step, state, record)
  monkeypatch.setattr(ckpt_lib.Checkpointer, 'save', full_disk)
  code, err = _one_line_exit(capsys, config, tmp_path / 'full')
  assert code == 1 and 'No space left on device' in err
  assert 'the last good checkpoint is step 1' in err
  monkeypatch.undo()
  assert not (tmp_path / 'full' / 'sideways' / 'lock.json').exists()

  # A config change the resume cannot take: each key, and the ways out.
  config.optimizer.learning_rate = 0.1
  code, err = _one_line_exit(capsys, config, tmp_path / 'full')
  assert code == 2 and 'optimizer.learning_rate: 0.002 -> 0.1' in err
  assert '--resume=fork' in err and '--resume=restart' in err
  assert 'another --workdir' in err


def test_a_folder_of_unreadable_videos_is_one_line(tmp_path, capsys):
  root = tmp_path / 'videos'
  for name in ('a', 'b'):
    (root / name).mkdir(parents=True)
    for i in range(3):
      (root / name / f'{i}.avi').write_bytes(b'' if i else b'not a video')
  config = smoke_config('hmdb_simplecnn', algorithm='bp', data__name='folder',
                        data__root=str(root), data__train_split='all',
                        data__eval_split='all')
  code, err = _one_line_exit(capsys, config, tmp_path / 'run')
  assert code == 2 and 'all 6 videos' in err and 'unreadable' in err
  assert not (tmp_path / 'run').exists()  # No half-made workdir.

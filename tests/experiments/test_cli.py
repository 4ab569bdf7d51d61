"""experiments/main.py and experiments/plot.py through subprocesses."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from conftest import smoke_config
from sideways_jax.experiments import classification as train

MAIN = [sys.executable, str(REPO / 'experiments' / 'main.py')]
SMOKE = '--config=configs/synthetic_simplecnn.py:smoke'


def run(args, timeout=300):
  return subprocess.run(MAIN + args, cwd=REPO, capture_output=True, text=True,
                        timeout=timeout)


@pytest.mark.parametrize('args, message', [
    ([SMOKE, '--config.lerning_rate=1'],
     "unknown config key 'lerning_rate' in --config.lerning_rate=1; did you "
     'mean --config.optimizer.learning_rate?'),
    ([SMOKE, '--config.data.resolutoin=16'], '--config.data.resolution?'),
    (['--config=configs/nothere.py'], "config file 'configs/nothere.py' not "
     'found'),
    (['--config=configs/common.py'], 'configs/common.py is not an experiment '
     'config'),
    (['--config=configs/hmdb_simplecnn.py:smok'], "unknown config "
     "argument(s) ['smok']"),
    ([SMOKE, '--config.optimizer.learning_rate=abc'], 'could not convert'),
    ([SMOKE, '--config.data.clip_length=6'], 'data.clip_length=6 is too '
     'short for Sideways with model.num_stages=6: every stage needs clips of '
     'at least 2D-1=11 frames'),
    ([SMOKE, '--config.mesh.stages=4'], 'mesh.stages=4 but '
     'model.num_stages=6'),
    ([SMOKE, '--config.mesh.stages=6'], 'mesh needs 6 devices, but only 1 '
     'are available'),
])
def test_a_mistake_is_one_line_without_traceback(args, message, tmp_path):
  result = run(args + [f'--workdir={tmp_path / "run"}'])
  assert result.returncode == 2, result.stderr
  assert result.stderr.strip().splitlines() == [
      result.stderr.strip().splitlines()[0]]  # One line.
  assert result.stderr.startswith('error: ') and message in result.stderr
  assert not (tmp_path / 'run').exists()


def test_entry_points_refuse_each_others_configs(tmp_path):
  result = subprocess.run(
      [sys.executable, str(REPO / 'experiments' / 'speed.py'), SMOKE],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert "is a 'classification' config; run it with python " in (
      result.stderr)
  result = subprocess.run(
      [sys.executable, str(REPO / 'experiments' / 'plot.py'),
       f'--workdir={tmp_path}'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert result.returncode == 2
  assert result.stderr.startswith('error: no run logs (metrics.jsonl)')


def _checkpoints(run_dir: pathlib.Path) -> list[int]:
  folder = run_dir / 'checkpoints'
  if not folder.exists():
    return []
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def test_depth_parallel_kill_9_resume_equals_single_device(tmp_path):
  """main.py on a 6-device mesh: killed, resumed, same numbers as 1 device."""
  overrides = {'num_train_steps': 20, 'checkpoint_every': 2, 'log_every': 2,
               'eval_every': 20, 'compare': False}
  args = [SMOKE, f'--workdir={tmp_path / "cli"}', '--config.mesh.stages=6'
         ] + [f'--config.{k}={v}' for k, v in overrides.items()]
  env = dict(os.environ,
             XLA_FLAGS='--xla_force_host_platform_device_count=6')
  run_dir = tmp_path / 'cli' / 'sideways'
  process = subprocess.Popen(MAIN + args, cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  while not _checkpoints(run_dir) and process.poll() is None:
    assert time.monotonic() < deadline, 'no checkpoint after 300 s'
    time.sleep(0.05)
  os.kill(process.pid, signal.SIGKILL)
  assert process.wait() == -signal.SIGKILL  # Killed mid-run, not finished.
  killed_at = _checkpoints(run_dir)[-1]
  assert 2 <= killed_at < 20

  result = subprocess.run(MAIN + args, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'resuming {run_dir} from step ' in result.stdout
  plot = tmp_path / 'cli' / 'plots' / 'training_dynamics.png'
  assert f'plot: {plot}' in result.stdout and plot.exists()
  assert list((run_dir / 'tensorboard').glob('events.out.tfevents.*'))

  # The same run on one device, uninterrupted, in this process.
  config = smoke_config('synthetic_simplecnn', **overrides)
  reference = train.train_and_evaluate(config, 'sideways', tmp_path / 'ref')
  records = train.read_metrics(run_dir)
  expected = train.read_metrics(tmp_path / 'ref')
  assert [(r['step'], r['split']) for r in records] == [
      (r['step'], r['split']) for r in expected]
  assert [r['step'] for r in records if r['split'] == 'train'] == list(
      range(1, 21))
  for got, want in zip(records, expected):
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[k] for k in sorted(want) if k != 'split'],
                               [want[k] for k in sorted(want) if k != 'split'],
                               rtol=2e-5, atol=1e-6, err_msg=str(got['step']))
  assert records[-1]['video_accuracy'] == reference.eval['video_accuracy']


def test_plot_cli_draws_from_logs(tmp_path):
  with train.MetricWriter(tmp_path / 'bp', resume_step=0,
                          tensorboard=False) as writer:
    writer.write(1, 'train', {'loss': 2.0, 'video_accuracy': 0.1})
  result = subprocess.run(
      [sys.executable, str(REPO / 'experiments' / 'plot.py'),
       f'--workdir={tmp_path}'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert result.returncode == 0, result.stderr
  assert (tmp_path / 'plots' / 'training_dynamics.png').exists()

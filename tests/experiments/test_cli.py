"""experiments/main.py and experiments/plot.py through subprocesses."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

from conftest import REPO
from conftest import smoke_config
from sideways_jax import train

MAIN = [sys.executable, str(REPO / 'experiments' / 'main.py')]
SMOKE = '--config=configs/synthetic_simplecnn.py:smoke'


def run(args, timeout=300):
  return subprocess.run(MAIN + args, cwd=REPO, capture_output=True, text=True,
                        timeout=timeout)


def test_unknown_config_key_is_named():
  result = run([SMOKE, '--config.data.resolutoin=16', '--workdir=/nonexistent'])
  assert result.returncode != 0
  assert 'resolutoin' in result.stderr
  assert 'resolution' in result.stderr  # "Did you mean ...?"


def test_short_clip_is_refused_with_what_to_change(tmp_path):
  result = run([SMOKE, '--config.data.clip_length=6',
                f'--workdir={tmp_path}'])
  assert result.returncode == 1
  assert 'error: data.clip_length=6 is too short' in result.stderr
  assert '--config.data.clip_length=11' in result.stderr
  assert 'Traceback' not in result.stderr


def _checkpoints(run_dir: pathlib.Path) -> list[int]:
  folder = run_dir / 'checkpoints'
  if not folder.exists():
    return []
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def test_kill_9_then_same_command_resumes_to_the_same_result(tmp_path):
  overrides = {'num_train_steps': 60, 'checkpoint_every': 5, 'log_every': 5,
               'eval_every': 60}
  args = [SMOKE, f'--workdir={tmp_path / "cli"}', '--config.compare=False'
         ] + [f'--config.{k}={v}' for k, v in overrides.items()]
  run_dir = tmp_path / 'cli' / 'sideways'
  process = subprocess.Popen(MAIN + args, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  while not _checkpoints(run_dir) and process.poll() is None:
    assert time.monotonic() < deadline, 'no checkpoint after 300 s'
    time.sleep(0.05)
  os.kill(process.pid, signal.SIGKILL)
  assert process.wait() == -signal.SIGKILL  # Killed mid-run, not finished.
  killed_at = _checkpoints(run_dir)[-1]
  assert 5 <= killed_at < 60

  result = run(args)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'resuming {run_dir} from step ' in result.stdout
  assert 'eval video acc' in result.stdout and 'sideways' in result.stdout
  plot = tmp_path / 'cli' / 'plots' / 'training_dynamics.png'
  assert f'plot: {plot}' in result.stdout and plot.exists()
  assert list((run_dir / 'tensorboard').glob('events.out.tfevents.*'))

  # The same run, uninterrupted, in this process: identical numbers.
  config = smoke_config('synthetic_simplecnn', compare=False,
                        **overrides)
  reference = train.train_and_evaluate(config, 'sideways', tmp_path / 'ref')
  records = train.read_metrics(run_dir)
  assert records == train.read_metrics(tmp_path / 'ref')
  assert [r['step'] for r in records if r['split'] == 'train'] == list(
      range(1, 61))
  assert records[-1] == {'step': 60, 'split': 'eval', **reference.eval}


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

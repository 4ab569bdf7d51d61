"""experiments/main.py and experiments/plot.py through subprocesses."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from sideways_jax.experiments import classification as train
from sideways_jax.experiments import cli

MAIN = [sys.executable, str(REPO / 'experiments' / 'main.py')]
SMOKE = '--config=configs/synthetic_simplecnn.py:smoke'


def run(args, timeout=300):
  return subprocess.run(MAIN + args, cwd=REPO, capture_output=True, text=True,
                        timeout=timeout)


# Through main.py: a flag value absl cannot parse (refused while parsing)
# and a mesh the machine cannot hold (refused by the runner), each one line
# on stderr, exit 2, no traceback, no workdir.
@pytest.mark.parametrize('args, message', [
    ([SMOKE, '--config.optimizer.learning_rate=abc'], 'could not convert'),
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


def _unreached(argv):
  # Failed is a BaseException: parse_plain does not turn it into a message.
  pytest.fail(f'parsed {argv}: the mistake was not caught before absl')


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
])
def test_flag_mistakes_are_usage_errors(args, message, monkeypatch):
  """main.py prints a UsageError as one line (the subprocesses above)."""
  monkeypatch.chdir(REPO)
  with pytest.raises(cli.UsageError) as error:
    cli.parse_flags(['main.py'] + args, _unreached)
  assert message in str(error.value)


@pytest.mark.parametrize('key, value, message', [
    ('data.clip_length', 6, 'data.clip_length=6 is too short for Sideways '
     'with model.num_stages=6: every stage needs clips of at least 2D-1=11 '
     'frames'),
    ('mesh.stages', 4, 'mesh.stages=4 but model.num_stages=6'),
])
def test_config_mistakes_end_in_one_line(key, value, message, tmp_path,
                                         monkeypatch, capsys):
  """cli.run, as main.py calls it, with a --config.<key> a run refuses."""
  monkeypatch.chdir(REPO)
  config_file = SMOKE.split('=', 1)[1]
  argv = ['main.py', SMOKE, f'--config.{key}={value}']
  config = cli.load_config(config_file)
  cli.check_overrides(config, argv)  # main.py's parser takes the key.
  section, leaf = key.split('.')
  config[section][leaf] = value
  with pytest.raises(SystemExit) as exit_info:
    cli.run(config, config_file=config_file,
            workdir=str(tmp_path / 'run'), overrides=cli.override_keys(argv))
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith('error: ') and len(err.strip().splitlines()) == 1
  assert message in err, err
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
  """Steps of the checkpoints that were saved completely (manifest last)."""
  folder = run_dir / 'checkpoints'
  if not folder.exists():
    return []
  return sorted(int(p.name) for p in folder.iterdir()
                if p.name.isdigit() and (p / 'manifest.json').exists())


HEARTBEAT_S = 5
# Both sides of the comparison compile fast (the programs are tiny).
FAST_COMPILE = '--xla_backend_optimization_level=0'
# The peer is killed once checkpoint 2 exists; checkpoint STEPS comes only
# after three more synchronous saves and the final eval's compile, so the
# kill lands between checkpoints, and the resumed run retrains steps.
STEPS = 8
MESH_RUN = {'num_train_steps': STEPS, 'checkpoint_every': 2, 'log_every': 2,
            'eval_every': STEPS, 'compare': False, 'mesh.stages': 6}


def _launch(workdir, port, process_id, log):
  """One process of a 2-process x 3-device run of main.py on loopback."""
  args = [SMOKE, f'--workdir={workdir}'] + [
      f'--config.{k}={v}' for k, v in MESH_RUN.items()] + [
          '--config.distributed.num_processes=2',
          f'--config.distributed.process_id={process_id}',
          f'--config.distributed.coordinator_address=127.0.0.1:{port}',
          '--config.distributed.num_cpu_devices=3',
          f'--config.distributed.heartbeat_timeout_s={HEARTBEAT_S}']
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=FAST_COMPILE)
  return subprocess.Popen(MAIN + args, cwd=REPO, env=env, stdout=log,
                          stderr=subprocess.STDOUT, text=True)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _finish(process, log, timeout=300):
  try:
    code = process.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    pytest.fail('a process did not finish:\n' + log.read_text()[-3000:])
  return code


def test_multi_host_kill_9_and_resume_equal_one_process(tmp_path):
  """2 processes x 3 devices, one workdir: a peer killed, then resumed.

  Every logged record equals a 1-process x 6-device run's (rtol 2e-5, atol
  1e-6); tests/parallel shows a mesh equals one device.
  """
  # The 1 x 6 reference, uninterrupted, beside the two processes.
  one = tmp_path / 'one.log'
  reference = subprocess.Popen(
      MAIN + [SMOKE, f'--workdir={tmp_path / "one"}'] + [
          f'--config.{k}={v}' for k, v in MESH_RUN.items()], cwd=REPO,
      env=dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_'
               f'count=6 {FAST_COMPILE}'), stdout=one.open('w'),
      stderr=subprocess.STDOUT)
  run_dir = tmp_path / 'two' / 'sideways'
  logs = [tmp_path / f'p{i}.log' for i in range(2)]
  port = _free_port()
  procs = [_launch(tmp_path / 'two', port, i, logs[i].open('w'))
           for i in range(2)]
  deadline = time.monotonic() + 300
  while not _checkpoints(run_dir) and procs[0].poll() is None:
    assert time.monotonic() < deadline, 'no checkpoint after 300 s'
    time.sleep(0.05)
  os.kill(procs[1].pid, signal.SIGKILL)
  killed = time.monotonic()
  # The peer's death ends process 0 within the heartbeat timeout.
  assert _finish(procs[0], logs[0], HEARTBEAT_S + 60) != 0, (
      logs[0].read_text()[-3000:])
  # ... in one line (main.py supervises multi-host processes), no abort.
  survivor = logs[0].read_text()
  assert ('error: process 1 of this multi-host run stopped answering'
          in survivor), survivor[-3000:]
  assert 'Traceback' not in survivor and 'stack trace' not in survivor, (
      survivor[-3000:])
  assert time.monotonic() - killed < HEARTBEAT_S + 60
  assert procs[1].wait() == -signal.SIGKILL
  killed_at = _checkpoints(run_dir)[-1]
  assert 2 <= killed_at < STEPS

  port = _free_port()
  procs = [_launch(tmp_path / 'two', port, i, logs[i].open('w'))
           for i in range(2)]
  for proc, log in zip(procs, logs):
    assert _finish(proc, log) == 0, log.read_text()[-3000:]
  out = logs[0].read_text()
  assert f'resuming {run_dir} from step ' in out
  assert 'resuming' not in logs[1].read_text()  # Process 0 alone reports.
  plot = tmp_path / 'two' / 'plots' / 'training_dynamics.png'
  assert f'plot: {plot}' in out and plot.exists()
  assert list((run_dir / 'tensorboard').glob('events.out.tfevents.*'))
  assert _finish(reference, one) == 0, one.read_text()[-3000:]

  records = train.read_metrics(run_dir)
  assert [r['step'] for r in records if r['split'] == 'train'] == list(
      range(1, STEPS + 1))
  expected = train.read_metrics(tmp_path / 'one' / 'sideways')
  assert [(r['step'], r['split']) for r in records] == [
      (r['step'], r['split']) for r in expected]
  for got, want in zip(records, expected):
    assert got.keys() == want.keys()
    keys = sorted(k for k in want if k != 'split')
    np.testing.assert_allclose([got[k] for k in keys], [want[k] for k in keys],
                               rtol=2e-5, atol=1e-6, err_msg=str(got['step']))
  # (A mesh run continued on one device and back: test_resume_and_errors.)


def test_plot_cli_draws_from_logs(tmp_path):
  with train.MetricWriter(tmp_path / 'bp', tensorboard=False) as writer:
    writer.write(1, 'train', {'loss': 2.0, 'video_accuracy': 0.1})
  result = subprocess.run(
      [sys.executable, str(REPO / 'experiments' / 'plot.py'),
       f'--workdir={tmp_path}'], cwd=REPO, capture_output=True, text=True,
      timeout=120)
  assert result.returncode == 0, result.stderr
  assert (tmp_path / 'plots' / 'training_dynamics.png').exists()

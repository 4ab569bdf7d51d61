"""Multi-process runs on loopback: same numbers as one process; no hangs.

Two local processes with two CPU devices each join through
`initialize_distributed` (gloo collectives) and train on one 2 x 2 mesh whose
stage-neighbours live in different processes (parallel_multihost_worker.py).
"""

import re
import subprocess
import sys
import time

import numpy as np
import pytest

from parallel_multihost_worker import ALGORITHMS
from parallel_subprocess import free_port
from parallel_subprocess import HERE
from parallel_subprocess import REPO
from parallel_subprocess import worker_env

from sideways_jax import parallel

WORKER = str(HERE / 'parallel_multihost_worker.py')
HEARTBEAT_S = 5
# Generous: compiles on a loaded 2-core machine take tens of seconds.
RUN_TIMEOUT_S = 600
# A survivor must be gone this long after its peer failed (heartbeat
# timeout plus the time to notice and abort, with a wide margin).
STOP_BOUND_S = HEARTBEAT_S + 40


def _launch(tmp_path, num_processes, *extra, name='run'):
  port = free_port()
  procs, logs = [], []
  for pid in range(num_processes):
    log = open(tmp_path / f'{name}{pid}.log', 'w+')
    args = [sys.executable, '-u', WORKER,
            f'--num_processes={num_processes}', f'--process_id={pid}',
            f'--heartbeat_timeout_s={HEARTBEAT_S}', *extra]
    if num_processes > 1:
      args.append(f'--coordinator_address=127.0.0.1:{port}')
    procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                  env=worker_env(), cwd=str(REPO)))
    logs.append(log)
  return procs, logs


def _read(log) -> str:
  log.flush()
  log.seek(0)
  return log.read()


def _wait_all(procs, logs, timeout):
  deadline = time.time() + timeout
  try:
    for proc in procs:
      proc.wait(timeout=max(1, deadline - time.time()))
  except subprocess.TimeoutExpired:
    for proc in procs:
      proc.kill()
      proc.wait()
    pytest.fail('processes did not finish in time:\n' +
                '\n'.join(_read(log)[-3000:] for log in logs))


def test_two_processes_match_one_process(tmp_path):
  multi, multi_logs = _launch(tmp_path, 2, f'--out={tmp_path}/multi.npz',
                              name='multi')
  single, single_logs = _launch(tmp_path, 1, f'--out={tmp_path}/single.npz',
                                name='single')
  _wait_all(multi + single, multi_logs + single_logs, RUN_TIMEOUT_S)
  for proc, log in zip(multi + single, multi_logs + single_logs):
    assert proc.returncode == 0, _read(log)[-3000:]
  a = np.load(tmp_path / 'multi.npz')
  b = np.load(tmp_path / 'single.npz')
  assert sorted(a.files) == sorted(b.files)
  for algorithm in ALGORITHMS:
    assert f'{algorithm}/loss1' in a.files
  for key in a.files:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6,
                               err_msg=key)
  # Training changed something: the second loss differs from the first.
  assert abs(float(a['sideways/loss1']) - float(a['sideways/loss0'])) > 1e-4


@pytest.mark.parametrize('fail_process,fail_how', [
    (1, 'exit'),   # a worker dies: connections drop
    (1, 'stop'),   # a worker freezes: only heartbeats reveal it
    (0, 'stop'),   # the coordinator freezes
])
def test_failed_process_stops_the_others(tmp_path, fail_process, fail_how):
  procs, logs = _launch(tmp_path, 2, f'--fail_process={fail_process}',
                        '--fail_after_step=1', f'--fail_how={fail_how}')
  survivor = 1 - fail_process
  try:
    deadline = time.time() + RUN_TIMEOUT_S
    while 'failing' not in _read(logs[fail_process]):
      assert time.time() < deadline, _read(logs[fail_process])[-3000:]
      assert procs[survivor].poll() is None, _read(logs[survivor])[-3000:]
      time.sleep(0.2)
    failed_at = time.time()
    try:
      code = procs[survivor].wait(timeout=STOP_BOUND_S)
    except subprocess.TimeoutExpired:
      pytest.fail(f'process {survivor} still runs {STOP_BOUND_S} s after '
                  f'process {fail_process} failed:\n'
                  + _read(logs[survivor])[-3000:])
    elapsed = time.time() - failed_at
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()   # the frozen process (SIGKILL works on stopped ones)
        proc.wait()
  output = _read(logs[survivor])
  assert code != 0, output[-3000:]
  assert 'done' not in output
  assert re.search(r'another task died|stopped sending heartbeats|'
                   r'heartbeat timeout|Connection reset|Connection closed',
                   output), output[-3000:]
  assert elapsed < STOP_BOUND_S


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_processes=2, process_id=2,
          coordinator_address='localhost:1234'), 'process_id'),
    (dict(num_processes=2, process_id=0), 'coordinator_address'),
    (dict(num_processes=2, process_id=0, coordinator_address='nohost'),
     'coordinator_address'),
    (dict(num_processes=0), 'num_processes'),
    (dict(heartbeat_timeout_s=0), 'heartbeat_timeout_s'),
])
def test_distributed_config_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    parallel.initialize_distributed(parallel.DistributedConfig(**kwargs))

"""The parts that keep a run folder trustworthy: checkpoints, lock, resume keys.

Small pytrees and configs only: no training here (see
test_resume_and_errors.py for whole runs).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import conftest
from conftest import smoke_config
from sideways_jax.experiments import hosts
from sideways_jax.experiments import lock as lock_lib
from sideways_jax.experiments import manifest
from sideways_jax.experiments import resume as resume_lib
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.experiments.classification import checkpoint as ckpt_lib
from sideways_jax.experiments.classification import loop
from sideways_jax.experiments.classification import state as state_lib
from sideways_jax.experiments.classification import writers


def _state(value: float):
  return {'params': (jnp.full((3, 4), value), jnp.arange(5.0) + value),
          'step': jnp.asarray(int(value), jnp.int32)}


@pytest.fixture(scope='module')
def two_checkpoints(tmp_path_factory):
  """A folder with checkpoints 1 and 2 (copied by each test that breaks it)."""
  directory = tmp_path_factory.mktemp('saved') / 'checkpoints'
  with ckpt_lib.Checkpointer(directory, max_to_keep=3) as ckpt:
    for step in (1, 2):
      ckpt.save(step, _state(float(step)), {'log': [{'step': step}]})
  return directory


def _copy(saved, tmp_path):
  directory = tmp_path / 'checkpoints'
  shutil.copytree(saved, directory)
  return directory


def _flip_bit(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 1
  path.write_bytes(bytes(data))


def _largest_file(folder):
  return max((p for p in folder.rglob('*') if p.is_file()
              and p.name != manifest.MANIFEST), key=lambda p: p.stat().st_size)


CORRUPTIONS = {
    'truncated file': lambda d: _largest_file(d).write_bytes(
        _largest_file(d).read_bytes()[:7]),
    'zero-byte files': lambda d: [p.write_bytes(b'') for p in d.rglob('*')
                                  if p.is_file() and p.name != 'manifest.json'],
    'garbage _METADATA': lambda d: (d / 'state' / '_METADATA').write_text('{x'),
    'missing state/': lambda d: subprocess.run(['rm', '-r', str(d / 'state')],
                                               check=True),
    'one flipped bit': lambda d: _flip_bit(_largest_file(d)),
    'no manifest (killed while saving)': lambda d: (d / 'manifest.json'
                                                    ).unlink(),
    'a stray file': lambda d: (d / 'state' / 'extra').write_text('1'),
}


@pytest.mark.parametrize('corruption', sorted(CORRUPTIONS))
def test_a_corrupt_newest_checkpoint_is_set_aside(tmp_path, corruption,
                                                  caplog, two_checkpoints):
  directory = _copy(two_checkpoints, tmp_path)
  CORRUPTIONS[corruption](directory / '2')
  with caplog.at_level(logging.WARNING):
    assert ckpt_lib.newest_verified(directory) == 1
  assert 'checkpoint 2 in' in caplog.text and 'does not verify' in caplog.text
  assert (tmp_path / ckpt_lib.REJECTED / '2').is_dir()  # Moved, not deleted.
  assert ckpt_lib.saved_steps(directory) == [1]
  with ckpt_lib.Checkpointer(directory, max_to_keep=3) as ckpt:
    state, record = ckpt.restore(1, _state(0.0))
  chex_equal = jax.tree.map(np.array_equal, state, _state(1.0))
  assert all(jax.tree.leaves(chex_equal)) and record == {'log': [{'step': 1}]}


def test_no_checkpoint_that_verifies_is_one_line_and_moves_nothing(
    tmp_path, two_checkpoints):
  directory = _copy(two_checkpoints, tmp_path)
  for step in (1, 2):
    _flip_bit(_largest_file(directory / str(step)))
  with pytest.raises(ckpt_lib.CheckpointError) as error:
    ckpt_lib.newest_verified(directory)
  message = str(error.value)
  assert 'no checkpoint in' in message and '--resume=restart' in message
  assert 'step 2:' in message and 'step 1:' in message
  assert '\n' not in message
  assert ckpt_lib.saved_steps(directory) == [1, 2]


def test_a_non_finite_state_is_never_written(tmp_path):
  state = _state(1.0)
  state['params'] = (state['params'][0].at[0, 0].set(jnp.nan),
                     state['params'][1])
  with ckpt_lib.Checkpointer(tmp_path, max_to_keep=2) as ckpt:
    with pytest.raises(ckpt_lib.NonFiniteStateError):
      ckpt.save(1, state, {})
    assert ckpt.latest_step() is None
  assert ckpt_lib.all_finite({'i': jnp.arange(3), 'f': jnp.ones(2)})


def test_a_second_run_is_refused_and_a_stale_lock_taken_over(tmp_path,
                                                             caplog):
  holder = lock_lib.WorkdirLock(tmp_path)
  holder.acquire()
  with pytest.raises(lock_lib.LockedError) as error:
    lock_lib.WorkdirLock(tmp_path).acquire()
  message = str(error.value)
  assert f'pid {os.getpid()} on host {socket.gethostname()}' in message
  assert 'another --workdir' in message and '\n' not in message
  holder.release()
  assert not (tmp_path / lock_lib.LOCK_FILE).exists()

  # A run killed with -9 leaves its lock file; its flock went with it.
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  (tmp_path / lock_lib.LOCK_FILE).write_text(json.dumps(
      {'host': socket.gethostname(), 'pid': dead.pid, 'started': 'then'}))
  with caplog.at_level(logging.WARNING):
    with lock_lib.WorkdirLock(tmp_path):
      recorded = json.loads((tmp_path / lock_lib.LOCK_FILE).read_text())
      assert recorded['pid'] == os.getpid()
  assert f'pid {dead.pid}' in caplog.text and 'no longer running' in (
      caplog.text)


def test_resume_safe_keys_are_derived_from_what_the_builders_read():
  config = smoke_config('synthetic_simplecnn', compare=False)
  numeric = loop.prepare(config, 'sideways').numeric_keys
  for key in ('seed', 'batch_size', 'optimizer.learning_rate', 'data.stride',
              'model.name', 'data.clip_length', 'data.mean',
              'num_train_steps'):
    assert key in numeric, key
  for key in ('log_every', 'eval_every', 'checkpoint_every', 'tensorboard',
              'max_eval_batches', 'eval_batch_size', 'data.num_threads',
              'data.prefetch', 'max_checkpoints_to_keep', 'algorithm'):
    assert key not in numeric, key

  old = config.to_dict()
  new = dict(old, log_every=7, num_train_steps=old['num_train_steps'] + 5,
             optimizer=dict(old['optimizer'], learning_rate=0.5),
             distributed=dict(old['distributed'], process_id=1),
             mesh=dict(old['mesh'], stages=6))
  changes = resume_lib.compare(old, new, set(numeric))
  assert set(changes.safe) == {'log_every', 'num_train_steps'}
  assert set(changes.refused) == {'optimizer.learning_rate'}
  assert set(changes.placement) == {'mesh.stages'}
  shorter = resume_lib.compare(old, dict(old, num_train_steps=1), numeric)
  assert set(shorter.refused) == {'num_train_steps'}


def test_logs_are_strict_json_and_survive_a_cut_line(tmp_path):
  with writers.MetricWriter(tmp_path, tensorboard=False) as writer:
    writer.write(1, 'train', {'loss': float('nan'), 'skipped': 2})
    writer.flush()
    (tmp_path / writers.METRICS_FILE).unlink()  # Deleted while running.
    writer.write(2, 'train', {'loss': 1.5})
  text = (tmp_path / writers.METRICS_FILE).read_text()
  assert 'NaN' not in text and len(text.splitlines()) == 2
  with open(tmp_path / writers.METRICS_FILE, 'a') as f:
    f.write('{"step": 3, "spl')  # A machine that lost power mid-line.
  assert writers.read_metrics(tmp_path) == [
      {'step': 1, 'split': 'train', 'loss': None, 'skipped': 2},
      {'step': 2, 'split': 'train', 'loss': 1.5}]
  workdir_lib.write_json(tmp_path / 'x.json', {'a': float('inf')})
  assert json.loads((tmp_path / 'x.json').read_text()) == {'a': None}
  # A checkpoint the disk cannot hold is refused before anything is written.
  with pytest.raises(OSError, match='No space left on device') as error:
    workdir_lib.check_free_space(tmp_path / 'checkpoints', 1 << 62)
  assert error.value.errno == errno.ENOSPC
  workdir_lib.check_free_space(tmp_path / 'checkpoints', 1)


# One process of a 2-process run under hosts.supervise, as main.py runs it:
# collectives in a loop; a failure ends in the runner's one `error:` line.
_PEER_WORKER = '''
import os, sys, time
from sideways_jax.experiments import hosts
if not os.environ.get(hosts.SUPERVISED_ENV):
  raise SystemExit(hosts.supervise(sys.argv))
from sideways_jax import parallel
parallel.initialize_distributed(parallel.DistributedConfig(
    coordinator_address='127.0.0.1:' + sys.argv[2], num_processes=2,
    process_id=int(sys.argv[1]), heartbeat_timeout_s=int(sys.argv[3]),
    initialization_timeout_s=60, num_cpu_devices=1))
try:
  for step in range(10**6):
    hosts.agree((step,))
    print('step', step, flush=True)
    time.sleep(0.05)
except Exception as e:
  print('error: ' + str(e).splitlines()[0], file=sys.stderr, flush=True)
  raise SystemExit(1)
'''
HEARTBEAT_S = 3


@pytest.mark.parametrize('victim,how', [(1, signal.SIGKILL),
                                        (0, signal.SIGKILL),
                                        (1, signal.SIGSTOP)])
def test_a_dead_peer_ends_the_survivor_in_one_line(tmp_path, victim, how):
  """kill -9 (connections drop) or SIGSTOP (only heartbeats stop)."""
  worker = tmp_path / 'worker.py'
  worker.write_text(_PEER_WORKER)
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(conftest.REPO))
  env.pop(hosts.SUPERVISED_ENV, None)
  env.pop('XLA_FLAGS', None)
  outs = [open(tmp_path / f'out{i}', 'w+') for i in range(2)]
  errs = [open(tmp_path / f'err{i}', 'w+') for i in range(2)]
  # Own sessions: a signal to a group reaches a supervisor and its child.
  procs = [subprocess.Popen(
      [sys.executable, str(worker), str(i), str(port), str(HEARTBEAT_S)],
      stdout=outs[i], stderr=errs[i], env=env, start_new_session=True)
           for i in range(2)]
  survivor = procs[1 - victim]
  try:
    deadline = time.monotonic() + 120
    while 'step 3' not in (tmp_path / 'out0').read_text():
      assert survivor.poll() is None and time.monotonic() < deadline, (
          (tmp_path / f'err{1 - victim}').read_text()[-3000:])
      time.sleep(0.1)
    os.killpg(procs[victim].pid, how)
    stopped = time.monotonic()
    code = survivor.wait(timeout=HEARTBEAT_S + 30)
    elapsed = time.monotonic() - stopped
  finally:
    for proc in procs:
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
  err = (tmp_path / f'err{1 - victim}').read_text()
  assert code == 1, err[-3000:]
  assert err.splitlines() == [
      f'error: process {victim}' + (' (the coordinator)' if victim == 0 else '')
      + ' of this multi-host run stopped answering, so this process stopped '
      'too; restart every process with the same command to resume from the '
      'newest checkpoint'], err[-3000:]
  assert elapsed < HEARTBEAT_S + 30



def test_the_supervisor_passes_other_endings_through(capfd):
  code = hosts.supervise(['-c', 'import sys; print("a warning", file=sys.stderr)'
                          '; print("error: disk full", file=sys.stderr); '
                          'sys.exit(2)'])
  assert code == 2
  assert capfd.readouterr().err.splitlines() == ['a warning',
                                                 'error: disk full']
  killed = hosts.supervise(['-c', 'import os, signal; '
                            'os.kill(os.getpid(), signal.SIGKILL)'])
  assert killed == 128 + signal.SIGKILL

def _two_stage_states():
  """One device's state of a 2-stage chain, and a mesh's state template."""
  from sideways_jax.parallel import flat as flat_lib  # pylint: disable=g-import-not-at-top
  from sideways_jax.parallel import slots as slots_lib  # pylint: disable=g-import-not-at-top
  optimizer = optax.adam(0.1)
  keys = iter(jax.random.split(jax.random.PRNGKey(0), 8))
  params = ({'w': jax.random.normal(next(keys), (3, 4))},
            {'b': jax.random.normal(next(keys), (2,)),
             'w': jax.random.normal(next(keys), (5,))})
  model_state = ({}, {'batch_stats': {'m': jnp.arange(2.0)}})
  opt_state = optimizer.update(params, optimizer.init(params), params)[1]
  device = state_lib.TrainState(jnp.asarray(1, jnp.int32), params,
                                model_state, opt_state,
                                jax.random.PRNGKey(1))
  plan = slots_lib.plan_slots([flat_lib.flat_spec(p) for p in params])
  slots = tuple(jnp.zeros((2, size)) for size in plan.sizes)
  mesh = state_lib.TrainState(device.step, slots, jnp.zeros((2, 2)),
                              jax.vmap(optimizer.init)(slots), device.rng)
  return device, mesh


def _saved(state):
  return {'params': state.params, 'model_state': state.model_state}


def test_a_state_moves_between_one_device_and_mesh_layouts():
  device, mesh_template = _two_stage_states()
  _, to_mesh = state_lib.relayout(_saved(device), mesh_template)
  on_mesh = to_mesh(device)
  assert [x.shape for x in jax.tree.leaves(on_mesh)] == [
      x.shape for x in jax.tree.leaves(mesh_template)]
  assert np.asarray(on_mesh.opt_state[0].count).tolist() == [1, 1]
  _, to_device = state_lib.relayout(_saved(on_mesh), device)
  back = to_device(on_mesh)
  assert jax.tree.structure(back) == jax.tree.structure(device)
  for got, want in zip(jax.tree.leaves(back), jax.tree.leaves(device)):
    np.testing.assert_array_equal(got, want)

  # Stages that took different numbers of steps: no honest one-device state.
  counts = on_mesh.opt_state[0]._replace(count=jnp.asarray([1, 2]))
  uneven = on_mesh.replace(opt_state=(counts,) + tuple(on_mesh.opt_state[1:]))
  with pytest.raises(state_lib.LayoutError, match='differs between stages'):
    state_lib.relayout(_saved(uneven), device)[1](uneven)
  # Other stages (a wider layer) cannot be laid out as these.
  wider = device.replace(params=({'w': jnp.zeros((3, 5))}, device.params[1]))
  with pytest.raises(state_lib.LayoutError, match='do not have the shapes'):
    state_lib.relayout(_saved(wider), mesh_template)

"""The imported Flax ResNet on a 4-device mesh: every mesh algorithm, bf16.

One subprocess with 4 fake CPU devices (resnet_mesh_worker.py) trains the
user's ResNet-18 (BatchNorm over `axis_name='batch'`, bound by the Flax
adapter) through `sj.Trainer(..., mesh=...)` with each algorithm of
`MESH_ALGORITHMS` and compares it with the single-device engine at the
parallel tests' tolerances (ratios <= 1 are allclose at rtol 1e-5, atol
1e-6); then a bf16-compute run on the mesh must keep parameters, gradients
and optimizer state in fp32.
"""

import json
import pathlib
import subprocess
import sys

import pytest

from sideways_jax import algorithms

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'parallel'))
from parallel_subprocess import REPO  # pylint: disable=g-import-not-at-top,wrong-import-position
from parallel_subprocess import worker_env  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope='module')
def result() -> dict:
  env = worker_env()
  env['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=4'
  done = subprocess.run([sys.executable, str(HERE / 'resnet_mesh_worker.py')],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=900, check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def _no_error(case: dict) -> None:
  if 'error' in case:
    pytest.fail(f"{case['where']}: {case['error']}")


@pytest.mark.parametrize('name', algorithms.MESH_ALGORITHMS)
def test_mesh_training_equals_one_device(result, name):
  out = result['algorithms'][name]
  _no_error(out)
  assert out['steps'] == 2
  assert out['loss'] <= 1.0, out
  assert out['outputs'] <= 1.0, out
  assert out['variables_after'] <= 1.0, out
  # Training moved the weights: the comparison is not of two idle nets.
  assert out['param_change'] > 1e-2, out


def test_bf16_compute_keeps_fp32_sums_on_the_mesh(result):
  out = result['bf16']
  _no_error(out)
  assert out['describe'] == 'bfloat16'
  for key in ('grads', 'params', 'opt_state', 'model_state'):
    assert out[key] == ['float32'], (key, out)
  assert out['finite'] and out['steps'] == 1, out
  # bf16 really ran: its gradients are off the fp32 run's by far more than
  # fp32 rounding, yet the loss agrees to bf16's precision.
  assert out['grads_vs_fp32'] > 100.0, out
  assert out['loss_vs_fp32'] < 0.05, out

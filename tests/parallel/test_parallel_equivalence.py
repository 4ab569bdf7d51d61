"""Depth-parallel training gives the single-device engine's numbers.

'bp' on a mesh is model-parallel BP (one stage per device). Each case runs on 2, 4, 6 or 8 fake CPU devices (in the worker process, see
conftest.py): gradients of the first clip, the train-step metrics of every
clip, and parameters and batchnorm statistics after a few SGD-momentum
updates, must match `sideways_grads` / `bp_grads` + the same optax update
within fp32 rounding. Ratios are worst-case |a - b| / (atol + rtol |b|) with
rtol 1e-5, atol 1e-6, so <= 1 means allclose.
"""

import pytest

# (algorithm, model, num_data, num_stages, dropout, check_grads, impl)
CASES = [
    # 2 devices, the im2col convolutions the benchmarks use.
    ('sideways', 'simple_cnn', 1, 2, 0.0, True, 'im2col'),
    ('sideways', 'simple_cnn', 2, 2, 0.0, True, 'xla'),    # 4: data axis
    ('sideways', 'vgg8', 1, 8, 0.5, True, 'xla'),          # 8: BN, dropout
    ('sideways', 'vgg8', 2, 4, 0.5, True, 'xla'),          # 8: data axis
    ('bp', 'simple_cnn', 1, 6, 0.0, False, 'xla'),         # 6: layer/stage
    ('bp', 'vgg8', 2, 4, 0.5, True, 'xla'),                # 8: data axis
    ('bp_data', 'vgg8', 2, 2, 0.5, True, 'xla'),           # 4 batch shards
    ('bp_gpipe', 'simple_cnn', 1, 6, 0.0, False, 'xla'),   # 6
    ('bp_gpipe', 'vgg8', 2, 2, 0.5, False, 'xla'),         # 4: data axis
    ('bp_1f1b', 'simple_cnn', 2, 2, 0.0, True, 'xla'),     # 4: data axis
    ('bp_1f1b', 'vgg8', 1, 8, 0.5, True, 'xla'),           # 8: BN, dropout
    # Temporal stages: carries stay on their devices (6 stages each).
    ('sideways', 'temporal', 1, 6, 0.0, True, 'xla'),      # window sums
    ('sideways', 'temporal_gru', 1, 6, 0.0, True, 'xla'),  # recurrent carry
    ('bp', 'temporal_gru', 1, 6, 0.0, True, 'xla'),        # BP through time
]


def _id(case):
  algorithm, model, num_data, num_stages, dropout, _, impl = case
  return (f'{algorithm}-{model}-data{num_data}-stage{num_stages}'
          + ('-dropout' if dropout else '') + f'-{impl}')


@pytest.mark.parametrize('case', CASES, ids=[_id(c) for c in CASES])
def test_parallel_training_matches_single_device(case_worker, case):
  algorithm, model, num_data, num_stages, dropout, check_grads, impl = case
  versus_bp = algorithm == 'sideways' and num_stages == 2 and num_data == 1
  # The paper's target alignment everywhere, the other one once.
  alignment = 'origin' if (algorithm, num_data, num_stages) == (
      'sideways', 2, 2) else 'current'
  out = case_worker.run('train_equivalence', algorithm=algorithm,
                        model=model, num_data=num_data,
                        num_stages=num_stages, dropout=dropout, steps=3,
                        check_grads=check_grads, impl=impl,
                        versus_bp=versus_bp, alignment=alignment)
  assert out['valid_steps'] == out['expected_valid_steps']
  # Every metric of update equals the engine's for the whole batch.
  assert out['metrics_exact'], out
  assert out['outputs'] <= 1.0, out
  assert out['grad_norm'] <= 1.0, out
  if check_grads:
    assert out['grad_scale'] > 1e-2, out     # gradients are not all ~zero
    assert out['grads'] <= 1.0, out
    assert out['state'] <= 1.0, out
  if versus_bp:
    # On clips whose frames differ Sideways is not BP: a parallel program
    # that silently ran BP could not match the Sideways reference above.
    assert out['sideways_vs_bp'] > 100.0, out
  if algorithm != 'bp_data':
    # Each device holds only its own stage's params, batchnorm statistics
    # and optimizer state (row i of every buffer on stage-device i, zeros
    # where stage i has nothing), before and after training.
    assert out['rows_ok'] and out['values_ok'], out
    assert len(out['device_elements']) == 1, out
  assert out['loss'] <= 1.0, out
  assert out['params_after'] <= 1.0, out
  assert out['state_after'] <= 1.0, out
  # Training really moved the parameters (and batchnorm's statistics).
  assert out['param_change'] > 1e-2, out
  if model == 'vgg8':
    assert out['state_change'] > 1e-3, out



def test_non_finite_value_at_masked_step_does_not_leak_on_mesh(case_worker):
  # Every warm-up step of the stages above the first computes NaN (they
  # normalise the zeros they run on); the masks must keep it out, on the
  # mesh as on one device, and the two must still agree.
  out = case_worker.run('masked_non_finite', num_stages=3)
  assert out['warm_up_is_nan'], out
  assert out['device_finite'], out
  assert out['mesh_finite'] and out['update_finite'], out
  assert out['grad_scale'] > 1e-3, out
  assert out['grads'] <= 1.0 and out['loss'] <= 1.0, out

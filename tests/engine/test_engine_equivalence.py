"""Sideways vs exact BP: the equivalences DESIGN.md §1 pins down."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sideways_jax as sj
from engine_chains import (ConvStage, constant_clip, jit_grads, init, labels, make_chain,
                           max_abs_diff, random_clip, xent)

RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(params=[False, True], ids=['eager', 'jit'])
def maybe_jit(request):
  """Wraps a function in jax.jit or leaves it alone: tests run both ways."""
  return jax.jit if request.param else (lambda f: f)


def _run(maybe_jit, fn, stages, variables, clip, targets, **kwargs):
  call = maybe_jit(lambda v, c, t: fn(stages, v, c, t, xent, **kwargs))
  return call(variables, clip, targets)


@pytest.mark.parametrize('num_stages,extra_frames,use_jit', [
    (2, 0, False), (2, 3, True), (3, 0, True), (3, 3, False), (4, 0, True),
    (4, 3, True)])
def test_constant_clip_sideways_equals_bp(num_stages, extra_frames, use_jit):
  maybe_jit = jax.jit if use_jit else (lambda f: f)
  stages = make_chain(num_stages, batchnorm=True)
  variables = init(stages)
  num_frames = 2 * num_stages - 1 + extra_frames
  clip, targets = constant_clip(num_frames), labels(num_frames)
  side = _run(maybe_jit, sj.sideways_grads, stages, variables, clip, targets)
  bp = _run(maybe_jit, sj.bp_grads, stages, variables, clip, targets)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(side.state, bp.state, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(side.loss, bp.loss, rtol=RTOL)
  # The batchnorm stage really updated its statistics (not a vacuous check).
  bn = min(1, num_stages - 2)
  before = variables[bn]['batch_stats']
  assert max_abs_diff(side.state[bn]['batch_stats'], before) > 1e-3


def test_single_stage_equals_bp_on_random_clips(maybe_jit):
  stages = make_chain(1)
  variables = init(stages)
  clip, targets = random_clip(5), labels(5)
  side = _run(maybe_jit, sj.sideways_grads, stages, variables, clip, targets)
  bp = _run(maybe_jit, sj.bp_grads, stages, variables, clip, targets)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(side.loss, bp.loss, rtol=RTOL)


def test_single_conv_stage_with_batchnorm_equals_bp(maybe_jit):
  # One stage whose output is a feature map: use a sum-of-squares loss.
  stages = (ConvStage(4, stride=2, batchnorm=True),)
  variables = init(stages)
  clip = random_clip(4)
  targets = jnp.zeros((4, clip.shape[1], 4, 4, 4))
  loss = lambda y, t: jnp.mean((y - t) ** 2)
  side = maybe_jit(lambda v: sj.sideways_grads(stages, v, clip, targets,
                                               loss))(variables)
  bp = maybe_jit(lambda v: sj.bp_grads(stages, v, clip, targets,
                                       loss))(variables)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)


def test_random_clip_sideways_differs_from_bp():
  stages = make_chain(3)
  variables = init(stages)
  clip, targets = random_clip(7), labels(7)
  side = jit_grads(sj.sideways_grads, stages)(variables, clip, targets)
  bp = jit_grads(sj.bp_grads, stages)(variables, clip, targets)
  # The top stage sees the same frames, only fewer of them; lower stages
  # pair activations and cotangents of different frames.
  assert max_abs_diff(side.grads[0], bp.grads[0]) > 1e-3


def test_bp_batched_equals_bp_scanned():
  maybe_jit = jax.jit
  stages = make_chain(4, batchnorm=True)
  variables = init(stages)
  clip, targets = random_clip(6), labels(6)
  batched = _run(maybe_jit, sj.bp_grads, stages, variables, clip, targets,
                 mode='batched')
  scanned = _run(maybe_jit, sj.bp_grads, stages, variables, clip, targets,
                 mode='scanned')
  chex.assert_trees_all_close(batched.grads, scanned.grads, rtol=RTOL,
                              atol=ATOL)
  chex.assert_trees_all_close(batched.state, scanned.state, rtol=RTOL,
                              atol=ATOL)
  chex.assert_trees_all_close(batched.metrics['outputs'],
                              scanned.metrics['outputs'], rtol=RTOL,
                              atol=ATOL)
  np.testing.assert_allclose(batched.loss, scanned.loss, rtol=RTOL)


def test_eval_mode_leaves_batchnorm_state_unchanged():
  stages = make_chain(3, batchnorm=True)
  variables = init(stages)
  clip, targets = random_clip(5), labels(5)
  for fn in (sj.sideways_grads, sj.bp_grads):
    result = jit_grads(fn, stages, train=False)(variables, clip, targets)
    chex.assert_trees_all_equal(result.state[1], {
        'batch_stats': variables[1]['batch_stats']})


def test_grad_fn_switches_algorithm_by_name():
  assert sj.grad_fn('sideways') is sj.sideways_grads
  assert sj.grad_fn('bp') is sj.bp_grads
  with pytest.raises(ValueError, match='unknown algorithm'):
    sj.grad_fn('backprop')

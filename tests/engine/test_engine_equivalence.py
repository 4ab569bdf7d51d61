"""Sideways vs exact BP: the invariants listed in docs/algorithm.md.

This is the one tight-tolerance test of "constant clip => Sideways == BP";
tests/models only smoke-tests it once per architecture.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sideways_jax as sj
from engine_chains import (ConvStage, chain_and_variables, compiled,
                           constant_clip, init, labels, max_abs_diff,
                           random_clip)

RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize('num_stages,extra_frames', [(2, 3), (3, 0), (4, 3)])
def test_constant_clip_sideways_equals_bp(num_stages, extra_frames):
  # K = 2D - 1 (the shortest clip) and longer ones, with a batchnorm stage.
  stages, variables = chain_and_variables(num_stages)
  num_frames = 2 * num_stages - 1 + extra_frames
  clip, targets = constant_clip(num_frames), labels(num_frames)
  side = compiled('sideways', num_stages)(variables, clip, targets)
  bp = compiled('bp', num_stages)(variables, clip, targets)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(side.state, bp.state, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(side.loss, bp.loss, rtol=RTOL)
  assert len(side.grads) == len(stages)
  # Not vacuous: every stage has a real gradient, and the batchnorm stage
  # really updated its statistics.
  for g in side.grads:
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g)) > 1e-6
  bn = min(1, num_stages - 2)
  before = variables[bn]['batch_stats']
  assert max_abs_diff(side.state[bn]['batch_stats'], before) > 1e-3


def test_single_stage_equals_bp_on_random_clips():
  # D = 1: one conv + batchnorm stage whose output is a feature map, with a
  # sum-of-squares loss, on frames that all differ.
  stages = (ConvStage(4, stride=2, batchnorm=True),)
  variables = init(stages)
  clip = random_clip(4)
  targets = jnp.zeros((4, clip.shape[1], 4, 4, 4))
  loss = lambda y, t: jnp.mean((y - t) ** 2)
  side, bp = jax.jit(lambda v: tuple(
      fn(stages, v, clip, targets, loss)
      for fn in (sj.sideways_grads, sj.bp_grads)))(variables)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(side.state, bp.state, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(side.loss, bp.loss, rtol=RTOL)
  assert max_abs_diff(side.state[0]['batch_stats'],
                      variables[0]['batch_stats']) > 1e-3


def test_random_clip_sideways_differs_from_bp():
  # Same chain and shapes as the (3, 0) constant case: compiled once.
  _, variables = chain_and_variables(3)
  clip, targets = random_clip(5), labels(5)
  side = compiled('sideways', 3)(variables, clip, targets)
  bp = compiled('bp', 3)(variables, clip, targets)
  # The top stage sees the same frames, only fewer of them; lower stages
  # pair activations and cotangents of different frames.
  assert max_abs_diff(side.grads[0], bp.grads[0]) > 1e-3


def test_bp_batched_equals_bp_scanned():
  _, variables = chain_and_variables(4)
  clip, targets = random_clip(6), labels(6)
  batched = compiled('bp', 4, mode='batched')(variables, clip, targets)
  scanned = compiled('bp', 4, mode='scanned')(variables, clip, targets)
  chex.assert_trees_all_close(batched.grads, scanned.grads, rtol=RTOL,
                              atol=ATOL)
  chex.assert_trees_all_close(batched.state, scanned.state, rtol=RTOL,
                              atol=ATOL)
  chex.assert_trees_all_close(batched.metrics['outputs'],
                              scanned.metrics['outputs'], rtol=RTOL,
                              atol=ATOL)
  np.testing.assert_allclose(batched.loss, scanned.loss, rtol=RTOL)


def test_eval_mode_leaves_batchnorm_state_unchanged():
  _, variables = chain_and_variables(3)
  clip, targets = random_clip(5), labels(5)
  for algorithm in sj.algorithms.DEVICE_ALGORITHMS:
    result = compiled(algorithm, 3, train=False)(variables, clip, targets)
    chex.assert_trees_all_equal(result.state[1], {
        'batch_stats': variables[1]['batch_stats']})

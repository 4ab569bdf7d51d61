"""Temporal stages: exact BP through time and Sideways with carries.

The invariants of docs/algorithm.md, "Temporal stages", at the engine's
tolerances: on a clip of identical frames Sideways with summed window
cotangents equals exact BP through time (and dropping them does not), on
moving frames it differs, with D = 1 it equals BP on any clip, and its
forward through the carries is BP's.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sideways_jax as sj
from sideways_jax import chain as chain_lib
from sideways_jax.models.temporal_blocks import CausalConv, ConvGRU
from engine_chains import (BATCH, SIZE, ConvStage, Head, constant_clip,
                           labels, max_abs_diff, random_clip, xent)

RTOL, ATOL = 1e-5, 1e-6
# One clip length for the window chain (2D - 1 + 1), so that the tests share
# compiled functions.
FRAMES = 8
# XLA's own convolutions: far quicker to compile than the CPU default.
XLA = 'xla'


@functools.cache
def window_chain():
  """Pixel window, a batchnorm frame stage, a feature window, a head."""
  stages = (CausalConv(4, window=3, stride=2, impl=XLA),
            ConvStage(6, batchnorm=True), CausalConv(6, window=2, impl=XLA),
            Head(5))
  frame = jax.random.normal(jax.random.PRNGKey(0), (BATCH, SIZE, SIZE, 3))
  return stages, sj.init_chain(stages, jax.random.PRNGKey(1), frame)


@functools.cache
def gru_chain():
  stages = (CausalConv(4, window=2, stride=2, impl=XLA), ConvGRU(5, impl=XLA),
            Head(5))
  frame = jax.random.normal(jax.random.PRNGKey(0), (BATCH, SIZE, SIZE, 3))
  return stages, sj.init_chain(stages, jax.random.PRNGKey(2), frame)


@functools.cache
def compiled(chain: str, algorithm: str, **options):
  stages, _ = {'window': window_chain, 'gru': gru_chain}[chain]()
  fn = sj.grad_fn(algorithm, **options)
  return jax.jit(lambda v, c, t: fn(stages, v, c, t, xent))


def _close(a, b):
  chex.assert_trees_all_close(a.grads, b.grads, rtol=RTOL, atol=ATOL)
  chex.assert_trees_all_close(a.state, b.state, rtol=RTOL, atol=ATOL)
  np.testing.assert_allclose(a.loss, b.loss, rtol=RTOL)


def test_identical_frames_sideways_sum_equals_bp_through_time():
  stages, variables = window_chain()
  clip, targets = constant_clip(FRAMES), labels(FRAMES)
  side = compiled('window', 'sideways')(variables, clip, targets)
  bp = compiled('window', 'bp', mode='scanned')(variables, clip, targets)
  _close(side, bp)
  for g in side.grads:
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g)) > 1e-6
  # Dropping the window cotangents loses what the upper window (stage 2)
  # sends down through its earlier inputs: the stages below it differ.
  drop = compiled('window', 'sideways', window_cotangents='drop')(
      variables, clip, targets)
  for i in (0, 1):
    assert max_abs_diff(drop.grads[i], bp.grads[i]) > 1e-3
  chex.assert_trees_all_close(drop.grads[2:], bp.grads[2:], rtol=RTOL,
                              atol=ATOL)


def test_moving_frames_sideways_differs_forward_is_exact():
  stages, variables = window_chain()
  clip, targets = random_clip(FRAMES), labels(FRAMES)
  side = compiled('window', 'sideways')(variables, clip, targets)
  bp = compiled('window', 'bp', mode='scanned')(variables, clip, targets)
  batched = compiled('window', 'bp', mode='batched')(variables, clip, targets)
  _close(batched, bp)
  chex.assert_trees_all_close(batched.metrics['outputs'],
                              bp.metrics['outputs'], rtol=RTOL, atol=ATOL)
  assert max_abs_diff(side.grads[0], bp.grads[0]) > 1e-3
  # Stage i sees its inputs in frame order, so the forward through the
  # carries is BP's, only D - 1 steps later.
  lag = len(stages) - 1
  chex.assert_trees_all_close(side.metrics['outputs'][lag:],
                              bp.metrics['outputs'][:-lag], rtol=RTOL,
                              atol=ATOL)


def test_single_window_stage_equals_bp_on_moving_frames():
  # D = 1: the window holds frames (data), so nothing is approximated.
  stages = (CausalConv(4, window=3, stride=2, impl=XLA),)
  frame = random_clip(1)[0]
  variables = sj.init_chain(stages, jax.random.PRNGKey(3), frame)
  clip = random_clip(5)
  targets = jnp.zeros((5, BATCH, SIZE // 2, SIZE // 2, 4))
  loss = lambda y, t: jnp.mean((y - t) ** 2)
  results = jax.jit(lambda v: tuple(
      fn(stages, v, clip, targets, loss)
      for fn in (sj.sideways_grads, sj.bp_grads)))(variables)
  _close(*results)


def test_bp_through_time_matches_a_plain_unrolled_loop():
  # The reference, written without the engine: frames in a Python loop,
  # each stage applied with its carry, jax.grad through everything.
  stages, variables = gru_chain()
  clip, targets = random_clip(3), labels(3)
  params = tuple(v['params'] for v in variables)
  x_shapes = chain_lib.input_shapes(stages, variables, clip[0])

  def clip_loss(params):
    carries = [stage.init_carry(x) if hasattr(stage, 'init_carry') else None
               for stage, x in zip(stages, x_shapes)]
    carries = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), carries)
    total = 0.0
    for t in range(clip.shape[0]):
      x = clip[t]
      for i, stage in enumerate(stages):
        if carries[i] is None:
          x = stage.apply({'params': params[i]}, x, train=True)
        else:
          x, carries[i] = stage.apply({'params': params[i]}, x, carries[i],
                                      train=True)
      total += xent(x, targets[t])
    return total / clip.shape[0]

  expected = jax.jit(jax.grad(clip_loss))(params)
  got = compiled('gru', 'bp', mode='scanned')(variables, clip, targets)
  chex.assert_trees_all_close(got.grads, expected, rtol=RTOL, atol=ATOL)


def test_reset_clears_the_carries():
  stages, variables = window_chain()
  clip_a, clip_b = random_clip(FRAMES, 1), random_clip(FRAMES, 2)
  targets = labels(FRAMES)
  step = jax.jit(lambda s, x, y: sj.sideways_step(stages, variables, s, x, y,
                                                  xent))

  def run(state, clip):
    for x, y in zip(clip, targets):
      state, _ = step(state, x, y)
    return sj.take_gradients(state, variables)

  fresh, _ = run(sj.init_pipeline(stages, variables, clip_b[0]), clip_b)
  _, after_a = run(sj.init_pipeline(stages, variables, clip_a[0]), clip_a)
  assert max(float(jnp.abs(x).max())
             for x in jax.tree.leaves(after_a.carries)) > 0
  reset, _ = run(sj.reset_pipeline(after_a), clip_b)
  chex.assert_trees_all_close(reset.grads, fresh.grads, rtol=RTOL, atol=ATOL)
  leaked, _ = run(after_a, clip_b)
  assert max_abs_diff(leaked.grads[2], fresh.grads[2]) > 1e-4


class _Memory(nn.Module):
  """State kept in a mutable collection: refused, pointing at carries."""

  @nn.compact
  def __call__(self, x, train):
    seen = self.variable('memory', 'seen', jnp.zeros, x.shape)
    seen.value = x
    return x


def test_temporal_errors_are_one_line():
  with pytest.raises(ValueError, match=r"\['memory'\].*temporal stage: "
                     r"init_carry\(x\) and __call__\(x, carry, train\)"):
    sj.init_chain((_Memory(),), jax.random.PRNGKey(0), random_clip(1)[0])
  stages, variables = gru_chain()
  clip, targets = random_clip(5), labels(5)
  with pytest.raises(ValueError, match=r"stage 1 \(ConvGRU\) carries a "
                     r"recurrent state: use mode='scanned'"):
    sj.bp_grads(stages, variables, clip, targets, xent, mode='batched')
  with pytest.raises(ValueError, match='frame-at-a-time code cannot run it'):
    sj.apply_chain(stages, variables, clip[0])
  with pytest.raises(ValueError, match=r"window_cotangents must be one of "
                     r"\('sum', 'drop'\)"):
    sj.grad_fn('sideways', window_cotangents='mean')
  # Eval over a clip runs the carries; a frame chain is vmapped as before.
  outputs = jax.jit(lambda v: chain_lib.apply_clip(stages, v, clip))(
      variables)
  assert outputs.shape == (5, BATCH, 5)
  assert max_abs_diff(outputs[0], outputs[1]) > 1e-4
  # Sideways runs a recurrent stage too (its carry's cotangent is cut).
  side = compiled('gru', 'sideways')(variables, clip, targets)
  assert bool(side.metrics['loss_is_finite'])

"""Exact backpropagation (the baseline) with the interface of `sideways_grads`.

grad = ∇θ (1/K) Σ_t L(f_D ∘ … ∘ f_1(x^t), y^t) (docs/algorithm.md). Each
frame is an independent forward pass (batchnorm normalises over the B clips
of that frame, as in Sideways), so the two modes below compute the same
numbers:

* 'batched': all K frames at once through `vmap` (fast; memory grows with K);
* 'scanned': one frame at a time in a `lax.scan` (memory constant in K).

A chain with temporal stages is not a sum of independent frames: `bptt.py`
differentiates through the carries (exact BP through time).
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import bptt
from sideways_jax import chain as chain_lib
from sideways_jax import pipeline
from sideways_jax import result as result_lib

BPMode = Literal['batched', 'scanned']
MODES = ('batched', 'scanned')


def check_mode(mode: str) -> None:
  """Raises a ValueError unless `mode` is 'batched' or 'scanned'."""
  if mode not in MODES:
    raise ValueError(f"mode must be 'batched' or 'scanned', got {mode!r}")


def _frame_loss(stages, states, loss_fn, train, rng):
  """loss(params, frame, target, t) -> (loss, (output, new_states))."""
  def loss(params, frame, target, t):
    variables = tuple({'params': p, **s} for p, s in zip(params, states))
    x, new_states = chain_lib.apply_chain(stages, variables, frame,
                                          train=train, rng=rng, frame=t)
    return loss_fn(x, target), (x, new_states)
  return loss


def bp_grads(stages: chain_lib.Stages,
             variables: chain_lib.ChainVariables,
             clip: jax.Array,
             targets: Any,
             loss_fn: pipeline.LossFn,
             *,
             rng: jax.Array | None = None,
             train: bool = True,
             mode: BPMode = 'batched',
             unroll: int | bool = 1) -> result_lib.GradResult:
  """Exact BP gradients of one clip; arguments as in `sideways_grads`.

  Args:
    stages, variables, clip, targets, loss_fn, rng, train: as in
      `sideways_grads`.
    mode: 'batched' (vmap over frames) or 'scanned' (lax.scan over frames).
    unroll: passed to `lax.scan` in 'scanned' mode.

  Returns:
    A GradResult with every stage averaging over all K frames.
  """
  chain_lib.validate_chain(stages, variables)
  num_frames, _ = chain_lib.validate_clip(clip, targets)
  chain_lib.output_shapes(stages, variables, clip[0])  # A layout error: 1 line.
  check_mode(mode)
  if chain_lib.is_temporal_chain(stages):
    return bptt.bptt_grads(stages, variables, clip, targets, loss_fn,
                           rng=rng, train=train, mode=mode, unroll=unroll)
  split = [chain_lib.split_variables(v) for v in variables]
  params = tuple(p for p, _ in split)
  states = tuple(s for _, s in split)
  frame_loss = _frame_loss(stages, states, loss_fn, train, rng)
  frames = jnp.arange(num_frames, dtype=jnp.int32)

  if mode == 'batched':
    def clip_loss(p):
      losses, (outputs, new_states) = jax.vmap(
          frame_loss, in_axes=(None, 0, 0, 0))(p, clip, targets, frames)
      return losses.mean(), (losses, outputs, new_states)
    (loss, (losses, outputs, new_states)), grads = jax.value_and_grad(
        clip_loss, has_aux=True)(params)
    new_states = jax.tree.map(lambda s: s.mean(0), new_states)
  else:  # 'scanned'
    frame_grad = jax.value_and_grad(frame_loss, has_aux=True)

    def body(carry, inputs):
      grad_sum, state_sum = carry
      (frame_value, (output, new_state)), grads = frame_grad(params, *inputs)
      carry = (jax.tree.map(jnp.add, grad_sum, grads),
               jax.tree.map(jnp.add, state_sum, new_state))
      return carry, (frame_value, output)
    zeros = jax.tree.map(jnp.zeros_like, (params, states))
    (grad_sum, state_sum), (losses, outputs) = lax.scan(
        body, zeros, (clip, targets, frames), unroll=unroll)
    grads = jax.tree.map(lambda g: g / num_frames, grad_sum)
    new_states = jax.tree.map(lambda s: s / num_frames, state_sum)
    loss = losses.mean()

  return result_lib.every_frame_result(
      loss, losses, outputs, grads, new_states if train else states,
      len(stages))

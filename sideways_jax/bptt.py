"""Exact BP through time for chains with temporal stages (the reference).

    grad = ∇θ (1/K) Σ_t L(y^t, target^t),   y^t = f(x^1 … x^t)

Frame t's output depends on the earlier frames through the stages' carries
(`sideways_jax.temporal`), and JAX differentiates through them: nothing is
cut. `bp_grads` calls this for any chain with a temporal stage, in its two
modes:

* 'scanned': one frame at a time in a `lax.scan` carrying every stage's
  carry. Differentiating the scan keeps each frame's residuals, so memory
  grows with K (unlike frame chains, whose frames are independent);
* 'batched': stage after stage over all K frames at once (`vmap`), each
  frame's carry built from the stage's inputs (`window_carries`). Only
  window stages allow it; a recurrent carry needs the frames in order.

Both start every carry at zeros, as Sideways does, and give the same
numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax import result as result_lib
from sideways_jax import temporal


def check_batchable(stages: chain_lib.Stages) -> None:
  """Refuses 'batched' BP when a stage's carry cannot come from its inputs."""
  for i, stage in enumerate(stages):
    if not temporal.can_batch(stage):
      raise ValueError(
          f"bp mode='batched' runs all frames at once, which needs every "
          f'temporal stage to build its carry from its inputs '
          f'(window_carries); stage {i} ({type(stage).__name__}) carries a '
          "recurrent state: use mode='scanned'")


def bptt_grads(stages: chain_lib.Stages, variables: chain_lib.ChainVariables,
               clip: jax.Array, targets: Any, loss_fn: kernel.LossFn, *,
               rng: jax.Array | None, train: bool, mode: str,
               unroll: int | bool) -> result_lib.GradResult:
  """Exact BP through time of one clip; arguments as in `bp_grads`."""
  if mode == 'batched':
    check_batchable(stages)
  split = [chain_lib.split_variables(v) for v in variables]
  params = tuple(p for p, _ in split)
  states = tuple(s for _, s in split)
  frames = jnp.arange(clip.shape[0], dtype=jnp.int32)
  forward = _batched if mode == 'batched' else _scanned

  def clip_loss(p):
    outputs, new_states = forward(stages, p, states, clip, frames, train,
                                  rng, unroll)
    losses = jax.vmap(loss_fn)(outputs, targets)
    return losses.mean(), (losses, outputs, new_states)

  (loss, (losses, outputs, new_states)), grads = jax.value_and_grad(
      clip_loss, has_aux=True)(params)
  new_states = jax.tree.map(lambda s: s.mean(0), new_states)
  return result_lib.every_frame_result(
      loss, losses, outputs, grads, new_states if train else states,
      len(stages))


def _scanned(stages, params, states, clip, frames, train, rng, unroll):
  """Outputs [K, B, ...] and per-frame states, frame after frame."""
  carries = chain_lib.zero_carries(
      stages, tuple({'params': p, **s} for p, s in zip(params, states)),
      clip[0])

  def body(carries, inputs):
    x, t = inputs
    new_carries, new_states = [], []
    for i, stage in enumerate(stages):
      x, new_state, carry = chain_lib.apply_any_stage(
          stage, params[i], states[i], x, carries[i], train=train,
          rng=chain_lib.stage_rng(rng, t, i))
      new_carries.append(carry)
      new_states.append(new_state)
    return tuple(new_carries), (x, tuple(new_states))

  _, (outputs, new_states) = lax.scan(body, carries, (clip, frames),
                                      unroll=unroll)
  return outputs, new_states


def _batched(stages, params, states, clip, frames, train, rng, unroll):
  """Outputs [K, B, ...] and per-frame states, one stage at a time."""
  del unroll  # No scan.
  x, new_states = clip, []
  for i, stage in enumerate(stages):
    def frame_fn(a, c, t, i=i, stage=stage):
      key = chain_lib.stage_rng(rng, t, i)
      return chain_lib.apply_any_stage(stage, params[i], states[i], a, c,
                                       train=train, rng=key)[:2]
    carries = (temporal.window_carries(stage, x)
               if temporal.is_temporal(stage) else None)
    x, new_state = jax.vmap(frame_fn)(x, carries, frames)
    new_states.append(new_state)
  return x, tuple(new_states)

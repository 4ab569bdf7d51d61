"""Sideways with one stage per device: the per-device program.

Runs inside `shard_map` over ('data', 'stage'). At every computation step
(one frame) each stage-device runs its own stage through `lax.switch` on
`axis_index('stage')`: one `jax.vjp` at the input its lower neighbour sent at
the previous step, applied to the cotangent its upper neighbour sent at the
previous step (the top stage gets it from the loss). Then activations move up
and input-cotangents move down (`mesh.exchange`). This is the schedule
of `sideways_jax.pipeline.sideways_step`, spread over devices, and gives the
same numbers.

Validity masks need no communication: with 0-indexed stage i and step t
since the reset, stage i forwards frame t - i and backpropagates the
cotangent of frame t - 2(D-1) + i (`schedule.sideways_frames`); each is real
when not negative, exactly what the single-device flags carry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import chain as chain_lib
from sideways_jax.parallel import flat as flat_lib
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import slots as slots_lib


class LocalResult(NamedTuple):
  """What one device's program leaves before reductions over devices."""
  grads: slots_lib.Slots  # this stage's G_i / n_i on this data shard, slots
  state: jax.Array        # [S]: this stage's averaged mutable state
  loss: jax.Array         # f32 []: the episode loss on the top device, else 0
  valid_steps: jax.Array  # int32 []: n_i
  outputs: jax.Array      # [K, b, O]: top output per step (top device)


# local_fn(param slots, state [S], clip [K, b, ...], targets, rng)
#   -> LocalResult
LocalFn = Callable[..., LocalResult]


class _Carry(NamedTuple):
  act: jax.Array        # [b, A]: input waiting for this stage (from below)
  cot: jax.Array        # [b, A]: cotangent waiting for this stage's output
  grad_sum: slots_lib.Slots  # Σ_t m_i^t ∇θ_i, in this stage's slots
  valid: jax.Array      # int32 []
  state_sum: jax.Array  # [S]
  state_count: jax.Array  # int32 []
  loss_sum: jax.Array   # f32 []
  t: jax.Array          # int32 []: steps since the reset


def _stage_branch(i: int, stages: chain_lib.Stages,
                  layout: layout_lib.ChainLayout, loss_fn: Callable,
                  train: bool, params: slots_lib.Slots, state: jax.Array,
                  act: jax.Array, cot: jax.Array, grad_sum: slots_lib.Slots,
                  frame: jax.Array, target: Any, t: jax.Array,
                  rng: jax.Array | None):
  """Stage i's forward + backward for one step, in padded-buffer form."""
  num_stages = layout.num_stages
  top = i == num_stages - 1
  size_a = layout.act_size
  places = layout.param_slots.places[i]
  stage_params = slots_lib.unflatten_slots(layout.params[i], places, params)
  stage_state = flat_lib.unflatten(layout.state[i], state)
  forward_frame, backward_frame = schedule_lib.sideways_frames(
      t, i, num_stages)
  x_valid, mask = forward_frame >= 0, backward_frame >= 0
  key = chain_lib.stage_rng(rng, forward_frame, i)

  def forward(p, a):
    return chain_lib.apply_stage(stages[i], p, stage_state, a, train=train,
                                 rng=key)

  if i == 0:
    # The frame needs no cotangent: skip the input-gradient of stage 0.
    y, vjp_fn, new_state = jax.vjp(lambda p: forward(p, frame), stage_params,
                                   has_aux=True)
  else:
    x = flat_lib.unflatten_batch(act, layout.outputs[i - 1])
    y, vjp_fn, new_state = jax.vjp(forward, stage_params, x, has_aux=True)
  batch = frame.shape[0]
  emit = jnp.zeros((batch, layout.out_size), layout.outputs[-1].dtype)
  if top:
    loss, cot_y = jax.value_and_grad(loss_fn)(y, target)
    loss = jnp.where(x_valid, loss, 0.0).astype(jnp.float32)
    emit = y.reshape(emit.shape).astype(emit.dtype)
  else:
    loss = jnp.zeros((), jnp.float32)
    cot_y = flat_lib.unflatten_batch(cot, layout.outputs[i])
  # Masking the (small) cotangent, not the gradient: at a masked step the
  # stage ran on zeros (or its cotangent is zeros), so the gradient is
  # exactly zero and the big parameter slots need no extra select pass.
  grads = vjp_fn(jnp.where(mask, cot_y, 0).astype(y.dtype))
  # Only this stage's slots change; the rest pass through without a copy.
  grad_sum = slots_lib.add_to_slots(layout.params[i], places, grad_sum,
                                    grads[0])
  zeros_a = jnp.zeros((batch, size_a), layout.act_dtype)
  down = zeros_a if i == 0 else flat_lib.flatten_batch(
      grads[1], size_a).astype(layout.act_dtype)
  up = zeros_a if top else flat_lib.flatten_batch(y, size_a).astype(
      layout.act_dtype)
  new_state = jnp.where(
      x_valid, flat_lib.flatten(layout.state[i], dict(new_state),
                                layout.state_size, layout.state_dtype), 0)
  return mesh_lib.vary((up, down, grad_sum, new_state, loss, mask, x_valid,
                        emit))


def sideways_local(stages: chain_lib.Stages, layout: layout_lib.ChainLayout,
                   loss_fn: Callable, *, train: bool = True,
                   unroll: int | bool = 1) -> LocalFn:
  """Builds the per-device Sideways program for one clip (one episode).

  Args:
    stages: the D stage modules (stage i runs on stage-device i).
    layout: the chain's buffer layout for one device's batch.
    loss_fn: `loss_fn(top_output, target) -> scalar`.
    train: training mode for batchnorm and dropout.
    unroll: passed to the `lax.scan` over frames.

  Returns:
    `local_fn(params, state, clip, targets, rng) -> LocalResult`, to be
    called inside `shard_map` with this device's rows and data shard; the
    targets must already be aligned to steps (see `sideways.align_targets`).
  """
  num_stages = layout.num_stages
  branches = [functools.partial(_stage_branch, i, stages, layout, loss_fn,
                                train) for i in range(num_stages)]

  def local_fn(params, state, clip, targets, rng):
    stage_index = lax.axis_index(mesh_lib.STAGE)
    batch = clip.shape[1]
    zeros_a = jnp.zeros((batch, layout.act_size), layout.act_dtype)
    carry = _Carry(
        act=zeros_a, cot=zeros_a,
        grad_sum=jax.tree.map(jnp.zeros_like, params),
        valid=jnp.zeros((), jnp.int32), state_sum=jnp.zeros_like(state),
        state_count=jnp.zeros((), jnp.int32),
        loss_sum=jnp.zeros((), jnp.float32), t=jnp.zeros((), jnp.int32))
    carry = mesh_lib.vary(carry)

    def step(carry, frame_and_target):
      frame, target = frame_and_target
      up, down, grad_sum, new_state, loss, mask, x_valid, emit = lax.switch(
          stage_index, branches, params, state, carry.act, carry.cot,
          carry.grad_sum, frame, target, carry.t, rng)
      up, down = mesh_lib.exchange(up, down, num_stages)
      return _Carry(
          act=up, cot=down, grad_sum=grad_sum,
          valid=carry.valid + mask.astype(jnp.int32),
          state_sum=carry.state_sum + new_state,
          state_count=carry.state_count + x_valid.astype(jnp.int32),
          loss_sum=carry.loss_sum + loss, t=carry.t + 1), emit

    carry, outputs = lax.scan(step, carry, (clip, targets), unroll=unroll)
    count = jnp.maximum(carry.valid, 1)
    grads = jax.tree.map(lambda g: g / count.astype(g.dtype), carry.grad_sum)
    averaged = carry.state_sum / jnp.maximum(carry.state_count, 1).astype(
        state.dtype)
    # A stage with no real input keeps its state (as `take_gradients` does).
    new_state = jnp.where(carry.state_count > 0, averaged, state)
    top_valid = jnp.maximum(carry.valid, 1).astype(jnp.float32)
    return LocalResult(grads=grads, state=new_state,
                       loss=carry.loss_sum / top_valid,
                       valid_steps=carry.valid, outputs=outputs)

  return local_fn

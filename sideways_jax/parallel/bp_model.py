"""Exact BP, one stage per device (model parallelism): per-device program.

The paper's baseline (Table 2), algorithm 'bp' on a mesh. For each frame
the activation climbs the stage-devices one tick at a time (device k runs
`kernel.stage_forward` of stage k at tick k, the others wait), the top
device computes the loss, and autodiff replays the ticks in reverse: the
transpose of each tick's `lax.cond` runs stage k's backward on device k only
and the transpose of each `ppermute` sends the cotangent one device down.
So at any moment one device works, as in model-parallel BP on GPUs.

The backward is autodiff's, not `kernel.stage_step`: the kernel re-runs a
stage's forward at its vjp, and calling it at the backward ticks would
compute every forward twice (the baseline ~4/3 slower, every speed ratio
distorted). Autodiff keeps each tick's residuals from the forward instead.

Frames are processed one after another in a `lax.scan` (memory constant in
the clip length), giving the same numbers as `sideways_jax.bp_grads`. With
temporal stages, each device keeps its stage's carry in a row of the scan
and autodiff runs through the whole scan (exact BP through time, as
`sideways_jax.bptt`; memory then grows with the clip length).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax.parallel import local as local_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import program as program_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import staged


def _tick(k: int, setup: local_lib.LocalSetup, state: jax.Array,
          rng: jax.Array | None, params: Any, h: jax.Array,
          frame: jax.Array, target: Any, t: jax.Array,
          carry: jax.Array | None) -> tuple:
  """Tick k of frame t: stage k forwards on device k; the others wait.

  Returns (row sent up, loss, top output row, state row, carry row), zeros
  on every device but k (the loss and output only at the top; the carry
  row only for a temporal chain, else None).
  """
  top = k == setup.num_stages - 1
  zeros = setup.zeros(frame.shape[0])
  no_loss = jnp.zeros((), jnp.float32)

  def active(p, h, frame, target, carry):
    y, new_state, *new_carry = setup.forward(
        k, p, setup.stage_state(k, state), setup.stage_input(k, h, frame),
        frame=t, rng=rng, carry_row=carry)
    if top:
      out = (zeros.act, setup.loss_fn(y, target).astype(jnp.float32),
             setup.out_row(y))
    else:
      out = (setup.act_row(y), no_loss, zeros.out)
    return mesh_lib.vary(out + (setup.state_row(k, new_state),
                                new_carry[0] if new_carry else None))

  def idle(p, h, frame, target, carry):
    del p, h, frame, target
    return mesh_lib.vary((zeros.act, no_loss, zeros.out, zeros.state,
                          carry))

  return lax.cond(lax.axis_index(mesh_lib.STAGE) == k, active, idle, params,
                  h, frame, target, carry)


def _frame_loss(setup: local_lib.LocalSetup, state: jax.Array,
                rng: jax.Array | None, stage_params: tuple, frame: jax.Array,
                target: Any, t: jax.Array, carry: jax.Array | None = None):
  """One frame up the chain, D ticks.

  Returns (loss, (state row, top output row, next carry row)); the carry
  row (this device's stage's; None for a frame chain) changes at this
  device's own tick only. Differentiated with respect to `stage_params`
  (every stage's pytree read from this device's slots; only stage k's is
  real on device k), and through `carry` for a temporal chain.
  """
  zeros = mesh_lib.vary(setup.zeros(frame.shape[0]))
  h, loss = zeros.act, mesh_lib.vary(jnp.zeros((), jnp.float32))
  emit, new_state = zeros.out, zeros.state
  for k in range(setup.num_stages):
    out, tick_loss, tick_emit, tick_state, carry = _tick(
        k, setup, state, rng, stage_params[k], h, frame, target, t, carry)
    loss, emit = loss + tick_loss, emit + tick_emit
    new_state = new_state + tick_state
    if k < setup.num_stages - 1:
      h = lax.ppermute(out, mesh_lib.STAGE, [(k, k + 1)])
  return loss, (new_state, lax.stop_gradient(emit), carry)


def bp_model_local(setup: local_lib.LocalSetup, *,
                   unroll: int | bool) -> local_lib.LocalFn:
  """Builds the per-device model-parallel BP program for one clip.

  Args:
    setup: the chain, its buffer layout, the loss and the training mode.
    unroll: passed to the `lax.scan` over frames.

  Returns:
    `local_fn(params, state, clip, targets, rng) -> LocalResult` (every
    stage averages over all K frames).
  """
  num_stages = setup.num_stages
  accumulate = [lambda total, g, k=k: setup.add(k)(total, g[k])
                for k in range(num_stages)]

  def local_fn(params, state, clip, targets, rng):
    # Every stage's structure read from this device's slots, once per clip.
    # Differentiating these, not the slots, keeps each tick's gradient the
    # size of its own stage.
    stage_params = tuple(setup.stage_params(k, params)
                         for k in range(num_stages))
    value_and_grad = jax.value_and_grad(
        lambda p, *inputs: _frame_loss(setup, state, rng, p, *inputs),
        has_aux=True)

    frames = jnp.arange(clip.shape[0], dtype=jnp.int32)
    zero_grads = mesh_lib.vary(jax.tree.map(jnp.zeros_like, params))
    if setup.layout.temporal:
      return _through_time(setup, state, rng, stage_params, zero_grads,
                           accumulate, clip, targets, frames, unroll)

    def step(carry, inputs):
      grad_sum, state_sum, loss_sum = carry
      (loss, (new_state, emit, _)), g = value_and_grad(stage_params,
                                                       *inputs)
      grad_sum = lax.switch(lax.axis_index(mesh_lib.STAGE), accumulate,
                            grad_sum, g)
      return (grad_sum, state_sum + new_state, loss_sum + loss), emit

    carry = (zero_grads, mesh_lib.vary(jnp.zeros_like(state)),
             mesh_lib.vary(jnp.zeros((), jnp.float32)))
    sums, outputs = lax.scan(step, carry, (clip, targets, frames),
                             unroll=unroll)
    return local_lib.every_frame_result(*sums, setup.outputs(outputs))

  return local_fn


def _through_time(setup, state, rng, stage_params, zero_grads, accumulate,
                  clip, targets, frames, unroll) -> local_lib.LocalResult:
  """Exact BP through time: one gradient of the whole clip's loss."""

  def clip_loss(p):
    def step(carry, inputs):
      loss, (new_state, emit, carry) = _frame_loss(setup, state, rng, p,
                                                   *inputs, carry)
      return carry, (loss, new_state, emit)

    zeros = mesh_lib.vary(setup.zeros(clip.shape[1]))
    _, (losses, states, outputs) = lax.scan(
        step, zeros.carry, (clip, targets, frames), unroll=unroll)
    return losses.sum(), (states.sum(0), outputs)

  (loss_sum, (state_sum, outputs)), g = jax.value_and_grad(
      clip_loss, has_aux=True)(stage_params)
  grad_sum = lax.switch(lax.axis_index(mesh_lib.STAGE), accumulate,
                        zero_grads, g)
  return local_lib.every_frame_result(grad_sum, state_sum, loss_sum,
                                      setup.outputs(outputs))


class BPModelProgram(staged.StagedProgram):
  """Exact BP on a mesh, one device busy at a time (`bp_model_local`)."""

  def __init__(self, setup: program_lib.MeshSetup, *, unroll: int | bool):
    self._unroll = unroll
    super().__init__(setup)

  def build_local(self, setup: local_lib.LocalSetup) -> local_lib.LocalFn:
    return bp_model_local(setup, unroll=self._unroll)

  schedule = staticmethod(schedule_lib.model_parallel_schedule)

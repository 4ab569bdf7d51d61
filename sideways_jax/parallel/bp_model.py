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
the clip length), giving the same numbers as `sideways_jax.bp_grads`.
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
          frame: jax.Array, target: Any, t: jax.Array) -> tuple:
  """Tick k of frame t: stage k forwards on device k; the others wait.

  Returns (row sent up, loss, top output row, state row), zeros on every
  device but k (the loss and output only at the top).
  """
  top = k == setup.num_stages - 1
  zeros = setup.zeros(frame.shape[0])
  no_loss = jnp.zeros((), jnp.float32)

  def active(p, h, frame, target):
    y, new_state = setup.forward(k, p, setup.stage_state(k, state),
                                 setup.stage_input(k, h, frame), frame=t,
                                 rng=rng)
    if top:
      out = (zeros.act, setup.loss_fn(y, target).astype(jnp.float32),
             setup.out_row(y))
    else:
      out = (setup.act_row(y), no_loss, zeros.out)
    return mesh_lib.vary(out + (setup.state_row(k, new_state),))

  def idle(p, h, frame, target):
    del p, h, frame, target
    return mesh_lib.vary((zeros.act, no_loss, zeros.out, zeros.state))

  return lax.cond(lax.axis_index(mesh_lib.STAGE) == k, active, idle, params,
                  h, frame, target)


def _frame_loss(setup: local_lib.LocalSetup, state: jax.Array,
                rng: jax.Array | None, stage_params: tuple, frame: jax.Array,
                target: Any, t: jax.Array):
  """One frame up the chain, D ticks: (loss, (state row, top output row)).

  Differentiated with respect to `stage_params` (every stage's pytree read
  from this device's slots; only stage k's is real on device k).
  """
  zeros = mesh_lib.vary(setup.zeros(frame.shape[0]))
  h, loss = zeros.act, mesh_lib.vary(jnp.zeros((), jnp.float32))
  emit, new_state = zeros.out, zeros.state
  for k in range(setup.num_stages):
    out, tick_loss, tick_emit, tick_state = _tick(
        k, setup, state, rng, stage_params[k], h, frame, target, t)
    loss, emit = loss + tick_loss, emit + tick_emit
    new_state = new_state + tick_state
    if k < setup.num_stages - 1:
      h = lax.ppermute(out, mesh_lib.STAGE, [(k, k + 1)])
  return loss, (new_state, lax.stop_gradient(emit))


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

    def step(carry, inputs):
      grad_sum, state_sum, loss_sum = carry
      (loss, (new_state, emit)), g = value_and_grad(stage_params, *inputs)
      grad_sum = lax.switch(lax.axis_index(mesh_lib.STAGE), accumulate,
                            grad_sum, g)
      return (grad_sum, state_sum + new_state, loss_sum + loss), emit

    frames = jnp.arange(clip.shape[0], dtype=jnp.int32)
    carry = mesh_lib.vary((jax.tree.map(jnp.zeros_like, params),
                           jnp.zeros_like(state), jnp.zeros((), jnp.float32)))
    sums, outputs = lax.scan(step, carry, (clip, targets, frames),
                             unroll=unroll)
    return local_lib.every_frame_result(*sums, setup.outputs(outputs))

  return local_fn


class BPModelProgram(staged.StagedProgram):
  """Exact BP on a mesh, one device busy at a time (`bp_model_local`)."""

  def __init__(self, setup: program_lib.MeshSetup, *, unroll: int | bool):
    self._unroll = unroll
    super().__init__(setup)

  def build_local(self, setup: local_lib.LocalSetup) -> local_lib.LocalFn:
    return bp_model_local(setup, unroll=self._unroll)

  schedule = staticmethod(schedule_lib.model_parallel_schedule)

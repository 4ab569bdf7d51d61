"""Sideways with one stage per device: the per-device program.

Runs inside `shard_map` over ('data', 'stage'). At every computation step
(one frame) each stage-device runs `kernel.stage_step` for its own stage
(`lax.switch` on `axis_index('stage')`) at the input its lower neighbour
sent at the previous step, with the cotangent its upper neighbour sent at
the previous step (the top stage gets it from the loss). Then activations
move up and input-cotangents move down (`mesh.exchange`). This is the
schedule of `sideways_jax.pipeline.sideways_step`, spread over devices, and
gives the same numbers. A temporal stage's carry stays on its device, in a
row of the scan's carry, and starts at zeros with every clip.

Validity masks need no communication: with 0-indexed stage i and step t
since the reset, stage i forwards frame t - i and backpropagates the
cotangent of frame t - 2(D-1) + i (`schedule.sideways_frames`); each is real
when not negative, exactly what the single-device flags carry.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import sideways as sideways_lib
from sideways_jax.parallel import local as local_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import program as program_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import slots as slots_lib
from sideways_jax.parallel import staged


class _Carry(NamedTuple):
  act: jax.Array        # [b, A]: input waiting for this stage (from below)
  cot: jax.Array        # [b, A]: cotangent waiting for this stage's output
  grad_sum: slots_lib.Slots  # Σ_t m_i^t ∇θ_i, in this stage's slots
  valid: jax.Array      # int32 []
  state_sum: jax.Array  # [S]
  state_count: jax.Array  # int32 []
  loss_sum: jax.Array   # f32 []
  t: jax.Array          # int32 []: steps since the reset
  carry: jax.Array      # [C]: this stage's temporal carry (zeros if none)


class _Sent(NamedTuple):
  """What a stage leaves after one step, as rows."""
  up: jax.Array         # [b, A]: its output, for the stage above
  down: jax.Array       # [b, A]: its input cotangent, for the stage below
  grad_sum: slots_lib.Slots
  state: jax.Array      # [S]: updated state (zeros if the input was not real)
  loss: jax.Array       # f32 []
  mask: jax.Array       # bool []: the gradient counted
  x_valid: jax.Array    # bool []: the input was real
  emit: jax.Array       # [b, O]: the top's output (zeros below)
  carry: jax.Array      # [C]: the stage's next carry row


def _stage_branch(i: int, setup: local_lib.LocalSetup,
                  window_cotangents: str, params: slots_lib.Slots,
                  state: jax.Array, carry: _Carry, frame: jax.Array,
                  target: Any, rng: jax.Array | None) -> _Sent:
  """Stage i's step (`kernel.stage_step`), packed into rows."""
  top, zeros = i == setup.num_stages - 1, setup.zeros(frame.shape[0])
  forward_frame, backward_frame = schedule_lib.sideways_frames(
      carry.t, i, setup.num_stages)
  x_valid = forward_frame >= 0
  step = setup.step(i, params, state, carry.act, frame, carry.cot,
                    carry.grad_sum, frame_index=forward_frame, rng=rng,
                    target=target, input_valid=x_valid,
                    cotangent_valid=backward_frame >= 0,
                    carry_row=carry.carry,
                    window_cotangents=window_cotangents)
  return mesh_lib.vary(_Sent(
      up=zeros.act if top else setup.act_row(step.output),
      down=zeros.act if i == 0 else setup.act_row(step.input_cotangent),
      grad_sum=step.grad_sum, state=setup.state_row(i, step.state),
      loss=step.loss, mask=step.mask, x_valid=x_valid,
      emit=setup.out_row(step.output) if top else zeros.out,
      carry=step.carry))


def _result(setup: local_lib.LocalSetup, carry: _Carry, state: jax.Array,
            outputs: jax.Array) -> local_lib.LocalResult:
  """The episode's averages from the sums the scan left."""
  # A stage with no real input keeps its state (as `take_gradients` does).
  new_state = jnp.where(carry.state_count > 0,
                        local_lib.mean_over(carry.state_sum,
                                            carry.state_count), state)
  top_frame, _ = schedule_lib.sideways_frames(
      jnp.arange(outputs.shape[0], dtype=jnp.int32), setup.num_stages - 1,
      setup.num_stages)
  return local_lib.LocalResult(
      grads=local_lib.mean_over(carry.grad_sum, carry.valid),
      state=new_state,
      loss=carry.loss_sum / jnp.maximum(carry.valid, 1).astype(jnp.float32),
      valid_steps=carry.valid, outputs=setup.outputs(outputs),
      output_frame=top_frame)


def sideways_local(setup: local_lib.LocalSetup, *,
                   target_alignment: sideways_lib.TargetAlignment,
                   window_cotangents: str,
                   unroll: int | bool) -> local_lib.LocalFn:
  """Builds the per-device Sideways program for one clip (one episode).

  Args:
    setup: the chain, its buffer layout, the loss and the training mode.
    target_alignment: 'current' or 'origin' (`sideways.align_targets`).
    window_cotangents: 'sum' or 'drop' (`kernel.stage_step`).
    unroll: passed to the `lax.scan` over frames.

  Returns:
    `local_fn(params, state, clip, targets, rng) -> LocalResult`, to be
    called inside `shard_map` with this device's rows and data shard.
  """
  num_stages = setup.num_stages
  branches = [functools.partial(_stage_branch, i, setup, window_cotangents)
              for i in range(num_stages)]

  def local_fn(params, state, clip, targets, rng):
    stage_index = lax.axis_index(mesh_lib.STAGE)
    targets = sideways_lib.align_targets(targets, num_stages,
                                         target_alignment)
    zeros = setup.zeros(clip.shape[1])
    count = jnp.zeros((), jnp.int32)
    carry = mesh_lib.vary(_Carry(
        act=zeros.act, cot=zeros.act, grad_sum=jax.tree.map(jnp.zeros_like,
                                                            params),
        valid=count, state_sum=jnp.zeros_like(state), state_count=count,
        loss_sum=jnp.zeros((), jnp.float32), t=count, carry=zeros.carry))

    def step(carry, frame_and_target):
      frame, target = frame_and_target
      sent = lax.switch(stage_index, branches, params, state, carry, frame,
                        target, rng)
      up, down = mesh_lib.exchange(sent.up, sent.down, num_stages)
      return _Carry(
          act=up, cot=down, grad_sum=sent.grad_sum,
          valid=carry.valid + sent.mask.astype(jnp.int32),
          state_sum=carry.state_sum + sent.state,
          state_count=carry.state_count + sent.x_valid.astype(jnp.int32),
          loss_sum=carry.loss_sum + sent.loss, t=carry.t + 1,
          carry=sent.carry), sent.emit

    carry, outputs = lax.scan(step, carry, (clip, targets), unroll=unroll)
    return _result(setup, carry, state, outputs)

  return local_fn


class SidewaysProgram(staged.StagedProgram):
  """Sideways on a mesh: every stage busy at every step (`sideways_local`).

  Options: `target_alignment`, `window_cotangents` and `unroll` (see
  `sideways_jax.algorithms`).
  """

  def __init__(self, setup: program_lib.MeshSetup, *, target_alignment: str,
               window_cotangents: str, unroll: int | bool):
    self._options = dict(target_alignment=target_alignment,
                         window_cotangents=window_cotangents, unroll=unroll)
    super().__init__(setup)

  def build_local(self, setup: local_lib.LocalSetup) -> local_lib.LocalFn:
    return sideways_local(setup, **self._options)

  schedule = staticmethod(schedule_lib.sideways_schedule)

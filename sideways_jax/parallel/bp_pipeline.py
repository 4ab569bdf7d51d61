"""Exact BP pipelined over frames (GPipe, 1F1B): the per-device program.

Batchnorm normalises each frame over its B clips, so the K frames of a clip
are independent micro-batches and exact BP can keep every stage-device busy
on different frames. The program runs the tick tables of `schedule.py`
inside `shard_map` over ('data', 'stage'): at tick t stage-device i forwards
frame `forward[t, i]` from the input it stored when that frame arrived, and
backpropagates frame `backward[t, i]`, re-running the stage's forward from
that frame's stored input (re-materialisation) and applying the cotangent
stored when it came down. The top stage runs forward, loss and backward of
a frame at its backward tick. Then the activation goes up and the cotangent
down (`mesh.exchange`), and each arrival is stored in a ring buffer
indexed by frame (depths from `schedule.buffer_depths`: K for GPipe,
2(D-1) - 1 for 1F1B). Same numbers as `sideways_jax.bp_grads`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax.parallel import local as local_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import program as program_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import slots as slots_lib
from sideways_jax.parallel import staged


class _Carry(NamedTuple):
  acts: jax.Array       # [depth_a, b, A]: stored inputs, slot = frame % depth
  cots: jax.Array       # [depth_c, b, A]: stored output cotangents
  grad_sum: slots_lib.Slots
  state_sum: jax.Array  # [S]
  loss_sum: jax.Array   # f32 []
  outputs: jax.Array    # [K, b, O]: the top's output of every frame


def _read(buffer: jax.Array, frame: jax.Array) -> jax.Array:
  return buffer[jnp.maximum(frame, 0) % buffer.shape[0]]


def _store(buffer: jax.Array, value: jax.Array, frame: jax.Array,
           keep: jax.Array) -> jax.Array:
  """buffer[frame % depth] = value where `keep`; one slot written, in place."""
  slot = jnp.maximum(frame, 0) % buffer.shape[0]
  value = jnp.where(keep, value.astype(buffer.dtype), buffer[slot])
  return lax.dynamic_update_index_in_dim(buffer, value, slot, 0)


class _Tick(NamedTuple):
  """What one stage-device works on at one tick (tables and buffers)."""
  f: jax.Array          # int32 []: the frame it forwards (NONE: none)
  g: jax.Array          # int32 []: the frame it backpropagates (NONE: none)
  x_fwd: jax.Array      # [b, A]: the stored input of frame f
  x_bwd: jax.Array      # [b, A]: the stored input of frame g
  cot: jax.Array        # [b, A]: the stored output cotangent of frame g
  frame_fwd: jax.Array  # [b, ...]: clip frame f (stage 0's input)
  frame_bwd: jax.Array  # [b, ...]: clip frame g
  target: Any           # frame g's target (the top's loss)


class _Done(NamedTuple):
  """What a stage-device leaves after one tick."""
  up: jax.Array         # [b, A]: frame f's output, for the stage above
  down: jax.Array       # [b, A]: frame g's input cotangent, for below
  grad_sum: slots_lib.Slots
  state: jax.Array      # [S]: updated state of the frames it ran
  loss: jax.Array       # f32 []: frame g's loss (top only)
  emit: jax.Array       # [b, O]: frame g's output (top only)


def _stage_tick(i: int, setup: local_lib.LocalSetup, params: slots_lib.Slots,
                state: jax.Array, grad_sum: slots_lib.Slots, tick: _Tick,
                rng: jax.Array | None) -> _Done:
  """Stage i's work at one tick: forward of frame f, backward of frame g.

  The forward is `kernel.stage_forward`; the backward `kernel.stage_step`
  at frame g's stored input (every step it runs is real: no mask).
  """
  top = i == setup.num_stages - 1
  zeros = setup.zeros(tick.frame_fwd.shape[0])
  no_loss = jnp.zeros((), jnp.float32)

  def run_forward(_):
    y, new_state = setup.forward(
        i, setup.stage_params(i, params), setup.stage_state(i, state),
        setup.stage_input(i, tick.x_fwd, tick.frame_fwd), frame=tick.f,
        rng=rng)
    return mesh_lib.vary((setup.act_row(y), setup.state_row(i, new_state)))

  def run_backward(grad_sum):
    step = setup.step(i, params, state, tick.x_bwd, tick.frame_bwd, tick.cot,
                      grad_sum, frame_index=tick.g, rng=rng,
                      target=tick.target)
    down = zeros.act if i == 0 else setup.act_row(step.input_cotangent)
    if not top:
      return mesh_lib.vary((step.grad_sum, down, zeros.state, no_loss,
                            zeros.out))
    # The top's forward runs here only: its state and output too.
    return mesh_lib.vary((step.grad_sum, down, setup.state_row(i, step.state),
                          step.loss, setup.out_row(step.output)))

  def skip_backward(grad_sum):
    return mesh_lib.vary((grad_sum, zeros.act, zeros.state, no_loss,
                          zeros.out))

  nothing = lambda _: mesh_lib.vary((zeros.act, zeros.state))
  up, fwd_state = nothing(None) if top else lax.cond(
      tick.f >= 0, run_forward, nothing, None)
  grad_sum, down, bwd_state, loss, emit = lax.cond(
      tick.g >= 0, run_backward, skip_backward, grad_sum)
  return mesh_lib.vary(_Done(up, down, grad_sum, fwd_state + bwd_state, loss,
                             emit))


def _tick_fn(setup: local_lib.LocalSetup, params: slots_lib.Slots,
             state: jax.Array, clip: jax.Array, targets: Any,
             rng: jax.Array | None) -> Callable[..., tuple[_Carry, None]]:
  """The scan body over the rows (forward, backward) of a tick table."""
  num_stages = setup.num_stages
  branches = [functools.partial(_stage_tick, i, setup)
              for i in range(num_stages)]
  me = lax.axis_index(mesh_lib.STAGE)
  below, above = jnp.maximum(me - 1, 0), jnp.minimum(me + 1, num_stages - 1)
  take = lambda x, t: jax.tree.map(lambda leaf: leaf[jnp.maximum(t, 0)], x)

  def tick(carry: _Carry, rows):
    fwd_row, bwd_row = rows
    f, g = fwd_row[me], bwd_row[me]
    work = _Tick(f=f, g=g, x_fwd=_read(carry.acts, f),
                 x_bwd=_read(carry.acts, g), cot=_read(carry.cots, g),
                 frame_fwd=take(clip, f), frame_bwd=take(clip, g),
                 target=take(targets, g))
    done = lax.switch(me, branches, params, state, carry.grad_sum, work, rng)
    up, down = mesh_lib.exchange(done.up, done.down, num_stages)
    # What arrived is the frame the neighbour worked on at this tick.
    came_up, came_down = fwd_row[below], bwd_row[above]
    return _Carry(
        acts=_store(carry.acts, up, came_up, (me > 0) & (came_up >= 0)),
        cots=_store(carry.cots, down, came_down,
                    (me < num_stages - 1) & (came_down >= 0)),
        grad_sum=done.grad_sum, state_sum=carry.state_sum + done.state,
        loss_sum=carry.loss_sum + done.loss,
        outputs=_store(carry.outputs, done.emit, g,
                       (me == num_stages - 1) & (g >= 0)),
    ), None
  return tick


def pipeline_local(setup: local_lib.LocalSetup,
                   make_schedule: Callable[[int, int], schedule_lib.Schedule],
                   *, unroll: int | bool) -> local_lib.LocalFn:
  """Builds the per-device program of a pipelined BP schedule for one clip.

  Args:
    setup: the chain, its buffer layout, the loss and the training mode.
    make_schedule: `make_schedule(K, D)`, the tick table (`schedule.py`).
    unroll: passed to the `lax.scan` over ticks.

  Returns:
    `local_fn(params, state, clip, targets, rng) -> LocalResult` (every
    stage averages over all K frames).
  """
  layout = setup.layout

  def local_fn(params, state, clip, targets, rng):
    num_frames, batch = clip.shape[:2]
    table = make_schedule(num_frames, setup.num_stages)
    depth_a, depth_c = schedule_lib.buffer_depths(table)
    row = (batch, layout.act_size)
    carry = mesh_lib.vary(_Carry(
        acts=jnp.zeros((depth_a,) + row, layout.act_dtype),
        cots=jnp.zeros((depth_c,) + row, layout.act_dtype),
        grad_sum=jax.tree.map(jnp.zeros_like, params),
        state_sum=jnp.zeros_like(state),
        loss_sum=jnp.zeros((), jnp.float32),
        outputs=jnp.zeros((num_frames, batch, layout.out_size),
                          layout.outputs[-1].dtype)))
    rows = (jnp.asarray(table.forward), jnp.asarray(table.backward))
    carry, _ = lax.scan(_tick_fn(setup, params, state, clip, targets, rng),
                        carry, rows, unroll=unroll)
    return local_lib.every_frame_result(
        carry.grad_sum, carry.state_sum, carry.loss_sum,
        setup.outputs(carry.outputs))

  return local_fn


class PipelineProgram(staged.StagedProgram):
  """Exact BP pipelined over the clip's frames, by a tick table."""

  def __init__(self, setup: program_lib.MeshSetup, *, unroll: int | bool):
    self._unroll = unroll
    super().__init__(setup)

  def build_local(self, setup: local_lib.LocalSetup) -> local_lib.LocalFn:
    if setup.layout.temporal:
      # Exact BP through time needs frame t's backward to wait for every
      # later frame's; these schedules treat frames as independent
      # micro-batches (1F1B even runs early backwards before later
      # forwards), so they cannot be exact with carries.
      raise ValueError(
          'bp_gpipe and bp_1f1b treat the frames of a clip as independent '
          'micro-batches, but this chain has temporal stages (carries '
          "across frames): use 'bp' (model-parallel BP through time) or "
          "'sideways' on the mesh")
    return pipeline_local(setup, self.schedule, unroll=self._unroll)


class GPipeProgram(PipelineProgram):
  """GPipe: all forwards, then all backwards (stores K inputs)."""
  schedule = staticmethod(schedule_lib.gpipe_schedule)


class OneFOneBProgram(PipelineProgram):
  """1F1B: one forward and one backward a tick (stores 2(D-1)-1 inputs)."""
  schedule = staticmethod(schedule_lib.one_f_one_b_schedule)

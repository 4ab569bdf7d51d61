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
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import chain as chain_lib
from sideways_jax.parallel import flat as flat_lib
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import slots as slots_lib
from sideways_jax.parallel.sideways_mp import LocalFn
from sideways_jax.parallel.sideways_mp import LocalResult


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


def _stage_tick(i: int, stages: chain_lib.Stages,
                layout: layout_lib.ChainLayout, loss_fn: Callable,
                train: bool, params: slots_lib.Slots, state: jax.Array,
                grad_sum: slots_lib.Slots, x_fwd: jax.Array, x_bwd: jax.Array,
                cot: jax.Array, frame_fwd: jax.Array, frame_bwd: jax.Array,
                target: jax.Array, f: jax.Array, g: jax.Array,
                rng: jax.Array | None):
  """Stage i's work at one tick: forward of frame f, backward of frame g."""
  top = i == layout.num_stages - 1
  size_a = layout.act_size
  batch = frame_fwd.shape[0]
  places = layout.param_slots.places[i]
  stage_params = slots_lib.unflatten_slots(layout.params[i], places, params)
  stage_state = flat_lib.unflatten(layout.state[i], state)
  zeros_a = jnp.zeros((batch, size_a), layout.act_dtype)
  zeros_s = jnp.zeros((layout.state_size,), layout.state_dtype)
  zeros_o = jnp.zeros((batch, layout.out_size), layout.outputs[-1].dtype)

  def inputs(x_row, frame):
    return frame if i == 0 else flat_lib.unflatten_batch(
        x_row, layout.outputs[i - 1])

  def forward(p, x, frame_index):
    return chain_lib.apply_stage(stages[i], p, stage_state, x, train=train,
                                 rng=chain_lib.stage_rng(rng, frame_index, i))

  def flat_state(new_state):
    return flat_lib.flatten(layout.state[i], dict(new_state),
                            layout.state_size, layout.state_dtype)

  def run_forward(_):
    y, new_state = forward(stage_params, inputs(x_fwd, frame_fwd), f)
    return mesh_lib.vary((flat_lib.flatten_batch(y, size_a).astype(
        layout.act_dtype), flat_state(new_state)))

  def run_backward(grad_sum):
    x = inputs(x_bwd, frame_bwd)
    if i == 0:
      y, vjp_fn, new_state = jax.vjp(lambda p: forward(p, x, g),
                                     stage_params, has_aux=True)
    else:
      y, vjp_fn, new_state = jax.vjp(lambda p, a: forward(p, a, g),
                                     stage_params, x, has_aux=True)
    if top:
      loss, cot_y = jax.value_and_grad(loss_fn)(y, target)
    else:
      loss = jnp.zeros(())
      cot_y = flat_lib.unflatten_batch(cot, layout.outputs[i])
    grads = vjp_fn(cot_y.astype(y.dtype))
    grad_sum = slots_lib.add_to_slots(layout.params[i], places, grad_sum,
                                      grads[0])
    down = zeros_a if i == 0 else flat_lib.flatten_batch(
        grads[1], size_a).astype(layout.act_dtype)
    emit = zeros_o
    state_add = zeros_s
    if top:  # The top's forward runs here only: its state and output too.
      emit = y.reshape(zeros_o.shape).astype(zeros_o.dtype)
      state_add = flat_state(new_state)
    return mesh_lib.vary((grad_sum, down, state_add,
                          loss.astype(jnp.float32), emit))

  def skip_backward(grad_sum):
    return mesh_lib.vary((grad_sum, zeros_a, zeros_s,
                          jnp.zeros((), jnp.float32), zeros_o))

  if top:
    up, fwd_state = mesh_lib.vary((zeros_a, zeros_s))
  else:
    up, fwd_state = lax.cond(
        f >= 0, run_forward, lambda _: mesh_lib.vary((zeros_a, zeros_s)),
        None)
  grad_sum, down, bwd_state, loss, emit = lax.cond(
      g >= 0, run_backward, skip_backward, grad_sum)
  return mesh_lib.vary((up, down, grad_sum, fwd_state + bwd_state, loss,
                        emit))


def pipeline_local(name: str, stages: chain_lib.Stages,
                   layout: layout_lib.ChainLayout, loss_fn: Callable, *,
                   train: bool = True, unroll: int | bool = 1) -> LocalFn:
  """Builds the per-device program of pipelined BP `name` for one clip.

  Args:
    name: 'bp_gpipe' or 'bp_1f1b' (see `schedule.py`).
    stages: the D stage modules (stage i runs on stage-device i).
    layout: the chain's buffer layout for one device's batch.
    loss_fn: `loss_fn(top_output, target) -> scalar`.
    train: training mode for batchnorm and dropout.
    unroll: passed to the `lax.scan` over ticks.

  Returns:
    `local_fn(params, state, clip, targets, rng) -> LocalResult`, like
    `sideways_local` (every stage averages over all K frames).
  """
  if name not in schedule_lib.PIPELINES:
    raise ValueError(f'unknown pipeline {name!r}; choose one of '
                     f'{schedule_lib.PIPELINES}')
  num_stages = layout.num_stages
  top = num_stages - 1
  branches = [functools.partial(_stage_tick, i, stages, layout, loss_fn,
                                train) for i in range(num_stages)]

  def local_fn(params, state, clip, targets, rng):
    num_frames, batch = clip.shape[:2]
    table = schedule_lib.make_schedule(name, num_frames, num_stages)
    depth_a, depth_c = schedule_lib.buffer_depths(table)
    me = lax.axis_index(mesh_lib.STAGE)
    below = jnp.maximum(me - 1, 0)
    above = jnp.minimum(me + 1, top)
    out_spec = layout.outputs[-1]
    row = (batch, layout.act_size)
    carry = mesh_lib.vary(_Carry(
        acts=jnp.zeros((depth_a,) + row, layout.act_dtype),
        cots=jnp.zeros((depth_c,) + row, layout.act_dtype),
        grad_sum=jax.tree.map(jnp.zeros_like, params),
        state_sum=jnp.zeros_like(state),
        loss_sum=jnp.zeros((), jnp.float32),
        outputs=jnp.zeros((num_frames, batch, layout.out_size),
                          out_spec.dtype)))

    def tick(carry, rows):
      fwd_row, bwd_row = rows
      f, g = fwd_row[me], bwd_row[me]
      take = lambda x, t: jax.tree.map(lambda leaf: leaf[jnp.maximum(t, 0)],
                                       x)
      up, down, grad_sum, state_add, loss, emit = lax.switch(
          me, branches, params, state, carry.grad_sum,
          _read(carry.acts, f), _read(carry.acts, g), _read(carry.cots, g),
          take(clip, f), take(clip, g), take(targets, g), f, g, rng)
      up, down = mesh_lib.exchange(up, down, num_stages)
      # What arrived is the frame the neighbour worked on at this tick.
      came_up, came_down = fwd_row[below], bwd_row[above]
      return _Carry(
          acts=_store(carry.acts, up, came_up, (me > 0) & (came_up >= 0)),
          cots=_store(carry.cots, down, came_down,
                      (me < top) & (came_down >= 0)),
          grad_sum=grad_sum, state_sum=carry.state_sum + state_add,
          loss_sum=carry.loss_sum + loss,
          outputs=_store(carry.outputs, emit, g, (me == top) & (g >= 0)),
      ), None

    rows = (jnp.asarray(table.forward), jnp.asarray(table.backward))
    carry, _ = lax.scan(tick, carry, rows, unroll=unroll)
    return LocalResult(
        grads=jax.tree.map(lambda s: s / num_frames, carry.grad_sum),
        state=carry.state_sum / num_frames,
        loss=carry.loss_sum / num_frames,
        valid_steps=mesh_lib.vary(jnp.asarray(num_frames, jnp.int32)),
        outputs=carry.outputs)

  return local_fn

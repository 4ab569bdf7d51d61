"""BP on a stream: blocked while a frame climbs (and descends) the chain.

Time is counted in computation steps, one stage's work per step, and a new
frame arrives at every step (the real-time setting of paper Fig. 3). BP
runs one frame at a time through all D stages: the forward takes D steps
and the backward D-1 more, so after taking frame s BP is blocked for 2D-2
steps and takes frame s + 2D-1 next; the frames in between are never seen.

* training: each taken frame gets one exact forward + backward (the
  engine's `bp_grads` on that frame, auto-encoding it) and one optimizer
  update, before the next frame is taken.
* inference (`bp_infer_video`): the same timing, forward only, so that
  held-out streams are scored with the blocking the model trains with. (A
  forward alone could be pipelined, a new frame every step: that schedule
  is `sideways_stream.pipelined_infer_video`, the same for every model.)

In both, the output of frame s appears at step s + D - 1 and is held (shown
again) until the next one appears. The loop is a `lax.scan` over all T
steps; a `lax.cond` does the work only at the steps where a frame is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from sideways_jax import bp
from sideways_jax import chain as chain_lib
from sideways_jax import pipeline
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import trace as trace_lib
from sideways_jax.train_state import TrainState


def bp_period(num_stages: int) -> int:
  """Steps from one frame BP takes to the next: 2D-1 (D up, D-1 down)."""
  if num_stages < 1:
    raise ValueError(f'num_stages must be >= 1, got {num_stages}')
  return 2 * num_stages - 1


def bp_latency(num_stages: int) -> int:
  """Steps from taking a frame to showing its output: D-1."""
  if num_stages < 1:
    raise ValueError(f'num_stages must be >= 1, got {num_stages}')
  return num_stages - 1


class _Blocking(NamedTuple):
  """The blocking bookkeeping carried from step to step."""
  wait: jax.Array            # int32 []: steps until BP is free (0: now)
  pending: jax.Array         # [B, ...]: output of the latest frame taken
  pending_wait: jax.Array    # int32 []: steps until it shows (<0: none)
  pending_origin: jax.Array  # int32 []: the frame it came from
  shown: jax.Array           # [B, ...]: the output held on display
  shown_origin: jax.Array    # int32 []: its frame (-1: nothing yet)


# process(model, frame) -> (model, output [B, ...], loss []).
Process = Callable[[Any, jax.Array], tuple[Any, jax.Array, jax.Array]]


def _blocked_scan(process: Process, model: Any, video: jax.Array, *,
                  num_stages: int, train: bool, keep_outputs: bool,
                  unroll: int | bool) -> tuple[Any, trace_lib.StreamTrace]:
  """Runs the blocking schedule over the video's steps."""
  period, latency = bp_period(num_stages), bp_latency(num_stages)
  output_shape = jax.eval_shape(lambda m, f: process(m, f)[1], model,
                                video[0])
  zeros = jnp.zeros(output_shape.shape, output_shape.dtype)

  def skip(model, frame):
    del frame
    return model, zeros, jnp.zeros((), jnp.float32)

  def body(carry, inputs):
    model, block = carry
    frame, t = inputs
    free = block.wait == 0
    model, y, loss = lax.cond(free, process, skip, model, frame)
    pending_wait = jnp.where(free, latency, block.pending_wait - 1)
    pending = jnp.where(free, y, block.pending)
    pending_origin = jnp.where(free, t, block.pending_origin)
    arrives = pending_wait == 0
    block = _Blocking(
        wait=jnp.where(free, period - 1, block.wait - 1),
        pending=pending, pending_wait=pending_wait,
        pending_origin=pending_origin,
        shown=jnp.where(arrives, pending, block.shown),
        shown_origin=jnp.where(arrives, pending_origin, block.shown_origin))
    # Frame 0 is taken at step 0, so `pending` is a real output from then.
    step_record = trace_lib.record(
        block.shown, frame, trace_lib.frame_at(video, block.shown_origin),
        emitted=block.shown_origin >= 0,
        origin=block.shown_origin, taken=free, loss=loss,
        trained=jnp.logical_and(free, train), keep_output=keep_outputs,
        latest=block.pending)
    return (model, block), step_record

  minus_one = jnp.full((), -1, jnp.int32)
  block = _Blocking(wait=jnp.zeros((), jnp.int32), pending=zeros,
                    pending_wait=minus_one, pending_origin=minus_one,
                    shown=zeros, shown_origin=minus_one)
  steps = jnp.arange(video.shape[0], dtype=jnp.int32)
  (model, _), records = lax.scan(body, (model, block), (video, steps),
                                 unroll=unroll)
  return model, records


def bp_train_video(
    stages: chain_lib.Stages, optimizer: learner_lib.Optimizers,
    learner: TrainState, video: jax.Array, *,
    loss_fn: pipeline.LossFn = learner_lib.mse_loss,
    mode: bp.BPMode = 'batched', keep_outputs: bool = False,
    unroll: int | bool = 1,
) -> tuple[TrainState, trace_lib.StreamTrace]:
  """Streams one video through blocked BP training.

  Args: as `schedules.TrainVideo`, and `mode` ('batched' or 'scanned', the
  engine's `bp_grads` mode: the same numbers for one frame). The target of
  a taken frame is the frame itself (exact auto-encoding).

  Returns:
    (the learner after the video, the per-step trace). BP takes frames 0,
    2D-1, 2(2D-1), ... and shows frame s's output (computed with the weights
    before its update) from step s + D - 1 on.
  """
  num_stages = trace_lib.check_stream(stages,
                                      learner_lib.variables(learner), video)

  def process(learner, frame):
    clip = frame[None]  # [1, B, ...]: one frame, its own target.
    result = bp.bp_grads(stages, learner_lib.variables(learner), clip, clip,
                         loss_fn, rng=learner_lib.dropout_key(learner),
                         train=True, mode=mode)
    learner = learner_lib.apply_stage_updates(
        learner, optimizer, result.grads, jnp.ones((num_stages,), bool),
        result.state)
    return learner, result.metrics['outputs'][0], result.loss

  return _blocked_scan(process, learner, video, num_stages=num_stages,
                       train=True, keep_outputs=keep_outputs, unroll=unroll)


def bp_infer_video(stages: chain_lib.Stages,
                   variables: chain_lib.ChainVariables, video: jax.Array, *,
                   keep_outputs: bool = False,
                   unroll: int | bool = 1) -> trace_lib.StreamTrace:
  """Streams one video through BP's training timing, forward only.

  BP takes frames 0, 2D-1, 2(2D-1), ... and shows frame s's output from step
  s + D - 1 until the next output appears 2D-1 steps later (args as
  `schedules.InferVideo`).
  """
  num_stages = trace_lib.check_stream(stages, variables, video)

  def process(model, frame):
    x, _ = chain_lib.apply_chain(stages, variables, frame, train=False)
    return model, x, jnp.zeros((), jnp.float32)

  _, records = _blocked_scan(process, (), video, num_stages=num_stages,
                             train=False, keep_outputs=keep_outputs,
                             unroll=unroll)
  return records

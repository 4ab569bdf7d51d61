"""Sideways on a stream: one frame and one optimizer update per step.

Training (the paper's auto-encoding setting, episode length 1): at every
step the engine's `sideways_step` runs all D stages at once on what their
neighbours sent at the previous step, `take_gradients` closes the one-step
episode, and each stage whose gradient is real takes an optimizer step. The
activations and cotangents in flight are kept, so the pipeline flows on with
the new weights; it is reset only at a new video.

Inference (`pipelined_infer_video`, forward only): the same pipeline without
backward passes, for any trained chain. The output shown at step t is the
top of the chain applied to frame t-D+1 (latency D-1), a new one at every
step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax import pipeline
from sideways_jax import sideways
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import trace as trace_lib
from sideways_jax.train_state import TrainState


class TrainStep(NamedTuple):
  """What one streaming Sideways training step did."""
  top: pipeline.StepOutput          # what the top of the pipeline emitted
  episode: pipeline.EpisodeResult   # the pseudo-gradients of this step
  active: jax.Array                 # bool [D]: stages that took an update


def train_step(stages: chain_lib.Stages,
               optimizer: learner_lib.Optimizers,
               learner: TrainState,
               state: pipeline.PipelineState,
               frame: jax.Array,
               target: jax.Array,
               loss_fn: pipeline.LossFn = learner_lib.mse_loss,
               ) -> tuple[TrainState, pipeline.PipelineState,
                          TrainStep]:
  """One step: every stage forward + backward, then a one-step update.

  A stage takes the update only when its gradient is real (its input and
  its cotangent both come from frames of this video).
  """
  variables = learner_lib.variables(learner)
  state, top = pipeline.sideways_step(stages, variables, state, frame,
                                      target, loss_fn, train=True,
                                      rng=learner_lib.dropout_key(learner))
  episode, state = pipeline.take_gradients(state, variables)
  active = episode.valid_steps > 0
  learner = learner_lib.apply_stage_updates(learner, optimizer,
                                            episode.grads, active,
                                            episode.state)
  return learner, state, TrainStep(top=top, episode=episode, active=active)


def sideways_train_video(
    stages: chain_lib.Stages, optimizer: learner_lib.Optimizers,
    learner: TrainState, video: jax.Array, *,
    loss_fn: pipeline.LossFn = learner_lib.mse_loss,
    target_alignment: sideways.TargetAlignment = 'current',
    window_cotangents: str = 'sum',
    keep_outputs: bool = False, unroll: int | bool = 1,
) -> tuple[TrainState, trace_lib.StreamTrace]:
  """Streams one video through Sideways training, updating after every step.

  Args: as `schedules.TrainVideo` (pass one optimizer per stage to treat
  stages differently, see `staleness`), and `target_alignment`: 'current'
  (the paper's: the loss at step t compares the top output with x^t, the
  frame arriving now) or 'origin' (with x^{t-D+1}, the frame the output came
  from).
  `window_cotangents` is the table's Sideways option; streaming refuses
  temporal stages (`trace.check_stream`), so it changes nothing here.

  Returns:
    (the learner after the video, the per-step trace). The output shown at
    step t is the top output of that step (computed from frame t-D+1).
  """
  del window_cotangents  # Frame stages only (see above).
  variables = learner_lib.variables(learner)
  num_stages = trace_lib.check_stream(stages, variables, video)
  targets = sideways.align_targets(video, num_stages, target_alignment)
  state = pipeline.init_pipeline(stages, variables, video[0])

  def body(carry, inputs):
    learner, state = carry
    frame, target = inputs
    learner, state, step = train_step(stages, optimizer, learner, state,
                                      frame, target, loss_fn)
    top = step.top
    step_record = trace_lib.record(
        top.output, frame, trace_lib.frame_at(video, top.origin),
        emitted=top.output_valid, origin=top.origin, taken=jnp.array(True),
        loss=step.episode.loss, trained=step.active[-1],
        keep_output=keep_outputs)
    return (learner, state), step_record

  (learner, _), records = lax.scan(body, (learner, state), (video, targets),
                                   unroll=unroll)
  return learner, records


def pipelined_infer_video(stages: chain_lib.Stages,
                          variables: chain_lib.ChainVariables,
                          video: jax.Array, *, keep_outputs: bool = False,
                          unroll: int | bool = 1) -> trace_lib.StreamTrace:
  """Streams one video through the stages as a pipeline, forward only.

  Every stage works at every step, stage i on frame t-i (args as
  `schedules.InferVideo`). Returns the per-step trace: from step D-1 on, the
  output shown at step t is the chain applied to frame t-D+1.
  """
  num_stages = trace_lib.check_stream(stages, variables, video)
  split = [chain_lib.split_variables(v) for v in variables]
  between = tuple(jnp.zeros(a.shape, a.dtype) for a in
                  chain_lib.output_shapes(stages, variables, video[0])[:-1])

  def body(carry, frame):
    between, t = carry
    outputs = []
    for i, (stage, (params, state), x) in enumerate(
        zip(stages, split, (frame, *between))):
      y, _ = kernel.stage_forward(
          stage, params, state, x, position=kernel.Position(i, num_stages),
          frame=t - i, train=False, rng=None)
      outputs.append(y)
    origin = t - (num_stages - 1)
    step_record = trace_lib.record(
        outputs[-1], frame, trace_lib.frame_at(video, origin),
        emitted=origin >= 0, origin=origin,
        taken=jnp.array(True), loss=jnp.zeros(()), trained=jnp.array(False),
        keep_output=keep_outputs)
    return (tuple(outputs[:-1]), t + 1), step_record

  _, records = lax.scan(body, (between, jnp.zeros((), jnp.int32)), video,
                        unroll=unroll)
  return records

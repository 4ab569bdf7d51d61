"""How far Sideways' streaming pseudo-gradients are from exact gradients.

At step t stage i (0-indexed, of D) combines its input, which came from
frame t-i, with a cotangent the top computed from frame t-2(D-1)+i. Its
pseudo-gradient is compared with the exact gradient, at the weights of step
t, of the auto-encoding loss mean_s L(f(x^s), x^s) over the frames between
the two, s in [t-2(D-1)+i, t-i] (for the top stage: exactly frame t-D+1,
the one its output came from). A cosine near 1 means the stage moves the way
backpropagation would; near 0, the update is mostly noise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from sideways_jax import chain as chain_lib
from sideways_jax import pipeline
from sideways_jax import sideways
from sideways_jax.streaming import learner as learner_lib
from sideways_jax.streaming import sideways_stream
from sideways_jax.streaming import trace as trace_lib
from sideways_jax.train_state import TrainState


def _cosine(a, b) -> jax.Array:
  dot = sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a),
                                           jax.tree.leaves(b)))
  norm_a = jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(a)))
  norm_b = jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(b)))
  return dot / jnp.maximum(norm_a * norm_b, 1e-30)


def gradient_cosines(stages: chain_lib.Stages,
                     optimizer: learner_lib.Optimizers,
                     learner: TrainState,
                     video: jax.Array,
                     *,
                     loss_fn: pipeline.LossFn = learner_lib.mse_loss,
                     target_alignment: sideways.TargetAlignment = 'current',
                     window_cotangents: str = 'sum',
                     unroll: int | bool = 1,
                     ) -> tuple[TrainState, jax.Array]:
  """Streams a video through Sideways training, measuring each update.

  Args:
    stages, optimizer, learner, video, loss_fn, target_alignment,
      window_cotangents, unroll: as for `sideways_train_video` (the learner
      goes on training, so the cosines are those of the stream as it is
      trained).

  Returns:
    (the learner after the video, cosines f32 [T, D]): the cosine at step t
    between stage i's pseudo-gradient and the exact gradient described in
    the module docstring; NaN where the stage took no update.
  """
  del window_cotangents  # Streaming runs frame stages only.
  variables = learner_lib.variables(learner)
  num_stages = trace_lib.check_stream(stages, variables, video)
  num_steps = video.shape[0]
  span = 2 * num_stages - 1  # Frames t-2(D-1) .. t.
  targets = sideways.align_targets(video, num_stages, target_alignment)
  state = pipeline.init_pipeline(stages, variables, video[0])
  # offsets[k] = k: frame t-k; stage i averages offsets i .. 2(D-1)-i.
  offsets = np.arange(span)
  weights = np.stack([(offsets >= i) & (offsets <= span - 1 - i)
                      for i in range(num_stages)]).astype(np.float32)
  weights /= weights.sum(axis=1, keepdims=True)

  def frame_grads(params, model_state, frame):
    def loss(ps):
      chain_vars = [{'params': p, **s} for p, s in zip(ps, model_state)]
      y, _ = chain_lib.apply_chain(stages, chain_vars, frame, train=False)
      return loss_fn(y, frame)
    return jax.grad(loss)(params)

  def body(carry, inputs):
    learner, state = carry
    frame, target, t = inputs
    window = jnp.stack([trace_lib.frame_at(video, t - k) for k in offsets])
    per_frame = jax.vmap(frame_grads, in_axes=(None, None, 0))(
        learner.params, learner.model_state, window)  # D x [span, ...]
    learner, state, step = sideways_stream.train_step(
        stages, optimizer, learner, state, frame, target, loss_fn)
    cosines = []
    for i in range(num_stages):
      exact = jax.tree.map(lambda g, w=weights[i]: jnp.tensordot(w, g, 1),
                           per_frame[i])
      cosines.append(_cosine(step.episode.grads[i], exact))
    cosines = jnp.where(step.active, jnp.stack(cosines), jnp.nan)
    return (learner, state), cosines

  steps = jnp.arange(num_steps, dtype=jnp.int32)
  (learner, _), cosines = lax.scan(body, (learner, state),
                                   (video, targets, steps), unroll=unroll)
  return learner, cosines

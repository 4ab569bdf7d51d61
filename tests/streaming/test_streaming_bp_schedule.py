"""BP's blocking schedule on a stream, step by step, for tiny D."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sideways_jax import streaming
from sideways_jax.streaming import learner as learner_lib
import streaming_testlib as lib

# Hand-written from the rules (0-indexed steps): training, and inference with
# the training timing, take a frame every 2D-1 steps; frame s's output shows
# from step s+D-1 on.
SCHEDULES = {
    # (D, train): (taken frames, origin of the output shown at each step)
    (2, True): ([0, 3, 6], [-1, 0, 0, 0, 3, 3, 3, 6, 6]),
    (3, True): ([0, 5], [-1, -1, 0, 0, 0, 0, 0, 5, 5]),
}
SCHEDULES.update({(d, False): v for (d, _), v in SCHEDULES.items()})
NUM_FRAMES = 9


def _run(num_stages, train, video):
  stages, variables = lib.tiny_chain(num_stages)
  if train:
    opt = lib.optimizer()
    learner = lib.init_learner(variables, opt)
    _, trace = jax.jit(lambda l, v: streaming.bp_train_video(
        stages, opt, l, v, keep_outputs=True))(learner, video)
  else:
    trace = jax.jit(lambda v: streaming.bp_infer_video(
        stages, variables, v, keep_outputs=True))(video)
  return stages, variables, trace


@pytest.mark.parametrize('num_stages,train', sorted(SCHEDULES))
def test_frames_taken_and_output_origin(num_stages, train):
  taken_frames, origins = SCHEDULES[(num_stages, train)]
  _, _, trace = _run(num_stages, train, lib.random_video(NUM_FRAMES))
  np.testing.assert_array_equal(np.flatnonzero(trace.taken), taken_frames)
  np.testing.assert_array_equal(trace.origin, origins)
  np.testing.assert_array_equal(trace.emitted, np.asarray(origins) >= 0)
  np.testing.assert_array_equal(trace.trained, trace.taken if train
                                else np.zeros(NUM_FRAMES, bool))


@pytest.mark.parametrize('num_stages', [2, 3])
def test_training_outputs_held_and_updates_exact(num_stages):
  """Each taken frame: one exact forward+backward+update, output held."""
  video = lib.random_video(NUM_FRAMES)
  stages, variables, trace = _run(num_stages, True, video)
  taken_frames, origins = SCHEDULES[(num_stages, True)]

  # Reference: plain BP on the taken frames only, one Adam step per frame.
  opt = lib.optimizer()
  params = [v['params'] for v in variables]
  states = [opt.init(p) for p in params]
  shown_by_frame = {}
  for s in taken_frames:
    def loss(ps, s=s):
      y = lib.apply_chain(stages, [{'params': p} for p in ps], video[s])
      return learner_lib.mse_loss(y, video[s]), y
    (_, y), grads = jax.value_and_grad(loss, has_aux=True)(params)
    shown_by_frame[s] = y  # Computed with the weights before the update.
    for i in range(num_stages):
      updates, states[i] = opt.update(grads[i], states[i], params[i])
      params[i] = optax.apply_updates(params[i], updates)

  outputs = np.asarray(trace.outputs)
  for t, origin in enumerate(origins):
    if origin < 0:
      np.testing.assert_array_equal(outputs[t], 0.0)
    else:
      np.testing.assert_allclose(outputs[t], shown_by_frame[origin],
                                 rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(
          trace.errors[t], np.mean((outputs[t] - video[t]) ** 2, axis=1),
          rtol=1e-5, atol=1e-7)
  # Latency-free: at every step, the latest taken frame's output (shown or
  # still climbing) against the frame of the step.
  for t in range(NUM_FRAMES):
    latest = max(s for s in taken_frames if s <= t)
    np.testing.assert_allclose(
        trace.latest_errors[t],
        np.mean((shown_by_frame[latest] - video[t]) ** 2, axis=1),
        rtol=1e-5, atol=1e-7)
  # The shown output changes exactly when a new one arrives.
  changes = [t for t in range(1, NUM_FRAMES)
             if not np.array_equal(outputs[t], outputs[t - 1])]
  arrivals = [t for t in range(1, NUM_FRAMES) if origins[t] != origins[t - 1]]
  assert changes == arrivals


@pytest.mark.parametrize('num_stages', [2, 3])
def test_training_ignores_exactly_the_skipped_frames(num_stages):
  """Changing a skipped frame changes nothing; changing a taken one does."""
  opt = lib.optimizer()
  stages, variables = lib.tiny_chain(num_stages)
  learner = lib.init_learner(variables, opt)
  train = jax.jit(lambda l, v: streaming.bp_train_video(stages, opt, l, v))
  video = lib.random_video(NUM_FRAMES)
  base, _ = train(learner, video)
  taken_frames = SCHEDULES[(num_stages, True)][0]
  for s in range(NUM_FRAMES):
    after, _ = train(learner, video.at[s].add(0.5))
    same = all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(base.params), jax.tree.leaves(after.params)))
    assert same == (s not in taken_frames), s
  assert int(base.step) == len(taken_frames)
  assert lib.adam_counts(base) == [len(taken_frames)] * num_stages


def test_periods_and_bad_input():
  assert streaming.bp_period(6) == 11
  assert streaming.bp_latency(6) == 5
  with pytest.raises(ValueError, match='num_stages'):
    streaming.bp_period(0)
  stages, variables = lib.tiny_chain(2)
  with pytest.raises(ValueError, match='time-major'):
    streaming.bp_infer_video(stages, variables, jnp.zeros((4, 3)))
  with pytest.raises(TypeError, match='float'):
    streaming.bp_infer_video(stages, variables,
                             jnp.zeros((4, 2, 3), jnp.uint8))

"""The streaming Sideways runs against the engine's step called one by one."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sideways_jax import algorithms
from sideways_jax import pipeline
from sideways_jax import streaming
from sideways_jax.streaming import learner as learner_lib
import streaming_testlib as lib

NUM_FRAMES = 8


def _reference(stages, variables, videos, alignment):
  """sideways_step + take_gradients + one Adam step per stage, in Python.

  A stage takes the step only when its one-step episode had a valid
  gradient (its input and its cotangent both from real frames).
  """
  num_stages = len(stages)
  opt = lib.optimizer()
  params = [v['params'] for v in variables]
  opt_states = [opt.init(p) for p in params]
  per_video = []
  for video in videos:
    state = pipeline.init_pipeline(
        stages, [{'params': p} for p in params], video[0])
    outputs, valid, losses, counts = [], [], [], np.zeros(num_stages, int)
    for t in range(video.shape[0]):
      target = video[t] if alignment == 'current' else video[
          max(t - num_stages + 1, 0)]
      current = [{'params': p} for p in params]
      state, top = pipeline.sideways_step(stages, current, state, video[t],
                                          target, learner_lib.mse_loss)
      episode, state = pipeline.take_gradients(state, current)
      for i in range(num_stages):
        if int(episode.valid_steps[i]) > 0:
          updates, opt_states[i] = opt.update(episode.grads[i],
                                              opt_states[i], params[i])
          params[i] = optax.apply_updates(params[i], updates)
          counts[i] += 1
      outputs.append(np.asarray(top.output))
      valid.append(bool(top.output_valid))
      losses.append(float(episode.loss))
    per_video.append((np.stack(outputs), np.array(valid), np.array(losses),
                      counts))
  return params, per_video


@pytest.mark.parametrize('alignment', ['current', 'origin'])
@pytest.mark.parametrize('num_stages', [2, 3])
def test_scan_equals_single_steps_with_per_step_updates(num_stages,
                                                        alignment):
  stages, variables = lib.tiny_chain(num_stages)
  videos = [lib.random_video(NUM_FRAMES, seed=s) for s in (1, 2)]
  opt = lib.optimizer()
  train = jax.jit(lambda l, v: streaming.sideways_train_video(
      stages, opt, l, v, target_alignment=alignment, keep_outputs=True))
  learner = lib.init_learner(variables, opt)
  traces = []
  for video in videos:  # The learner flows on; the pipeline is reset.
    learner, trace = train(learner, video)
    traces.append(trace)
  ref_params, ref_videos = _reference(stages, variables, videos, alignment)

  for got, want in zip(jax.tree.leaves(learner.params),
                       jax.tree.leaves(ref_params)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  for trace, video, (outputs, valid, losses, counts) in zip(
      traces, videos, ref_videos):
    np.testing.assert_array_equal(trace.emitted, valid)
    np.testing.assert_allclose(np.asarray(trace.outputs)[valid],
                               outputs[valid], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(trace.loss, np.where(valid, losses, 0.0),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        trace.errors[valid],
        np.mean((outputs - np.asarray(video)) ** 2, axis=2)[valid],
        rtol=1e-5, atol=1e-7)
    # Stage i (1-indexed) has K - 2D + i + 1 steps with a real gradient.
    np.testing.assert_array_equal(
        counts, [NUM_FRAMES - 2 * num_stages + i + 1
                 for i in range(1, num_stages + 1)])
  # Each stage's optimizer skipped exactly the steps without a gradient;
  # `step` counts the top stage's updates.
  np.testing.assert_array_equal(lib.adam_counts(learner),
                                2 * ref_videos[0][3])
  assert int(learner.step) == 2 * ref_videos[0][3][-1]


def test_per_step_updates_change_the_stream():
  """With frozen weights the pipeline would show other outputs."""
  num_stages = 3
  stages, variables = lib.tiny_chain(num_stages)
  video = lib.random_video(NUM_FRAMES)
  opt = lib.optimizer()
  _, trained = streaming.sideways_train_video(
      stages, opt, lib.init_learner(variables, opt), video,
      keep_outputs=True)
  frozen = streaming.pipelined_infer_video(stages, variables, video,
                                           keep_outputs=True)
  last = NUM_FRAMES - 1
  assert not np.allclose(trained.outputs[last], frozen.outputs[last],
                         atol=1e-4)


@pytest.mark.parametrize('num_stages', [1, 2, 3])
def test_inference_shows_frame_t_minus_d_plus_1(num_stages):
  stages, variables = lib.tiny_chain(num_stages)
  video = lib.random_video(NUM_FRAMES)
  trace = jax.jit(lambda v: streaming.pipelined_infer_video(
      stages, variables, v, keep_outputs=True))(video)
  assert trace.latest_errors is None  # Every frame is taken.
  lag = num_stages - 1
  expected_origin = [t - lag if t >= lag else -1 for t in range(NUM_FRAMES)]
  np.testing.assert_array_equal(trace.origin, expected_origin)
  np.testing.assert_array_equal(trace.taken, True)
  np.testing.assert_array_equal(trace.trained, False)
  for t in range(lag, NUM_FRAMES):
    want = lib.apply_chain(stages, variables, video[t - lag])
    np.testing.assert_allclose(trace.outputs[t], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        trace.errors[t], jnp.mean((want - video[t]) ** 2, axis=1),
        rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(trace.errors[:lag], 0.0)


def test_streamer_reads_the_algorithm_table():
  bp = streaming.streamer('bp')
  sw = streaming.streamer('sideways', target_alignment='origin')
  assert bp.options == algorithms.get('bp').defaults(algorithms.DEVICE)
  assert sw.options == {**algorithms.get('sideways').defaults(),
                        'target_alignment': 'origin'}
  assert bp.cosines is None and sw.cosines is not None
  # Sideways infers with its training timing; a pipelined forward is the
  # same function for every algorithm; BP's training timing blocks.
  training, pipelined = streaming.TRAINING, streaming.PIPELINED
  assert sw.infer[training] is sw.infer[pipelined] is bp.infer[pipelined]
  assert bp.infer[training].func is streaming.bp_infer_video
  assert bp.train.func is streaming.bp_train_video
  assert sw.train.func is streaming.sideways_train_video
  for name, options, match in [('bp_gpipe', {}, 'mesh'),
                               ('bp', {'target_alignment': 'origin'},
                                "does not take option 'target_alignment'"),
                               ('sideways', {'target_alignment': 'now'},
                                "'now'"),
                               ('sidewys', {}, "did you mean 'sideways'")]:
    with pytest.raises(ValueError, match=match):
      streaming.streamer(name, **options)

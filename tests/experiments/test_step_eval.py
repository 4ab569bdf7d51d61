"""Evaluation: averaged frame predictions and padding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sideways_jax import chain as chain_lib
from sideways_jax import models
from sideways_jax.experiments import classification as train
from sideways_jax.experiments.classification import step as step_lib

K, B, SIZE, CLASSES = 7, 3, 8, 4


def tiny_model():
  """A 4-stage model and its initial variables, one dict per stage."""
  stages = models.simple_cnn(CLASSES, channels=(4, 4, 4, 4, 4),
                             boundaries=(2, 3, 5))
  variables = chain_lib.init_chain(stages, jax.random.PRNGKey(0),
                                   jnp.zeros((B, SIZE, SIZE, 3)))
  return stages, variables


def batch(seed=0):
  rng = np.random.default_rng(seed)
  return {
      'video': rng.integers(0, 256, (K, B, SIZE, SIZE, 3), dtype=np.uint8),
      'label': np.array([0, 1, 2], np.int32),
      'mask': np.ones((K, B), bool),
      'example_valid': np.array([True, True, False]),
  }


def test_video_prediction_averages_probabilities_over_valid_frames():
  logits = jnp.array([[[5.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]], [[0, 9.0]]])
  valid = jnp.array([[True], [True], [True], [False]])
  # Frame votes: 0, 1, 1 -> majority 1, but the mean probability favours 0.
  assert int(step_lib.video_predictions(logits, valid)[0]) == 0
  assert int(step_lib.video_predictions(logits, jnp.ones_like(valid))[0]) == 1


def test_eval_counts_match_a_direct_computation():
  stages, variables = tiny_model()
  b = batch()
  b['mask'][K - 2:, 1] = False  # Clip 1 was padded: its last 2 frames.
  counts = jax.device_get(train.make_eval_step(
      stages, input_mean=0.5, input_std=0.25)(variables, b))
  clip = (b['video'].astype(np.float32) / 255 - 0.5) / 0.25
  logits = np.asarray(jax.jit(step_lib.forward_frames, static_argnums=0)(
      stages, variables, clip))
  probs = np.asarray(jax.nn.softmax(logits))
  real = b['mask'][:, :2]  # [K, 2]: the clips that count, real frames only.
  predicted = [probs[real[:, i], i].mean(0).argmax() for i in range(2)]
  assert counts['num_videos'] == 2  # The padded clip does not count.
  assert counts['correct_videos'] == int(np.sum(
      np.array(predicted) == b['label'][:2]))
  assert counts['num_frames'] == real.sum() == 2 * K - 2
  assert counts['correct_frames'] == int(np.sum(
      (logits[:, :2].argmax(-1) == b['label'][:2]) & real))
  xent = -np.log(probs[np.arange(K)[:, None], np.arange(B), b['label']])
  np.testing.assert_allclose(counts['loss_sum'], xent[:, :2][real].sum(),
                             rtol=1e-4)


def test_evaluate_sums_batches_and_limits_them():
  stages, variables = tiny_model()
  step = train.make_eval_step(stages, input_mean=0.0, input_std=1.0)
  one = train.evaluate(step, variables, [batch(0)])
  two = train.evaluate(step, variables, [batch(0), batch(1)])
  limited = train.evaluate(step, variables, [batch(0), batch(1)], max_batches=1)
  assert one['num_videos'] == 2 and two['num_videos'] == 4
  assert limited == one
  with pytest.raises(ValueError, match='no batch'):
    train.evaluate(step, variables, [])

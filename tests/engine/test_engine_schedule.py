"""The Sideways schedule itself: masks, counts, exactness, resets, alignment.

docs/algorithm.md states the rules these tests pin down.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sideways_jax as sj
from engine_chains import (DropoutHead, chain_and_variables, compiled, init,
                           labels, max_abs_diff, random_clip, xent)
from reference_loop import reference_sideways

RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize('num_stages,num_frames', [(2, 3), (3, 8), (4, 9)])
def test_matches_index_explicit_reference(num_stages, num_frames):
  # Batchnorm off: the reference applies stages in training mode without
  # tracking statistics, which is all the gradient needs.
  stages, variables = chain_and_variables(num_stages, batchnorm=False)
  clip, targets = random_clip(num_frames), labels(num_frames)
  side = compiled('sideways', num_stages, False)(variables, clip, targets)
  grads, counts, loss = reference_sideways(stages, variables, clip, targets,
                                           xent)
  chex.assert_trees_all_close(side.grads, grads, rtol=RTOL, atol=ATOL)
  np.testing.assert_array_equal(side.metrics['valid_steps'], counts)
  np.testing.assert_allclose(side.loss, loss, rtol=RTOL)
  _check_counts_and_outputs(side, num_stages, num_frames)


def test_valid_step_counts():
  # The reference cases above run D = 2, 3, 4 (K = 2D - 1 and longer); here
  # the single stage, which counts every frame from the first.
  _, variables = chain_and_variables(1, batchnorm=False)
  side = compiled('sideways', 1, False)(variables, random_clip(1), labels(1))
  _check_counts_and_outputs(side, 1, 1)
  # The shortest clip leaves stage 1 exactly one valid step.
  for num_stages in range(1, 7):
    num_frames = sj.min_clip_length(num_stages)
    assert num_frames == 2 * num_stages - 1
    counts = sj.valid_step_counts(num_frames, num_stages)
    assert counts[0] == 1 and counts[-1] == num_stages


def _check_counts_and_outputs(side, num_stages, num_frames):
  """n_i = K - 2D + i + 1 and the top output's validity and origin."""
  expected = [num_frames - 2 * num_stages + i + 1
              for i in range(1, num_stages + 1)]
  np.testing.assert_array_equal(side.metrics['valid_steps'], expected)
  assert sj.valid_step_counts(num_frames, num_stages) == expected
  # The top output is real from step D on (1-indexed), from frame t-D+1.
  output_valid = np.arange(num_frames) >= num_stages - 1
  np.testing.assert_array_equal(side.metrics['output_valid'], output_valid)
  np.testing.assert_array_equal(side.metrics['output_frame'],
                                np.arange(num_frames) - num_stages + 1)


def test_top_stage_gradient_is_exact_at_every_step():
  num_stages, num_frames = 3, 7
  stages, variables = chain_and_variables(num_stages, batchnorm=False)
  clip, targets = random_clip(num_frames), labels(num_frames)
  params = [v['params'] for v in variables]

  def full_loss_top(p_top, frame, target):
    chain = (*variables[:-1], {'params': p_top})
    return xent(sj.apply_chain(stages, chain, frame, train=True)[0], target)

  state = sj.init_pipeline(stages, variables, clip[0])
  step = jax.jit(lambda s, x, y: sj.sideways_step(stages, variables, s, x, y,
                                                  xent))
  previous = state.grad_sums[-1]
  for t in range(num_frames):
    state, out = step(state, clip[t], targets[t])
    increment = jax.tree.map(jnp.subtract, state.grad_sums[-1], previous)
    previous = state.grad_sums[-1]
    origin = t - num_stages + 1
    if origin < 0:
      assert not out.output_valid
      assert max_abs_diff(increment, jax.tree.map(jnp.zeros_like,
                                                  increment)) == 0
      continue
    assert out.output_valid and int(out.origin) == origin
    exact = jax.grad(full_loss_top)(params[-1], clip[origin], targets[t])
    chex.assert_trees_all_close(increment, exact, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        out.loss, full_loss_top(params[-1], clip[origin], targets[t]),
        rtol=RTOL)


def test_no_leakage_across_clips():
  num_stages, num_frames = 3, 5
  stages, variables = chain_and_variables(num_stages)
  clip_a, clip_b = random_clip(num_frames, 1), random_clip(num_frames, 2)
  targets_a, targets_b = labels(num_frames, 1), labels(num_frames, 2)
  step = jax.jit(lambda s, x, y: sj.sideways_step(stages, variables, s, x, y,
                                                  xent))
  state = sj.init_pipeline(stages, variables, clip_a[0])
  for t in range(num_frames):
    state, _ = step(state, clip_a[t], targets_a[t])
  state = sj.reset_pipeline(state)
  for t in range(num_frames):
    state, _ = step(state, clip_b[t], targets_b[t])
  after_a, _ = sj.take_gradients(state, variables)
  alone = compiled('sideways', num_stages)(variables, clip_b, targets_b)
  chex.assert_trees_all_close(after_a.grads, alone.grads, rtol=RTOL,
                              atol=ATOL)
  chex.assert_trees_all_close(after_a.state, alone.state, rtol=RTOL,
                              atol=ATOL)
  # Without the reset the carried activations of clip A do leak into B.
  state = sj.init_pipeline(stages, variables, clip_a[0])
  for clip, targets in ((clip_a, targets_a), (clip_b, targets_b)):
    _, state = sj.take_gradients(state, variables)
    for t in range(num_frames):
      state, _ = step(state, clip[t], targets[t])
  leaked, _ = sj.take_gradients(state, variables)
  assert max_abs_diff(leaked.grads, alone.grads) > 1e-4


def test_origin_alignment_uses_target_of_the_output_frame():
  num_stages, num_frames = 3, 8
  stages, variables = chain_and_variables(num_stages, batchnorm=False)
  clip = random_clip(num_frames)
  # A different label at every frame, so the alignment matters.
  targets = jnp.broadcast_to(jnp.arange(num_frames)[:, None] % 5,
                             (num_frames, clip.shape[1]))
  # 'current' is the default: that compilation is shared with the reference
  # case (3, 8); 'origin' goes through grad_fn's bound option.
  for options, shift in (({}, 0),
                         ({'target_alignment': 'origin'}, num_stages - 1)):
    side = compiled('sideways', num_stages, False, **options)(
        variables, clip, targets)
    outputs = side.metrics['outputs']
    for t in range(num_stages - 1, num_frames):
      np.testing.assert_allclose(side.metrics['step_losses'][t],
                                 xent(outputs[t], targets[t - shift]),
                                 rtol=RTOL)
  with pytest.raises(ValueError, match='target_alignment'):
    sj.sideways_grads(stages, variables, clip, targets, xent,
                      target_alignment='future')


def test_dropout_is_keyed_by_frame_so_bp_and_sideways_agree_on_one_stage():
  stages = (DropoutHead(5, rate=0.5),)
  variables = init(stages)
  clip, targets = random_clip(4), labels(4)
  rng, other_rng = jax.random.PRNGKey(7), jax.random.PRNGKey(8)

  def jitted(fn, train=True):  # the key is an argument: one compile per fn.
    return jax.jit(lambda r: fn(stages, variables, clip, targets, xent,
                                rng=r, train=train))

  side = jitted(sj.sideways_grads)(rng)
  bp_fn = jitted(sj.bp_grads)
  bp = bp_fn(rng)
  chex.assert_trees_all_close(side.grads, bp.grads, rtol=RTOL, atol=ATOL)
  assert max_abs_diff(bp_fn(other_rng).grads, bp.grads) > 1e-4
  bp_eval = jitted(sj.bp_grads, train=False)
  chex.assert_trees_all_close(bp_eval(rng).grads, bp_eval(other_rng).grads)


def test_streaming_episode_of_one_step_takes_gradients_every_step():
  stages, variables = chain_and_variables(2, batchnorm=False)
  clip, targets = random_clip(5), labels(5)
  state = sj.init_pipeline(stages, variables, clip[0])
  step = jax.jit(lambda s, x, y: sj.take_gradients(
      sj.sideways_step(stages, variables, s, x, y, xent)[0], variables))
  counts = []
  for t in range(5):
    episode, state = step(state, clip[t], targets[t])
    counts.append(np.asarray(episode.valid_steps).tolist())
  # Stage 2 (top) is valid from step 2, stage 1 from step 3 (1-indexed).
  assert counts == [[0, 0], [0, 1], [1, 1], [1, 1], [1, 1]]

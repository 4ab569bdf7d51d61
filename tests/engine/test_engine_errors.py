"""Bad input gets a clear error naming the problem."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import sideways_jax as sj
from engine_chains import (chain_and_variables, compiled, labels, random_clip,
                           xent)


@pytest.mark.parametrize('fn', [sj.sideways_grads, sj.bp_grads])
def test_mismatched_stage_and_variable_counts(fn):
  stages, variables = chain_and_variables(3)
  with pytest.raises(ValueError, match='3 stages but 2 variable dicts'):
    fn(stages, variables[:2], random_clip(5), labels(5), xent)


@pytest.mark.parametrize('fn', [sj.sideways_grads, sj.bp_grads])
def test_clip_not_time_major(fn):
  stages, variables = chain_and_variables(2)
  clip = random_clip(5)
  batch_major = jnp.swapaxes(clip, 0, 1)
  with pytest.raises(ValueError, match='time-major'):
    fn(stages, variables, batch_major, labels(5), xent)
  with pytest.raises(ValueError, match='time-major'):
    fn(stages, variables, clip[:, 0, 0], labels(5), xent)
  with pytest.raises(ValueError, match='repeat it over K'):
    fn(stages, variables, clip, labels(5)[0], xent)


def test_clip_shorter_than_2d_minus_1():
  stages, variables = chain_and_variables(3)
  with pytest.raises(ValueError, match=r'at least 2D-1=5 frames, got K=4'):
    sj.sideways_grads(stages, variables, random_clip(4), labels(4), xent)
  # BP has no such limit.
  jax.eval_shape(compiled('bp', 3), variables, random_clip(4), labels(4))


class _Relu(nn.Module):
  """A stage without parameters."""

  @nn.compact
  def __call__(self, x, train):
    return nn.relu(x)


def test_a_stage_without_parameters_is_a_stage():
  stages, variables = chain_and_variables(2)
  stages = (stages[0], _Relu(), stages[1])
  variables = (variables[0], {}, variables[1])
  for fn in (sj.sideways_grads, sj.bp_grads):
    result = jax.eval_shape(lambda v, fn=fn: fn(stages, v, random_clip(5),
                                                labels(5), xent), variables)
    assert result.grads[1] == {}


@pytest.mark.parametrize('fn', [sj.sideways_grads, sj.bp_grads])
def test_integer_clips_and_wrong_layouts_are_named(fn):
  stages, variables = chain_and_variables(2)
  clip = random_clip(3)
  for dtype in (jnp.uint8, jnp.int32, bool):
    with pytest.raises(ValueError, match=f'floating point, got {jnp.dtype(dtype)}'
                       r'.*normalise'):
      fn(stages, variables, clip.astype(dtype), labels(3), xent)
  for bad in (clip[..., 0], clip[:, :, None]):  # rank 4 and rank 6
    with pytest.raises(ValueError, match=r'time-major \[K, B, \*frame\], '
                       r'e\.g\. \[K, B, H, W, C\]'):
      fn(stages, variables, bad, labels(3), xent)


@pytest.mark.parametrize('algorithm', sj.algorithms.DEVICE_ALGORITHMS)
def test_non_finite_loss_is_reported(algorithm):
  _, variables = chain_and_variables(2)
  clip = random_clip(3).at[2].set(jnp.nan)
  run = compiled(algorithm, 2)
  result = run(variables, clip, labels(3))
  assert not bool(result.metrics['loss_is_finite'])
  with pytest.raises(FloatingPointError, match='non-finite'):
    sj.check_finite(result)
  fine = run(variables, random_clip(3), labels(3))
  assert bool(fine.metrics['loss_is_finite'])
  sj.check_finite(fine)


def test_bp_mode_must_be_known():
  stages, variables = chain_and_variables(2)
  with pytest.raises(ValueError, match="'batched' or 'scanned'"):
    sj.bp_grads(stages, variables, random_clip(3), labels(3), xent,
                mode='chunked')

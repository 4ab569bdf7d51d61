"""Cutting layer lists into stages: coverage, checks, balance, regrouping."""

import itertools

import flax.linen as nn
import jax
import numpy as np
import pytest

from sideways_jax import models
import models_testlib


def _all_boundaries(num_layers):
  inner = range(1, num_layers)
  for r in range(num_layers):
    yield from itertools.combinations(inner, r)


def _flatten(stages):
  return ([l for s in stages for l in s.layers],
          [n for s in stages for n in s.names])


def test_every_partition_covers_every_layer_once_in_order():
  layers = models.simple_cnn_layers(4)
  modules = [l.module for l in layers]
  names = [l.name for l in layers]
  seen = 0
  for bounds in _all_boundaries(len(layers)):
    stages = models.group_layers(layers, bounds)
    assert len(stages) == len(bounds) + 1
    assert all(len(s.layers) == len(s.names) > 0 for s in stages)
    got_modules, got_names = _flatten(stages)
    assert len(got_modules) == len(modules)
    assert all(a is b for a, b in zip(got_modules, modules))
    assert got_names == names
    # Each stage starts exactly at its boundary.
    starts = np.cumsum([0] + [len(s.layers) for s in stages[:-1]])
    assert tuple(starts[1:]) == bounds
    seen += 1
  assert seen == 2 ** (len(layers) - 1)


@pytest.mark.parametrize('build, num_layers', [
    (lambda **kw: models.simple_cnn(5, **kw), 6),
    (lambda **kw: models.vgg8(5, **kw), 8),
    (lambda **kw: models.conv_autoencoder(**kw), 6),
])
def test_balanced_stages_cover_every_layer(build, num_layers):
  names = list(build()[i].names[0] for i in range(num_layers))
  assert len(build()) == num_layers  # the paper's cuts by default.
  for k in range(1, num_layers + 1):
    stages = build(num_stages=k, frame_shape=(32, 32, 3))
    assert len(stages) == k
    assert _flatten(stages)[1] == names
  with pytest.raises(ValueError, match=f'at most {num_layers} stages'):
    build(num_stages=num_layers + 1)


def test_too_many_or_too_few_stages_is_an_error():
  with pytest.raises(ValueError, match='at most 3 stages'):
    models.balanced_boundaries([1, 2, 3], 4)
  with pytest.raises(ValueError, match='num_stages must be >= 1'):
    models.balanced_boundaries([1, 2, 3], 0)
  with pytest.raises(ValueError, match='num_stages must be >= 1'):
    models.simple_cnn(3, num_stages=0)
  with pytest.raises(ValueError, match='non-negative'):
    models.balanced_boundaries([1, -2, 3], 2)


@pytest.mark.parametrize('bounds, match', [
    ((0,), 'out of range'),
    ((6,), 'out of range'),
    ((-1,), 'out of range'),
    ((3, 2), 'strictly increasing'),
    ((2, 2), 'strictly increasing'),
    ((1.5,), 'ints'),
    ((1, 2, 3, 4, 5, 6), 'out of range'),
])
def test_bad_boundaries(bounds, match):
  with pytest.raises(ValueError, match=match):
    models.simple_cnn(3, boundaries=bounds)


def test_boundaries_and_num_stages_together_is_an_error():
  with pytest.raises(ValueError, match='not both'):
    models.simple_cnn(3, boundaries=(2,), num_stages=2)


def test_explicit_boundaries():
  stages = models.vgg8(3, boundaries=(5,))
  assert [s.names for s in stages] == [
      ('conv1', 'conv2', 'conv3', 'conv4', 'conv5'), ('fc6', 'fc7', 'fc8')]
  assert len(models.simple_cnn(3, boundaries=())) == 1


def _brute_force_max(costs, k):
  best = float('inf')
  for bounds in itertools.combinations(range(1, len(costs)), k - 1):
    edges = (0, *bounds, len(costs))
    best = min(best, max(sum(costs[a:b]) for a, b in zip(edges, edges[1:])))
  return best


def test_balanced_partition_minimises_the_largest_stage():
  rng = np.random.default_rng(0)
  for trial in range(20):
    n = int(rng.integers(1, 9))
    costs = [int(c) for c in rng.integers(0, 100, size=n)]
    if trial == 0:
      costs = [5, 5, 5, 5, 100, 1, 1]  # one dominant layer.
      n = len(costs)
    for k in range(1, n + 1):
      bounds = models.balanced_boundaries(costs, k)
      slices = models.stage_slices(bounds, n)
      assert len(slices) == k
      got = max(sum(costs[s]) for s in slices)
      assert got == _brute_force_max(costs, k), (costs, k, bounds)


def test_balanced_partition_spreads_what_a_dominant_layer_leaves():
  # A ResNet stem at a small frame: the stem conv outweighs everything, so
  # every 4-cut has the same largest stage; the rest must still be spread
  # (not the cost-free norm and pool layers as stages of their own).
  costs = [100, 0, 0, 6, 6, 6, 6, 6, 6, 1]
  bounds = models.balanced_boundaries(costs, 4)
  stage_costs = sorted(sum(costs[s]) for s in models.stage_slices(bounds, 10))
  assert stage_costs == [12, 12, 13, 100], bounds


def test_balanced_simple_cnn_two_stages_by_hand():
  # Per-frame FLOPs at 112x112 are proportional to (conv1..conv5, head)
  # 0.047, 1, 0.5, 1, 1, ~0: the best 2-cut is conv1-3 | conv4, conv5, head.
  stages = models.simple_cnn(51, num_stages=2, frame_shape=(112, 112, 3))
  assert [s.names for s in stages] == [('conv1', 'conv2', 'conv3'),
                                       ('conv4', 'conv5', 'head')]
  # The balance depends on the frame size, so there is no default one.
  with pytest.raises(ValueError, match=r'needs frame_shape=\(H, W, C\)'):
    models.simple_cnn(51, num_stages=2)
  assert len(models.simple_cnn(51, num_stages=6)) == 6  # No cut to balance.


class _Pool(nn.Module):
  """A layer without parameters."""

  @nn.compact
  def __call__(self, x, train):
    del train
    return x[:, ::2, ::2]


def test_a_stage_without_parameters_is_a_stage():
  conv1, *_, head = models.simple_cnn_layers(3, channels=(4,) * 5,
                                             impl='xla')
  stages = models.make_stages((conv1, models.Layer('pool', _Pool()), head),
                              num_stages=3, frame_shape=(16, 16, 3))
  assert [s.names for s in stages] == [('conv1',), ('pool',), ('head',)]
  frame = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  variables = models_testlib.random_variables(stages, frame)
  assert not jax.tree.leaves(variables[1])  # init_chain gives it nothing.
  assert models_testlib.chain_apply(stages, variables, frame).shape == (2, 3)
  summary = models.describe(stages, frame)
  assert summary.stages[1].num_params == 0 and summary.stages[1].flops == 0
  assert summary.stages[1].output_shape == (4, 4, 4)


def test_regrouped_variables_compute_the_same_function():
  # impl='xla': see models_testlib.chain_apply.
  build = lambda **kw: models.simple_cnn(5, channels=(4, 8, 8, 8, 8),
                                         impl='xla', **kw)
  stages, two, one = build(), build(boundaries=(2,)), build(boundaries=())
  frame = jax.random.uniform(jax.random.key(3), (2, 16, 16, 3))
  variables = models_testlib.random_variables(stages, frame)
  expected = models_testlib.chain_apply(stages, variables, frame)
  for other in (two, one):
    regrouped = models.regroup_variables(variables, other)
    assert len(regrouped) == len(other)
    got = models_testlib.chain_apply(other, regrouped, frame)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  # Round trip gives back the very same arrays.
  back = models.regroup_variables(models.regroup_variables(variables, two),
                                  stages)
  for a, b in zip(back, variables):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert all(x is y for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_regroup_with_a_different_network_is_an_error():
  stages = models.simple_cnn(5)
  variables = models_testlib.random_variables(
      stages, jax.ShapeDtypeStruct((1, 8, 8, 3), np.float32))
  with pytest.raises(ValueError, match='no layers named'):
    models.regroup_variables(variables, models.vgg8(5, boundaries=()))


def test_duplicate_layer_names_are_an_error():
  layers = models.simple_cnn_layers(3)
  with pytest.raises(ValueError, match='unique'):
    models.group_layers((*layers, layers[0]), ())

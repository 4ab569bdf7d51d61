"""Padded buffers and parameter slots: round trips, sizes, errors (1 device)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sideways_jax as sj
from sideways_jax import models
from sideways_jax import parallel
from sideways_jax.parallel import flat as flat_lib
from sideways_jax.parallel import slots as slots_lib


@pytest.fixture(scope='module')
def chain():
  """A 3-stage tiny VGG-8 (batchnorm state included) and its variables."""
  stages = models.vgg8(5, num_stages=3, width=1 / 32, frame_shape=(32, 32, 3),
                       impl='xla')
  frame = jnp.zeros((2, 32, 32, 3))
  # Shapes by abstract evaluation, values from NumPy: nothing to compile.
  shapes = jax.eval_shape(lambda k: sj.init_chain(stages, k, frame),
                          jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  variables = jax.tree.map(
      lambda s: rng.standard_normal(s.shape).astype(s.dtype), shapes)
  return stages, variables, frame


def test_flatten_unflatten_round_trip_is_exact():
  tree = {'a': np.arange(6, dtype=np.float32).reshape(2, 3),
          'b': [np.float32(7.0), np.ones((4,), np.float32)]}
  spec = flat_lib.flat_spec(tree)
  assert spec.size == 11
  flat = flat_lib.flatten(spec, tree, 16)
  assert flat.shape == (16,)
  np.testing.assert_array_equal(flat[11:], 0)
  back = flat_lib.unflatten(spec, flat)
  jax.tree.map(np.testing.assert_array_equal, back, tree)
  with pytest.raises(ValueError, match='does not fit'):
    flat_lib.flatten(spec, tree, 10)


def test_batch_rows_round_trip():
  x = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 4)
  rows = flat_lib.flatten_batch(x, 20)
  assert rows.shape == (2, 20)
  back = flat_lib.unflatten_batch(rows, jax.ShapeDtypeStruct(x.shape,
                                                               x.dtype))
  np.testing.assert_array_equal(back, x)


def test_chain_layout_sizes_and_stacking_round_trip(chain):
  stages, variables, frame = chain
  layout = parallel.chain_layout(stages, variables, frame)
  assert layout.num_stages == 3
  sizes = [sum(np.size(x) for x in jax.tree.leaves(v['params']))
           for v in variables]
  assert [s.size for s in layout.params] == sizes
  plan = layout.param_slots
  # Every leaf has a slot at most twice its size, used once per stage.
  for spec, places in zip(layout.params, plan.places):
    assert len(set(places)) == len(places)
    for shape, j in zip(spec.shapes, places):
      assert np.prod(shape) <= plan.sizes[j] <= 2 * max(1, np.prod(shape))
  assert max(sizes) <= sum(plan.sizes) <= sum(sizes)
  state_sizes = [sum(np.size(x) for x in jax.tree.leaves(
      {k: t for k, t in v.items() if k != 'params'})) for v in variables]
  assert layout.state_size == max(state_sizes) > 0
  acts = [int(np.prod(o.shape[1:])) for o in layout.outputs[:-1]]
  assert layout.act_size == max(acts)
  assert layout.outputs[-1].shape == (2, 5)
  params, state = parallel.stack_variables(layout, variables)
  assert [p.shape for p in params] == [(3, n) for n in plan.sizes]
  assert state.shape == (3, layout.state_size)
  back = parallel.unstack_variables(layout, params, state)
  jax.tree.map(np.testing.assert_array_equal, back,
               jax.tree.map(np.asarray, tuple(dict(v) for v in variables)))


def test_mixed_parameter_dtypes_are_rejected(chain):
  stages, variables, frame = chain
  mixed = list(variables)
  mixed[0] = jax.tree.map(lambda x: x.astype(jnp.bfloat16), dict(mixed[0]))
  with pytest.raises(ValueError, match='one parameter dtype'):
    parallel.chain_layout(stages, mixed, frame)


def test_slot_plan_separates_sizes_and_shares_similar_leaves():
  big, mid, small = (np.zeros((1000, 100)), np.zeros((300, 100)),
                     np.zeros((10,)))
  specs = [flat_lib.flat_spec(t) for t in
           ([big, small], [mid, small], [np.zeros((280, 100)), mid])]
  plan = slots_lib.plan_slots(specs)
  # The 100k leaf gets a slot of its own (no other leaf is within 2x); the
  # 30k leaves of stages 1 and 2 share one; stage 2's 28k leaf needs another
  # (a stage uses a slot once); the two 10-entry leaves share the last.
  assert plan.sizes == (100_000, 30_000, 28_000, 10)
  assert plan.places == ((0, 3), (1, 3), (2, 1))


def test_slots_round_trip_and_untouched_slots_pass_through():
  trees = [{'w': np.arange(6.0, dtype=np.float32).reshape(2, 3),
            'b': np.ones(2, np.float32)},
           {'w': np.arange(12.0, dtype=np.float32).reshape(3, 4)}]
  specs = [flat_lib.flat_spec(t) for t in trees]
  plan = slots_lib.plan_slots(specs)
  stacked = slots_lib.stack_slots(specs, plan, trees, np.float32)
  back = slots_lib.unstack_slots(specs, plan, stacked)
  jax.tree.map(np.testing.assert_array_equal, back, tuple(trees))
  row = tuple(jnp.asarray(s[0]) for s in stacked)
  grads = jax.tree.map(lambda x: jnp.ones(x.shape, jnp.float32), trees[0])
  added = slots_lib.add_to_slots(specs[0], plan.places[0], row, grads)
  got = slots_lib.unflatten_slots(specs[0], plan.places[0], added)
  jax.tree.map(lambda g, t: np.testing.assert_array_equal(g, t + 1), got,
               trees[0])
  unused = set(range(len(plan.sizes))) - set(plan.places[0])
  for j in unused:
    assert added[j] is row[j]

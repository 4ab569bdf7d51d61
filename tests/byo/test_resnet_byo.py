"""Bring your own model: a Flax-idiom ResNet-18 through the Flax adapter.

The model (resnet_flax.py) is written as Flax's ImageNet example writes it:
one compact module, blocks without `train`, BatchNorm over
`axis_name='batch'`. Its uncut weights are imported into the stages, and it
trains with BP and Sideways through `sj.Trainer`.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sideways_jax as sj
from sideways_jax import flax_stages
import resnet_flax

# 64x64 frames and 4 clips: at 32x32 the last blocks' batchnorm sees 2
# values per channel, and its gradient is too ill-conditioned to compare.
NUM_CLASSES, FILTERS, BATCH = 5, 4, 4
FRAME = (BATCH, 64, 64, 3)


def xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def with_batch_axis(fn, x):
  """How the model's own code runs it (under pmap/vmap with 'batch')."""
  return jax.vmap(fn, axis_name='batch', out_axes=None)(x[None])


@pytest.fixture(scope='module')
def imported():
  model = resnet_flax.ResNet(NUM_CLASSES, num_filters=FILTERS)
  x = jax.random.normal(jax.random.PRNGKey(0), FRAME)
  uncut = with_batch_axis(
      lambda a: model.init(jax.random.PRNGKey(1), a, train=False), x)
  stages = resnet_flax.build(NUM_CLASSES, num_stages=4, num_filters=FILTERS,
                            frame_shape=FRAME[1:])
  variables = flax_stages.import_variables(stages, uncut, x)
  return model, uncut, stages, variables, x


def test_imported_weights_give_the_uncut_model(imported):
  model, uncut, stages, variables, x = imported
  expected = jax.vmap(lambda a: model.apply(uncut, a, train=False),
                      axis_name='batch')(x[None])[0]
  got = jax.jit(lambda v: sj.apply_chain(stages, v, x)[0])(variables)
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
  assert len(stages) == 4


def test_sideways_equals_bp_on_a_constant_clip_then_trains(imported):
  _, _, stages, variables, x = imported
  k = 2 * len(stages) - 1
  clip = jnp.broadcast_to(x, (k,) + x.shape)
  labels = jnp.broadcast_to(jnp.arange(BATCH) % NUM_CLASSES, (k, BATCH))
  results = {name: jax.jit(lambda v, name=name: sj.grad_fn(name)(
      stages, v, clip, labels, xent))(variables) for name in ('bp', 'sideways')}
  for got, want in zip(results['sideways'].grads, results['bp'].grads):
    # Batchnorm amplifies rounding differently in the two orders of work.
    error = optax.tree.norm(jax.tree.map(jnp.subtract, got, want))
    assert float(error) <= 1e-5 * float(optax.tree.norm(want)) + 1e-7
  chex.assert_trees_all_close(results['sideways'].state, results['bp'].state,
                              rtol=1e-5, atol=1e-6)
  moving = jax.random.normal(jax.random.PRNGKey(3), (k,) + x.shape)
  for name in ('bp', 'sideways'):
    trainer = sj.Trainer(stages, optax.adam(1e-3), xent, name)
    state = trainer.init_from(variables, jax.random.PRNGKey(2), moving)
    state, metrics = trainer.step(state, moving, labels)
    state, metrics = trainer.step(state, moving, labels)
    assert int(state.step) == 2 and bool(metrics['loss_is_finite'])
    assert trainer.predict(state, moving).shape == (k, BATCH, NUM_CLASSES)


class _Memory(nn.Module):
  """Keeps state across frames in a collection that is not statistics."""

  @nn.compact
  def __call__(self, x, train):
    memory = self.variable('memory', 'last', jnp.zeros, x.shape)
    y = x + memory.value
    memory.value = x
    return nn.Dense(3)(y.reshape(x.shape[0], -1))


class _DropPath(nn.Module):
  @nn.compact
  def __call__(self, x, train):
    x = x.reshape(x.shape[0], -1)
    if train:
      keep = jax.random.bernoulli(self.make_rng('droppath'), 0.5, x.shape[:1])
      x = x * keep[:, None] / 0.5
    return nn.Dense(3)(x)


def test_state_contract_and_named_rng_streams():
  x = jnp.ones((BATCH, 4, 4, 3))
  stages = flax_stages.from_layers([('memory', _Memory())])
  with pytest.raises(ValueError, match=r"stage 0 holds mutable collection\(s"
                     r"\) \['memory'\]: only per-frame statistics"):
    sj.init_chain(stages, jax.random.PRNGKey(0), x)
  variables = ({'params': {}, 'memory': {}},)
  with pytest.raises(ValueError, match=r"\['memory'\]: only per-frame"):
    sj.grad_fn('bp')(stages, variables, x[None], jnp.zeros((1, BATCH), int),
                     xent)
  stages = flax_stages.from_layers([('drop', _DropPath())],
                                   rng_streams=('dropout', 'droppath'))
  variables = sj.init_chain(stages, jax.random.PRNGKey(0), x)
  result = sj.grad_fn('bp')(stages, variables, x[None],
                            jnp.zeros((1, BATCH), int), xent,
                            rng=jax.random.PRNGKey(1))
  assert bool(result.metrics['loss_is_finite'])

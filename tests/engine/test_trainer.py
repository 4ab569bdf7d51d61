"""`sj.Trainer` on one device: the engine + optax, and the precision policy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sideways_jax as sj
from engine_chains import make_chain, random_clip, labels, xent

K = 5


@pytest.mark.parametrize('algorithm', ['bp', 'sideways'])
def test_step_is_grad_fn_then_the_optimizer(algorithm):
  stages = make_chain(3)
  clip, targets = random_clip(K), labels(K)
  trainer = sj.Trainer(stages, optax.sgd(0.1), xent, algorithm)
  state = trainer.init(jax.random.PRNGKey(0), clip)
  variables = trainer.variables(state)
  expected = sj.grad_fn(algorithm)(
      stages, variables, clip, targets, xent,
      rng=jax.random.fold_in(state.rng, 0))
  want = jax.tree.map(lambda p, g: p - 0.1 * g,
                      tuple(v['params'] for v in variables), expected.grads)
  new_state, metrics = trainer.step(state, clip, targets)  # Donates `state`.
  assert int(new_state.step) == 1
  np.testing.assert_allclose(metrics['loss'], expected.loss, rtol=1e-6)
  chex.assert_trees_all_close(new_state.params, want, rtol=1e-5, atol=1e-7)
  assert trainer.predict(new_state, clip).shape == (K, 3, 5)
  assert trainer.describe()['algorithm'] == algorithm


def test_bf16_compute_keeps_fp32_parameters_sums_and_adam_state():
  stages = make_chain(3)
  clip, targets = random_clip(K), labels(K)
  runs = {}
  for name, policy in (('fp32', None), ('bf16', sj.Precision(jnp.bfloat16))):
    trainer = sj.Trainer(stages, optax.adam(1e-3), xent, 'sideways',
                         precision=policy)
    state = trainer.init(jax.random.PRNGKey(0), clip)
    runs[name] = trainer.grads(state, clip, targets)
    state, metrics = trainer.step(state, clip, targets)
    for leaf in jax.tree.leaves((state.params, state.opt_state)):
      if jnp.issubdtype(leaf.dtype, jnp.floating):
        assert leaf.dtype == jnp.float32
  for grads in (runs['fp32'].grads, runs['bf16'].grads):
    assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype('float32')}
  # The stages really computed in bf16: close to fp32, but not equal.
  diff = max(float(jnp.abs(a - b).max()) for a, b in zip(
      jax.tree.leaves(runs['fp32'].grads), jax.tree.leaves(runs['bf16'].grads)))
  assert 0 < diff < 0.05
  # The sums inside the Sideways pipeline are fp32 as well.
  wrapped = sj.Precision(jnp.bfloat16).wrap(stages)
  variables = sj.init_chain(wrapped, jax.random.PRNGKey(0), clip[0])
  pipeline = sj.init_pipeline(wrapped, variables, clip[0])
  assert {g.dtype for g in jax.tree.leaves(pipeline.grad_sums)} == {
      jnp.dtype('float32')}
  assert {a.dtype for a in pipeline.activations} == {jnp.dtype('bfloat16')}


def test_placement_and_names_are_checked():
  stages = make_chain(2)
  with pytest.raises(ValueError, match="'bp_1f1b' needs a mesh"):
    sj.Trainer(stages, optax.sgd(0.1), xent, 'bp_1f1b')
  with pytest.raises(ValueError, match="did you mean 'sideways'"):
    sj.Trainer(stages, optax.sgd(0.1), xent, 'sidways')
  with pytest.raises(ValueError, match='call Trainer.init'):
    sj.Trainer(stages, optax.sgd(0.1), xent).step(None, None, None)

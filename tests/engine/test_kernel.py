"""The stage kernel: one masking rule, with `where`, that NaN cannot cross."""

import jax
import jax.numpy as jnp
import numpy as np

from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from engine_chains import chain_and_variables, random_clip, labels, xent


def _step(stage, variables, x, cotangent, position, **flags):
  params, state = chain_lib.split_variables(variables)
  zeros = jax.tree.map(jnp.zeros_like, params)
  return kernel.stage_step(stage, params, state, x, cotangent, zeros,
                           position=position, frame=0, train=True, rng=None,
                           loss_fn=xent, target=labels(1)[0], **flags)


def _finite(tree) -> bool:
  return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def test_non_finite_values_at_masked_steps_do_not_leak():
  stages, variables = chain_and_variables(3)
  middle, top = kernel.Position(1, 3), kernel.Position(2, 3)
  x = jnp.tanh(random_clip(1)[0][..., :1].repeat(4, -1))  # stage 1's input
  y = chain_lib.output_shapes(stages[1:2], variables[1:2], x)[0]
  nan_x = jnp.full_like(x, jnp.nan)
  nan_cot = jnp.full(y.shape, jnp.nan, y.dtype)
  # A NaN input at a step whose input is not real.
  out = _step(stages[1], variables[1], nan_x, jnp.ones(y.shape), middle,
              input_valid=False, cotangent_valid=True)
  assert not bool(out.mask)
  assert _finite((out.grad_sum, out.input_cotangent, out.state))
  # A NaN cotangent at a step whose cotangent is not real.
  out = _step(stages[1], variables[1], x, nan_cot, middle,
              input_valid=True, cotangent_valid=False)
  assert _finite((out.grad_sum, out.input_cotangent))
  # The top's own input not real: its loss and gradient are dropped too.
  h = jnp.full(chain_lib.output_shapes(stages[1:2], variables[1:2], x)[0].shape,
               jnp.nan)
  out = _step(stages[2], variables[2], h, None, top, input_valid=False)
  assert _finite((out.grad_sum, out.loss)) and float(out.loss) == 0.0
  # Why `where` and not a zero cotangent: the vjp of a NaN input applied to
  # a zero cotangent is NaN, so masking the cotangent would leak.
  params, state = chain_lib.split_variables(variables[1])
  _, vjp_fn, _ = jax.vjp(
      lambda p: chain_lib.apply_stage(stages[1], p, state, nan_x, train=True,
                                      rng=None), params, has_aux=True)
  assert not _finite(vjp_fn(jnp.zeros(y.shape))[0])


def test_valid_steps_accumulate_the_plain_vjp():
  stages, variables = chain_and_variables(3)
  x = random_clip(1)[0][..., :1].repeat(4, -1)
  y = chain_lib.output_shapes(stages[1:2], variables[1:2], x)[0]
  cotangent = jax.random.normal(jax.random.PRNGKey(5), y.shape)
  out = _step(stages[1], variables[1], x, cotangent, kernel.Position(1, 3))
  params, state = chain_lib.split_variables(variables[1])
  _, vjp_fn, _ = jax.vjp(
      lambda p, a: chain_lib.apply_stage(stages[1], p, state, a, train=True,
                                         rng=None), params, x, has_aux=True)
  expected = vjp_fn(cotangent)
  for got, want in zip(jax.tree.leaves((out.grad_sum, out.input_cotangent)),
                       jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  assert bool(out.mask) and float(out.loss) == 0.0

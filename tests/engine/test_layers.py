"""The im2col layers compute what XLA's convolutions and pooling compute."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from sideways_jax import layers

CASES = [  # kernel, stride, padding, height, width
    (3, 1, 'SAME', 9, 10),
    (3, 2, 'SAME', 9, 10),
    (3, 2, 'SAME', 8, 8),
    (5, 2, 'VALID', 13, 12),
    (7, 2, 'SAME', 16, 15),
]


def _value_and_grads(fn, *args):
  # Jitted: eagerly, each of im2col's k*k slices would compile on its own.
  return jax.jit(jax.value_and_grad(lambda *a: jnp.sum(fn(*a) ** 2),
                                    argnums=tuple(range(len(args)))))(*args)


def _inputs(kernel, height, width):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, height, width, 3))
  w = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, 3, 4)) * 0.3
  return x, w


@pytest.mark.parametrize('kernel,stride,padding,height,width', CASES)
def test_conv2d_im2col_matches_lax_conv(kernel, stride, padding, height,
                                        width):
  x, w = _inputs(kernel, height, width)
  conv = lambda impl: (lambda x, w: layers.conv2d(x, w, (stride, stride),
                                                   padding, impl))
  chex.assert_trees_all_close(_value_and_grads(conv('im2col'), x, w),
                              _value_and_grads(conv('xla'), x, w),
                              rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('kernel,stride,padding,height,width', CASES)
def test_conv_transpose2d_im2col_matches_lax(kernel, stride, padding, height,
                                             width):
  x, w = _inputs(kernel, height, width)
  conv = lambda impl: (lambda x, w: layers.conv_transpose2d(
      x, w, (stride, stride), padding, impl))
  chex.assert_trees_all_close(_value_and_grads(conv('im2col'), x, w),
                              _value_and_grads(conv('xla'), x, w),
                              rtol=1e-5, atol=1e-4)
  reference = jax.lax.conv_transpose(x, w, (stride, stride), padding,
                                     dimension_numbers=('NHWC', 'HWIO',
                                                        'NHWC'))
  chex.assert_trees_all_close(conv('im2col')(x, w), reference, rtol=1e-5,
                              atol=1e-5)


@pytest.mark.parametrize('padding', ['VALID', 'SAME'])
def test_max_pool_im2col_matches_flax(padding):
  x, _ = _inputs(3, 9, 10)
  pool = lambda impl: (lambda x: layers.max_pool(x, (3, 3), (2, 2), padding,
                                                  impl))
  chex.assert_trees_all_close(_value_and_grads(pool('im2col'), x),
                              _value_and_grads(pool('xla'), x))
  chex.assert_trees_all_close(pool('im2col')(x),
                              nn.max_pool(x, (3, 3), (2, 2), padding))


def test_modules_are_drop_ins_for_flax():
  # Shapes from eval_shape and applies under jit: eagerly, each of im2col's
  # slices and Flax's initialisers would compile on its own.
  x, _ = _inputs(3, 8, 8)
  for ours, theirs in [
      (layers.Conv(5, (3, 3), (2, 2), impl='im2col'), nn.Conv(5, (3, 3),
                                                              (2, 2))),
      (layers.ConvTranspose(5, (3, 3), (2, 2), impl='im2col'),
       nn.ConvTranspose(5, (3, 3), (2, 2)))]:
    key = jax.random.PRNGKey(2)
    specs = jax.eval_shape(theirs.init, key, x)
    chex.assert_trees_all_equal_shapes_and_dtypes(
        jax.eval_shape(ours.init, key, x), specs)
    variables = jax.tree.map(
        lambda s: jax.random.normal(key, s.shape, s.dtype) * 0.3, specs)
    chex.assert_trees_all_close(jax.jit(ours.apply)(variables, x),
                                jax.jit(theirs.apply)(variables, x),
                                rtol=1e-5, atol=1e-5)


def test_auto_picks_im2col_on_cpu_and_rejects_unknown():
  expected = 'im2col' if jax.default_backend() == 'cpu' else 'xla'
  assert layers.resolve_impl('auto') == expected
  with pytest.raises(ValueError, match="'auto', 'xla' or 'im2col'"):
    layers.resolve_impl('cudnn')


@pytest.mark.parametrize('impl', ['im2col', 'xla'])
@pytest.mark.parametrize('module', [layers.Conv, layers.ConvTranspose])
def test_bf16_compute_really_computes_in_bf16(module, impl):
  x, w = _inputs(3, 8, 8)
  variables = {'params': {'kernel': w, 'bias': jnp.linspace(-1.0, 1.0, 4)}}
  fp32 = module(4, (3, 3), (2, 2), impl=impl)
  bf16 = module(4, (3, 3), (2, 2), impl=impl, dtype=jnp.bfloat16)
  dtypes = lambda m: {v.dtype for v in jax.tree.leaves(
      jax.eval_shape(m.init, jax.random.PRNGKey(4), x))}
  assert dtypes(bf16) == {jnp.dtype('float32')}  # params stay fp32
  reference = jax.jit(fp32.apply)(variables, x)
  got = jax.jit(bf16.apply)(variables, x)
  assert got.dtype == jnp.bfloat16 and reference.dtype == jnp.float32
  # Rounding the inputs to bf16 changes the result: computing in fp32 and
  # casting the output would give exactly reference.astype(bf16).
  assert (got != reference.astype(jnp.bfloat16)).any()
  chex.assert_trees_all_close(got.astype(jnp.float32), reference, rtol=3e-2,
                              atol=3e-2)
  stored = module(4, (3, 3), impl=impl, param_dtype=jnp.bfloat16)
  assert dtypes(stored) == {jnp.dtype('bfloat16')}

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
  x, _ = _inputs(3, 8, 8)
  ours = layers.Conv(5, (3, 3), (2, 2), impl='im2col')
  variables = ours.init(jax.random.PRNGKey(2), x)
  theirs = nn.Conv(5, (3, 3), (2, 2))
  chex.assert_trees_all_equal_shapes(variables,
                                     theirs.init(jax.random.PRNGKey(2), x))
  chex.assert_trees_all_close(ours.apply(variables, x),
                              theirs.apply(variables, x), rtol=1e-5,
                              atol=1e-5)
  ours_t = layers.ConvTranspose(5, (3, 3), (2, 2), impl='im2col')
  theirs_t = nn.ConvTranspose(5, (3, 3), (2, 2))
  variables = theirs_t.init(jax.random.PRNGKey(3), x)
  chex.assert_trees_all_close(ours_t.apply(variables, x),
                              theirs_t.apply(variables, x), rtol=1e-5,
                              atol=1e-5)


def test_auto_picks_im2col_on_cpu_and_rejects_unknown():
  expected = 'im2col' if jax.default_backend() == 'cpu' else 'xla'
  assert layers.resolve_impl('auto') == expected
  with pytest.raises(ValueError, match="'auto', 'xla' or 'im2col'"):
    layers.resolve_impl('cudnn')

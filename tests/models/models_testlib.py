"""Helpers shared by the model tests (imported by module name: pytest puts
this directory on sys.path, as there is no __init__.py).

Variables are filled from numpy rather than with `stage.init`: compiling
Flax's initialisers (threefry + truncated normal) costs seconds per stage on
these CPUs, while the tests only need some well-scaled random values.
"""

import jax
import numpy as np

import sideways_jax as sj


def variable_specs(stages, frame):
  """The shapes of the variables `sj.init_chain` makes; nothing is computed.

  `frame` is an array or a `jax.ShapeDtypeStruct` [B, ...].
  """
  spec = jax.ShapeDtypeStruct(frame.shape, frame.dtype)
  return jax.eval_shape(lambda key: sj.init_chain(stages, key, spec),
                        jax.random.key(0))


def random_variables(stages, frame, seed=0):
  """One variables dict per stage, random but well scaled.

  Kernels ~ N(0, 1/fan_in); biases ~ N(0, 0.1^2); batchnorm scales near 1;
  running means near 0 and variances near 1, so eval mode is non-trivial.
  """
  rng = np.random.default_rng(seed)

  def fill(path, spec):
    name = getattr(path[-1], 'key', '')
    shape = spec.shape
    if len(shape) >= 2:
      value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
    elif name in ('scale', 'var'):
      value = 1.0 + 0.2 * rng.uniform(size=shape)
    else:
      value = 0.1 * rng.normal(size=shape)
    return np.asarray(value, spec.dtype)

  return tuple({k: jax.tree_util.tree_map_with_path(fill, v)
                for k, v in specs.items()}
               for specs in variable_specs(stages, frame))


def chain_apply(stages, variables, x):
  """The whole chain in eval mode (`sj.apply_chain`) under one jit.

  Compilation dominates these tests: models built with impl='xla' (XLA's own
  convolutions) compile much faster than the CPU default im2col form, which
  tests/engine/test_layers.py checks against them.
  """
  return jax.jit(lambda v, x: sj.apply_chain(stages, v, x)[0])(variables, x)

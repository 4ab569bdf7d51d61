"""Helpers shared by the model tests (imported by module name: pytest puts
this directory on sys.path, as there is no __init__.py).

Variables are filled from numpy rather than with `stage.init`: compiling
Flax's initialisers (threefry + truncated normal) costs seconds per stage on
these CPUs, while the tests only need some well-scaled random values.
"""

import jax
import numpy as np


def variable_shapes(stage, x):
  """(output spec, variable specs) of one stage on input spec `x`."""
  key = jax.random.key(0)
  return jax.eval_shape(
      lambda x: stage.init_with_output({'params': key, 'dropout': key}, x,
                                       train=False), x)


def random_variables(stages, frame, seed=0):
  """One variables dict per stage, random but well scaled, and the output spec.

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

  x = jax.ShapeDtypeStruct(frame.shape, frame.dtype)
  out = []
  for stage in stages:
    x, specs = variable_shapes(stage, x)
    out.append({k: jax.tree_util.tree_map_with_path(fill, v)
                for k, v in specs.items()})
  return tuple(out), x


def chain_apply(stages, variables, x, *, train=False, rng=None):
  """Runs the whole chain under one jit; returns (output, per-stage state).

  In train mode batchnorm statistics are updated and returned; dropout
  draws from `rng` folded with the stage index.
  """

  def run(variables, x, rng):
    states = []
    for i, (stage, v) in enumerate(zip(stages, variables)):
      rngs = {'dropout': jax.random.fold_in(rng, i)} if rng is not None else {}
      if train and 'batch_stats' in v:
        x, state = stage.apply(v, x, train=True, rngs=rngs,
                               mutable=['batch_stats'])
      else:
        x, state = stage.apply(v, x, train=train, rngs=rngs), {}
      states.append(state)
    return x, tuple(states)

  return jax.jit(run)(variables, x, rng)

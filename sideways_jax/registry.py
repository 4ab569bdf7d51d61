"""Choosing the gradient algorithm by name, with one call signature for all.

    fn = grad_fn('sideways', target_alignment='origin')
    fn = grad_fn('bp', mode='scanned')
    result = fn(stages, variables, clip, targets, loss_fn, rng=rng, train=True)

Options that change how an algorithm runs are bound once, by name; every
algorithm accepts only its own (`OPTIONS`), so a runner can build them from a
config without special cases and a misplaced option fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax

from sideways_jax import bp
from sideways_jax import chain as chain_lib
from sideways_jax import pipeline
from sideways_jax import result as result_lib
from sideways_jax import sideways


class GradFn(Protocol):
  """The one signature every algorithm has once its options are bound."""

  def __call__(self, stages: chain_lib.Stages,
               variables: chain_lib.ChainVariables, clip: jax.Array,
               targets: Any, loss_fn: pipeline.LossFn, *,
               rng: jax.Array | None = None,
               train: bool = True) -> result_lib.GradResult:
    ...


ALGORITHMS: dict[str, Callable[..., result_lib.GradResult]] = {
    'bp': bp.bp_grads,
    'sideways': sideways.sideways_grads,
}

# The keyword options each algorithm takes at `grad_fn` time.
OPTIONS: dict[str, tuple[str, ...]] = {
    'bp': ('mode', 'unroll'),
    'sideways': ('target_alignment', 'unroll'),
}

# Checks of option values, run when the options are bound.
_CHECKS: dict[str, Callable[[Any], None]] = {
    'mode': bp.check_mode,
    'target_alignment': sideways.check_target_alignment,
}


def grad_fn(algorithm: str, **options: Any) -> GradFn:
  """The gradient function of `algorithm` ('bp' or 'sideways').

  Args:
    algorithm: a key of `ALGORITHMS`.
    **options: that algorithm's options (see `OPTIONS`): 'bp' takes `mode`
      ('batched'|'scanned') and `unroll`; 'sideways' takes `target_alignment`
      ('current'|'origin') and `unroll`. Unset ones keep their defaults.

  Returns:
    `fn(stages, variables, clip, targets, loss_fn, *, rng=None, train=True)
    -> GradResult`, the same signature for every algorithm.

  Raises:
    ValueError: an unknown algorithm, an option it does not take, or a bad
      option value.
  """
  if algorithm not in ALGORITHMS:
    raise ValueError(f'unknown algorithm {algorithm!r}; choose one of '
                     f'{sorted(ALGORITHMS)}')
  accepted = OPTIONS[algorithm]
  refused = sorted(set(options) - set(accepted))
  if refused:
    raise ValueError(
        f'algorithm {algorithm!r} does not take option(s) {refused}; it '
        f'accepts {list(accepted)}')
  for name, value in options.items():
    if name in _CHECKS:
      _CHECKS[name](value)
  gradients = ALGORITHMS[algorithm]

  def fn(stages: chain_lib.Stages, variables: chain_lib.ChainVariables,
         clip: jax.Array, targets: Any, loss_fn: pipeline.LossFn, *,
         rng: jax.Array | None = None,
         train: bool = True) -> result_lib.GradResult:
    return gradients(stages, variables, clip, targets, loss_fn, rng=rng,
                     train=train, **options)

  fn.__name__ = f'{algorithm}_grad_fn'
  fn.__doc__ = f'{gradients.__name__} with options {options}.'
  return fn

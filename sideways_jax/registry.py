"""Choosing the gradient algorithm by name."""

from __future__ import annotations

from collections.abc import Callable

from sideways_jax.bp import bp_grads
from sideways_jax.sideways import sideways_grads

ALGORITHMS: dict[str, Callable[..., object]] = {
    'bp': bp_grads,
    'sideways': sideways_grads,
}


def grad_fn(algorithm: str) -> Callable[..., object]:
  """`sideways_grads` or `bp_grads`, by name ('sideways' or 'bp')."""
  try:
    return ALGORITHMS[algorithm]
  except KeyError:
    raise ValueError(f'unknown algorithm {algorithm!r}; choose one of '
                     f'{sorted(ALGORITHMS)}') from None

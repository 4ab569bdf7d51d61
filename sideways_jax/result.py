"""The result both gradient algorithms return, and checks on it."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class GradResult(NamedTuple):
  """What `sideways_grads` and `bp_grads` return for one clip (episode).

  Attributes:
    loss: f32 []: mean per-frame loss over the steps that count (BP: all K
      frames; Sideways: the K - D + 1 steps whose top output is real).
    grads: one params pytree per stage, shaped like the params.
    state: one dict per stage with the updated mutable collections (e.g.
      'batch_stats'), the mean of the per-frame updates; empty dicts when the
      stages have none.
    metrics: 'valid_steps' int32 [D] (frames each stage's gradient averages
      over), 'outputs' [K, B, ...] (top-stage output at each step),
      'output_valid' bool [K], 'output_frame' int32 [K] (the frame each output
      came from), 'step_losses' f32 [K], 'loss_is_finite' bool [].

  `loss` averages only the top outputs that count, so a non-finite value in
  a frame can be absent from it (under Sideways, a frame in the last D - 1
  steps reaches the lower stages but never the top). `loss_is_finite` covers
  it: False when the loss or any gradient entry is NaN or Inf, which is
  where every non-finite input that counts for training shows.
  """
  loss: jax.Array
  grads: tuple[Any, ...]
  state: tuple[dict, ...]
  metrics: dict[str, jax.Array]


def finite_metric(loss: jax.Array, grads: Any) -> jax.Array:
  """True when the loss and every gradient entry are finite."""
  leaves = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]
  return jnp.logical_and(jnp.isfinite(loss), jnp.all(jnp.stack(leaves))
                         if leaves else True)


def check_finite(result: GradResult) -> None:
  """Raises FloatingPointError on the host when the loss or grads are not finite.

  Call it outside jit (it reads a device value), e.g. every few steps of a
  training loop; inside jit use `result.metrics['loss_is_finite']`.
  """
  if not bool(np.asarray(result.metrics['loss_is_finite'])):
    raise FloatingPointError(
        f'non-finite loss or gradient (loss = {float(result.loss)}): lower the '
        'learning rate, check the inputs for NaN/Inf, or check the loss '
        'function.')

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


def every_frame_result(loss: jax.Array, losses: jax.Array, outputs: Any,
                       grads: tuple[Any, ...], states: Any,
                       num_stages: int) -> GradResult:
  """Exact BP's result: every stage averages over all K frames.

  Args:
    loss: the mean per-frame loss.
    losses: [K] per-frame losses.
    outputs: [K, B, ...] the top output of each frame.
    grads: one params pytree per stage.
    states: one dict per stage of mutable collections.
    num_stages: D.
  """
  num_frames = losses.shape[0]
  metrics = {
      'valid_steps': jnp.full((num_stages,), num_frames, jnp.int32),
      'outputs': outputs,
      'output_valid': jnp.ones((num_frames,), bool),
      'output_frame': jnp.arange(num_frames, dtype=jnp.int32),
      'step_losses': losses.astype(jnp.float32),
      'loss_is_finite': finite_metric(loss, grads),
  }
  return GradResult(loss=jnp.asarray(loss).astype(jnp.float32), grads=grads,
                    state=tuple(dict(s) for s in states), metrics=metrics)


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

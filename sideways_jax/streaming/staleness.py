"""Corrections for the delay of Sideways' pseudo-gradients on a stream.

With one update per step, the gradient stage i (0-indexed, of D) applies at
step t comes from a cotangent the top computed 2(D-1-i) steps earlier, from
an older frame and older upper-stage weights: the bottom stage is the most
stale, the top not at all (`sideways_delays`). Two remedies from pipelined
training, each an optax transformation applied per stage (pass one optimizer
per stage to the streaming learner):

* `scale_by_delay`: PipeMare's learning-rate rescheduling (Yang et al.,
  2021): a stage whose gradient is d steps stale takes updates scaled by
  d^-p, with p annealed from `power` to 0 over `anneal_steps` updates.
* `scale_by_adam_spike_compensated`: spike compensation (Kosson et al.,
  "Pipelined Backpropagation at Scale", 2021) carried over to Adam's first
  moment: a gradient that arrives d steps late would, undelayed, already
  have contributed 1 - b1^d of its weight to the moving average; that part
  is applied at once (the spike) and the average is scaled by b1^d, so
  every gradient's total contribution is the one it would have had on time.

Both are the identity for a delay of 0 (the top stage).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


def sideways_delays(num_stages: int) -> tuple[int, ...]:
  """Steps by which each stage's streaming gradient is stale: 2(D-1-i)."""
  if num_stages < 1:
    raise ValueError(f'num_stages must be >= 1, got {num_stages}')
  return tuple(2 * (num_stages - 1 - i) for i in range(num_stages))


def _check_delay(delay: int) -> None:
  if delay < 0:
    raise ValueError(f'delay must be >= 0, got {delay}')


class ScaleByDelayState(NamedTuple):
  count: jax.Array  # int32 []: updates so far


def delay_factor(delay: int, count: jax.Array, *, power: float,
                 anneal_steps: int) -> jax.Array:
  """max(delay, 1)^-p with p = power * (1 - min(count / anneal_steps, 1)).

  `anneal_steps=0` keeps p = power for ever.
  """
  if anneal_steps > 0:
    left = 1.0 - jnp.minimum(count / anneal_steps, 1.0)
  else:
    left = jnp.ones((), jnp.float32)
  return jnp.asarray(max(delay, 1), jnp.float32) ** (-power * left)


def scale_by_delay(delay: int, *, power: float = 1.0,
                   anneal_steps: int = 0) -> optax.GradientTransformation:
  """Scales updates by `delay_factor` (chain it after the optimizer)."""
  _check_delay(delay)
  if power < 0 or anneal_steps < 0:
    raise ValueError(f'power ({power}) and anneal_steps ({anneal_steps}) '
                     'must be >= 0')

  def init(params):
    del params
    return ScaleByDelayState(count=jnp.zeros((), jnp.int32))

  def update(updates, state, params=None):
    del params
    factor = delay_factor(delay, state.count, power=power,
                          anneal_steps=anneal_steps)
    updates = jax.tree.map(lambda u: (u * factor).astype(u.dtype), updates)
    return updates, ScaleByDelayState(count=state.count + 1)

  return optax.GradientTransformation(init, update)


class SpikeAdamState(NamedTuple):
  count: jax.Array  # int32 []
  mu: optax.Updates
  nu: optax.Updates


def scale_by_adam_spike_compensated(delay: int, *, b1: float = 0.9,
                                    b2: float = 0.999, eps: float = 1e-8
                                    ) -> optax.GradientTransformation:
  """Adam's direction with spike compensation for a `delay`-step lag.

  direction = (b1^d * mu_hat + (1 - b1^d) * g) / (sqrt(nu_hat) + eps), with
  Adam's bias-corrected moments mu_hat, nu_hat; d = 0 is Adam's direction.
  """
  _check_delay(delay)
  keep = b1 ** delay

  def init(params):
    return SpikeAdamState(count=jnp.zeros((), jnp.int32),
                          mu=jax.tree.map(jnp.zeros_like, params),
                          nu=jax.tree.map(jnp.zeros_like, params))

  def update(updates, state, params=None):
    del params
    count = state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu,
                      updates)
    mu_fix = 1 - b1 ** count.astype(jnp.float32)
    nu_fix = 1 - b2 ** count.astype(jnp.float32)
    direction = jax.tree.map(
        lambda m, v, g: ((keep * m / mu_fix + (1 - keep) * g)
                         / (jnp.sqrt(v / nu_fix) + eps)).astype(g.dtype),
        mu, nu, updates)
    return direction, SpikeAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init, update)


def spike_compensated_adam(learning_rate: float, delay: int, *,
                           b1: float = 0.9, b2: float = 0.999,
                           eps: float = 1e-8) -> optax.GradientTransformation:
  """`optax.adam` with `scale_by_adam_spike_compensated` as its direction."""
  return optax.chain(
      scale_by_adam_spike_compensated(delay, b1=b1, b2=b2, eps=eps),
      optax.scale_by_learning_rate(learning_rate))

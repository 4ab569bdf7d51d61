"""A slow, index-explicit Sideways written straight from the rules.

The rules are those of docs/algorithm.md, restated here.

No scan, no pipeline state: every quantity is computed from its definition
with 1-indexed stages i = 1..D and steps t = 1..K.

* a(i, t): the input stage i works on at step t. a(1, t) = x^t; for i > 1 it
  is f_{i-1}(a(i-1, t-1)), so it comes from frame t-i+1 and is real when
  t-i+1 >= 1.
* c(i, t): the cotangent for stage i's output at step t. For the top,
  c(D, t) = ∂L(f_D(a(D, t)), y^t)/∂y; below, c(i, t) is stage i+1's input
  cotangent from step t-1: vjp of f_{i+1} at a(i+1, t-1) applied to
  c(i+1, t-1).
* m(i, t) = 1 iff t >= 2D - i; G_i = Σ_t m(i, t) vjp_θ f_i(a(i, t))[c(i, t)],
  gradient G_i / n_i with n_i = Σ_t m(i, t).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

import sideways_jax as sj
from sideways_jax.chain import split_variables


def reference_sideways(stages, variables, clip, targets, loss_fn):
  """Returns (per-stage mean gradients, per-stage valid counts, loss)."""
  num_stages, num_frames = len(stages), clip.shape[0]
  params = [split_variables(v)[0] for v in variables]
  states = [split_variables(v)[1] for v in variables]

  def f(i, p, a):  # i is 1-indexed
    return sj.apply_stage(stages[i - 1], p, states[i - 1], a, train=True,
                          rng=None)[0]

  @functools.lru_cache(maxsize=None)
  def a(i, t):
    if i == 1:
      return clip[t - 1]
    return f(i - 1, params[i - 2], a(i - 1, t - 1))

  @functools.lru_cache(maxsize=None)
  def c(i, t):
    if i == num_stages:
      out = f(num_stages, params[-1], a(num_stages, t))
      return jax.grad(loss_fn)(out, targets[t - 1])
    _, vjp = jax.vjp(lambda x: f(i + 1, params[i], x), a(i + 1, t - 1))
    return vjp(c(i + 1, t - 1))[0]

  grads, counts = [], []
  for i in range(1, num_stages + 1):
    total, count = None, 0
    for t in range(1, num_frames + 1):
      if t < 2 * num_stages - i:
        continue
      _, vjp = jax.vjp(lambda p: f(i, p, a(i, t)), params[i - 1])
      g = vjp(c(i, t))[0]
      total = g if total is None else jax.tree.map(jnp.add, total, g)
      count += 1
    grads.append(jax.tree.map(lambda x: x / count, total))
    counts.append(count)
  losses = [loss_fn(f(num_stages, params[-1], a(num_stages, t)),
                    targets[t - 1])
            for t in range(num_stages, num_frames + 1)]
  return tuple(grads), counts, jnp.mean(jnp.stack(losses))

"""Measuring speed: training steps per second and per-stage step costs.

A training step is one clip (K frames) and one optimizer update, as in the
paper's Table 2. The cost of a stage is what its device does in one Sideways
computation step, `kernel.stage_step`: forward and backward of one frame
batch and the gradient sum (the top stage includes the training loss; stage
1 skips its input gradient).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sideways_jax import chain as chain_lib
from sideways_jax import kernel


def random_batch(mesh: jax.sharding.Mesh, spec: P, clip_shape: Sequence[int],
                 num_classes: int, seed: int = 0) -> tuple[jax.Array,
                                                           jax.Array]:
  """A random-number clip [K, B, ...] and labels [K, B], made on the devices.

  Generated in place with the given sharding, so no host data moves and
  every process of a multi-host run gets its own shards.
  """
  sharding = NamedSharding(mesh, spec)
  num_frames, batch = clip_shape[:2]

  def make():
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    clip = jax.random.normal(k1, tuple(clip_shape), jnp.float32)
    labels = jax.random.randint(k2, (batch,), 0, num_classes)
    return clip, jnp.broadcast_to(labels, (num_frames, batch))
  return jax.jit(make, out_shardings=(sharding, sharding))()


def time_steps(step: Callable[[Any], tuple[Any, Any]], state: Any,
               num_steps: int) -> tuple[float, float, Any]:
  """Runs `state, out = step(state)` num_steps times, until the last is ready.

  Returns:
    (steps per second, this process's CPU seconds per wall second, the final
    state). The CPU share shows contention: one busy single-threaded device
    per process gives ~1.0 on an otherwise idle core.
  """
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1, got {num_steps}')
  wall, cpu = time.perf_counter(), time.process_time()
  for _ in range(num_steps):
    state, out = step(state)
  jax.block_until_ready(out)
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  return num_steps / wall, cpu / wall, state


def _stage_step_fn(stage: Any, state: dict, position: kernel.Position,
                   loss_fn: kernel.LossFn) -> Callable[..., Any]:
  """One Sideways step of one stage (`kernel.stage_step`), jitted."""
  def step(params, x, cotangent, grad_sum, target):
    return kernel.stage_step(stage, params, state, x, cotangent, grad_sum,
                             position=position, frame=0, train=True,
                             rng=jax.random.PRNGKey(0), loss_fn=loss_fn,
                             target=target)
  return jax.jit(step)


def stage_costs(stages: chain_lib.Stages, variables: chain_lib.ChainVariables,
                frame: jax.Array, target: Any, loss_fn: kernel.LossFn,
                num_iters: int) -> list[float]:
  """Seconds one Sideways step takes for each stage, on the default device.

  Args:
    stages: the chain.
    variables: its variables.
    frame: one device's frame batch [b, ...] (what stage 1 receives).
    target: the target of one frame batch (the top stage's loss).
    loss_fn: the training loss, `loss_fn(top_output, target) -> scalar`.
    num_iters: timed calls per stage (after one warm-up call); the mean is
      reported.

  Returns:
    Seconds per step, one entry per stage.
  """
  costs = []
  x = frame
  for i, (stage, stage_vars) in enumerate(zip(stages, variables)):
    params, state = chain_lib.split_variables(stage_vars)
    y = jax.jit(lambda p, a, stage=stage, state=state: chain_lib.apply_stage(
        stage, p, state, a, train=False, rng=None)[0])(params, x)
    fn = _stage_step_fn(stage, state, kernel.Position(i, len(stages)),
                        loss_fn)
    args = (params, x, jnp.ones_like(y), jax.tree.map(jnp.zeros_like, params),
            target)
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(num_iters):
      out = fn(*args)
    jax.block_until_ready(out)
    costs.append((time.perf_counter() - start) / num_iters)
    x = y
  return costs


def balance_bound(costs: Sequence[float]) -> float:
  """Sum of stage costs / largest stage cost.

  BP on D devices costs the sum per frame (one device at a time), Sideways
  the largest stage (all at once), so this bounds Sideways' speed-up over
  model-parallel BP (ideal: D, with perfectly balanced stages).
  """
  return float(sum(costs) / max(costs)) if costs and max(costs) > 0 else 1.0

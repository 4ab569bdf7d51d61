"""Mixed precision as a policy: parameters stored in fp32, computed in bf16.

    policy = Precision(compute_dtype=jnp.bfloat16)
    stages = policy.wrap(stages)       # or Trainer(..., precision=policy)

A wrapped stage casts its floating parameters and its input to the compute
dtype inside its forward pass, so every schedule (one device, mesh, BP or
Sideways) runs the stage in bf16 while the parameters, the gradients (the
cast's transpose brings them back to the parameters' fp32), the gradient
sums and the optimizer state stay fp32. Activations and cotangents passed
between stages are in the compute dtype (half the memory and traffic); the
top stage's output is cast to `output_dtype` so the loss is computed in
fp32. Mutable collections such as 'batch_stats' are left as they are.

Works with any Flax stage: nothing in the user's module has to take a
`dtype` argument.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from sideways_jax import chain as chain_lib


def cast_floating(tree: Any, dtype: Any) -> Any:
  """Floating leaves of `tree` cast to `dtype`; other leaves unchanged."""
  def cast(x):
    if jnp.issubdtype(jnp.result_type(x), jnp.floating):
      return jnp.asarray(x).astype(dtype)
    return x
  return jax.tree.map(cast, tree)


@dataclasses.dataclass(frozen=True)
class PolicyStage:
  """A stage run under a precision policy (duck-types `flax.linen.Module`).

  The engine calls only `init` and `apply` of a stage; both are forwarded to
  the wrapped module, so its variables keep their names and dtypes.
  """
  stage: Any
  compute_dtype: Any
  output_dtype: Any | None = None

  @property
  def rng_streams(self) -> tuple[str, ...]:
    return tuple(getattr(self.stage, 'rng_streams',
                         chain_lib.DEFAULT_RNG_STREAMS))

  @property
  def statistics_collections(self) -> tuple[str, ...]:
    return tuple(getattr(self.stage, 'statistics_collections',
                         chain_lib.STATISTICS_COLLECTIONS))

  def init(self, rngs: Any, x: jax.Array, **kwargs: Any) -> Any:
    return self.stage.init(rngs, x, **kwargs)

  def apply(self, variables: Any, x: jax.Array, *args: Any,
            mutable: Any = False, **kwargs: Any) -> Any:
    variables = dict(variables)
    if 'params' in variables:
      variables['params'] = cast_floating(variables['params'],
                                          self.compute_dtype)
    out = self.stage.apply(variables, cast_floating(x, self.compute_dtype),
                           *args, mutable=mutable, **kwargs)
    if self.output_dtype is None:
      return out
    if mutable:
      y, updates = out
      return cast_floating(y, self.output_dtype), updates
    return cast_floating(out, self.output_dtype)


@dataclasses.dataclass(frozen=True)
class Precision:
  """Which dtype stages compute in; parameters keep the dtype they have.

  Attributes:
    compute_dtype: every stage's forward and backward, and what moves
      between stages (e.g. jnp.bfloat16).
    output_dtype: the top stage's output, i.e. what the loss sees.
  """
  compute_dtype: Any = jnp.float32
  output_dtype: Any = jnp.float32

  def wrap(self, stages: Sequence[Any]) -> tuple[Any, ...]:
    """The stages under this policy (unchanged when it computes in fp32)."""
    if jnp.dtype(self.compute_dtype) == jnp.float32:
      return tuple(stages)
    last = len(stages) - 1
    return tuple(PolicyStage(stage, self.compute_dtype,
                             self.output_dtype if i == last else None)
                 for i, stage in enumerate(stages))


def policy(name: str) -> Precision:
  """'float32' or 'bfloat16' (compute dtype; parameters stay fp32)."""
  policies = {'float32': Precision(), 'bfloat16': Precision(jnp.bfloat16)}
  if name not in policies:
    raise ValueError(f'precision must be one of {tuple(policies)}, got '
                     f'{name!r}')
  return policies[name]

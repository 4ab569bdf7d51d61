"""A model as a chain of Flax stages, and how one stage is applied.

A stage is any `flax.linen.Module` whose `__call__(x, train)` maps a batch of
one frame per clip, [B, ...], to [B, ...], or a temporal stage whose
`__call__(x, carry, train)` also takes and returns the state it carries from
one frame to the next (see `sideways_jax.temporal`). Each stage owns its
variables: a dict with 'params' and, optionally, per-frame statistics such
as 'batch_stats'. Dropout draws from the rng collection 'dropout'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import zlib

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import temporal

Stages = Sequence[nn.Module]
StageVariables = Mapping[str, Any]   # {'params': ..., 'batch_stats': ...}
ChainVariables = Sequence[StageVariables]
Params = Any                          # a pytree of arrays


def split_variables(variables: StageVariables) -> tuple[Params, dict]:
  """Splits one stage's variables into (params, other collections).

  A stage without parameters (a pooling or activation stage) has no
  'params' collection: its params are an empty dict.
  """
  state = {k: v for k, v in variables.items() if k != 'params'}
  return variables.get('params', {}), state


def _apply(stage: Any, params: Params, state: Mapping[str, Any],
           args: tuple, *, train: bool,
           rng: jax.Array | None) -> tuple[Any, dict]:
  """`stage.apply(variables, *args, train=train)`, state made mutable."""
  rngs = None if rng is None else stage_rngs(stage, rng)
  variables = {'params': params, **state}
  if train and state:
    out, updates = stage.apply(variables, *args, train=True, rngs=rngs,
                               mutable=list(state))
    return out, {**state, **updates}
  return stage.apply(variables, *args, train=train, rngs=rngs), dict(state)


def apply_stage(stage: nn.Module, params: Params, state: Mapping[str, Any],
                x: jax.Array, *, train: bool,
                rng: jax.Array | None) -> tuple[jax.Array, dict]:
  """Runs one frame stage on a batch; returns (output, updated mutable state).

  In training mode every non-param collection is mutable (batchnorm updates
  its running statistics); in eval mode the state is returned unchanged.
  The key feeds every rng stream the stage names (`rng_streams`, default
  ('dropout',)). A temporal stage needs its carry: `apply_temporal_stage`.
  """
  if temporal.is_temporal(stage):
    raise ValueError(
        f'{type(stage).__name__} is a temporal stage (it has init_carry): it '
        'runs with its carry (chain.apply_temporal_stage, chain.apply_clip), '
        'frame after frame; frame-at-a-time code cannot run it')
  return _apply(stage, params, state, (x,), train=train, rng=rng)


def apply_temporal_stage(stage: Any, params: Params,
                         state: Mapping[str, Any], x: jax.Array, carry: Any,
                         *, train: bool, rng: jax.Array | None
                         ) -> tuple[jax.Array, dict, Any]:
  """Runs a temporal stage on one frame batch with its carry.

  Returns (output, updated mutable state, the carry for the next frame, in
  the dtypes of `carry`).
  """
  (y, new_carry), new_state = _apply(stage, params, state, (x, carry),
                                     train=train, rng=rng)
  return y, new_state, temporal.like(new_carry, carry)


def apply_any_stage(stage: Any, params: Params, state: Mapping[str, Any],
                    x: jax.Array, carry: Any, *, train: bool,
                    rng: jax.Array | None) -> tuple[jax.Array, dict, Any]:
  """A frame stage (carry None, returned None) or a temporal one."""
  if carry is None:
    return (*apply_stage(stage, params, state, x, train=train, rng=rng),
            None)
  return apply_temporal_stage(stage, params, state, x, carry, train=train,
                              rng=rng)


DEFAULT_RNG_STREAMS = ('dropout',)
# Collections that hold per-frame statistics: each frame updates them and an
# episode keeps the mean of the updates (batchnorm's running statistics).
STATISTICS_COLLECTIONS = ('batch_stats',)


def stage_rngs(stage: Any, rng: jax.Array) -> dict[str, jax.Array]:
  """One key per rng stream of the stage (`stage.rng_streams`).

  The first stream gets `rng` itself (so 'dropout' keys do not change when a
  stage names more streams); the others get `rng` folded with their name.
  """
  streams = tuple(getattr(stage, 'rng_streams', DEFAULT_RNG_STREAMS))
  return {name: rng if i == 0 else jax.random.fold_in(
      rng, zlib.crc32(name.encode()) & 0x7FFFFFFF)
          for i, name in enumerate(streams)}


def apply_chain(stages: Stages, variables: ChainVariables, x: jax.Array, *,
                train: bool = False, rng: jax.Array | None = None,
                frame: jax.Array | int = 0) -> tuple[jax.Array, tuple[dict, ...]]:
  """Runs every stage in order on one frame batch [B, ...] (a plain forward).

  Args:
    stages: the stage chain.
    variables: one variables dict per stage.
    x: the input batch [B, ...].
    train: training mode (batchnorm statistics, dropout).
    rng: dropout key; stage i uses `stage_rng(rng, frame, i)`.
    frame: the index of the frame `x` holds (keys dropout, see `stage_rng`).

  Returns:
    (the top stage's output, each stage's updated mutable state).
  """
  new_states = []
  for i, (stage, stage_vars) in enumerate(zip(stages, variables)):
    params, state = split_variables(stage_vars)
    x, new_state = apply_stage(stage, params, state, x, train=train,
                               rng=stage_rng(rng, frame, i))
    new_states.append(new_state)
  return x, tuple(new_states)


def output_shapes(stages: Stages, variables: ChainVariables,
                  frame: Any) -> list[jax.ShapeDtypeStruct]:
  """Each stage's output shape for an input like `frame` (no FLOPs run).

  `frame` may be an array or a `jax.ShapeDtypeStruct` [B, ...]; variables may
  be abstract too.
  """
  shapes = []
  x = jax.ShapeDtypeStruct(jnp.shape(frame), jnp.result_type(frame))
  for i, (stage, stage_vars) in enumerate(zip(stages, variables)):
    params, state = split_variables(stage_vars)
    try:
      x = jax.eval_shape(
          lambda p, s, a, stage=stage: apply_any_stage(
              stage, p, s, a, temporal.zero_carry(stage, a), train=False,
              rng=None)[0], params, state, x)
    except Exception as e:  # pylint: disable=broad-except
      # Flax raises its own error classes for shape mismatches.
      if i > 0:
        raise
      # The first stage is where a wrongly laid-out clip fails.
      raise ValueError(
          f'the first stage cannot take frames of shape {x.shape} '
          f'({type(e).__name__}: {str(e).splitlines()[0]}). Clips are '
          'time-major [K, B, *frame], e.g. [K, B, H, W, C] for images, with '
          'frames shaped like the example the chain was initialised on') from e
    shapes.append(x)
  return shapes


def init_chain(stages: Stages, rng: jax.Array,
               example_frame: jax.Array) -> tuple[dict, ...]:
  """Initialises every stage in order on an example batch [B, ...].

  Returns a tuple with one variables dict per stage. Each stage's init is
  jitted (op-by-op initialisation is slow on CPU) and only the shape of the
  previous stage's output is propagated: initialisers do not read values.
  """
  variables = []
  x = jax.ShapeDtypeStruct(jnp.shape(example_frame),
                           jnp.result_type(example_frame))
  for i, stage in enumerate(stages):
    key = jax.random.fold_in(rng, i)
    # A temporal stage is initialised on the first frame of a clip, by the
    # module that defines its carry (wrappers forward `init` unchanged).
    owner = temporal.interface(stage) or stage
    init = jax.jit(lambda k, a, stage=stage, owner=owner: owner.init(
        {**stage_rngs(stage, k), 'params': k}, a,
        *temporal.carry_args(stage, a), train=False))
    stage_vars = dict(init(key, jnp.zeros(x.shape, x.dtype)))
    check_collections(i, stage, stage_vars)
    variables.append(stage_vars)
    x = output_shapes((stage,), (stage_vars,), x)[0]
  return tuple(variables)


def input_shapes(stages: Stages, variables: ChainVariables,
                 frame: Any) -> list[jax.ShapeDtypeStruct]:
  """Each stage's input shape (the frame's, then the outputs below it)."""
  spec = jax.ShapeDtypeStruct(jnp.shape(frame), jnp.result_type(frame))
  return [spec, *output_shapes(stages, variables, frame)[:-1]]


def zero_carries(stages: Stages, variables: ChainVariables,
                 frame: Any) -> tuple[Any, ...]:
  """Every stage's clip-start carry (None for frame stages)."""
  return tuple(temporal.zero_carry(stage, x) for stage, x in zip(
      stages, input_shapes(stages, variables, frame)))


def is_temporal_chain(stages: Stages) -> bool:
  """Whether any stage carries state across frames."""
  return any(temporal.is_temporal(stage) for stage in stages)


def apply_clip(stages: Stages, variables: ChainVariables,
               clip: jax.Array) -> jax.Array:
  """Eval-mode outputs of every frame: clip [K, B, ...] -> [K, B, ...].

  A frame chain runs all frames at once (`vmap`); a chain with temporal
  stages runs them in order, each stage's carry starting at zeros.
  """
  if not is_temporal_chain(stages):
    return jax.vmap(lambda x: apply_chain(stages, variables, x)[0])(clip)
  split = [split_variables(v) for v in variables]

  def body(carries, x):
    new_carries = []
    for stage, (params, state), carry in zip(stages, split, carries):
      x, _, carry = apply_any_stage(stage, params, state, x, carry,
                                    train=False, rng=None)
      new_carries.append(carry)
    return tuple(new_carries), x

  _, outputs = lax.scan(body, zero_carries(stages, variables, clip[0]), clip)
  return outputs


def init_chain_shapes(stages: Stages,
                      example_frame: Any) -> tuple[dict, ...]:
  """What `init_chain` returns, as ShapeDtypeStructs (nothing computed)."""
  spec = jax.ShapeDtypeStruct(tuple(jnp.shape(example_frame)),
                              jnp.result_type(example_frame))
  return jax.eval_shape(
      lambda f: init_chain(stages, jax.random.PRNGKey(0), f), spec)


def validate_chain(stages: Stages, variables: ChainVariables) -> None:
  """Raises a ValueError when stages and variables do not pair up.

  The state contract: besides 'params', a stage may hold only per-frame
  statistics (`STATISTICS_COLLECTIONS`, or the stage's own
  `statistics_collections`), which every frame updates and an episode
  averages. State carried from one frame to the next goes through a
  temporal stage's explicit carry (`sideways_jax.temporal`), never through
  a mutable collection: there every frame would silently see the clip's
  initial state, so such a collection is refused.
  """
  if len(stages) == 0:
    raise ValueError('a stage chain needs at least one stage')
  if len(stages) != len(variables):
    raise ValueError(
        f'got {len(stages)} stages but {len(variables)} variable dicts: '
        'pass one variables dict per stage (see sideways_jax.init_chain)')
  for i, (stage, stage_vars) in enumerate(zip(stages, variables)):
    check_collections(i, stage, stage_vars)


def check_collections(index: int, stage: Any,
                      stage_vars: StageVariables) -> None:
  """Refuses a collection that is neither params nor per-frame statistics."""
  allowed = tuple(getattr(stage, 'statistics_collections',
                          STATISTICS_COLLECTIONS))
  other = sorted(set(stage_vars) - {'params', *allowed})
  if other:
    raise ValueError(
        f'stage {index} holds mutable collection(s) {other}: only per-frame '
        f'statistics {list(allowed)} are supported (averaged over the '
        'frames of an episode). For state carried across frames write a '
        'temporal stage: init_carry(x) and __call__(x, carry, train) -> '
        '(y, carry), see sideways_jax.temporal; for per-frame statistics '
        'set the stage attribute `statistics_collections`.')


def validate_clip(clip: jax.Array, targets: Any) -> tuple[int, int]:
  """Checks that clip [K, B, ...] and targets [K, B, ...] are time-major.

  Returns:
    (K, B): the number of frames and the batch size.
  """
  clip_shape = jnp.shape(clip)
  dtype = jnp.result_type(clip)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(
        f'clip must be floating point, got {dtype}: normalise the frames '
        'first, e.g. clip.astype(jnp.float32) / 255 (or subtract a mean and '
        'divide by a standard deviation)')
  if len(clip_shape) < 3:
    raise ValueError(
        f'clip must be time-major [K, B, ...] (e.g. [K, B, H, W, C]), '
        f'got shape {clip_shape}')
  num_frames, batch = clip_shape[:2]
  for leaf in jax.tree.leaves(targets):
    shape = jnp.shape(leaf)
    if len(shape) < 2 or tuple(shape[:2]) != (num_frames, batch):
      raise ValueError(
          'clip and targets must both be time-major: clip [K, B, ...] and '
          f'targets [K, B, ...] (one target per frame); got clip {clip_shape} '
          f'and targets {shape}. For one label per clip, repeat it over K, '
          'e.g. jnp.broadcast_to(labels, (K,) + labels.shape).')
  return num_frames, batch


def stage_rng(rng: jax.Array | None, frame: jax.Array | int,
              stage: int) -> jax.Array | None:
  """The dropout key of `stage` when it processes frame number `frame`.

  Keying by the frame the data came from (not by the step) gives a frame the
  same dropout masks under BP and Sideways.
  """
  if rng is None:
    return None
  frame = jnp.maximum(jnp.asarray(frame, jnp.int32), 0)
  return jax.random.fold_in(jax.random.fold_in(rng, frame), stage)

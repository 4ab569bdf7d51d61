"""Bring your own Flax model: a list of its layers -> Sideways stages.

    stages = sj.flax_stages.from_layers([
        ('conv_init', nn.Conv(64, (7, 7), (2, 2))),        # no `train` arg
        ('bn_init', Factory(lambda train: nn.BatchNorm(
            use_running_average=not train, axis_name='batch'))),
        ('pool', Function(lambda x: nn.max_pool(nn.relu(x), (3, 3), (2, 2)))),
        ('ResNetBlock_0', Factory(lambda train: ResNetBlock(64, ...))),
        ...
        ('Dense_0', nn.Dense(10)),
    ], num_stages=4, frame_shape=(32, 32, 3), batch_axis_name='batch')
    variables = sj.flax_stages.import_variables(stages, uncut_variables)

Each entry is (name, layer). The name is the layer's name in the uncut
model's variable tree, so `import_variables` can carry a trained image
network's weights over to the stages unchanged. A layer is

* a Flax module: called with the mode in whichever convention its
  `__call__` takes (`train=`, `deterministic=not train`,
  `use_running_average=not train`, or none) unless the module already fixes
  it as an attribute;
* `Factory(fn)`: `fn(train) -> module`, for modules whose mode is fixed at
  construction (the blocks of Flax's ImageNet ResNet take `norm=partial(
  nn.BatchNorm, use_running_average=not train)`);
* `Function(fn)`: a parameter-free `fn(x) -> y` (activations, pooling).

**BatchNorm with `axis_name`.** A module written for `pmap` averages its
batch statistics over a named axis. With `batch_axis_name` set, every
`nn.BatchNorm` naming that axis runs as if the axis had a single member
(its cross-replica mean is skipped), so the statistics are taken over the
B clips of a frame that the stage holds: the whole batch on one device, a
data shard on a mesh (`mesh.data` > 1), whose running statistics the mesh
averages over shards after each clip, as it does for any batchnorm.

**Rng streams.** A stage draws from the streams named in `rng_streams`
(default ('dropout',)); each gets its own key per stage and frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from sideways_jax import chain as chain_lib
from sideways_jax.models import partition


Factory = partition.Factory
Function = partition.Function


@dataclasses.dataclass(frozen=True)
class AdaptedStage:
  """A stage with a bound batch axis and named rng streams.

  Duck-types a Flax module for the engine, which calls only `init` and
  `apply`; both are forwarded to `stage`.
  """
  stage: Any
  batch_axis_name: str | None = None
  rng_streams: tuple[str, ...] = chain_lib.DEFAULT_RNG_STREAMS

  @property
  def statistics_collections(self) -> tuple[str, ...]:
    return tuple(getattr(self.stage, 'statistics_collections',
                         chain_lib.STATISTICS_COLLECTIONS))

  def _bound(self, fn: Callable[[jax.Array], Any], x: jax.Array) -> Any:
    if self.batch_axis_name is None:
      return fn(x)
    with nn.intercept_methods(_one_member_axis(self.batch_axis_name)):
      return fn(x)

  def init(self, rngs: Any, x: jax.Array, *args: Any, **kwargs: Any) -> Any:
    return self._bound(lambda a: self.stage.init(rngs, a, *args, **kwargs), x)

  def apply(self, variables: Any, x: jax.Array, *args: Any,
            **kwargs: Any) -> Any:
    return self._bound(
        lambda a: self.stage.apply(variables, a, *args, **kwargs), x)


def _one_member_axis(axis_name: str) -> Callable[..., Any]:
  """Runs BatchNorms that average over `axis_name` as if it had one member.

  Their cross-replica mean is then the identity, so the axis is dropped for
  the call. (Binding it with a one-member `vmap` instead fails inside the
  mesh's `shard_map`, whose collectives accept only mesh axes.) The module
  is the per-call copy Flax binds, so the change never outlives the call.
  """
  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    if (context.method_name != '__call__'
        or not isinstance(module, nn.BatchNorm)
        or module.axis_name != axis_name):
      return next_fun(*args, **kwargs)
    object.__setattr__(module, 'axis_name', None)
    try:
      return next_fun(*args, **kwargs)
    finally:
      object.__setattr__(module, 'axis_name', axis_name)
  return interceptor


def from_layers(layers: Sequence[tuple[str, Any]], *,
                num_stages: int | None = None,
                boundaries: Sequence[int] | None = None,
                frame_shape: Sequence[int] | None = None,
                batch_axis_name: str | None = None,
                rng_streams: Sequence[str] = chain_lib.DEFAULT_RNG_STREAMS
                ) -> tuple[Any, ...]:
  """Cuts a list of (name, layer) into stages (see the module docstring).

  Args:
    layers: the model's layers bottom first, as (name, layer) with layer a
      Flax module, a `Factory` or a `Function`.
    num_stages: how many stages; a FLOP-balanced cut unless it equals the
      number of layers (one layer per stage). Needs `frame_shape`.
    boundaries: explicit cuts instead (indices of layers opening a stage).
    frame_shape: one frame's (H, W, C): the FLOPs of a layer depend on it.
    batch_axis_name: the axis name the model's BatchNorm averages over
      (e.g. 'batch'), or None.
    rng_streams: the rng streams the layers draw from.

  Returns:
    The stages, bottom first, ready for `sj.init_chain` / `sj.Trainer`.
  """
  named = [partition.Layer(name, layer) for name, layer in layers]
  stages = partition.make_stages(named, num_stages=num_stages,
                                 boundaries=boundaries,
                                 frame_shape=frame_shape,
                                 batch_axis_name=batch_axis_name)
  return tuple(AdaptedStage(stage, batch_axis_name, tuple(rng_streams))
               for stage in stages)


def _layer_names(stage: Any) -> tuple[str, ...]:
  while not hasattr(stage, 'names'):
    stage = stage.stage  # Unwrap AdaptedStage / precision.PolicyStage.
  return stage.names


def import_variables(stages: Sequence[Any],
                     uncut_variables: Mapping[str, Any],
                     example_frame: Any) -> tuple[dict, ...]:
  """Per-stage variables taken by name from the uncut model's variables.

  Args:
    stages: from `from_layers`.
    uncut_variables: the whole model's variables, e.g. {'params': {...},
      'batch_stats': {...}} with the layer names at the top of each
      collection.
    example_frame: one frame batch [B, H, W, C] (array or shape) to check
      shapes against.

  Returns:
    One variables dict per stage, shaped exactly as `init_chain` makes them.

  Raises:
    ValueError: a layer with variables missing from `uncut_variables`, or a
      shape that differs (naming the layer and the array).
  """
  expected = chain_lib.init_chain_shapes(stages, example_frame)
  out = []
  for i, (stage, want) in enumerate(zip(stages, expected)):
    got = {collection: {name: uncut_variables[collection][name]
                        for name in _layer_names(stage)
                        if name in uncut_variables.get(collection, {})}
           for collection in want}
    _check_same_shapes(i, want, got)
    out.append(jax.tree.map(jnp.asarray, got))
  return tuple(out)


def _check_same_shapes(index: int, want: Any, got: Any) -> None:
  want_paths = dict(jax.tree_util.tree_flatten_with_path(want)[0])
  got_paths = dict(jax.tree_util.tree_flatten_with_path(got)[0])
  for path, spec in want_paths.items():
    where = jax.tree_util.keystr(path)
    if path not in got_paths:
      raise ValueError(f'stage {index}: the uncut variables have no {where}')
    if tuple(jnp.shape(got_paths[path])) != tuple(spec.shape):
      raise ValueError(f'stage {index}: {where} has shape '
                       f'{tuple(jnp.shape(got_paths[path]))} in the uncut '
                       f'variables, the stage expects {tuple(spec.shape)}')

"""Cutting an ordered list of layers into Sideways stages.

A network is first written as a sequence of named layers (each a Flax module
with the stage signature `__call__(x, train)`), then grouped into contiguous
stages. Cuts are given as *boundaries*: the indices of the layers that open a
new stage, after the first. For 6 layers, boundaries (2, 4) give the stages
layers[0:2], layers[2:4], layers[4:6]; () gives one stage holding everything.

Each stage keeps its layers' names as the top keys of its variables
(`{'params': {'conv1': ..., 'conv2': ...}}`), so variables move between two
partitions of the same network by name (`regroup_variables`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import inspect
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from sideways_jax.models.describe import describe_layers


class Layer(NamedTuple):
  """One named layer of a network, before it is grouped into stages.

  `module` is a Flax module (called with the mode in its own convention, see
  `mode_kwargs`), a `Factory` or a `Function`.
  """
  name: str
  module: Any


class Factory(NamedTuple):
  """A layer built when called: `build(train) -> flax module`."""
  build: Callable[[bool], nn.Module]


class Function(NamedTuple):
  """A parameter-free layer: `fn(x) -> y`."""
  fn: Callable[[jax.Array], jax.Array]


class Modes(NamedTuple):
  """A `Factory`'s two modules, built once outside any parent module.

  (Built inside a stage's call, Flax would name them itself.)
  """
  train: nn.Module
  eval: nn.Module


def resolve_layer(layer: Any) -> Any:
  """A layer as a stage stores it: a `Factory` becomes its `Modes`."""
  if isinstance(layer, Factory):
    return Modes(layer.build(True), layer.build(False))
  return layer


# Call keywords by which Flax modules take the mode, and how to set them.
_MODE_KEYWORDS = (('train', lambda train: train),
                  ('deterministic', lambda train: not train),
                  ('use_running_average', lambda train: not train))


def mode_kwargs(module: nn.Module, train: bool) -> dict[str, bool]:
  """The keyword that tells `module` the mode, in its own convention.

  Empty when its `__call__` takes none of them, or when the module already
  fixes the value as an attribute (Flax refuses it set twice).
  """
  parameters = inspect.signature(type(module).__call__).parameters
  for keyword, value in _MODE_KEYWORDS:
    if keyword in parameters:
      if getattr(module, keyword, None) is not None:
        return {}
      return {keyword: value(train)}
  return {}


def call_layer(parent: nn.Module, name: str, layer: Any, x: jax.Array,
               train: bool) -> jax.Array:
  """Applies one layer inside `parent`, its variables keyed by `name`.

  `layer` is a Flax module, `Modes` (see `resolve_layer`) or a `Function`.
  """
  if isinstance(layer, Function):
    return layer.fn(x)
  module = (layer.train if train else layer.eval) if isinstance(
      layer, Modes) else layer
  # Cloning under the parent with an explicit name keys the variables by
  # the layer's name (as in the uncut model), not by position.
  return module.clone(parent=parent, name=name)(x, **mode_kwargs(module,
                                                                 train))


class Stage(nn.Module):
  """A contiguous run of layers applied in order: one Sideways module.

  Attributes:
    layers: the layer modules, bottom first.
    names: their names, which key this stage's variables.
  """
  layers: tuple[nn.Module, ...]
  names: tuple[str, ...]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if len(self.layers) != len(self.names):
      raise ValueError(f'{len(self.layers)} layers but {len(self.names)} names')
    for name, layer in zip(self.names, self.layers):
      x = call_layer(self, name, layer, x, train)
    return x


def validate_boundaries(boundaries: Sequence[int],
                        num_layers: int) -> tuple[int, ...]:
  """Checks that boundaries cut `num_layers` layers into non-empty stages.

  Args:
    boundaries: indices of the layers that start a new stage (not 0).
    num_layers: how many layers the network has.

  Returns:
    The boundaries as a tuple of ints.

  Raises:
    ValueError: if a boundary is not an int in [1, num_layers - 1], or the
      boundaries are not strictly increasing.
  """
  if num_layers < 1:
    raise ValueError(f'a network needs at least one layer, got {num_layers}')
  bounds = tuple(boundaries)
  for b in bounds:
    if isinstance(b, bool) or not isinstance(b, int):
      raise ValueError(f'boundaries must be ints, got {bounds!r}')
    if not 1 <= b <= num_layers - 1:
      raise ValueError(
          f'boundary {b} is out of range: with {num_layers} layers each '
          f'boundary must be in [1, {num_layers - 1}], got {bounds!r}')
  if any(a >= b for a, b in zip(bounds, bounds[1:])):
    raise ValueError(f'boundaries must be strictly increasing, got {bounds!r}')
  return bounds


def stage_slices(boundaries: Sequence[int], num_layers: int) -> list[slice]:
  """The layer slices of each stage that `boundaries` define."""
  edges = (0, *validate_boundaries(boundaries, num_layers), num_layers)
  return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def group_layers(layer_list: Sequence[Layer],
                 boundaries: Sequence[int]) -> tuple[Stage, ...]:
  """Groups named layers into stages, cutting before each boundary index."""
  layer_list = tuple(layer_list)
  names = [layer.name for layer in layer_list]
  if len(set(names)) != len(names):
    raise ValueError(f'layer names must be unique, got {names}')
  return tuple(
      Stage(layers=tuple(resolve_layer(l.module) for l in layer_list[s]),
            names=tuple(l.name for l in layer_list[s]))
      for s in stage_slices(boundaries, len(layer_list)))


def check_num_stages(num_stages: int, num_layers: int) -> None:
  """Raises a ValueError unless 1 <= num_stages <= num_layers."""
  if num_stages < 1:
    raise ValueError(f'num_stages must be >= 1, got {num_stages}')
  if num_stages > num_layers:
    raise ValueError(
        f'cannot cut {num_layers} layers into {num_stages} stages: every '
        f'stage needs at least one layer, so use at most {num_layers} stages')


def balanced_boundaries(costs: Sequence[float],
                        num_stages: int) -> tuple[int, ...]:
  """Contiguous partition of per-layer costs minimising the largest stage.

  Exact dynamic programme over split points, O(num_stages * n^2): cheap for
  the handful of layers a video network has. Among the partitions with the
  smallest largest stage, the one with the smallest sum of squared stage
  costs is taken: when one layer outweighs the rest, the rest is still
  spread evenly (rather than a cost-free layer left alone as a stage);
  remaining ties go to the last cut as early as possible.

  Args:
    costs: non-negative cost of each layer (e.g. forward FLOPs per frame).
    num_stages: how many non-empty stages to cut them into.

  Returns:
    The boundaries (see `validate_boundaries`) of an optimal partition.

  Raises:
    ValueError: if num_stages < 1 or > len(costs), or a cost is negative.
  """
  n = len(costs)
  check_num_stages(num_stages, n)
  if any(c < 0 for c in costs):
    raise ValueError(f'costs must be non-negative, got {list(costs)}')
  prefix = [0]
  for c in costs:
    prefix.append(prefix[-1] + c)
  inf = float('inf')

  def solve(combine, limit=inf):
    # best[j][m]: the best value for layers[:m] in j stages; cut[j][m]: the
    # start of the last of them.
    best = [[inf] * (n + 1) for _ in range(num_stages + 1)]
    cut = [[0] * (n + 1) for _ in range(num_stages + 1)]
    best[0][0] = 0
    for j in range(1, num_stages + 1):
      for m in range(j, n + 1):
        for p in range(j - 1, m):
          stage = prefix[m] - prefix[p]
          if stage > limit:
            continue
          value = combine(best[j - 1][p], stage)
          if value < best[j][m]:
            best[j][m], cut[j][m] = value, p
    return best, cut

  # The smallest largest stage, then the most even split under it.
  best, _ = solve(max)
  _, cut = solve(lambda total, stage: total + stage * stage,
                 limit=best[num_stages][n])
  bounds = []
  m = n
  for j in range(num_stages, 1, -1):
    m = cut[j][m]
    bounds.append(m)
  return tuple(reversed(bounds))


def make_stages(layer_list: Sequence[Layer], *,
                num_stages: int | None = None,
                boundaries: Sequence[int] | None = None,
                frame_shape: Sequence[int] | None = None,
                batch_axis_name: str | None = None
               ) -> tuple[Stage, ...]:
  """Cuts a network's layers into stages.

  With neither `num_stages` nor `boundaries`, one layer per stage (the
  paper's cuts); `num_stages` equal to the number of layers is the same.
  With `boundaries`, exactly those cuts. With any other `num_stages`, the
  partition that minimises the largest stage's forward FLOPs per frame of
  shape `frame_shape` (FLOPs of fully-connected layers depend on the
  resolution, so it has no default).

  Args:
    layer_list: the network's named layers, bottom first.
    num_stages: number of stages for a FLOP-balanced partition.
    boundaries: explicit cuts (indices of layers opening a stage, not 0).
    frame_shape: one frame's shape (H, W, C), for the FLOP counts; required
      by a balanced cut, unused otherwise.
    batch_axis_name: the axis the layers' BatchNorm averages over (bound to
      one member while counting FLOPs), if any.

  Returns:
    The stages, bottom first.

  Raises:
    ValueError: both num_stages and boundaries, bad cuts, or a balanced
      cut without frame_shape.
  """
  layer_list = tuple(layer_list)
  n = len(layer_list)
  if num_stages is not None and boundaries is not None:
    raise ValueError('give num_stages or boundaries, not both')
  if boundaries is not None:
    return group_layers(layer_list, boundaries)
  if num_stages is None or num_stages == n:
    return group_layers(layer_list, range(1, n))
  check_num_stages(num_stages, n)
  if frame_shape is None:
    raise ValueError(
        f'cutting {n} layers into {num_stages} FLOP-balanced stages needs '
        'frame_shape=(H, W, C) of one input frame: the FLOPs of each layer '
        'depend on it')
  example = jax.ShapeDtypeStruct((1, *frame_shape), jnp.float32)
  costs = [row.flops for row in describe_layers(
      layer_list, example, axis_name=batch_axis_name)]
  return group_layers(layer_list, balanced_boundaries(costs, num_stages))


def stage_builder(layers_fn: Callable[..., Sequence[Layer]],
                  summary: str) -> Callable[..., tuple[Stage, ...]]:
  """A model's stage builder from its layer-list builder.

  The builder takes `layers_fn`'s arguments plus the keyword-only cut
  arguments of `make_stages` (num_stages, boundaries, frame_shape), and its
  signature says so (`inspect.signature` shows all of them).

  Args:
    layers_fn: returns the network's named layers.
    summary: the builder's one-line docstring.

  Returns:
    `fn(*layers_args, num_stages=None, boundaries=None, frame_shape=None,
    **layers_kwargs) -> tuple[Stage, ...]`.
  """

  def build(*args: Any, num_stages: int | None = None,
            boundaries: Sequence[int] | None = None,
            frame_shape: Sequence[int] | None = None,
            **kwargs: Any) -> tuple[Stage, ...]:
    return make_stages(layers_fn(*args, **kwargs), num_stages=num_stages,
                       boundaries=boundaries, frame_shape=frame_shape)

  cut = [p for p in inspect.signature(make_stages).parameters.values()
         if p.kind == p.KEYWORD_ONLY]
  layer_params = inspect.signature(layers_fn).parameters.values()
  build.__signature__ = inspect.Signature(
      [*layer_params, *cut], return_annotation=tuple[Stage, ...])
  build.__name__ = build.__qualname__ = layers_fn.__name__.removesuffix(
      '_layers')
  build.__module__ = layers_fn.__module__
  build.__doc__ = (f'{summary}\n\nTakes the arguments of '
                   f'`{layers_fn.__name__}` and the cut of `make_stages`: '
                   'num_stages (FLOP-balanced), boundaries (explicit) and '
                   'frame_shape (required by a balanced cut).')
  return build


def regroup_variables(variables: Sequence[Mapping[str, Any]],
                      stages: Sequence[Stage]) -> tuple[dict, ...]:
  """Re-splits per-stage variables of one partition for another partition.

  Works because each stage keys its variables by layer name; both partitions
  must come from the same layer list.

  Args:
    variables: one variables dict per stage of the old partition.
    stages: the new partition's stages.

  Returns:
    One variables dict per new stage, holding the same arrays.
  """
  by_layer: dict[str, dict[str, Any]] = {}  # collection -> name -> tree
  for stage_vars in variables:
    for collection, tree in stage_vars.items():
      by_layer.setdefault(collection, {}).update(tree)
  new_names = {n for stage in stages for n in stage.names}
  dropped = sorted({n for trees in by_layer.values() for n in trees}
                   - new_names)
  if dropped:
    raise ValueError(f'the new stages have no layers named {dropped}: they '
                     'must come from the same layer list')
  out = []
  for stage in stages:
    # Every stage gets a 'params' entry, even a parameter-free one.
    stage_vars = {'params': {}}
    for collection, trees in by_layer.items():
      picked = {n: trees[n] for n in stage.names if n in trees}
      if picked:
        stage_vars[collection] = picked
    out.append(stage_vars)
  return tuple(out)

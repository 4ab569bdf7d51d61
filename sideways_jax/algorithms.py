"""The algorithm table: every way to train a chain, by name, in one place.

    fn = grad_fn('sideways', target_alignment='origin')   # one device
    fn = grad_fn('bp', mode='scanned')
    result = fn(stages, variables, clip, targets, loss_fn, rng=rng, train=True)

Each `Algorithm` holds its single-device gradient function (if it has one),
its per-device mesh program (an import path, so that the engine does not
import `sideways_jax.parallel`), its options with their defaults and allowed
values, and its shortest clip. Trainers and runners read this table; none
spells an algorithm name or an option value of its own.

'bp' is exact backpropagation: on one device `bp_grads`, on a mesh the
paper's model-parallel baseline (one stage per device, one device busy at a
time). The other BP layouts exist only on a mesh: 'bp_data' (the whole chain
on every device, batch split), 'bp_gpipe' and 'bp_1f1b' (pipelined over the
clip's frames). All four give BP's numbers; 'sideways' gives the paper's.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax

from sideways_jax import bp
from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax import result as result_lib
from sideways_jax import sideways
from sideways_jax import temporal

DEVICE = 'device'   # placement: the engine's function on one device
MESH = 'mesh'       # placement: a program over a ('data', 'stage') mesh


@dataclasses.dataclass(frozen=True)
class Option:
  """One option: its default, its allowed values (None: any) and where used."""
  default: Any
  choices: tuple[Any, ...] | None = None
  placements: tuple[str, ...] = (DEVICE, MESH)
  help: str = ''

  def check(self, name: str, value: Any) -> None:
    if self.choices is not None and value not in self.choices:
      raise ValueError(f'{name} must be one of {self.choices}, got {value!r}')


_UNROLL = Option(1, help='passed to the lax.scan over frames (ticks)')


@dataclasses.dataclass(frozen=True)
class Algorithm:
  """One row of the table.

  Attributes:
    name: the word a user types.
    description: one line for tables and error messages.
    exact: computes BP's gradients (False: the Sideways approximation).
    grads: the single-device gradient function, or None (mesh only).
    mesh_program: 'module:Class' of the mesh program (a
      `sideways_jax.parallel.MeshProgram` subclass, built as
      `cls(MeshSetup, **options)`), or None (one device only).
    options: name -> Option, the only keywords the algorithm takes.
    pipelined: stages of different frames work at once (a speed-up on D
      devices); False for 'bp' (one device busy at a time) and 'bp_data'.
    min_clip_length: `fn(D) -> K`, the shortest clip in which every stage
      gets a gradient.
    check_clip_length: `fn(K, D)` raising a ValueError (that says why) for
      a clip too short.
  """
  name: str
  description: str
  exact: bool
  grads: Callable[..., result_lib.GradResult] | None
  mesh_program: str | None
  options: Mapping[str, Option]
  pipelined: bool
  min_clip_length: Callable[[int], int] = lambda num_stages: 1
  check_clip_length: Callable[[int, int], None] = lambda k, d: None

  @property
  def placements(self) -> tuple[str, ...]:
    return ((DEVICE,) if self.grads else ()) + (
        (MESH,) if self.mesh_program else ())

  def defaults(self, placement: str | None = None) -> dict[str, Any]:
    """Default option values (those used at `placement`, if given)."""
    return {name: option.default for name, option in self.options.items()
            if placement is None or placement in option.placements}

  def load_mesh_program(self) -> Callable[..., Any]:
    """The mesh program's class (imports `sideways_jax.parallel`)."""
    if self.mesh_program is None:
      raise ValueError(f'{self.name!r} has no mesh program')
    module, function = self.mesh_program.split(':')
    return getattr(importlib.import_module(module), function)


_BP_MODE = Option('batched', bp.MODES, help="'batched' (vmap over frames) or "
                  "'scanned' (lax.scan over frames, memory flat in K)")
_PARALLEL = 'sideways_jax.parallel.'

_TABLE = (
    Algorithm(
        name='bp', exact=True, pipelined=False, grads=bp.bp_grads,
        description='exact backpropagation; on a mesh model-parallel, one '
        'stage per device, one device busy at a time (the paper\'s baseline)',
        mesh_program=_PARALLEL + 'bp_model:BPModelProgram',
        options={'mode': dataclasses.replace(_BP_MODE, placements=(DEVICE,)),
                 'unroll': _UNROLL}),
    Algorithm(
        name='sideways', exact=False, pipelined=True,
        grads=sideways.sideways_grads,
        description='Sideways: every stage works on a different frame at '
        'once, forward and backward, nothing stored',
        mesh_program=_PARALLEL + 'sideways_mp:SidewaysProgram',
        options={'target_alignment': Option(
            'current', sideways.TARGET_ALIGNMENTS,
            help="'current' (the paper's: the target of the frame arriving "
            "now) or 'origin' (of the frame the top output came from)"),
                 'window_cotangents': Option(
                     'sum', temporal.WINDOW_COTANGENTS,
                     help="temporal window stages: 'sum' adds the cotangent "
                     "of the earlier inputs a window holds to the current "
                     "input's (the smooth-input approximation; exact on "
                     "still frames) or 'drop' leaves it out"),
                 'unroll': _UNROLL},
        min_clip_length=sideways.min_clip_length,
        check_clip_length=sideways.check_clip_length),
    Algorithm(
        name='bp_data', exact=True, pipelined=False, grads=None,
        description='exact BP, data-parallel: the whole chain on every '
        'device, the batch split over all devices',
        mesh_program=_PARALLEL + 'bp_data:BPDataProgram',
        options={'mode': dataclasses.replace(_BP_MODE, default='scanned'),
                 'unroll': _UNROLL}),
    Algorithm(
        name='bp_gpipe', exact=True, pipelined=True, grads=None,
        description='exact BP pipelined over frames, GPipe: all forwards, '
        'then all backwards (stores K inputs)',
        mesh_program=_PARALLEL + 'bp_pipeline:GPipeProgram',
        options={'unroll': _UNROLL}),
    Algorithm(
        name='bp_1f1b', exact=True, pipelined=True, grads=None,
        description='exact BP pipelined over frames, one forward and one '
        'backward a tick (stores 2(D-1)-1 inputs)',
        mesh_program=_PARALLEL + 'bp_pipeline:OneFOneBProgram',
        options={'unroll': _UNROLL}),
)

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in _TABLE}
# The names that run on one device / on a mesh, in table order.
DEVICE_ALGORITHMS = tuple(a.name for a in _TABLE if DEVICE in a.placements)
MESH_ALGORITHMS = tuple(a.name for a in _TABLE if MESH in a.placements)
# The keyword options each algorithm takes (any placement).
OPTIONS: dict[str, tuple[str, ...]] = {a.name: tuple(a.options)
                                       for a in _TABLE}


def get(name: str) -> Algorithm:
  """The table's row for `name`; a ValueError with a did-you-mean if none."""
  if name in ALGORITHMS:
    return ALGORITHMS[name]
  close = difflib.get_close_matches(str(name), ALGORITHMS, n=1)
  hint = f'; did you mean {close[0]!r}?' if close else ''
  raise ValueError(f'unknown algorithm {name!r}: choose one of '
                   f'{list(ALGORITHMS)}{hint}')


def resolve_options(name: str, options: Mapping[str, Any] | None,
                    placement: str) -> dict[str, Any]:
  """Checks `options` for `name` at `placement`; returns what it will use.

  Options the algorithm takes but does not use at this placement (BP's
  `mode` on a mesh, where frames are always processed one at a time) are
  accepted and left out of the result, so a config can carry every
  algorithm's options; anything the algorithm does not take is an error.

  Raises:
    ValueError: an unknown algorithm, one that does not run at `placement`,
      an option it does not take, or a value the option does not allow.
  """
  algorithm = get(name)
  if placement not in algorithm.placements:
    where = ('needs a mesh (one stage per device); on one device use one '
             f'of {list(DEVICE_ALGORITHMS)}') if placement == DEVICE else (
                 f'runs on one device only; on a mesh use one of '
                 f'{list(MESH_ALGORITHMS)}')
    raise ValueError(f'algorithm {name!r} {where}')
  options = dict(options or {})
  for key, value in options.items():
    if key not in algorithm.options:
      takers = [a.name for a in _TABLE if key in a.options]
      raise ValueError(
          f'algorithm {name!r} does not take option {key!r} (it takes '
          f'{list(algorithm.options) or "none"}); {key!r} is an option of '
          f'{takers or "no algorithm"}')
    algorithm.options[key].check(key, value)
  used = algorithm.defaults(placement)
  used.update({k: v for k, v in options.items() if k in used})
  return used


class GradFn(Protocol):
  """The one signature every single-device algorithm has, options bound."""

  def __call__(self, stages: chain_lib.Stages,
               variables: chain_lib.ChainVariables, clip: jax.Array,
               targets: Any, loss_fn: kernel.LossFn, *,
               rng: jax.Array | None = None,
               train: bool = True) -> result_lib.GradResult:
    ...


def grad_fn(name: str, **options: Any) -> GradFn:
  """The single-device gradient function of `name` with `options` bound.

  Args:
    name: 'bp' or 'sideways' (`DEVICE_ALGORITHMS`).
    **options: that algorithm's options (`ALGORITHMS[name].options`): 'bp'
      takes `mode` ('batched'|'scanned') and `unroll`; 'sideways' takes
      `target_alignment` ('current'|'origin'), `window_cotangents`
      ('sum'|'drop') and `unroll`. Unset ones keep their defaults.

  Returns:
    `fn(stages, variables, clip, targets, loss_fn, *, rng=None, train=True)
    -> GradResult`, the same signature for every algorithm.

  Raises:
    ValueError: an unknown algorithm, one that needs a mesh, an option it
      does not take, or a bad option value.
  """
  bound = resolve_options(name, options, DEVICE)
  gradients = get(name).grads

  def fn(stages: chain_lib.Stages, variables: chain_lib.ChainVariables,
         clip: jax.Array, targets: Any, loss_fn: kernel.LossFn, *,
         rng: jax.Array | None = None,
         train: bool = True) -> result_lib.GradResult:
    return gradients(stages, variables, clip, targets, loss_fn, rng=rng,
                     train=train, **bound)

  fn.__name__ = f'{name}_grad_fn'
  fn.__doc__ = f'{gradients.__name__} with options {bound}.'
  return fn

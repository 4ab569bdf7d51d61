"""The one table of built-in models, and user models by import path.

Every runner reads a model from `model.name`: a built-in name of `MODELS`,
or an import path 'my_pkg.my_module:build' to the user's function, so a new
model needs no edit of the library. A builder has one signature per kind:

  'classifier'  fn(num_classes, *, num_stages=None, frame_shape=None,
                   **kwargs) -> stages mapping frames [B, H, W, C] to logits
  'autoencoder' fn(*, num_stages=None, frame_shape=None, **kwargs)
                -> stages mapping frames to frames of the same shape
  'layers'      fn(num_classes, **kwargs) -> the uncut named layers, a
                tuple of `partition.Layer` or (name, module) pairs (for
                runners that cut the model themselves)

Stages are a non-empty tuple of Flax modules with `__call__(x, train)`.
`num_stages` asks for that many stages (None: the model's own cut) and
`frame_shape` is one frame's (H, W, C), which a FLOP-balanced cut needs;
`kwargs` are the config's `model.kwargs`. A builder that cuts in its own
way may ignore both, but must accept them (e.g. through **kwargs).

The lookup helpers (`import_object`, `unknown_name_error`) also serve the
data-source table (`sideways_jax.data.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import difflib
import importlib
import inspect
from typing import Any

import flax.linen as nn

from sideways_jax.models import autoencoder
from sideways_jax.models import partition
from sideways_jax.models import simple_cnn
from sideways_jax.models import temporal_simple_cnn
from sideways_jax.models import vgg8

KINDS = ('classifier', 'autoencoder', 'layers')


class RegistryError(ValueError):
  """A name or import path that gives no usable builder (one line).

  Runners turn it into a config error on the key that named the builder.
  """

SIGNATURES = {
    'classifier': 'fn(num_classes, *, num_stages=None, frame_shape=None, '
                  '**kwargs) -> tuple of stages',
    'autoencoder': 'fn(*, num_stages=None, frame_shape=None, **kwargs) -> '
                   'tuple of stages',
    'layers': 'fn(num_classes, **kwargs) -> tuple of models.Layer',
}
# name -> {kind: builder}.
MODELS: Mapping[str, Mapping[str, Callable[..., Any]]] = {
    'simple_cnn': {'classifier': simple_cnn.simple_cnn,
                   'layers': simple_cnn.simple_cnn_layers},
    'vgg8': {'classifier': vgg8.vgg8, 'layers': vgg8.vgg8_layers},
    'conv_autoencoder': {'autoencoder': autoencoder.conv_autoencoder},
    # Temporal stages (sideways_jax.temporal): conv1 a window on the pixels.
    'temporal_simple_cnn': {
        'classifier': temporal_simple_cnn.temporal_simple_cnn},
}


def is_import_path(name: str) -> bool:
  """Whether `name` is written 'package.module:attribute'."""
  return ':' in name


def unknown_name_error(name: str, known: Iterable[str], *,
                       what: str) -> RegistryError:
  """A one-line error for a name that is neither known nor an import path."""
  known = tuple(known)
  close = difflib.get_close_matches(name, known, n=1)
  hint = f'did you mean {close[0]!r}? ' if close else ''
  if '.' in name and not close:
    hint = "an import path is written 'package.module:function'; "
  return RegistryError(
      f'unknown {what} {name!r}: {hint}choose one of {", ".join(known)}, or '
      "give an import path 'my_pkg.my_module:function'")


def import_object(path: str, *, what: str) -> Any:
  """Imports 'package.module:attribute'; a one-line ValueError if it fails.

  Args:
    path: the import path.
    what: what the object is, for messages (e.g. 'model', 'data source').

  Returns:
    The attribute (checked callable).

  Raises:
    RegistryError: the path is malformed, does not import, or names
      something missing or not callable.
  """
  module_name, _, attribute = path.partition(':')
  if not module_name or not attribute or ':' in attribute:
    raise RegistryError(f"{what} {path!r}: an import path is written "
                     "'package.module:function'")
  try:
    module = importlib.import_module(module_name)
  except Exception as e:  # pylint: disable=broad-except
    # Whatever went wrong in the user's module, one line names it; the
    # chained exception keeps the traceback for --verbose.
    raise RegistryError(f'{what} {path!r}: cannot import {module_name!r}: '
                     f'{type(e).__name__}: {e}') from e
  if not hasattr(module, attribute):
    public = [n for n in dir(module) if not n.startswith('_')]
    close = difflib.get_close_matches(attribute, public, n=1)
    hint = f'; did you mean {module_name}:{close[0]}?' if close else ''
    raise RegistryError(f'{what} {path!r}: module {module_name!r} has no '
                     f'attribute {attribute!r}{hint}')
  found = getattr(module, attribute)
  if not callable(found):
    raise RegistryError(f'{what} {path!r} is a {type(found).__name__}, not a '
                     'function')
  return found


def model_names(kind: str) -> tuple[str, ...]:
  """The built-in models that have a builder of `kind`."""
  _check_kind(kind)
  return tuple(name for name, builders in MODELS.items() if kind in builders)


def get_model_builder(name: str, kind: str = 'classifier'
                     ) -> Callable[..., Any]:
  """The builder of `kind` for a built-in name or an import path.

  Raises:
    RegistryError: one line: an unknown name (with a did-you-mean), a
      built-in model without that kind, or an import path that does not
      import.
  """
  _check_kind(kind)
  if is_import_path(name):
    return import_object(name, what=f'{kind} model')
  if name in MODELS and kind in MODELS[name]:
    return MODELS[name][kind]
  if name in MODELS:
    raise RegistryError(
        f'model {name!r} has no {kind} builder (it has '
        f'{", ".join(MODELS[name])}): choose one of '
        f'{", ".join(model_names(kind))}, or an import path')
  raise unknown_name_error(name, model_names(kind), what=f'{kind} model')


def build_model(name: str, kind: str, *args: Any, **kwargs: Any) -> tuple:
  """Looks up `name` and calls its builder with the kind's arguments.

  Args:
    name: a built-in model or an import path.
    kind: 'classifier', 'autoencoder' or 'layers' (see the module
      docstring for the arguments each takes).
    *args: positional arguments (num_classes, except for 'autoencoder').
    **kwargs: keyword arguments (num_stages, frame_shape, model.kwargs).

  Returns:
    The stages (or layers) as a tuple.

  Raises:
    RegistryError: one line: the lookup fails, the arguments do not fit the
      builder's signature (e.g. a misspelt model.kwargs key), or it returns
      something else than the kind's tuple. Errors the builder itself
      raises propagate unchanged.
  """
  builder = get_model_builder(name, kind)
  try:
    inspect.signature(builder).bind(*args, **kwargs)
  except TypeError as e:
    raise RegistryError(f'model {name!r} cannot take these arguments ({e}); a '
                     f'{kind} builder is {SIGNATURES[kind]}') from None
  out = builder(*args, **kwargs)
  if kind == 'layers' and isinstance(out, (tuple, list)):
    # (name, module) pairs are layers too.
    out = [partition.Layer(*x) if _is_pair(x) else x for x in out]
  is_item, what = ((lambda x: isinstance(x, partition.Layer), 'layers')
                   if kind == 'layers' else (_is_stage, 'stages'))
  if not isinstance(out, (tuple, list)) or not out or not all(
      is_item(x) for x in out):
    raise RegistryError(
        f'model {name!r} returned {type(out).__name__}, not a non-empty tuple '
        f'of {what}: a {kind} builder is {SIGNATURES[kind]}')
  return tuple(out)


def _is_stage(x: Any) -> bool:
  """A Flax module, or what wraps one for the engine (init and apply)."""
  return isinstance(x, nn.Module) or (callable(getattr(x, 'init', None))
                                      and callable(getattr(x, 'apply', None)))


def _is_pair(x: Any) -> bool:
  return (isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)
          and isinstance(x[1], nn.Module))


def _check_kind(kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f'model kind must be one of {KINDS}, got {kind!r}')

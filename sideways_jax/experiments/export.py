"""Trained variables as one file that loads without the runner.

    export.save_variables('model.msgpack', variables, info={'model': spec})
    variables = export.load_variables('model.msgpack')
    stages, variables = export.load_model('model.msgpack')  # needs 'model'

The file is Flax's msgpack (`flax.serialization`): per-stage variables
dicts in their own dtypes (bf16 included) and a small JSON-able `info`
dict. `info['model']`, when present, names the builder that makes the
stages, as a config names it (`name`, `num_classes`, `num_stages`,
`frame_shape`, `kwargs`), so `load_model` rebuilds them from the model table
(`sideways_jax.models`) or the user's import path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import serialization

from sideways_jax.experiments import workdir as workdir_lib

FORMAT = 'sideways_jax.variables/1'
Variables = tuple[dict[str, Any], ...]


class ExportFileError(ValueError):
  """A file that is not a variables file of this format (one line)."""


def save_variables(path: workdir_lib.PathLike, variables: Variables, *,
                   info: Mapping[str, Any] | None = None) -> None:
  """Writes per-stage `variables` (and `info`) to `path`, atomically."""
  host = jax.device_get(tuple(dict(v) for v in variables))
  payload = {'format': FORMAT, 'stages': list(host), 'info': dict(info or {})}
  data = serialization.msgpack_serialize(payload)
  path = workdir_lib.as_path(path)
  tmp = path.parent / f'.{path.name}.tmp-{os.getpid()}'
  tmp.write_bytes(data)
  tmp.replace(path)


def _read(path: workdir_lib.PathLike) -> dict[str, Any]:
  path = workdir_lib.as_path(path)
  try:
    payload = serialization.msgpack_restore(path.read_bytes())
  except (ValueError, TypeError, KeyError) as e:
    raise ExportFileError(f'{path} is not a variables file ({e})') from None
  except Exception as e:  # pylint: disable=broad-except
    # msgpack's own errors (ExtraData, FormatError, ...) are not ValueErrors.
    if isinstance(e, OSError):
      raise
    raise ExportFileError(f'{path} is not a variables file '
                          f'({type(e).__name__})') from None
  if not isinstance(payload, dict) or payload.get('format') != FORMAT:
    raise ExportFileError(f'{path} is not a variables file of format '
                          f'{FORMAT!r}')
  return payload


def load_variables(path: workdir_lib.PathLike) -> Variables:
  """The per-stage variables saved in `path`, as jax arrays."""
  return tuple(jax.tree.map(jnp.asarray, stage)
               for stage in _read(path)['stages'])


def read_info(path: workdir_lib.PathLike) -> dict[str, Any]:
  """The `info` dict saved with the variables."""
  return _read(path)['info']


def build_stages(model: Mapping[str, Any]) -> tuple:
  """The stages a `model` spec names (see the module docstring)."""
  from sideways_jax import models  # pylint: disable=g-import-not-at-top
  frame_shape = model.get('frame_shape')
  return models.build_model(
      model['name'], 'classifier', model['num_classes'],
      num_stages=model.get('num_stages'),
      frame_shape=None if frame_shape is None else tuple(frame_shape),
      **dict(model.get('kwargs') or {}))


def load_model(path: workdir_lib.PathLike) -> tuple[tuple, Variables]:
  """(stages rebuilt from `info['model']`, variables) of an exported file."""
  info = read_info(path)
  if 'model' not in info:
    raise ExportFileError(f'{path} holds variables but no model spec: build '
                          'the stages yourself and use load_variables')
  return build_stages(info['model']), load_variables(path)

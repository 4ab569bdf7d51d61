"""Checks a run config before anything is built or compiled.

Every message says which config key to change, in the `--config.<key>=...`
form users type.
"""

from __future__ import annotations

from typing import Any

from sideways_jax import algorithms as algorithms_lib
from sideways_jax import models
from sideways_jax import sideways
from sideways_jax.experiments import common

ConfigError = common.ConfigError
# What compare=True trains, BP first: the algorithms that run on one device.
COMPARED = algorithms_lib.DEVICE_ALGORITHMS
OPTIMIZER_NAMES = ('adamw', 'sgd')
SCHEDULE_NAMES = ('constant', 'cosine')


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def check_clip_length(clip_length: int, num_stages: int) -> None:
  """K >= 2D - 1, or a ConfigError saying which key to change."""
  need = sideways.min_clip_length(num_stages)
  _require(
      clip_length >= need,
      f'data.clip_length={clip_length} is too short for Sideways with '
      f'model.num_stages={num_stages}: every stage needs clips of at least '
      f'2D-1={need} frames to get a valid gradient step. Set '
      f'--config.data.clip_length={need} (or more), or '
      f'--config.model.num_stages={(clip_length + 1) // 2} (or fewer), or '
      'train BP only (--config.algorithm=bp --config.compare=False).')


def validate_config(config: Any) -> None:
  """Raises ConfigError for values that cannot work (before any compile).

  Args:
    config: a run config (see configs/common.py for the fields).
  """
  _require(config.runner == 'classification',
           f"runner={config.runner!r}: this runner takes configs with "
           "runner='classification'")
  try:  # The one model table (a user's builder by import path too).
    models.get_model_builder(config.model.name, 'classifier')
  except models.RegistryError as e:
    raise ConfigError(f'model.name: {e}') from None
  _require(config.model.num_stages >= 1,
           f'model.num_stages={config.model.num_stages} must be >= 1')
  for name in algorithms(config):
    if algorithms_lib.get(name).min_clip_length(config.model.num_stages) > (
        config.data.clip_length):
      check_clip_length(config.data.clip_length, config.model.num_stages)
  _check_mesh(config)
  _require(config.data.clip_length >= 1 and config.data.stride >= 1
           and config.data.resolution >= 1,
           'data.clip_length, data.stride and data.resolution must be >= 1')
  placement = (algorithms_lib.MESH if config.mesh.stages
               else algorithms_lib.DEVICE)
  for name in algorithms(config):
    try:  # The table checks every option (names and values).
      algorithms_lib.resolve_options(name, config.options[name].to_dict(),
                                     placement)
    except ValueError as e:
      raise ConfigError(f'options.{name}: {e}') from None
  for key in ('batch_size', 'eval_batch_size', 'num_train_steps', 'log_every',
              'eval_every', 'checkpoint_every', 'max_checkpoints_to_keep'):
    _require(config[key] >= 1, f'{key}={config[key]} must be >= 1')
  _require(config.max_eval_batches >= 0,
           f'max_eval_batches={config.max_eval_batches} must be >= 0 (0: '
           'the whole eval split)')
  _require(config.data.std > 0, f'data.std={config.data.std} must be > 0')
  opt = config.optimizer
  _require(opt.name in OPTIMIZER_NAMES,
           f'optimizer.name={opt.name!r}: choose one of {OPTIMIZER_NAMES}')
  _require(opt.schedule in SCHEDULE_NAMES,
           f'optimizer.schedule={opt.schedule!r}: choose one of '
           f'{SCHEDULE_NAMES}')
  _require(opt.learning_rate > 0 and opt.weight_decay >= 0
           and opt.warmup_steps >= 0 and opt.grad_clip_norm >= 0,
           'optimizer: need learning_rate > 0 and weight_decay, warmup_steps, '
           'grad_clip_norm >= 0')
  if config.sweep.field:
    _require(len(config.sweep.choices) > 0,
             f'sweep.field={config.sweep.field!r} needs sweep.choices')


def algorithms(config: Any) -> tuple[str, ...]:
  """The algorithms the config trains, in order (ConfigError if unknown)."""
  if config.mesh.stages:
    known = algorithms_lib.MESH_ALGORITHMS
  else:
    known = algorithms_lib.DEVICE_ALGORITHMS
    if config.algorithm in algorithms_lib.MESH_ALGORITHMS and (
        config.algorithm not in known):
      raise ConfigError(
          f'algorithm={config.algorithm!r} lays BP out over devices: set '
          f'--config.mesh.stages={config.model.num_stages} (one stage per '
          f'device), or use one of {list(known)} on one device')
  return common.run_algorithms(config, known, COMPARED)


def _check_mesh(config: Any) -> None:
  mesh = config.mesh
  if not mesh.stages:
    _require(mesh.data == 1, f'mesh.data={mesh.data} needs a mesh: set '
             f'--config.mesh.stages={config.model.num_stages} too')
    return
  _require(mesh.stages == config.model.num_stages,
           f'mesh.stages={mesh.stages} but model.num_stages='
           f'{config.model.num_stages}: a mesh runs one stage per device; set '
           f'--config.model.num_stages={mesh.stages} or '
           f'--config.mesh.stages={config.model.num_stages}')
  _require(mesh.data >= 1, f'mesh.data={mesh.data} must be >= 1')
  _require(config.batch_size % mesh.data == 0,
           f'batch_size={config.batch_size} does not split over mesh.data='
           f'{mesh.data} shards; choose a multiple of {mesh.data}')
  _require(config.optimizer.grad_clip_norm == 0,
           'optimizer.grad_clip_norm > 0 on a mesh: each device updates its '
           'own stage, so a global-norm clip would see one stage only; set '
           '--config.optimizer.grad_clip_norm=0')

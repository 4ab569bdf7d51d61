"""Config -> objects: the model's stages, data sources and loaders, optimizer.

Everything it returns is plain library objects. The keys read here (while
`loop.prepare` builds a run) are the keys that decide a run's numbers; see
`sideways_jax/experiments/resume.py`.
"""

from __future__ import annotations

from typing import Any

import optax

from sideways_jax import data
from sideways_jax import models
from sideways_jax.data import registry as data_registry
from sideways_jax.data import video
from sideways_jax.experiments.classification import validate

def build_stages(config: Any, num_classes: int) -> tuple:
  """The model of `config.model` as a stage chain with `num_classes` logits.

  `model.name` is a name of the model table (`sideways_jax.models.registry`)
  or a user's builder by import path, 'my_pkg.my_module:build'.
  """
  resolution = config.data.resolution
  try:
    return models.build_model(
        config.model.name, 'classifier', num_classes,
        num_stages=config.model.num_stages,
        frame_shape=(resolution, resolution, 3),
        **config.model.kwargs.to_dict())
  except models.RegistryError as e:
    raise validate.ConfigError(f'model.name: {e}') from None


def build_source(config: Any, *, train: bool) -> data.ClipSource:
  """The train or eval clip source of `config.data`.

  Raises:
    sideways_jax.data.DatasetLayoutError: the dataset is missing; the
      message gives the preparation command.
  """
  cfg = config.data
  if data_registry.decodes_video(cfg.name):
    try:
      video.require_cv2()  # Before anything trains, not at the first video.
    except ImportError as e:
      raise validate.ConfigError(
          f"data.name={cfg.name!r} decodes video files, which needs OpenCV: "
          "pip install -e '.[video]'") from e
  kwargs = (cfg.train_kwargs if train else cfg.eval_kwargs).to_dict()
  try:
    source = data.make_source(
        cfg.name, split=cfg.train_split if train else cfg.eval_split,
        root=cfg.root, clip_length=cfg.clip_length, stride=cfg.stride,
        resolution=cfg.resolution, train=train, fold=cfg.fold,
        seed=config.seed, **kwargs)
  except models.RegistryError as e:
    raise validate.ConfigError(f'data.name: {e}') from None
  if source.num_classes < 1:
    raise validate.ConfigError(
        f'data source {cfg.name!r} has no class labels; classification runs '
        'need a labelled source')
  if not cfg.cache:
    return source
  try:
    return data.cache_source(source, name=cfg.name)
  except ValueError as e:
    raise validate.ConfigError(f'data.cache=True: {e}') from None


def build_loader(config: Any, source: data.ClipSource, *, train: bool,
                 start_step: int = 0) -> data.ClipLoader:
  """Train batches from `start_step` on, or one ordered eval pass.

  Every process of a multi-host run reads the whole (global) batch: a mesh
  feeds every stage-device of a pipeline the same clips and keeps each
  device's part of it, so the batches, and the numbers, are those of a
  single-process run whatever the process count.
  """
  return data.make_loader(
      source, config.batch_size if train else config.eval_batch_size,
      seed=config.seed, train=train, num_threads=config.data.num_threads,
      prefetch=config.data.prefetch, start_step=start_step, process_index=0,
      process_count=1)


def build_schedule(config: Any) -> optax.Schedule:
  """Learning rate per step: linear warm-up, then constant or cosine to 0."""
  opt = config.optimizer
  total, warmup = config.num_train_steps, opt.warmup_steps
  if opt.schedule == 'constant':
    main = optax.constant_schedule(opt.learning_rate)
  elif opt.schedule == 'cosine':
    main = optax.cosine_decay_schedule(opt.learning_rate,
                                       max(total - warmup, 1))
  else:
    raise validate.ConfigError(
        f'optimizer.schedule={opt.schedule!r}: choose one of '
        f'{validate.SCHEDULE_NAMES}')
  if warmup == 0:
    return main
  ramp = optax.linear_schedule(0.0, opt.learning_rate, warmup)
  return optax.join_schedules([ramp, main], [warmup])


def build_optimizer(config: Any
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The optimizer of `config.optimizer` and its learning-rate schedule."""
  opt = config.optimizer
  schedule = build_schedule(config)
  if opt.name == 'adamw':
    tx = optax.adamw(schedule, b1=opt.b1, b2=opt.b2,
                     weight_decay=opt.weight_decay)
  elif opt.name == 'sgd':
    # L2 weight decay added to the gradient, as in classic SGD training.
    tx = optax.chain(optax.add_decayed_weights(opt.weight_decay),
                     optax.sgd(schedule, momentum=opt.b1))
  else:
    raise validate.ConfigError(
        f'optimizer.name={opt.name!r}: choose one of '
        f'{validate.OPTIMIZER_NAMES}')
  if opt.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), tx)
  return tx, schedule

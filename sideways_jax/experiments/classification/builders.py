"""Config -> objects: the model's stages, data sources and loaders, optimizer.

Everything it returns is plain library objects. The keys read here (while
`loop.prepare` builds a run) are the keys that decide a run's numbers; see
`sideways_jax/experiments/resume.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optax

from sideways_jax import data
from sideways_jax import models
from sideways_jax.data import registry as data_registry
from sideways_jax.data import video
from sideways_jax.experiments.classification import validate

_MODEL_BUILDERS: dict[str, Callable[..., tuple]] = {
    'simple_cnn': models.simple_cnn,
    'vgg8': models.vgg8,
}


def build_stages(config: Any, num_classes: int) -> tuple:
  """The model of `config.model` as a stage chain with `num_classes` logits."""
  if config.model.name not in _MODEL_BUILDERS:
    raise validate.ConfigError(
        f'model.name={config.model.name!r}: choose one of '
        f'{sorted(_MODEL_BUILDERS)}')
  resolution = config.data.resolution
  return _MODEL_BUILDERS[config.model.name](
      num_classes, num_stages=config.model.num_stages,
      frame_shape=(resolution, resolution, 3), **config.model.kwargs.to_dict())


class CachedSource:
  """Keeps each example after its first read (for deterministic sources).

  Synthetic clips are a pure function of their index, so rendering each once
  frees the two CPU cores for training after the first epoch.
  """

  def __init__(self, source: data.ClipSource):
    self.source = source
    self.num_classes = source.num_classes
    self._cache: dict[int, dict[str, np.ndarray]] = {}

  def __len__(self) -> int:
    return len(self.source)

  def get(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    example = self._cache.get(index)
    if example is None:
      example = self.source.get(index, rng)
      self._cache[index] = example
    return example


def build_source(config: Any, *, train: bool) -> data.ClipSource:
  """The train or eval clip source of `config.data`.

  Raises:
    sideways_jax.data.DatasetLayoutError: the dataset is missing; the
      message gives the preparation command.
  """
  cfg = config.data
  if cfg.cache and cfg.name not in data_registry.SYNTHETIC_SOURCES:
    raise validate.ConfigError(
        f'data.cache=True works only for synthetic sources '
        f'{data_registry.SYNTHETIC_SOURCES} (file sources draw random crops '
        f'per epoch); set --config.data.cache=False for {cfg.name!r}')
  if cfg.name in data_registry.FILE_SOURCES:
    try:
      video.require_cv2()  # Before anything trains, not at the first video.
    except ImportError as e:
      raise validate.ConfigError(
          f"data.name={cfg.name!r} decodes video files, which needs OpenCV: "
          "pip install -e '.[video]'") from e
  kwargs = (cfg.train_kwargs if train else cfg.eval_kwargs).to_dict()
  source = data.make_source(
      cfg.name, split=cfg.train_split if train else cfg.eval_split,
      root=cfg.root, clip_length=cfg.clip_length, stride=cfg.stride,
      resolution=cfg.resolution, train=train, fold=cfg.fold,
      seed=config.seed, **kwargs)
  if source.num_classes < 1:
    raise validate.ConfigError(
        f'data source {cfg.name!r} has no class labels; classification runs '
        'need a labelled source')
  return CachedSource(source) if cfg.cache else source


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

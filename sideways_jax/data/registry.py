"""Clip sources by name, for configs: `make_source('ucf101', split=..., ...)`."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from sideways_jax.data.cater import cater_source
from sideways_jax.data.folder import folder_source
from sideways_jax.data.hmdb51 import hmdb51_source
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import ClipSource
from sideways_jax.data.source import Example
from sideways_jax.data.synthetic import CaterLikeStream
from sideways_jax.data.synthetic import MovingShapes
from sideways_jax.data.synthetic import RandomVideos
from sideways_jax.data.synthetic import TexturedObjects
from sideways_jax.data.tfds_ucf101 import TfdsUcf101Source
from sideways_jax.data.ucf101 import ucf101_source

FILE_SOURCES = ('ucf101', 'hmdb51', 'cater', 'folder', 'tfds_ucf101')
SYNTHETIC_SOURCES = ('random', 'moving_shapes', 'cater_like',
                     'textured_objects')
SOURCE_NAMES = FILE_SOURCES + SYNTHETIC_SOURCES


def make_source(name: str, *, split: str, root: str | None, clip_length: int,
                stride: int, resolution: int, train: bool, fold: int = 1,
                seed: int = 0, **kwargs: Any) -> ClipSource:
  """Builds a clip source by name.

  Args:
    name: one of SOURCE_NAMES.
    split: 'train'/'test' (ucf101, hmdb51, tfds_ucf101), 'train'/'val'/'all'
      (cater), 'all' or a list name (folder); synthetic sets accept any
      split name and generate a different set for each.
    root: the dataset folder (default: data/<name> of the repository); for
      tfds_ucf101 the TFDS data_dir; ignored by synthetic sets.
    clip_length: K, frames per clip.
    stride: temporal stride s. Synthetic sets render (K-1)*s+1 consecutive
      frames and keep every s-th (textured_objects renders just those).
    resolution: frames are resolution x resolution.
    train: random window/crop/flip (file sources).
    fold: official split number 1-3 (ucf101, hmdb51, tfds_ucf101).
    seed: seed of synthetic sets (file sources draw randomness from the
      loader's per-example generators instead).
    **kwargs: passed on: crop_fraction (file sources), task (cater),
      config (tfds_ucf101), num_videos/num_classes/speed/num_objects/...
      (synthetic sets).

  Returns:
    A ClipSource.
  """
  if name in FILE_SOURCES:
    spec_kwargs = {}
    if 'crop_fraction' in kwargs:
      spec_kwargs['crop_fraction'] = kwargs.pop('crop_fraction')
    spec = ClipSpec(clip_length=clip_length, stride=stride,
                    resolution=resolution, train=train, **spec_kwargs)
    if name == 'ucf101':
      return ucf101_source(root, split=split, fold=fold, spec=spec, **kwargs)
    if name == 'hmdb51':
      return hmdb51_source(root, split=split, fold=fold, spec=spec, **kwargs)
    if name == 'cater':
      return cater_source(root, split=split, spec=spec, **kwargs)
    if name == 'folder':
      return folder_source(root, split=split, spec=spec, **kwargs)
    return TfdsUcf101Source(split=split, fold=fold, spec=spec, data_dir=root,
                            **kwargs)
  if name in SYNTHETIC_SOURCES:
    return _synthetic(name, split=split, clip_length=clip_length,
                      stride=stride, resolution=resolution, seed=seed,
                      **kwargs)
  raise ValueError(f'unknown data source {name!r}; known: {SOURCE_NAMES}')


def split_seed(seed: int, split: str) -> int:
  """Seed of a synthetic split: `seed` for 'train', a fixed offset otherwise."""
  if split == 'train':
    return seed
  return (seed * 1_000_003 + zlib.crc32(split.encode())) % 2**31


def _synthetic(name: str, *, split: str, clip_length: int, stride: int,
               resolution: int, seed: int, **kwargs: Any) -> ClipSource:
  if stride < 1:
    raise ValueError(f'stride must be >= 1, got {stride}')
  for required in ('num_videos',) + (('num_classes',) if name == 'random'
                                     else ()):
    if required not in kwargs:
      raise TypeError(f'data source {name!r} needs {required}=... in its '
                      'kwargs (no default: set it in the config)')
  window = (clip_length - 1) * stride + 1
  if name == 'random':
    source = RandomVideos(
        kwargs.pop('num_videos'), window, resolution, kwargs.pop('num_classes'),
        split_seed(seed, split), **kwargs)
  elif name == 'moving_shapes':
    source = MovingShapes(kwargs.pop('num_videos'), window,
                                    resolution, seed, split, **kwargs)
  elif name == 'textured_objects':
    # Renders only the frames it shows: long strided windows cost nothing.
    return TexturedObjects(kwargs.pop('num_videos'), clip_length, resolution,
                           split_seed(seed, split), stride=stride, **kwargs)
  else:
    source = CaterLikeStream(kwargs.pop('num_videos'), window,
                                       resolution, split_seed(seed, split),
                                       **kwargs)
  return source if stride == 1 else StridedSource(source, stride)


class StridedSource:
  """Keeps every `stride`-th frame of another source's clips."""

  def __init__(self, source: ClipSource, stride: int):
    self.source = source
    self.stride = stride
    self.num_classes = source.num_classes

  def __len__(self) -> int:
    return len(self.source)

  def get(self, index: int, rng: np.random.Generator) -> Example:
    example = dict(self.source.get(index, rng))
    example['video'] = np.ascontiguousarray(example['video'][::self.stride])
    example['mask'] = example['mask'][::self.stride]
    return example

"""The one table of clip sources, and user sources by import path.

    source = make_source('ucf101', split='train', root=None, clip_length=64,
                         stride=2, resolution=112, train=True)

Every runner reads its data from `data.name`: a built-in name of `SOURCES`,
or an import path 'my_pkg.my_module:make_source' to the user's function, so
a new dataset needs no edit of the library. Every builder, built-in or not,
has one signature:

    fn(*, split, root, clip_length, stride, resolution, train, fold, seed,
       **kwargs) -> ClipSource

(see `make_source` for what each argument means; a builder may ignore the
ones it has no use for, e.g. through **kwargs). A source may be cached in
memory (`cache.cache_source`) when it declares `deterministic = True`.
"""

from __future__ import annotations

import dataclasses
import inspect
import zlib
from collections.abc import Callable
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
from sideways_jax.models import registry as names

SourceBuilder = Callable[..., ClipSource]
SIGNATURE = ('fn(*, split, root, clip_length, stride, resolution, train, '
             'fold, seed, **kwargs) -> ClipSource')


@dataclasses.dataclass(frozen=True)
class SourceEntry:
  """One built-in source.

  Attributes:
    build: the builder (the module docstring's signature).
    decodes_video: it decodes video or image files, which needs OpenCV.
  """
  build: SourceBuilder
  decodes_video: bool


def _spec(clip_length: int, stride: int, resolution: int, train: bool,
          kwargs: dict[str, Any]) -> ClipSpec:
  """The ClipSpec of a file source; takes crop_fraction out of kwargs."""
  crop = {'crop_fraction': kwargs.pop('crop_fraction')} if (
      'crop_fraction' in kwargs) else {}
  return ClipSpec(clip_length=clip_length, stride=stride,
                  resolution=resolution, train=train, **crop)


def _file_builder(reader: Callable[..., ClipSource], *,
                  folds: bool) -> SourceBuilder:
  """A builder for a file reader `reader(root, split=, [fold=,] spec=)`."""

  def build(*, split: str, root: str | None, clip_length: int, stride: int,
            resolution: int, train: bool, fold: int, seed: int,
            **kwargs: Any) -> ClipSource:
    del seed  # File sources draw randomness from the loader's generators.
    spec = _spec(clip_length, stride, resolution, train, kwargs)
    if folds:
      kwargs['fold'] = fold
    return reader(root, split=split, spec=spec, **kwargs)

  return build


def _tfds_ucf101(*, split: str, root: str | None, clip_length: int,
                 stride: int, resolution: int, train: bool, fold: int,
                 seed: int, **kwargs: Any) -> ClipSource:
  del seed
  spec = _spec(clip_length, stride, resolution, train, kwargs)
  return TfdsUcf101Source(split=split, fold=fold, spec=spec, data_dir=root,
                          **kwargs)


def _synthetic_builder(name: str, render: Callable[..., ClipSource], *,
                       needs: tuple[str, ...] = (),
                       renders_stride: bool = False) -> SourceBuilder:
  """A builder for the synthetic set `name`.

  `render(num_videos, num_frames, resolution, seed, split, **kwargs)` makes
  the set; the builder keeps every stride-th frame of its clips (or passes
  `stride=` on when the set renders only those frames).
  """

  def build(*, split: str, root: str | None, clip_length: int, stride: int,
            resolution: int, train: bool, fold: int, seed: int,
            **kwargs: Any) -> ClipSource:
    del root, train, fold  # Generated, and never augmented.
    if stride < 1:
      raise ValueError(f'stride must be >= 1, got {stride}')
    for required in ('num_videos', *needs):
      if required not in kwargs:
        raise TypeError(f'data source {name!r} needs {required}=... in its '
                        'kwargs (no default: set it in the config)')
    if renders_stride:  # Renders only the frames it shows.
      return render(kwargs.pop('num_videos'), clip_length, resolution, seed,
                    split, stride=stride, **kwargs)
    window = (clip_length - 1) * stride + 1
    source = render(kwargs.pop('num_videos'), window, resolution, seed,
                    split, **kwargs)
    return source if stride == 1 else StridedSource(source, stride)

  return build


def split_seed(seed: int, split: str) -> int:
  """Seed of a synthetic split: `seed` for 'train', a fixed offset otherwise."""
  if split == 'train':
    return seed
  return (seed * 1_000_003 + zlib.crc32(split.encode())) % 2**31


SOURCES: dict[str, SourceEntry] = {
    'ucf101': SourceEntry(_file_builder(ucf101_source, folds=True), True),
    'hmdb51': SourceEntry(_file_builder(hmdb51_source, folds=True), True),
    'cater': SourceEntry(_file_builder(cater_source, folds=False), True),
    'folder': SourceEntry(_file_builder(folder_source, folds=False), True),
    'tfds_ucf101': SourceEntry(_tfds_ucf101, True),
    'random': SourceEntry(_synthetic_builder(
        'random', lambda n, k, r, seed, split, num_classes, **kw: RandomVideos(
            n, k, r, num_classes, split_seed(seed, split), **kw),
        needs=('num_classes',)), False),
    'moving_shapes': SourceEntry(_synthetic_builder('moving_shapes',
                                                    MovingShapes), False),
    'cater_like': SourceEntry(_synthetic_builder(
        'cater_like', lambda n, k, r, seed, split, **kw: CaterLikeStream(
            n, k, r, split_seed(seed, split), **kw)), False),
    'textured_objects': SourceEntry(_synthetic_builder(
        'textured_objects', lambda n, k, r, seed, split, **kw: TexturedObjects(
            n, k, r, split_seed(seed, split), **kw),
        renders_stride=True), False),
}
SOURCE_NAMES = tuple(SOURCES)
FILE_SOURCES = tuple(n for n, e in SOURCES.items() if e.decodes_video)
SYNTHETIC_SOURCES = tuple(n for n, e in SOURCES.items() if not e.decodes_video)


def get_source_builder(name: str) -> SourceBuilder:
  """The builder of a built-in name or of an import path.

  Raises:
    RegistryError (a ValueError): one line: an unknown name (with a
      did-you-mean) or an import path that does not import.
  """
  if names.is_import_path(name):
    return names.import_object(name, what='data source')
  if name in SOURCES:
    return SOURCES[name].build
  raise names.unknown_name_error(name, SOURCE_NAMES, what='data source')


def decodes_video(name: str) -> bool:
  """Whether a built-in source needs OpenCV (False for import paths)."""
  return name in SOURCES and SOURCES[name].decodes_video


def make_source(name: str, *, split: str, root: str | None, clip_length: int,
                stride: int, resolution: int, train: bool, fold: int = 1,
                seed: int = 0, **kwargs: Any) -> ClipSource:
  """Builds a clip source by name or import path.

  Args:
    name: one of SOURCE_NAMES, or 'my_pkg.my_module:function'.
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

  Raises:
    RegistryError (a ValueError): an unknown name or import path, keyword
      arguments the builder does not take, or a builder that returns
      something else than a ClipSource.
  """
  builder = get_source_builder(name)
  arguments = dict(split=split, root=root, clip_length=clip_length,
                   stride=stride, resolution=resolution, train=train,
                   fold=fold, seed=seed, **kwargs)
  try:
    inspect.signature(builder).bind(**arguments)
  except TypeError as e:
    raise names.RegistryError(
        f'data source {name!r} cannot take these arguments ({e}); a source '
        f'builder is {SIGNATURE}') from None
  source = builder(**arguments)
  if not isinstance(source, ClipSource):
    raise names.RegistryError(
        f'data source {name!r} returned a {type(source).__name__}, which is '
        'not a ClipSource (num_classes, __len__ and get(index, rng)); a '
        f'source builder is {SIGNATURE}')
  return source


class StridedSource:
  """Keeps every `stride`-th frame of another source's clips."""

  def __init__(self, source: ClipSource, stride: int):
    self.source = source
    self.stride = stride
    self.num_classes = source.num_classes
    self.deterministic = source.deterministic

  def __len__(self) -> int:
    return len(self.source)

  def get(self, index: int, rng: np.random.Generator) -> Example:
    example = dict(self.source.get(index, rng))
    example['video'] = np.ascontiguousarray(example['video'][::self.stride])
    example['mask'] = example['mask'][::self.stride]
    return example

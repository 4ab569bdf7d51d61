"""The contract every clip source meets, and the errors the readers raise.

A clip source is a random-access collection of examples. The loader
(`sideways_jax.data.loader`) owns ordering, sharding, batching and randomness:
it hands every `get` call a generator seeded from (seed, epoch, index), so a
source must draw all of its randomness from that generator and nothing else.
That is what makes batches identical for a seed whatever the thread timing.
"""

from __future__ import annotations

import os
import pathlib
from typing import Protocol, runtime_checkable

import numpy as np

# Example layout returned by `ClipSource.get`:
#   'video': uint8 [K, H, W, 3]  (RGB)
#   'label': int32 []
#   'mask':  bool  [K]           True for a real frame, False for padding.
#   'truncated': bool []         optional: the video decoded fewer frames
#                                than its header promised (see
#                                sampling.sample_clip); the loader counts it
#                                and leaves the key out of batches.
# Sources may add keys (e.g. CATER's multi-hot 'labels': bool [C]); the loader
# stacks them along a new batch axis.
Example = dict[str, np.ndarray]
TRUNCATED = 'truncated'

DATA_ROOT_ENV = 'SIDEWAYS_JAX_DATA_ROOT'


@runtime_checkable
class ClipSource(Protocol):
  """A random-access collection of video clips.

  A source may also set `deterministic = True` when its examples ignore the
  generator `get` receives; only such a source can be cached in memory
  (`sideways_jax.data.cache`).
  """

  num_classes: int  # 0 for unlabelled (auto-encoding) sources.

  def __len__(self) -> int:
    ...

  def get(self, index: int, rng: np.random.Generator) -> Example:
    """{'video': uint8 [K,H,W,3], 'label': int32 [], 'mask': bool [K]} (mask: real vs padded frame)."""
    ...


class DatasetLayoutError(FileNotFoundError):
  """A dataset root, split file or class is missing, malformed or empty.

  Attributes:
    summary: one line: the dataset, the problem and how to prepare it (what
      a command line prints; the full message also shows the layout).
  """

  def __init__(self, message: str, summary: str | None = None):
    super().__init__(message)
    self.summary = summary or message.splitlines()[0]


class VideoReadError(RuntimeError):
  """One video could not be opened or decoded at all.

  The loader catches exactly this error to skip a corrupt video (and count
  it); anything else is a bug and propagates. It depends on the file only,
  never on which clip was asked for: a video of which some frames decode is
  read as truncated instead (padded, never skipped).
  """

  def __init__(self, path: str, reason: str):
    super().__init__(f'cannot read video {path!r}: {reason}')
    self.path = path
    self.reason = reason


def default_data_root() -> pathlib.Path:
  """The default folder holding prepared datasets.

  `$SIDEWAYS_JAX_DATA_ROOT` if set, else the repository's top-level `data/`
  (two levels above this package), where the preparation scripts put them.
  """
  env = os.environ.get(DATA_ROOT_ENV)
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path(__file__).resolve().parents[2] / 'data'


def dataset_root(root: str | os.PathLike[str] | None, name: str) -> pathlib.Path:
  """`root` if given, else `<default data root>/<name>`."""
  if root is not None:
    return pathlib.Path(root).expanduser()
  return default_data_root() / name


def layout_error(dataset: str, problem: str, layout: str,
                 prepare: str) -> DatasetLayoutError:
  """Builds an error that names the expected layout and how to prepare it."""
  return DatasetLayoutError(
      f'{dataset}: {problem}\n'
      f'Expected layout:\n{layout}\n'
      f'Prepare it with: {prepare}\n'
      f'(see data/README.md; pass root=... or set ${DATA_ROOT_ENV} to read '
      f'from elsewhere)',
      summary=f'{dataset}: {problem.rstrip(".")}. Prepare it with `{prepare}` (see '
      'data/README.md), or point to a prepared copy with '
      f'--config.data.root=PATH (or ${DATA_ROOT_ENV}); decoding videos needs '
      "OpenCV: pip install -e '.[video]'")


class UnreadableVideosError(ValueError):
  """Too many videos in a row could not be read: the data, not the code.

  The message is one line (how many, and an example of the errors).
  """


class AllVideosUnreadable(UnreadableVideosError):
  """Every video of a source is unreadable (e.g. a folder of corrupt files)."""

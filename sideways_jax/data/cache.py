"""Keeping a deterministic source's examples in memory after their first read.

A synthetic clip is a pure function of its index, so rendering each once
frees the CPU for training after the first epoch. Only a source that says
so (`deterministic = True`: its examples ignore the loader's generator) can
be cached: caching one that draws random windows or crops per read would
freeze its first draw.
"""

from __future__ import annotations

import numpy as np

from sideways_jax.data.source import ClipSource
from sideways_jax.data.source import Example


class CachedSource:
  """A ClipSource that returns the first read of each example ever after."""

  deterministic = True

  def __init__(self, source: ClipSource):
    self.source = source
    self.num_classes = source.num_classes
    self._cache: dict[int, Example] = {}

  def __len__(self) -> int:
    return len(self.source)

  def get(self, index: int, rng: np.random.Generator) -> Example:
    example = self._cache.get(index)
    if example is None:
      # Two loader threads may both read a missing example: it is
      # deterministic, so they store equal ones (dict writes are atomic).
      example = self.source.get(index, rng)
      self._cache[index] = example
    return example


def cache_source(source: ClipSource, *, name: str) -> CachedSource:
  """`source` cached in memory.

  Args:
    source: the source to cache.
    name: how the user named it (data.name), for the error message.

  Raises:
    ValueError: the source does not declare `deterministic = True`.
  """
  if not getattr(source, 'deterministic', False):
    raise ValueError(
        f'data source {name!r} cannot be cached: its examples depend on the '
        'loader\'s random generator (e.g. random windows or crops in '
        'training), so a cache would freeze one draw. Set data.cache=False, '
        'or give a source whose examples ignore the generator '
        '`deterministic = True`')
  return CachedSource(source)

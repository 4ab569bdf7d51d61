"""What the loader met in the batches it delivered, and its saved form.

Counts are taken when a batch is delivered, in slot order, never when it is
prefetched: after step S they cover exactly the first S batches, whatever
the threads did, and `state` / `from_state` carry them (with the skip
list) over a checkpoint to a resumed process.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from sideways_jax.data.source import Example


class Slot(NamedTuple):
  """What loading one slot of a batch met (built on a worker thread)."""
  example: Example | None  # None: eval padding or an unreadable eval video
  unreadable: tuple[tuple[int, str], ...]  # (index, error) of each one met
  truncated: int | None  # the delivered video's index if it was truncated
  padding: bool  # an eval padding slot, not a video


@dataclasses.dataclass
class LoaderStats:
  """What the delivered batches met; read it any time (it only grows).

  Attributes:
    messages: source index -> first error, for each video found unreadable.
    truncated: source indices of videos read as truncated (padded).
    num_skipped: unreadable videos met (each time one is met).
    num_truncated: clips padded because their video is truncated.
    num_unscored: evaluation examples without a score (unreadable video).
  """
  messages: dict[int, str] = dataclasses.field(default_factory=dict)
  truncated: set[int] = dataclasses.field(default_factory=set)
  num_skipped: int = 0
  num_truncated: int = 0
  num_unscored: int = 0

  @property
  def bad_indices(self) -> set[int]:
    """Source indices found unreadable."""
    return set(self.messages)

  def as_dict(self) -> dict[str, int]:
    """The counts of one loader (one split), for metrics and summaries.

    Keys:
      'unreadable_videos': distinct videos skipped as unreadable (zero-byte,
        not a video, missing).
      'unreadable_skips': times an unreadable video was met (training
        replaces it, evaluation leaves it unscored).
      'truncated_videos': distinct videos padded because truncated.
      'truncated_clips': clips padded because their video is truncated.
      'unscored_examples': evaluation examples not scored (0 in training).
    """
    return {'unreadable_videos': len(self.messages),
            'unreadable_skips': self.num_skipped,
            'truncated_videos': len(self.truncated),
            'truncated_clips': self.num_truncated,
            'unscored_examples': self.num_unscored}

  def count(self, slot: Slot) -> None:
    """Adds what one delivered slot met; warns once per new video."""
    for index, error in slot.unreadable:
      self.num_skipped += 1
      if index not in self.messages:
        self.messages[index] = error
        logging.warning('skipping unreadable example %d: %s', index, error)
    if slot.truncated is not None:
      self.num_truncated += 1
      if slot.truncated not in self.truncated:
        self.truncated.add(slot.truncated)
        logging.warning('example %d is truncated (fewer frames decode than '
                        'its header says): its clips are padded',
                        slot.truncated)
    if slot.example is None and not slot.padding:
      self.num_unscored += 1

  def state(self, step: int) -> dict[str, Any]:
    """These stats after `step` batches, as JSON-ready data."""
    return {
        'step': step,
        'unreadable': {str(i): m for i, m in sorted(self.messages.items())},
        'truncated': sorted(self.truncated),
        'num_skipped': self.num_skipped,
        'num_truncated': self.num_truncated,
        'num_unscored': self.num_unscored,
    }

  @classmethod
  def from_state(cls, state: Mapping[str, Any]) -> tuple[int, LoaderStats]:
    """(step, stats) from `state(step)`; a ValueError for anything else."""
    expected = set(cls().state(0))
    if not isinstance(state, Mapping) or set(state) != expected:
      raise ValueError(f'loader state must have the keys {sorted(expected)}')
    return int(state['step']), cls(
        messages={int(i): str(m) for i, m in state['unreadable'].items()},
        truncated={int(i) for i in state['truncated']},
        num_skipped=int(state['num_skipped']),
        num_truncated=int(state['num_truncated']),
        num_unscored=int(state['num_unscored']))

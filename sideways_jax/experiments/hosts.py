"""Which process of a (possibly multi-host) run does what.

Every process trains and saves its own checkpoint shards; process 0, the
lead, alone writes the run's files (config, logs, summary), holds the
workdir lock and decides where to resume. `agree` hands its decision to the
others, so all processes restore the same step or stop together.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from sideways_jax.experiments import common


def is_lead() -> bool:
  """True in process 0 (and in every single-process run)."""
  return jax.process_index() == 0


def agree(values: tuple[int, ...]) -> tuple[int, ...]:
  """Process 0's `values` on every process (a collective across processes)."""
  if jax.process_count() == 1:
    return tuple(values)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  out = multihost_utils.broadcast_one_to_all(np.asarray(values, np.int32))
  return tuple(int(v) for v in np.asarray(out))


_MAX_VALUES = 8  # Every process must broadcast arrays of one shape.


class PeerStopped(common.RunError):
  """Process 0 stopped the run before training; its error says why."""


def decide(decision: Callable[[], tuple[int, ...]]) -> tuple[int, ...]:
  """Runs `decision()` on the lead and shares its result (ints) with all.

  If the lead fails, every other process raises PeerStopped instead of
  waiting for it at the next collective; the lead raises its own error.

  Args:
    decision: called on the lead only; returns up to 8 ints.
  """
  error, values = None, None
  if is_lead():
    try:
      values = tuple(decision())
    except BaseException as e:  # pylint: disable=broad-except
      error = e
  size = len(values) if values is not None else 0
  shared = agree((1 if error is None else 0, size) + (values or ()) +
                 (0,) * (_MAX_VALUES - size))
  if error is not None:
    raise error
  if not shared[0]:
    raise PeerStopped('process 0 stopped this run before training (its '
                      'error says why)')
  return shared[2:2 + shared[1]]

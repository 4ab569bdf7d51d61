"""Batches of time-major clips from a ClipSource, prefetched on threads.

Order, sharding and randomness are fixed by (seed, epoch) alone; threads only
decide when an example is ready, never which one it is, so a seed gives the
same batches whatever the scheduling, thread count or prefetch depth.

Train mode: each epoch is a permutation of all examples drawn from
(seed, epoch), the same on every process; process p takes every P-th
position, cut to the same length on all processes, then whole batches (the
remainder is dropped). The iterator never ends.

Eval mode: one pass in index order; process p takes indices p, p+P, ...;
every process yields the same number of batches, the last ones padded with
zero videos whose 'example_valid' is False (and 'mask' all False).

Unreadable videos (a source raising VideoReadError: a zero-byte file, text
named .avi, a missing file) are skipped with a warning and counted in
`loader.stats`; an epoch never fails on one and labels never shift: in
training the example is replaced by another video, the next of a
permutation of the others drawn from (seed, epoch, index), with that
video's own label; in evaluation it becomes a padding example
(example_valid False) and is counted as not scored. Truncated videos are
padded, never skipped (see `sampling`), and counted too. Counts cover the
batches delivered (never the ones prefetched), and `get_state` /
`set_state` carry them and the skip list over to a resumed process, so a
resumed run sees the same batches and the same counts as one that ran
through.

Why not grain: clips need per-example generators, substitution of corrupt
videos, eval padding and time-major collation, which would be custom code
around grain anyway; OpenCV releases the GIL, so a plain thread pool with an
ordered window of futures gives the same throughput on these 2-core machines
without another dependency.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from sideways_jax.data.loader_stats import LoaderStats
from sideways_jax.data.loader_stats import Slot
from sideways_jax.data.source import AllVideosUnreadable
from sideways_jax.data.source import ClipSource
from sideways_jax.data.source import Example
from sideways_jax.data.source import TRUNCATED
from sideways_jax.data.source import UnreadableVideosError
from sideways_jax.data.source import VideoReadError

Batch = dict[str, np.ndarray]
# Keys whose first axis is time: they are stacked on axis 1 (time-major).
TIME_MAJOR_KEYS = ('video', 'mask')
_PAD = -1  # slot index of an eval padding example


def example_rng(seed: int, epoch: int, index: int,
                attempt: int = 0) -> np.random.Generator:
  """The generator a source gets for one example (pure in its arguments)."""
  return np.random.default_rng([seed, epoch, index, attempt])


def epoch_order(num_examples: int, seed: int, epoch: int, *,
                process_index: int, process_count: int) -> np.ndarray:
  """This process's indices for one training epoch (before batching).

  The permutation is the same on every process; each takes a strided slice,
  all cut to num_examples // process_count so they stay in lockstep.
  """
  permutation = np.random.default_rng([seed, epoch, 2**31 - 1]).permutation(
      num_examples)
  return permutation[process_index::process_count][
      :num_examples // process_count]


class ClipLoader(Iterator[Batch]):
  """Iterator of batches; see `make_loader`. Close it (or use `with`)."""

  def __init__(self, source: ClipSource, batch_size: int, *, seed: int,
               train: bool, num_threads: int, prefetch: int,
               process_index: int, process_count: int, start_step: int,
               max_substitutions: int):
    n = len(source)
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if seed < 0:
      raise ValueError(f'seed must be >= 0, got {seed}')
    if num_threads < 1 or prefetch < 1:
      raise ValueError('num_threads and prefetch must be >= 1, got '
                       f'{num_threads}, {prefetch}')
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index {process_index} is not in '
                       f'[0, {process_count})')
    if start_step < 0 or (start_step and not train):
      raise ValueError('start_step must be >= 0, and 0 in eval mode, got '
                       f'{start_step}')
    if n == 0:
      raise ValueError('the source has no example')
    self.source = source
    self.batch_size = batch_size
    self.seed = seed
    self.train = train
    self.process_index = process_index
    self.process_count = process_count
    self.max_substitutions = max_substitutions
    if train:
      per_process = n // process_count
      if per_process < batch_size:
        raise ValueError(
            f'{n} examples over {process_count} process(es) give '
            f'{per_process} per process, fewer than one batch of '
            f'{batch_size}')
      self.batches_per_epoch = per_process // batch_size
    else:
      self.batches_per_epoch = math.ceil(math.ceil(n / process_count) /
                                         batch_size)
    self.stats = LoaderStats()
    self.step = start_step  # batches delivered (including start_step)
    self._start_step = start_step
    self._lock = threading.Lock()
    # index -> error of every video a worker found unreadable, even in a
    # prefetched batch: a failure depends on the file only (VideoReadError),
    # so skipping a known one without decoding it changes no batch.
    self._known_bad: dict[int, str] = {}
    self._template: Example | None = None
    self._slots = self._slot_iterator(start_step)
    self._window = prefetch * batch_size
    self._pending: collections.deque[concurrent.futures.Future[Any]] = (
        collections.deque())
    self._pool = concurrent.futures.ThreadPoolExecutor(
        num_threads, thread_name_prefix='sideways-data')
    self._closed = False

  # -- iteration -------------------------------------------------------------

  def __iter__(self) -> ClipLoader:
    return self

  def __next__(self) -> Batch:
    if self._closed:
      raise StopIteration
    self._fill()
    if not self._pending:
      self.close()
      raise StopIteration
    futures = [self._pending.popleft() for _ in range(self.batch_size)]
    self._fill()  # keep the workers busy while this batch is collated
    loaded = [f.result() for f in futures]
    batch = self._collate(loaded)
    for slot in loaded:  # In slot order, on this thread: deterministic.
      self.stats.count(slot)
    self.step += 1
    return batch

  @property
  def epoch(self) -> int:
    """Epoch of the next batch (train mode)."""
    return self.step // self.batches_per_epoch

  def close(self, wait: bool = True) -> None:
    """Drops the examples not started and (by default) waits for the rest.

    Waiting costs at most one example per thread, and guarantees that no
    worker still reads files after close() returns (e.g. a temporary folder
    being deleted).
    """
    if not self._closed:
      self._closed = True
      self._pool.shutdown(wait=wait, cancel_futures=True)

  def __enter__(self) -> ClipLoader:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()

  def __del__(self):
    if hasattr(self, '_pool'):  # __init__ may have failed before the pool
      self.close(wait=False)

  # -- state -----------------------------------------------------------------

  def get_state(self) -> dict[str, Any]:
    """The skip list and counts after the batches delivered (JSON-ready).

    Save it with the checkpoint of step `self.step`; `set_state` on a loader
    made with `start_step` = that step restores it.
    """
    return self.stats.state(self.step)

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Restores `get_state()` of the same step, before the first batch.

    The videos it lists as unreadable are skipped without being read again,
    as the first process skipped them, and the counts go on from its values.

    Raises:
      ValueError: a batch was already taken, the state is from another
        step, or it is not a `get_state()` dict.
    """
    if self.step != self._start_step or self._pending:
      raise ValueError('set_state must come before the first batch')
    step, stats = LoaderStats.from_state(state)
    if step != self.step:
      raise ValueError(f'the loader state is from step {step} but this '
                       f'loader starts at step {self.step}')
    self.stats = stats
    with self._lock:
      self._known_bad.update(stats.messages)

  # -- scheduling ------------------------------------------------------------

  def _slot_iterator(self, start_step: int) -> Iterator[tuple[int, int]]:
    """(epoch, index) of every example this process delivers, in order."""
    n, b = len(self.source), self.batch_size
    if not self.train:
      mine = list(range(self.process_index, n, self.process_count))
      mine += [_PAD] * (self.batches_per_epoch * b - len(mine))
      yield from ((0, i) for i in mine)
      return
    first_epoch, skip = divmod(start_step, self.batches_per_epoch)
    for epoch in itertools.count(first_epoch):
      order = epoch_order(n, self.seed, epoch,
                          process_index=self.process_index,
                          process_count=self.process_count)
      begin = skip * b if epoch == first_epoch else 0
      for index in order[begin:self.batches_per_epoch * b]:
        yield epoch, int(index)

  def _fill(self) -> None:
    while len(self._pending) < self._window + self.batch_size:
      slot = next(self._slots, None)
      if slot is None:
        return
      self._pending.append(self._pool.submit(self._load, *slot))

  # -- one example (worker threads) ------------------------------------------

  def _candidates(self, epoch: int,
                  index: int) -> Iterator[tuple[int, np.random.Generator]]:
    """The video for a slot, then (training) its distinct replacements."""
    yield index, example_rng(self.seed, epoch, index)
    if not self.train:
      return
    # Drawn only once the slot's own video has failed.
    others = np.random.default_rng([self.seed, epoch, index, 2**31 - 2]
                                  ).permutation(len(self.source))
    others = others[others != index][:self.max_substitutions]
    for attempt, candidate in enumerate(others, 1):
      yield int(candidate), example_rng(self.seed, epoch, index, attempt)

  def _load(self, epoch: int, index: int) -> Slot:
    """Loads a slot: its video, or in training the first readable stand-in.

    Raises:
      UnreadableVideosError: training met only unreadable videos in the
        slot's candidates (AllVideosUnreadable when that is every video).
    """
    if index == _PAD:
      return Slot(None, (), None, True)
    met = []
    for candidate, rng in self._candidates(epoch, index):
      error = self._known_bad.get(candidate)
      if error is None:
        try:
          example = dict(self.source.get(candidate, rng))
        except VideoReadError as e:
          error = str(e)
          with self._lock:
            self._known_bad[candidate] = error
        else:
          truncated = bool(example.pop(TRUNCATED, False))
          self._remember_template(example)
          return Slot(example, tuple(met),
                      candidate if truncated else None, False)
      met.append((candidate, error))
    if not self.train:
      return Slot(None, tuple(met), None, False)
    raise self._unreadable_error(
        len(met), met[-1][1], f' while replacing index {index} (epoch '
        f'{epoch})')

  def _unreadable_error(self, tried: int, example: str,
                        where: str = '') -> UnreadableVideosError:
    """All videos unreadable, or `tried` different ones in a row."""
    n = len(self.source)
    if tried >= n or len(self._known_bad) >= n:
      return AllVideosUnreadable(
          f'all {n} videos of the data source are unreadable, e.g. {example}')
    return UnreadableVideosError(
        f'{tried} different videos in a row are unreadable{where}; '
        f'{len(self._known_bad)} of {n} found unreadable so far, e.g. '
        f'{example}')

  def _remember_template(self, example: Example) -> None:
    if self._template is None:
      with self._lock:
        if self._template is None:
          self._template = {k: np.zeros_like(v) for k, v in example.items()}

  def _padding_example(self) -> Example:
    if self._template is None:
      # Every example of this batch is padding: shapes come from any
      # readable example of the source.
      for index in range(len(self.source)):
        if index in self._known_bad:
          continue
        try:
          example = dict(self.source.get(index,
                                         example_rng(self.seed, 0, index)))
        except VideoReadError as e:
          with self._lock:
            self._known_bad[index] = str(e)
        else:
          example.pop(TRUNCATED, None)
          self._remember_template(example)
          break
      else:
        raise self._unreadable_error(len(self.source),
                                     next(iter(self._known_bad.values())))
    assert self._template is not None
    return self._template

  # -- batching (main thread) ------------------------------------------------

  def _collate(self, loaded: list[Slot]) -> Batch:
    examples = [item.example for item in loaded]
    valid = np.array([e is not None for e in examples])
    if not valid.all():
      pad = self._padding_example()
      examples = [pad if e is None else e for e in examples]
    batch = {}
    for key in examples[0]:
      axis = 1 if key in TIME_MAJOR_KEYS else 0
      batch[key] = np.stack([e[key] for e in examples], axis=axis)
    if not self.train:
      batch['example_valid'] = valid
    return batch


def make_loader(source: ClipSource, batch_size: int, *, seed: int,
                train: bool, num_threads: int = 2, prefetch: int = 2,
                process_index: int | None = None,
                process_count: int | None = None, start_step: int = 0,
                max_substitutions: int = 16) -> ClipLoader:
  """Batches {'video': uint8 [K,B,H,W,3], 'label': int32 [B], 'mask': bool [K,B]}.

  Args:
    source: the examples.
    batch_size: examples per batch on this process (a global batch divided
      by the process count).
    seed: fixes the epoch orders and every example's randomness (>= 0).
    train: shuffled, infinite, remainder dropped if True; one ordered pass
      with the last batch padded and 'example_valid': bool [B] if False.
    num_threads: decoding threads.
    prefetch: batches prepared ahead of the consumer.
    process_index: this process's shard (default jax.process_index()).
    process_count: number of shards (default jax.process_count()).
    start_step: train mode: batches to skip without decoding them (resume
      the exact stream after a checkpoint at that step).
    max_substitutions: train mode: distinct videos tried in place of an
      unreadable one before giving up (UnreadableVideosError, or
      AllVideosUnreadable when every video of the source failed).

  Returns:
    An iterator over batches; `.stats` counts unreadable and truncated
    videos (`.stats.as_dict()`), `.get_state()` / `.set_state()` carry the
    skip list over a resume, `.batches_per_epoch` is this process's batch
    count per epoch.
  """
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else (
        process_index)
    process_count = jax.process_count() if process_count is None else (
        process_count)
  return ClipLoader(source, batch_size, seed=seed, train=train,
                    num_threads=num_threads, prefetch=prefetch,
                    process_index=process_index, process_count=process_count,
                    start_step=start_step, max_substitutions=max_substitutions)

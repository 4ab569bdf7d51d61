"""A clip source over a list of video files, shared by the dataset readers.

The readers (ucf101.py, hmdb51.py, cater.py, folder.py) only parse their
layouts into `VideoEntry`s; decoding and clip sampling live here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.sampling import sample_clip
from sideways_jax.data.source import Example
from sideways_jax.data.video import VideoFile

VIDEO_EXTENSIONS = ('.avi', '.mp4', '.mkv', '.webm', '.mov', '.mpg', '.mpeg',
                    '.m4v')


@dataclasses.dataclass(frozen=True)
class VideoEntry:
  """One video of a split.

  Attributes:
    path: the file.
    label: class index (0 for unlabelled sets; the first listed label for
      multi-label sets).
    labels: every label, for multi-label sets (CATER); empty otherwise.
  """
  path: str
  label: int
  labels: tuple[int, ...] = ()


class VideoFileSource:
  """ClipSource over video files decoded with OpenCV.

  Attributes:
    entries: the videos, in split-file order (the eval order).
    num_classes: number of classes (0: unlabelled).
    class_names: names of the classes, index = label.
    spec: how clips are cut.
    multi_label: if True, examples also carry 'labels': bool [num_classes].
  """

  def __init__(self, entries: Sequence[VideoEntry], *, num_classes: int,
               spec: ClipSpec, class_names: Sequence[str] = (),
               multi_label: bool = False, name: str = 'videos'):
    if not entries:
      raise ValueError(f'{name}: no video in this split')
    for entry in entries:
      bad = [l for l in (entry.label, *entry.labels)
             if num_classes and not 0 <= l < num_classes]
      if bad:
        raise ValueError(f'{name}: label {bad[0]} of {entry.path} is outside '
                         f'[0, {num_classes})')
    self.entries = tuple(entries)
    self.num_classes = num_classes
    self.class_names = tuple(class_names)
    self.spec = spec
    self.multi_label = multi_label
    self.name = name

  def __len__(self) -> int:
    return len(self.entries)

  @property
  def deterministic(self) -> bool:
    """Evaluation clips ignore the rng (centred window, no crop or flip)."""
    return not self.spec.train

  def __repr__(self) -> str:
    return (f'VideoFileSource({self.name}, {len(self)} videos, '
            f'{self.num_classes} classes, {self.spec})')

  def get(self, index: int, rng: np.random.Generator) -> Example:
    """Decodes and samples one clip; raises VideoReadError if unreadable."""
    entry = self.entries[index]
    with VideoFile(entry.path) as video:
      example = sample_clip(video.num_frames(), video.read, self.spec, rng,
                            bgr=True)
    example['label'] = np.asarray(entry.label, np.int32)
    if self.multi_label:
      multi_hot = np.zeros([self.num_classes], np.bool_)
      multi_hot[list(entry.labels)] = True
      example['labels'] = multi_hot
    return example


def labelled_source(entries_and_classes: tuple[Sequence[VideoEntry],
                                                Sequence[str]], *,
                    spec: ClipSpec, name: str) -> VideoFileSource:
  """A source over a reader's (entries, class names); one class per video."""
  entries, class_names = entries_and_classes
  return VideoFileSource(entries, num_classes=len(class_names), spec=spec,
                         class_names=class_names, name=name)


def read_lines(path: pathlib.Path) -> list[str]:
  """Non-blank, stripped lines; CRLF/LF and a UTF-8 BOM are all accepted."""
  with open(path, encoding='utf-8-sig', errors='replace', newline=None) as f:
    return [line.strip() for line in f if line.strip()]


class PathResolver:
  """Finds files under a root, falling back to a case-insensitive match.

  Official lists and unpacked archives disagree on case in places (UCF101:
  'HandstandPushups/v_HandStandPushups_g01_c01.avi'; some mirrors rename one
  or the other). The index of the tree is built on the first miss only.
  """

  def __init__(self, root: pathlib.Path):
    self.root = root
    self._index: dict[str, str] | None = None

  def resolve(self, relative: str) -> pathlib.Path | None:
    """The existing file for `relative` ('/'-separated), or None."""
    exact = self.root / relative
    if exact.is_file():
      return exact
    if self._index is None:
      self._index = {}
      for dirpath, _, filenames in os.walk(self.root):
        rel_dir = os.path.relpath(dirpath, self.root)
        for filename in filenames:
          rel = filename if rel_dir == '.' else f'{rel_dir}/{filename}'
          self._index.setdefault(rel.replace(os.sep, '/').lower(), rel)
    found = self._index.get(relative.replace('\\', '/').lower())
    return None if found is None else self.root / found


class EntryCollector:
  """Builds a split's entries, resolving each listed video under a folder.

  A listed video missing on disk stays in the split (labels and the eval
  order do not shift; the loader skips and counts it) and is warned about
  once, in `finish`.
  """

  def __init__(self, videos: pathlib.Path):
    self.videos = videos
    self.entries: list[VideoEntry] = []
    self.missing: list[str] = []
    self._resolver = PathResolver(videos)

  def add(self, relative: str, label: int, labels: tuple[int, ...] = ()
         ) -> None:
    """Adds the video at `relative` ('/'-separated) under the folder."""
    path = self._resolver.resolve(relative)
    if path is None:
      self.missing.append(relative)
      path = self.videos / relative
    self.entries.append(VideoEntry(str(path), label, labels))

  def finish(self, error: Callable[[str], Exception], *, listed_in: str,
             name: str) -> list[VideoEntry]:
    """The entries; `error(problem)` if none is listed or none exists.

    Args:
      error: builds the reader's layout error from a problem.
      listed_in: where the videos are listed, for messages.
      name: the split's name, for the warning about missing videos.
    """
    if not self.entries:
      raise error(f'{listed_in} lists no video')
    if len(self.missing) == len(self.entries):
      raise error(f'none of the {len(self.entries)} videos listed in '
                  f'{listed_in} is under {self.videos}')
    if self.missing:
      logging.warning(
          '%s: %d of %d listed videos are missing (kept so labels and eval '
          'order do not shift; the loader skips and counts them), e.g. %s',
          name, len(self.missing), len(self.entries), self.missing[:3])
    return self.entries


def check_official_split(dataset: str, split: str, splits: Iterable[str],
                         fold: int) -> None:
  """A ValueError unless `split` is one of `splits` and `fold` is 1-3."""
  splits = tuple(splits)
  if split not in splits:
    raise ValueError(f'{dataset} split must be one of {splits}, got '
                     f'{split!r}')
  if fold not in (1, 2, 3):
    raise ValueError(f'{dataset} split number (fold) must be 1, 2 or 3, got '
                     f'{fold}')


def require_folders(error: Callable[[str], Exception],
                    *folders: pathlib.Path) -> None:
  """`error('folder ... not found')` for the first folder that is missing."""
  for folder in folders:
    if not folder.is_dir():
      raise error(f'folder {folder} not found')

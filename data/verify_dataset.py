"""Checks a prepared dataset: parses its split and decodes its videos.

    python data/verify_dataset.py ucf101 [--root data/ucf101] [--split train]
        [--fold 1] [--limit 200] [--task actions_present]

Prints the number of videos and classes, decodes `--limit` evenly spaced
videos (0: all) through the same loader the training uses, and lists the
unreadable ones. Exits non-zero if the layout is wrong or a video fails.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from sideways_jax.data import DatasetLayoutError  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax.data import make_loader  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax.data import make_source  # pylint: disable=g-import-not-at-top,wrong-import-position

DEFAULT_SPLIT = {'ucf101': 'train', 'hmdb51': 'train', 'cater': 'train',
                 'folder': 'all'}


class _Subset:
  """Every `step`-th example of a source (keeps verification quick)."""

  def __init__(self, source, step):
    self.source, self.step = source, step
    self.num_classes = source.num_classes

  def __len__(self):
    return (len(self.source) + self.step - 1) // self.step

  def get(self, index, rng):
    return self.source.get(index * self.step, rng)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('name', choices=sorted(DEFAULT_SPLIT))
  parser.add_argument('--root', default=None)
  parser.add_argument('--split', default=None)
  parser.add_argument('--fold', type=int, default=1)
  parser.add_argument('--task', default=None, help='CATER task (default: none)')
  parser.add_argument('--limit', type=int, default=200,
                      help='videos to decode, evenly spaced (0: all)')
  parser.add_argument('--threads', type=int, default=2)
  args = parser.parse_args(argv)
  kwargs = {'task': args.task} if args.name == 'cater' else {}
  try:
    source = make_source(args.name, split=args.split or DEFAULT_SPLIT[args.name],
                         root=args.root, clip_length=16, stride=2,
                         resolution=64, train=False, fold=args.fold, **kwargs)
  except DatasetLayoutError as e:
    print(e, file=sys.stderr)
    return 2
  print(f'{args.name}: {len(source)} videos, {source.num_classes} classes')
  step = 1 if args.limit <= 0 else max(1, len(source) // args.limit)
  subset = _Subset(source, step)
  start = time.perf_counter()
  loader = make_loader(subset, 1, seed=0, train=False, num_threads=args.threads,
                       process_index=0, process_count=1)
  padded = 0
  for batch in loader:
    padded += int((~batch['mask']).sum())
  seconds = time.perf_counter() - start
  print(f'decoded {len(subset)} clips in {seconds:.1f} s; padded frames: '
        f'{padded}; unreadable: {len(loader.stats.bad_indices)}')
  for index in sorted(loader.stats.bad_indices):
    print('  ', loader.stats.messages.get(index, source.entries[index * step]))
  return 1 if loader.stats.bad_indices else 0


if __name__ == '__main__':
  sys.exit(main())

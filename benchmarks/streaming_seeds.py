"""BP / row ratios of the streaming table over seeds: mean and spread.

Reads the results.json of streaming runs that differ only in `seed`, e.g.

  for s in 0 1 2; do python experiments/main.py \
      --config=configs/synthetic_autoencoder.py --config.seed=$s \
      --workdir=/tmp/stream_seed$s; done
  python benchmarks/streaming_seeds.py /tmp/stream_seed0 /tmp/stream_seed1 \
      /tmp/stream_seed2

and prints, per sweep value, schedule and score, each row's held-out MSE
(mean over seeds) and BP / row as mean [min, max] over seeds.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys

SCORES = (('shown', '(a)'), ('frame', '(b)'),
          ('frame_latency_free', '(b) latency-free'))


def _load(folder: str) -> dict:
  path = pathlib.Path(folder) / 'results.json'
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError) as e:
    sys.exit(f'error: cannot read {path}: {e}')


def main(folders: list[str]) -> None:
  if len(folders) < 2:
    sys.exit('usage: streaming_seeds.py WORKDIR WORKDIR [...] (runs that '
             'differ only in seed)')
  runs = [_load(f) for f in folders]
  seeds = [r['config'].get('seed') for r in runs]
  print(f"{runs[0]['field']}: {len(runs)} seeds {seeds}; MSE mean over "
        'seeds, BP / row as mean [min, max]')
  for index, point in enumerate(runs[0]['points']):
    rows = [name for name in point if name not in ('value', 'bp')]
    print(f"\n{runs[0]['field']} = {point['value']}")
    print('schedule   score                   bp  ' + '  '.join(
        f'{name:>34}' for name in rows))
    for schedule in ('training', 'pipelined'):
      for key, label in SCORES:
        bp_mean = statistics.mean(
            r['points'][index]['bp']['scores'][schedule][key] for r in runs)
        cells = []
        for name in rows:
          values = [r['points'][index][name]['scores'][schedule][key]
                    for r in runs]
          bp = [r['points'][index]['bp']['scores'][schedule][key]
                for r in runs]
          ratios = [b / v for b, v in zip(bp, values)]
          cells.append(f'{statistics.mean(values):.5f} '
                       f'{statistics.mean(ratios):.2f}x '
                       f'[{min(ratios):.2f}, {max(ratios):.2f}]')
        print(f'{schedule:<10} {label:<18} {bp_mean:.5f}  ' + '  '.join(
            f'{c:>34}' for c in cells))


if __name__ == '__main__':
  main(sys.argv[1:])

"""Draws the PNG figures of an experiment folder from its metrics logs.

  python experiments/plot.py --workdir=workdirs/synthetic_simplecnn
  python experiments/plot.py --workdir=workdirs/stride_sweep --out=/tmp/figs
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from sideways_jax.train import plots

_WORKDIR = flags.DEFINE_string('workdir', None, 'An experiment folder.')
_OUT = flags.DEFINE_string('out', None, 'Where the PNGs go (default: '
                           '<workdir>/plots).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  for figure in plots.make_plots(_WORKDIR.value, _OUT.value):
    print(figure)


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir'])
  app.run(main)

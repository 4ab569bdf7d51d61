"""Draws the PNG figures of a classification experiment folder from its logs.

  python experiments/plot.py --workdir=workdirs/synthetic_simplecnn
  python experiments/plot.py --workdir=workdirs/stride_sweep --out=/tmp/figs
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from sideways_jax.experiments import entry  # pylint: disable=g-import-not-at-top

if __name__ == '__main__':
  entry.plot_main()

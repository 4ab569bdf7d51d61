"""Runs any experiment config: classification, streaming or speed.

  python experiments/main.py --config=configs/synthetic_simplecnn.py
  python experiments/main.py --config=configs/hmdb_simplecnn.py:smoke \
      --config.algorithm=bp --workdir=/tmp/run
  python experiments/main.py --config=configs/hmdb_simplecnn.py \
      --config.mesh.stages=6          # depth-parallel, one stage per device
  python experiments/main.py --config=configs/synthetic_autoencoder.py
  python experiments/main.py --config=configs/speed_simplecnn.py
  python experiments/main.py --config=configs/synthetic_simplecnn.py \
      --mode=eval                     # evaluate the trained runs again
  python experiments/main.py --config=configs/synthetic_simplecnn.py \
      --workdir=workdirs/synthetic_simplecnn/sideways --mode=export \
      --out=/tmp/sideways.msgpack     # trained variables, one file

Re-running the same command resumes from the newest checkpoint that
verifies; --resume=fork continues it with a changed config, --resume=restart
starts over (the old run is moved aside). Mistakes end in one line on
stderr; --verbose shows the traceback.
"""

import pathlib
import sys

# Makes `sideways_jax` and `configs` importable without installing them.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from sideways_jax.experiments import entry  # pylint: disable=g-import-not-at-top

if __name__ == '__main__':
  entry.main()

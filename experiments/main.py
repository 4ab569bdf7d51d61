"""Runs an experiment config: BP and/or Sideways, classification or streaming.

  python experiments/main.py --config=configs/synthetic_simplecnn.py
  python experiments/main.py --config=configs/hmdb_simplecnn.py:smoke \
      --config.algorithm=bp --workdir=/tmp/run
  python experiments/main.py --config=configs/synthetic_autoencoder.py

Re-running the same command resumes from the newest checkpoint.
"""

import pathlib
import sys

# Makes `sideways_jax` and `configs` importable without installing them.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
from ml_collections import config_flags

from sideways_jax import runners

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. configs/hmdb_simplecnn.py '
    '(append :smoke for a tiny run).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Folder for logs, checkpoints and plots (default: '
    'workdirs/<config name>[_<arg>]).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    # Orbax logs several INFO lines per checkpoint; --verbosity=0 shows them.
    logging.set_verbosity(logging.WARNING)
  config_file = config_flags.get_config_filename(flags.FLAGS['config'])
  runners.main(_CONFIG.value, config_file=config_file,
               workdir=_WORKDIR.value)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)

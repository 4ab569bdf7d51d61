"""Training speed of BP and Sideways on several devices (paper Table 2).

  python experiments/speed.py --config=configs/speed_simplecnn.py
  python experiments/speed.py --config=configs/speed_vgg8.py:smoke

Multi-host: run the same command on every host with
--config.distributed.num_processes=N --config.distributed.process_id=i
--config.distributed.coordinator_address=HOST0:PORT (or
--config.distributed.auto_detect=True under SLURM / on TPU VMs).
"""

import pathlib
import sys

# Makes `sideways_jax` and `configs` importable without installing them.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
from ml_collections import config_flags

from sideways_jax.parallel import speed

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Speed config, e.g. configs/speed_simplecnn.py (append '
    ':smoke for a tiny run).', lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  speed.main(_CONFIG.value.to_dict())


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)

"""Training speed and memory per device (paper Table 2); speed configs only.

  python experiments/speed.py --config=configs/speed_simplecnn.py
  python experiments/speed.py --config=configs/speed_vgg8.py:smoke

The same as `python experiments/main.py` with a speed config; kept as the
benchmark's own command. Multi-host: run the same command on every host with
--config.distributed.num_processes=N --config.distributed.process_id=i
--config.distributed.coordinator_address=HOST0:PORT (or
--config.distributed.auto_detect=True under SLURM / on TPU VMs).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from sideways_jax.experiments import entry  # pylint: disable=g-import-not-at-top

if __name__ == '__main__':
  entry.main(expect_runner='speed')

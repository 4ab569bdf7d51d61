"""Training speed of VGG-8 on D devices (paper Table 2, second row).

  python experiments/speed.py --config=configs/speed_vgg8.py

As configs/speed_simplecnn.py, with VGG-8 (batchnorm, no dropout) on one
device per stage (8). Paper: BP 0.1, Sideways 0.6 steps/s on 8 V100s.
Arguments: :smoke, :local2, :memory (see configs/speed_simplecnn.py).
"""

import ml_collections

from configs import common
from configs import speed_simplecnn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = common.parse_arg(arg, known=speed_simplecnn.ARGS)
  c = speed_simplecnn.base_config()
  c.model.name = 'vgg8'
  c.model.num_stages = 8  # Paper: 8 GPUs, one per layer.
  c.model.kwargs.width = 1.0  # Width multiplier; 1.0 is the paper's VGG-8.
  c.model.kwargs.dropout_rate = 0.0  # Speed runs without dropout.
  if 'smoke' in options:
    c.model.kwargs.width = 1 / 32
  speed_simplecnn.apply_args(c, options)
  if 'local2' in options and 'memory' not in options:
    # VGG-8 costs ~3.5x Simple-CNN per frame on a CPU core; its D = 2 cut
    # is better balanced (bound ~1.9 vs ~1.8) and sends 8x less data.
    c.data.clip_length = 8
  c.lock()
  return c

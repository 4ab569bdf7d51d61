"""Simple-CNN on HMDB51, BP vs Sideways (paper Table 1 and Fig. 4).

  python experiments/main.py --config=configs/hmdb_simplecnn.py
  python experiments/main.py --config=configs/hmdb_simplecnn.py:smoke
"""

from configs import common


def get_config(arg: str | None = None):
  options = common.parse_arg(arg)
  c = common.base_config()
  if 'smoke' in options:
    common.shrink_for_smoke(c)
  c.lock()
  return c

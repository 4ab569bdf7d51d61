"""VGG-8 on HMDB51, BP vs Sideways (paper Table 1 and Fig. 4)."""

from configs import common


def get_config(arg: str | None = None):
  options = common.parse_arg(arg)
  c = common.base_config()
  c.model.name = 'vgg8'
  c.model.num_stages = 8  # Paper §4.2: 8 Sideways modules.
  c.model.kwargs.dropout_rate = 0.0  # Paper: dropout only in the UCF101 row.
  c.model.kwargs.width = 1.0  # The paper's widths.
  if 'smoke' in options:
    common.shrink_for_smoke(c)
    c.model.kwargs.width = 1 / 16  # Tiny widths: compiles in seconds.
  c.lock()
  return c

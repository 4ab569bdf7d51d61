"""VGG-8 with dropout 0.9 on fc6/fc7, UCF101 (paper Table 1's best row)."""

from configs import ucf101_vgg8


def get_config(arg: str | None = None):
  c = ucf101_vgg8.get_config(arg)
  c.model.kwargs.dropout_rate = 0.9  # Paper Table 1.
  return c

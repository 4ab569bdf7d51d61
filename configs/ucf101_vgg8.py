"""VGG-8 on UCF101, BP vs Sideways (paper Table 1)."""

from configs import hmdb_vgg8


def get_config(arg: str | None = None):
  c = hmdb_vgg8.get_config(arg)
  c.data.name = 'ucf101'
  return c

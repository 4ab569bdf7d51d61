"""Simple-CNN on UCF101, BP vs Sideways (paper Table 1)."""

from configs import hmdb_simplecnn


def get_config(arg: str | None = None):
  c = hmdb_simplecnn.get_config(arg)
  c.data.name = 'ucf101'
  return c

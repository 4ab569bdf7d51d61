"""A user's config for their own model: the ResNet of resnet_flax.py.

  python experiments/main.py --config=tests/byo/resnet_config.py:smoke \
      --config.model.name=tests.byo.resnet_flax:build --workdir=/tmp/resnet

The shipped synthetic job with the model swapped: `model.name` is an import
path (resolved from the repository root, where experiments/main.py puts
itself on sys.path) and `model.kwargs` are its builder's own arguments.
"""

import ml_collections

from configs import synthetic_simplecnn


def get_config(arg: str | None = None):
  c = synthetic_simplecnn.get_config(arg)
  c.unlock()
  c.model.name = 'tests.byo.resnet_flax:build'
  c.model.num_stages = 4
  c.model.kwargs = ml_collections.ConfigDict({'num_filters': 4})
  c.compare = False
  c.lock()
  return c

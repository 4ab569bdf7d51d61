"""A researcher's own model, written as Flax's ImageNet example writes it.

`ResNet` is one `nn.compact` module whose blocks take no `train` argument
and whose BatchNorm averages over `axis_name='batch'` (as under pmap). The
library is not used above the marked line: this is the model as a user
brings it. Below it, the glue that makes it Sideways stages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

ModuleDef = Any
STAGE_SIZES = (2, 2, 2, 2)  # ResNet-18


class ResNetBlock(nn.Module):
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  act: Callable
  strides: tuple[int, int] = (1, 1)

  @nn.compact
  def __call__(self, x):
    residual = x
    y = self.conv(self.filters, (3, 3), self.strides)(x)
    y = self.norm()(y)
    y = self.act(y)
    y = self.conv(self.filters, (3, 3))(y)
    y = self.norm(scale_init=nn.initializers.ones_init())(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters, (1, 1), self.strides,
                           name='conv_proj')(residual)
      residual = self.norm(name='norm_proj')(residual)
    return self.act(residual + y)


class ResNet(nn.Module):
  num_classes: int
  num_filters: int = 64
  stage_sizes: Sequence[int] = STAGE_SIZES

  @nn.compact
  def __call__(self, x, train: bool = True):
    conv = functools.partial(nn.Conv, use_bias=False)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=0.9, epsilon=1e-5, axis_name='batch')
    x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)],
             name='conv_init')(x)
    x = norm(name='bn_init')(x)
    x = nn.relu(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')
    for i, block_size in enumerate(self.stage_sizes):
      for j in range(block_size):
        strides = (2, 2) if i > 0 and j == 0 else (1, 1)
        x = ResNetBlock(self.num_filters * 2**i, strides=strides, conv=conv,
                        norm=norm, act=nn.relu)(x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


# ---- the glue: the same layers, named as in ResNet's variable tree --------
from sideways_jax import flax_stages  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax.flax_stages import Factory, Function  # pylint: disable=g-import-not-at-top,wrong-import-position


def layers(num_classes: int, num_filters: int = 64) -> list:
  conv = functools.partial(nn.Conv, use_bias=False)
  norm = lambda train: functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
      axis_name='batch')
  out = [('conv_init', conv(num_filters, (7, 7), (2, 2),
                            padding=[(3, 3), (3, 3)])),
         ('bn_init', Factory(lambda train: norm(train)())),
         ('pool', Function(lambda x: nn.max_pool(
             nn.relu(x), (3, 3), strides=(2, 2), padding='SAME')))]
  for i, block_size in enumerate(STAGE_SIZES):
    for j in range(block_size):
      block = functools.partial(
          ResNetBlock, num_filters * 2**i, conv=conv, act=nn.relu,
          strides=(2, 2) if i > 0 and j == 0 else (1, 1))
      out.append((f'ResNetBlock_{len(out) - 3}',
                  Factory(lambda train, block=block: block(norm=norm(train)))))
  return out + [('pool_out', Function(lambda x: jnp.mean(x, axis=(1, 2)))),
                ('Dense_0', nn.Dense(num_classes))]


def build(num_classes: int, *, num_stages: int | None = None,
          num_filters: int = 8, frame_shape: Sequence[int] = (32, 32, 3)
          ) -> tuple:
  """The builder signature `--config.model.name=resnet_flax:build` takes."""
  return flax_stages.from_layers(
      layers(num_classes, num_filters), num_stages=num_stages,
      frame_shape=frame_shape, batch_axis_name='batch')

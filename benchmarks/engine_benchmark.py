"""Engine cost per frame and compiled memory: Sideways vs exact BP, side by side.

Simple-CNN-sized conv chain (5 conv 3x3 with 32-64-64-128-256 channels,
stride 2 at convs 1, 3, 5, ReLU, then global average pool + linear: 6
stages), batch 8, 64x64 frames, fp32, on whatever backend JAX picks.

  python benchmarks/engine_benchmark.py                 # timings + memory
  python benchmarks/engine_benchmark.py --conv_impl=xla # XLA's native conv

Prints per-frame times, the ratio Sideways / BP batched (target <= 1.25 on
CPU) and compiled temp bytes for K = 8, 11, 16, 32, 64 (target: Sideways'
temp bytes flat in K, largest/smallest valid K <= 1.05; K=8 < 2D-1 is not a
valid Sideways clip for 6 stages).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import sideways_jax as sj
from sideways_jax import layers

_FRAMES = flags.DEFINE_integer('frames', 16, 'Clip length K for timings.')
_BATCH = flags.DEFINE_integer('batch', 8, 'Clips per batch.')
_SIZE = flags.DEFINE_integer('size', 64, 'Frame height and width.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls; the best counts.')
_CONV_IMPL = flags.DEFINE_enum('conv_impl', 'auto', ['auto', 'xla', 'im2col'],
                               'Convolution implementation of every stage.')
_MEMORY_FRAMES = flags.DEFINE_list('memory_frames',
                                   ['8', '11', '16', '32', '64'],
                                   'Clip lengths for the memory table.')

CHANNELS = (32, 64, 64, 128, 256)
STRIDES = (2, 1, 2, 1, 2)
NUM_CLASSES = 51


class ConvRelu(nn.Module):
  features: int
  stride: int
  impl: str

  @nn.compact
  def __call__(self, x, train):
    del train
    conv = layers.Conv(self.features, (3, 3), (self.stride, self.stride),
                       impl=self.impl)
    return nn.relu(conv(x))


class PoolLinear(nn.Module):
  classes: int

  @nn.compact
  def __call__(self, x, train):
    del train
    return nn.Dense(self.classes)(x.mean((1, 2)))


def simple_cnn_chain(impl: str) -> tuple[nn.Module, ...]:
  convs = tuple(ConvRelu(c, s, impl) for c, s in zip(CHANNELS, STRIDES))
  return convs + (PoolLinear(NUM_CLASSES),)


def xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def _inputs(num_frames: int):
  clip = jax.random.normal(jax.random.PRNGKey(0),
                           (num_frames, _BATCH.value, _SIZE.value,
                            _SIZE.value, 3))
  labels = jnp.zeros((num_frames, _BATCH.value), jnp.int32)
  return clip, labels


def _methods(stages) -> dict[str, Callable]:
  return {
      'sideways': lambda v, c, y: sj.sideways_grads(stages, v, c, y, xent),
      'bp_batched': lambda v, c, y: sj.bp_grads(stages, v, c, y, xent,
                                                mode='batched'),
      'bp_scanned': lambda v, c, y: sj.bp_grads(stages, v, c, y, xent,
                                                mode='scanned'),
  }


def _best_seconds(fn, *args) -> float:
  jax.block_until_ready(fn(*args))  # compile + warm up
  best = float('inf')
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
  return best


def main(argv):
  del argv
  stages = simple_cnn_chain(_CONV_IMPL.value)
  clip, labels = _inputs(_FRAMES.value)
  variables = sj.init_chain(stages, jax.random.PRNGKey(1), clip[0])
  methods = {k: jax.jit(f) for k, f in _methods(stages).items()}
  print(f'backend={jax.default_backend()} conv_impl='
        f'{layers.resolve_impl(_CONV_IMPL.value)} K={_FRAMES.value} '
        f'B={_BATCH.value} {_SIZE.value}x{_SIZE.value}')
  per_frame = {}
  for name, fn in methods.items():
    per_frame[name] = _best_seconds(fn, variables, clip,
                                    labels) / _FRAMES.value
    print(f'  {name:11s} {per_frame[name] * 1e3:8.1f} ms/frame', flush=True)
  ratio = per_frame['sideways'] / per_frame['bp_batched']
  print(f'  ratio sideways / bp_batched = {ratio:.2f} (target <= 1.25)')
  print(f'  ratio sideways / bp_scanned = '
        f"{per_frame['sideways'] / per_frame['bp_scanned']:.2f}")

  print('compiled temp bytes (memory_analysis):')
  frames = [int(k) for k in _MEMORY_FRAMES.value]
  print('  ' + 'K'.rjust(11) + ''.join(f'{k:>14d}' for k in frames))
  temp = {}
  min_frames = sj.min_clip_length(len(stages))
  for name, fn in methods.items():
    temp[name] = {}
    for num_frames in frames:
      if name == 'sideways' and num_frames < min_frames:
        continue  # no valid step for stage 1: sideways_grads refuses it
      compiled = fn.lower(variables, *_inputs(num_frames)).compile()
      temp[name][num_frames] = compiled.memory_analysis().temp_size_in_bytes
    print(f'  {name:11s}' + ''.join(
        f'{temp[name][k]:>14,d}' if k in temp[name] else f"{'n/a':>14s}"
        for k in frames), flush=True)
  print(f'  (n/a: K < 2D-1 = {min_frames}; Sideways ratios use its smallest '
        'valid K)')
  for name, values in temp.items():
    first, last = min(values), max(values)
    print(f'  {name:11s} K={last}/K={first} temp ratio = '
          f'{values[last] / values[first]:.3f}')


if __name__ == '__main__':
  app.run(main)

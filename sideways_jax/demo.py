"""A one-minute demo: BP and Sideways train the same small conv chain.

The data is a synthetic clip: a bright square with a fading trail moving
slowly over a noise texture; its horizontal direction is the label. Both algorithms start from the same
weights and see the same clips; the demo prints the two loss curves.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sideways_jax import chain as chain_lib
from sideways_jax import layers
from sideways_jax import registry


class _ConvStage(nn.Module):
  features: int
  stride: int

  @nn.compact
  def __call__(self, x, train):
    del train
    conv = layers.Conv(self.features, (3, 3), (self.stride, self.stride))
    return nn.relu(conv(x))


class _Head(nn.Module):
  classes: int

  @nn.compact
  def __call__(self, x, train):
    del train
    return nn.Dense(self.classes)(x.mean((1, 2)))


def demo_chain(num_classes: int = 2) -> tuple[nn.Module, ...]:
  """Three conv stages and a linear head: D = 4 stages."""
  return (_ConvStage(8, 2), _ConvStage(16, 2), _ConvStage(32, 1),
          _Head(num_classes))


def moving_square_clips(rng: np.random.Generator, num_frames: int,
                        batch: int, size: int,
                        frames_per_pixel: int = 3) -> tuple[np.ndarray,
                                                            np.ndarray]:
  """Clips [K, B, H, W, 1] of a square moving left (label 0) or right (1).

  The square moves one pixel every `frames_per_pixel` frames over a fixed
  noise texture: a smooth video, the regime Sideways is made for (its lower
  stages pair activations and cotangents up to 2(D-1) frames apart).
  """
  labels = rng.integers(0, 2, batch)
  texture = rng.normal(0.0, 0.1, (batch, size, size, 1))
  clips = np.repeat(texture[None], num_frames, axis=0)
  start = rng.integers(0, size - 4, (batch, 2))
  for b in range(batch):
    step = 1 if labels[b] else -1
    for t in range(num_frames):
      x = start[b, 0] + step * (t // frames_per_pixel)
      y = start[b, 1]
      # A fading trail marks the direction even within one frame.
      for lag, brightness in ((3, 0.25), (2, 0.5), (1, 0.75), (0, 1.0)):
        tail = (x - lag * step) % (size - 4)
        clips[t, b, y:y + 4, tail:tail + 4] = brightness
  return clips.astype(np.float32), labels.astype(np.int32)


def run_demo(steps: int = 200, num_frames: int = 12, batch: int = 8,
             size: int = 16, learning_rate: float = 5e-3,
             seed: int = 0) -> dict[str, list[float]]:
  """Trains the demo chain with both algorithms; returns their loss curves."""
  stages = demo_chain()
  data_rng = np.random.default_rng(seed)
  clips = [moving_square_clips(data_rng, num_frames, batch, size)
           for _ in range(steps)]
  init = chain_lib.init_chain(stages, jax.random.PRNGKey(seed),
                              jnp.asarray(clips[0][0][0]))
  optimizer = optax.adam(learning_rate)

  def loss_fn(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           labels).mean()

  curves = {}
  for algorithm in ('bp', 'sideways'):
    grads_of = registry.grad_fn(algorithm)

    @jax.jit
    def train_step(variables, opt_state, clip, labels, grads_of=grads_of):
      targets = jnp.broadcast_to(labels, (clip.shape[0],) + labels.shape)
      result = grads_of(stages, variables, clip, targets, loss_fn)
      params = tuple(v['params'] for v in variables)
      updates, opt_state = optimizer.update(result.grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      return tuple({'params': p} for p in params), opt_state, result.loss

    variables = init
    opt_state = optimizer.init(tuple(v['params'] for v in variables))
    losses = []
    for clip, labels in clips:
      variables, opt_state, loss = train_step(variables, opt_state, clip,
                                              labels)
      losses.append(loss)
    curves[algorithm] = [float(x) for x in jax.device_get(losses)]
  return curves


def format_curves(curves: dict[str, list[float]], every: int = 20) -> str:
  """A table of the loss curves: the mean loss of each window of steps."""
  names = list(curves)
  rows = ['steps     ' + '  '.join(f'{n:>9s}' for n in names)]
  length = len(curves[names[0]])
  for start in range(0, length, every):
    stop = min(start + every, length)
    means = [float(np.mean(curves[n][start:stop])) for n in names]
    rows.append(f'{start:4d}-{stop - 1:<4d} ' +
                '  '.join(f'{m:9.4f}' for m in means))
  return '\n'.join(rows)

"""Compiled memory of a temporal step: Sideways flat in K, BP through time not.

The temporal Simple-CNN of configs/synthetic_temporal.py (half width, 32x32
frames, batch 8; conv1 a 3-frame window on the pixels, conv3 a 3-frame
window on features), one gradient of a clip of K frames, compiled and not
run: `jax.jit(...).lower(...).compile().memory_analysis()`.

  python benchmarks/temporal_memory.py

Prints temp bytes for K = 11 (the shortest Sideways clip for 6 stages), 24,
48, 96 and the ratio largest / smallest K per algorithm. Sideways keeps a
window of T - 1 inputs per temporal stage, whatever K (target: ratio
<= 1.05); exact BP through time keeps every frame's residuals.
"""

from __future__ import annotations

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import optax

import sideways_jax as sj
from sideways_jax.models import registry

_FRAMES = flags.DEFINE_list('frames', ['11', '24', '48', '96'],
                            'Clip lengths K.')

CHANNELS = (16, 32, 32, 64, 128)
BATCH, SIZE, CLASSES = 8, 32, 10
ALGORITHMS = (('sideways', {}), ('bp', {'mode': 'scanned'}),
              ('bp', {'mode': 'batched'}))


def _loss(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def temp_bytes(stages, variables, algorithm: str, options: dict,
               num_frames: int) -> int:
  """Temp bytes of the compiled gradient of one clip of `num_frames`."""
  fn = sj.grad_fn(algorithm, **options)
  clip = jax.ShapeDtypeStruct((num_frames, BATCH, SIZE, SIZE, 3),
                              jnp.float32)
  labels = jax.ShapeDtypeStruct((num_frames, BATCH), jnp.int32)
  compiled = jax.jit(lambda v, c, t: fn(stages, v, c, t, _loss)).lower(
      variables, clip, labels).compile()
  return int(compiled.memory_analysis().temp_size_in_bytes)


def main(argv):
  del argv
  frames = [int(k) for k in _FRAMES.value]
  stages = registry.build_model('temporal_simple_cnn', 'classifier', CLASSES,
                                channels=CHANNELS)
  variables = sj.chain.init_chain_shapes(
      stages, jax.ShapeDtypeStruct((BATCH, SIZE, SIZE, 3), jnp.float32))
  print(f'backend={jax.default_backend()} temporal_simple_cnn B={BATCH} '
        f'{SIZE}x{SIZE}, compiled temp bytes (memory_analysis):')
  print(f'{"K":>22}' + ''.join(f'{k:>14}' for k in frames))
  for algorithm, options in ALGORITHMS:
    row = [temp_bytes(stages, variables, algorithm, options, k)
           for k in frames]
    name = algorithm + (f" {options['mode']}" if options else '')
    print(f'{name:>22}' + ''.join(f'{b:>14,}' for b in row)
          + f'   K={frames[-1]}/K={frames[0]}: {row[-1] / row[0]:.3f}')


if __name__ == '__main__':
  app.run(main)

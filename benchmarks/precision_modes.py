"""BP 'batched' vs 'scanned' and Sideways under fp32 and bf16 compute.

Both BP modes compute the same sums in a different order; in bf16 the
rounding differs. Prints, for Simple-CNN (6 stages, half width, 32x32,
batch 8, K=16) on random frames, the relative L2 difference of the whole
gradient between the two BP modes, and of each against fp32 BP, for
  * fp32 (no policy),
  * the bf16 policy (sj.Precision(jnp.bfloat16): parameters, gradient sums
    and optimizer state fp32, stages computing in bf16),
  * bf16 parameters (every array bf16: what the policy avoids).

  python benchmarks/precision_modes.py
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import sideways_jax as sj
from sideways_jax import models


def _rel(a, b) -> float:
  diff = optax.tree.norm(jax.tree.map(
      lambda x, y: x.astype(jnp.float32) - y.astype(jnp.float32), a, b))
  return float(diff / optax.tree.norm(
      jax.tree.map(lambda y: y.astype(jnp.float32), b)))


def main() -> None:
  k, batch, size = 16, 8, 32
  base = models.simple_cnn(10, channels=(16, 32, 32, 64, 128), impl='xla')
  clip = jax.random.normal(jax.random.PRNGKey(0), (k, batch, size, size, 3))
  labels = jnp.broadcast_to(jnp.arange(batch) % 10, (k, batch))

  def loss_fn(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), y).mean()

  variables = sj.init_chain(base, jax.random.PRNGKey(1), clip[0])
  setups = {
      'fp32': (base, variables, clip),
      'bf16 policy': (sj.Precision(jnp.bfloat16).wrap(base), variables, clip),
      'bf16 params': (base, jax.tree.map(
          lambda x: x.astype(jnp.bfloat16), variables),
                      clip.astype(jnp.bfloat16)),
  }
  grads = {}
  for name, (stages, v, c) in setups.items():
    for mode in ('batched', 'scanned'):
      fn = jax.jit(lambda v, c, stages=stages, mode=mode: sj.grad_fn(
          'bp', mode=mode)(stages, v, c, labels, loss_fn).grads)
      grads[name, mode] = fn(v, c)
  reference = grads['fp32', 'batched']
  print(f'{"setup":<12} {"batched vs scanned":>19} {"batched vs fp32":>16} '
        f'{"scanned vs fp32":>16}  gradient dtype')
  for name in setups:
    b, s = grads[name, 'batched'], grads[name, 'scanned']
    dtype = jax.tree.leaves(b)[0].dtype
    print(f'{name:<12} {_rel(b, s):>19.2e} {_rel(b, reference):>16.2e} '
          f'{_rel(s, reference):>16.2e}  {dtype}')


if __name__ == '__main__':
  main()

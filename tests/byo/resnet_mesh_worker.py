"""The imported Flax ResNet on a 4-device mesh vs one device (a subprocess).

Run by test_resnet_mesh.py with 4 fake CPU devices; prints one JSON line.
For every mesh algorithm: the same imported weights train a few SGD steps
through `sj.Trainer(..., mesh=...)` and through the single-device engine,
and every compared quantity is reported as the worst
`|a - b| / (atol + rtol |b|)` (<= 1 is allclose; rtol 1e-5, atol 1e-6, the
parallel tests' tolerances). Then a bf16-compute run on the mesh reports
the dtypes of its parameters, gradients and optimizer state.
"""

from __future__ import annotations

import json
import pathlib
import sys
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / 'tests' / 'parallel'))

import sideways_jax as sj  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax import algorithms  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax import flax_stages  # pylint: disable=g-import-not-at-top,wrong-import-position
from sideways_jax import parallel  # pylint: disable=g-import-not-at-top,wrong-import-position
import parallel_cases  # pylint: disable=g-import-not-at-top,wrong-import-position
import resnet_flax  # pylint: disable=g-import-not-at-top,wrong-import-position

NUM_STAGES, NUM_CLASSES, FILTERS = 4, 5, 4
# 64x64 frames and 4 clips a shard, as in test_resnet_byo.py: with fewer
# values per channel the last blocks' batchnorm is too ill-conditioned for
# fp32 rounding to stay within the tolerances.
SIZE, PER_SHARD, STEPS = 64, 4, 2
# Stem | blocks 0-1 | blocks 2-3 | blocks 4-7 and the head.
BOUNDARIES = (3, 5, 7)
NUM_FRAMES = 2 * NUM_STAGES  # Sideways needs 2D - 1; one more counts.
close_ratio = parallel_cases.close_ratio


def xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def optimizer():
  # Linear in the gradient, as in the parallel tests: rounding in a tiny
  # gradient cannot flip an update as adam's first steps (~lr sign g) can.
  return optax.sgd(0.05, momentum=0.9)


def imported(batch: int):
  """The stages and the uncut ResNet's weights imported into them."""
  model = resnet_flax.ResNet(NUM_CLASSES, num_filters=FILTERS)
  x = jax.random.normal(jax.random.PRNGKey(0), (batch, SIZE, SIZE, 3))
  uncut = jax.vmap(lambda a: model.init(jax.random.PRNGKey(1), a,
                                        train=False),
                   axis_name='batch', out_axes=None)(x[None])
  # Residual blocks and batchnorm in every stage (at these widths the
  # FLOP-balanced cut gives the stem three stages and the blocks one).
  stages = flax_stages.from_layers(
      resnet_flax.layers(NUM_CLASSES, FILTERS), boundaries=BOUNDARIES,
      batch_axis_name='batch')
  return stages, flax_stages.import_variables(stages, uncut, x)


def clips(batch: int):
  rng = np.random.default_rng(0)
  out = []
  for _ in range(STEPS):
    clip = rng.standard_normal((NUM_FRAMES, batch, SIZE, SIZE, 3))
    labels = rng.integers(0, NUM_CLASSES, (batch,))
    out.append((clip.astype(np.float32),
                np.broadcast_to(labels, (NUM_FRAMES, batch)).astype(np.int32)))
  return out


class Reference:
  """One device: `grad_fn` per batch shard, averaged, then the same SGD.

  A mesh program whose layout splits the batch into shards normalises
  batchnorm over each shard's clips; with one shard this is the
  single-device Trainer's step.
  """

  def __init__(self, name: str, stages, variables, shards: int):
    fn = sj.grad_fn('bp' if algorithms.get(name).exact else 'sideways')
    self._grads = jax.jit(lambda v, c, t: fn(stages, v, c, t, xent))
    self._shards, self.variables = shards, variables
    self._opt = optimizer()
    self._opt_state = self._opt.init(tuple(v['params'] for v in variables))

    @jax.jit
    def update(grads, opt_state, params):
      updates, opt_state = self._opt.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state
    self._update = update

  def step(self, clip, targets):
    size = clip.shape[1] // self._shards
    results = [self._grads(self.variables, clip[:, i * size:(i + 1) * size],
                           targets[:, i * size:(i + 1) * size])
               for i in range(self._shards)]
    mean = lambda *xs: sum(xs) / len(xs)
    grads = jax.tree.map(mean, *[r.grads for r in results])
    state = jax.tree.map(mean, *[r.state for r in results])
    loss = float(np.mean([float(r.loss) for r in results], dtype=np.float32))
    outputs = np.concatenate([np.asarray(r.metrics['outputs'])
                              for r in results], axis=1)
    params, self._opt_state = self._update(
        grads, self._opt_state, tuple(v['params'] for v in self.variables))
    self.variables = tuple({'params': p, **s} for p, s in zip(params, state))
    return grads, loss, outputs


def reference_run(exact: bool, shards: int) -> dict:
  """The single-device engine's numbers for a layout (shared by layouts)."""
  stages, variables = imported(PER_SHARD)
  reference = Reference('bp' if exact else 'sideways', stages, variables,
                        shards)
  steps = [reference.step(*c) for c in clips(PER_SHARD * shards)]
  return {'grads': steps[0][0], 'losses': [loss for _, loss, _ in steps],
          'outputs': [outputs for _, _, outputs in steps],
          'variables': reference.variables}


def cached_reference(references: dict, exact: bool, shards: int) -> dict:
  if (exact, shards) not in references:
    references[exact, shards] = reference_run(exact, shards)
  return references[exact, shards]


def compare(name: str, mesh, references: dict) -> dict:
  program_class = algorithms.get(name).load_mesh_program()
  shards = program_class.num_batch_shards(1, NUM_STAGES)
  want = cached_reference(references, algorithms.get(name).exact, shards)
  stages, variables = imported(PER_SHARD)
  trainer = sj.Trainer(stages, optimizer(), xent, name, mesh=mesh)
  data = clips(PER_SHARD * shards)
  state = trainer.init_from(variables, jax.random.PRNGKey(2), data[0][0])
  out = {'shards': shards, 'loss': 0.0, 'outputs': 0.0}
  for i, (clip, targets) in enumerate(data):
    state, metrics = trainer.step(state, clip, targets)
    out['loss'] = max(out['loss'], close_ratio(
        np.asarray(metrics['loss']), np.float32(want['losses'][i])))
    # Logits of updated nets: fp32 rounding of the weights reaches them
    # through 17 batchnorms as ~1e-5 absolute, so atol is 20x (the parallel
    # tests' Simple-CNN/VGG-8 take 10x).
    out['outputs'] = max(out['outputs'], close_ratio(
        metrics['outputs'], want['outputs'][i], atol=20 * parallel_cases.ATOL))
  final = trainer.variables(state)
  out['variables_after'] = close_ratio(final, want['variables'])
  out['param_change'] = parallel_cases.max_abs_diff(
      [v['params'] for v in final], [v['params'] for v in variables])
  out['steps'] = int(state.step)
  return out


def bf16(mesh, references: dict) -> dict:
  """A bf16-compute Sideways step on the mesh: dtypes, and that bf16 ran."""
  stages, variables = imported(PER_SHARD)
  clip, targets = clips(PER_SHARD)[0]
  trainer = sj.Trainer(stages, optimizer(), xent, 'sideways', mesh=mesh,
                       precision=sj.Precision(compute_dtype=jnp.bfloat16))
  state = trainer.init_from(variables, jax.random.PRNGKey(2), clip)
  grads = trainer.grads(state, clip, targets)
  state, metrics = trainer.step(state, clip, targets)
  fp32 = cached_reference(references, False, 1)
  dtypes = lambda tree: sorted({str(x.dtype) for x in jax.tree.leaves(tree)
                                if jnp.issubdtype(x.dtype, jnp.floating)})
  return {
      'describe': trainer.describe()['compute_dtype'],
      'grads': dtypes(grads.grads), 'params': dtypes(state.params),
      'opt_state': dtypes(state.opt_state),
      'model_state': dtypes(state.model_state),
      'finite': bool(metrics['loss_is_finite']),
      'steps': int(state.step),
      # bf16 really ran: its gradients are off fp32's by bf16 rounding.
      'grads_vs_fp32': close_ratio(grads.grads, fp32['grads']),
      'loss_vs_fp32': abs(float(grads.loss) - fp32['losses'][0]),
  }


def guarded(fn, *args) -> dict:
  """fn(*args), or {'error': ..., 'where': innermost frame's function}."""
  try:
    return fn(*args)
  except Exception as e:  # pylint: disable=broad-except
    frames = traceback.extract_tb(e.__traceback__)
    return {'error': f'{type(e).__name__}: {e}'[:500],
            'where': frames[-1].name if frames else ''}


def main() -> None:
  assert jax.device_count() == 4, jax.devices()
  mesh = parallel.make_mesh(num_data=1, num_stages=NUM_STAGES)
  result, references = {'algorithms': {}}, {}
  # Each case reports its own error, so one failure shows which others run.
  for name in algorithms.MESH_ALGORITHMS:
    result['algorithms'][name] = guarded(compare, name, mesh, references)
  result['bf16'] = guarded(bf16, mesh, references)
  print(json.dumps(result))


if __name__ == '__main__':
  main()

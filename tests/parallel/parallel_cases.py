"""Scenarios that need several devices, run inside the worker process.

Each case builds a tiny Simple-CNN or VGG-8, runs the mesh program
and the single-device engine (`sideways_grads` / `bp_grads` + the same optax
update on the stage pytrees) side by side, and returns JSON-able numbers:
for every compared quantity the worst `|a - b| / (atol + rtol |b|)` (<= 1
means allclose), plus magnitudes that show the comparison is not vacuous.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import sideways_jax as sj
from sideways_jax import algorithms
from sideways_jax import models
from sideways_jax import parallel
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import staged
from sideways_jax.models.temporal_blocks import ConvGRU

NUM_CLASSES = 5
# Batchnorm over fewer values is so ill-conditioned that fp32 rounding alone
# sends two runs apart within three updates: 32x32 frames and 4 clips per
# shard keep VGG-8's 2x2 maps well conditioned.
SIZE = 32
PER_SHARD = 4   # clips per data shard
RTOL, ATOL = 1e-5, 1e-6
# What every mesh program's update reports.
METRICS = parallel.program.METRICS


def build(model: str, num_stages: int, dropout: float = 0.0,
          impl: str = 'xla'):
  """A tiny chain (narrow widths keep compiles short).

  impl='xla' (native convolutions) compiles ~2.5x faster than the im2col
  form the benchmarks use; the engine does not care which one runs.
  """
  frame_shape = (SIZE, SIZE, 3)
  if model == 'simple_cnn':
    return models.simple_cnn(NUM_CLASSES, num_stages=num_stages,
                             channels=(4, 6, 6, 8, 8),
                             frame_shape=frame_shape, impl=impl)
  if model == 'vgg8':
    return models.vgg8(NUM_CLASSES, num_stages=num_stages, width=1 / 32,
                       dropout_rate=dropout, frame_shape=frame_shape,
                       impl=impl)
  if model in TEMPORAL:
    # Six stages: a pixel window, a feature window at conv3 (Sideways sums
    # its window cotangents) and, for 'temporal_gru', a recurrent conv4.
    stages = models.build_model('temporal_simple_cnn', 'classifier',
                                NUM_CLASSES, num_stages=num_stages,
                                channels=(4, 6, 6, 8, 8), impl=impl)
    if model == 'temporal_gru':
      stages = (*stages[:3], ConvGRU(8, stride=2, impl=impl), *stages[4:])
    return stages
  raise ValueError(model)


# Chains with temporal stages; exact BP through them runs frame by frame.
TEMPORAL = ('temporal', 'temporal_gru')


def init_variables(stages, seed: int = 0):
  frame = jnp.zeros((PER_SHARD, SIZE, SIZE, 3))
  return jax.jit(lambda k: sj.init_chain(stages, k, frame))(
      jax.random.PRNGKey(seed))


def batch(num_frames: int, batch_size: int, seed: int):
  """A random clip [K, B, H, W, 3] and its repeated labels [K, B] (host)."""
  rng = np.random.default_rng(seed)
  clip = rng.standard_normal((num_frames, batch_size, SIZE, SIZE, 3))
  labels = rng.integers(0, NUM_CLASSES, (batch_size,))
  return (clip.astype(np.float32),
          np.broadcast_to(labels, (num_frames, batch_size)).astype(np.int32))


def xent(logits, targets):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         targets).mean()


def close_ratio(a, b, rtol: float = RTOL, atol: float = ATOL) -> float:
  """Worst |a-b| / (atol + rtol |b|) over all leaves: <= 1 is allclose."""
  worst = 0.0
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    assert x.shape == y.shape, (x.shape, y.shape)
    if x.size:
      ratio = np.abs(x - y) / (atol + rtol * np.abs(y))
      worst = max(worst, float(np.max(ratio)))
  return worst


def max_abs(tree) -> float:
  return max([0.0] + [float(np.max(np.abs(np.asarray(x))))
                      for x in jax.tree.leaves(tree) if np.size(x)])


def max_abs_diff(a, b) -> float:
  return max_abs(jax.tree.map(lambda x, y: np.asarray(x) - np.asarray(y),
                              a, b))


def _mean(trees):
  return jax.tree.map(lambda *xs: sum(xs) / len(xs), *trees)


def _reference_grads(algorithm: str, stages, shards: int,
                     alignment: str = 'current', model: str = ''):
  """Single-device gradients, averaged over `shards` batch shards.

  Returns `grads(variables, clip, targets, rng) -> (grads, state, loss,
  metrics)`, metrics as the program's for the whole batch: outputs
  concatenated over shards, the norm of the averaged gradients, finiteness
  of all. One jitted program per shard shape, called once per shard (a
  program that unrolled every shard would take `shards` times longer to
  compile).
  """
  if algorithms.get(algorithm).exact:
    fn = functools.partial(sj.bp_grads, mode='scanned'
                           if model in TEMPORAL else 'batched')
  else:
    fn = functools.partial(sj.sideways_grads, target_alignment=alignment)
  one = jax.jit(lambda variables, clip, targets, rng: fn(
      stages, variables, clip, targets, xent, rng=rng))

  @jax.jit
  def mean(results):
    grads = _mean([r.grads for r in results])
    loss = jnp.mean(jnp.stack([r.loss for r in results]))
    first = results[0].metrics
    metrics = {
        'loss': loss, 'valid_steps': first['valid_steps'],
        'outputs': jnp.concatenate([r.metrics['outputs'] for r in results],
                                   axis=1),
        'output_valid': first['output_valid'],
        'output_frame': first['output_frame'],
        'grad_norm': optax.tree.norm(grads),
        'loss_is_finite': jnp.all(jnp.stack(
            [r.metrics['loss_is_finite'] for r in results])),
    }
    return grads, _mean([r.state for r in results]), loss, metrics

  def grads(variables, clip, targets, rng):
    size = clip.shape[1] // shards
    results = []
    for i in range(shards):
      key = None if rng is None else (
          jax.random.fold_in(rng, i) if shards > 1 else rng)
      part = slice(i * size, (i + 1) * size)
      results.append(one(variables, clip[:, part], targets[:, part], key))
    return mean(results)
  return grads


def _compare_metrics(got: dict, want: dict, out: dict) -> None:
  """Records how far the program's metrics are from the engine's in `out`."""
  got = jax.tree.map(np.asarray, got)
  assert sorted(got) == sorted(METRICS), sorted(got)
  exact = all(np.array_equal(got[k], np.asarray(want[k]))
              for k in ('valid_steps', 'output_valid', 'output_frame',
                        'loss_is_finite'))
  out['metrics_exact'] = out.get('metrics_exact', True) and bool(exact)
  out['grad_norm'] = max(out.get('grad_norm', 0.0),
                         close_ratio(got['grad_norm'], want['grad_norm']))
  # Logits (O(1), many near 0) of the updated nets: fp32 rounding of the
  # parameters reaches them as ~1e-6 absolute, so atol is 10x the default.
  out['outputs'] = max(out.get('outputs', 0.0),
                       close_ratio(got['outputs'], want['outputs'],
                                   atol=10 * ATOL))


def _optimizer():
  # Linear in the gradient (unlike adam's first steps, ~lr * sign(g)), so
  # fp32 rounding in near-zero gradients cannot flip an update.
  return optax.sgd(0.05, momentum=0.9)


class _Reference:
  """The single-device engine and the same optax update, clip by clip."""

  def __init__(self, algorithm: str, stages, variables, shards: int,
               alignment: str, model: str):
    self._grads = _reference_grads(algorithm, stages, shards, alignment,
                                   model)
    optimizer = _optimizer()

    @jax.jit
    def update(grads, opt_state, params):
      # One program, not one small compile per leaf and operation.
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state

    self._update = update
    self.variables = variables
    self.params = tuple(v['params'] for v in variables)
    self._opt = jax.jit(optimizer.init)(self.params)

  def step(self, clip, targets, rng):
    """(grads, new state, loss, metrics) of the clip; then the update."""
    out = self._grads(self.variables, clip, targets, rng)
    grads, new_state = out[0], out[1]
    self.params, self._opt = self._update(grads, self._opt, self.params)
    self.variables = tuple({'params': p, **s}
                           for p, s in zip(self.params, new_state))
    return out


def _split(variables):
  """([params per stage], [other collections per stage])."""
  return ([v['params'] for v in variables],
          [{k: x for k, x in v.items() if k != 'params'} for v in variables])


def _compare_final(final, reference, initial, out: dict) -> None:
  """Final variables vs the reference's, and how far training moved them."""
  (params, state), (ref_params, ref_state) = _split(final), _split(reference)
  initial_params, initial_state = _split(initial)
  out['params_after'] = close_ratio(params, ref_params)
  out['state_after'] = close_ratio(state, ref_state)
  out['param_change'] = max_abs_diff(params, initial_params)
  out['state_change'] = max_abs_diff(state, initial_state)


def train_equivalence(algorithm: str, model: str, num_data: int,
                      num_stages: int, steps: int = 2, dropout: float = 0.0,
                      extra_frames: int = 1, versus_bp: bool = False,
                      check_grads: bool = True, impl: str = 'xla',
                      alignment: str = 'current') -> dict:
  """Mesh program vs the single-device engine over a few updates."""
  stages = build(model, num_stages, dropout, impl)
  variables = init_variables(stages)
  program_class = algorithms.get(algorithm).load_mesh_program()
  shards = program_class.num_batch_shards(num_data, num_stages)
  num_frames = 2 * num_stages - 1 + extra_frames
  clips = [batch(num_frames, PER_SHARD * shards, seed) for seed in
           range(steps)]
  options = {'target_alignment': alignment} if algorithm == 'sideways' else {}
  program = parallel.mesh_program(
      algorithm, stages, variables, parallel.make_mesh(num_data, num_stages),
      xent, _optimizer(), clips[0][0], options=options)
  rng = jax.random.PRNGKey(7)
  state = program.init(variables, rng)
  out = {'loss': 0.0}
  staged_layout = isinstance(program, staged.StagedProgram)
  if staged_layout:
    _check_placement(program, state, variables, out)
  # Batchnorm and dropout see one shard's clips: compare shard by shard.
  # Without them, the full batch must give the same numbers.
  per_shard = model == 'vgg8' or dropout > 0
  reference = _Reference(algorithm, stages, variables,
                         shards if per_shard else 1, alignment, model)
  for step, (clip, targets) in enumerate(clips):
    placed = program.place(clip, targets)
    if step == 0 and check_grads:
      got = program.grads(state, *placed)
    state, metrics = program.update(state, *placed)
    assert int(state.step) == step + 1
    # The program's dropout key of update t: fold_in(rng, t).
    key = jax.random.fold_in(rng, step)
    grads, new_state, loss, ref_metrics = reference.step(clip, targets, key)
    _compare_metrics(metrics, ref_metrics, out)
    if step == 0:
      out['valid_steps'] = np.asarray(metrics['valid_steps']).tolist()
    if step == 0 and check_grads:
      out['grads'] = close_ratio(got.grads, grads)
      out['grad_scale'] = max_abs(grads)
      out['state'] = close_ratio(got.state, new_state)
      if versus_bp:
        bp = _reference_grads('bp', stages, 1, model=model)(
            variables, clip, targets, key)
        out['sideways_vs_bp'] = close_ratio(got.grads, bp[0])
    out['loss'] = max(out['loss'], close_ratio(np.asarray(metrics['loss']),
                                               loss))
    out.setdefault('params_per_step', []).append(close_ratio(
        _split(program.variables(state))[0], reference.params))
  final = program.variables(state)
  if staged_layout:
    _check_placement(program, state, final, out)
  _compare_final(final, reference.variables, variables, out)
  out['expected_valid_steps'] = (
      sj.valid_step_counts(num_frames, num_stages)
      if algorithm == 'sideways' else [num_frames] * num_stages)
  return out


def _check_placement(program, state, variables, out: dict) -> None:
  """Checks which values each device holds; records the result in `out`.

  Every leaf of params / batchnorm state / optimizer state must have one
  shard per device, row i (shape [1, ...]) on the device at stage position
  i, and the params and state rows must be exactly stage i's variables laid
  out in its slots, with zeros elsewhere: no device holds another stage's
  values.
  """
  layout = program.layout
  position = {dev: int(where[1])
              for where, dev in np.ndenumerate(program.mesh.devices)}
  split = [(v['params'], {k: x for k, x in v.items() if k != 'params'})
           for v in variables]
  want_params = layout_lib.stack_params(layout, [p for p, _ in split])
  want_state = layout_lib.stack_state(layout, [s for _, s in split])
  rows_ok, values_ok, held = True, True, {}
  for name, tree in (('params', state.params),
                     ('model_state', state.model_state),
                     ('opt_state', state.opt_state)):
    for j, leaf in enumerate(jax.tree.leaves(tree)):
      for shard in leaf.addressable_shards:
        i, row = position[shard.device], shard.index[0]
        rows_ok &= (shard.data.shape[0] == 1 and (row.start or 0) == i
                    and row.stop == i + 1)
        data = np.asarray(shard.data[0])
        held[shard.device] = held.get(shard.device, 0) + data.size
        if name == 'params':
          values_ok &= np.array_equal(data, want_params[j][i])
        elif name == 'model_state':
          values_ok &= np.array_equal(data, want_state[i])
  out['rows_ok'] = out.get('rows_ok', True) and bool(rows_ok)
  out['values_ok'] = out.get('values_ok', True) and bool(values_ok)
  out['device_elements'] = sorted(set(held.values()))
  out['model_elements'] = sum(int(np.size(x)) for p, _ in split
                              for x in jax.tree.leaves(p))


def setup_error(kind: str) -> str:
  """Builds a bad setup; returns the error message ('' if none was raised)."""
  stages = build('simple_cnn', 2)
  variables = init_variables(stages)
  clip, targets = batch(4, 4, 0)
  build_program = lambda algorithm, mesh, clip, options=None: (
      parallel.mesh_program(algorithm, stages, variables, mesh, xent,
                            _optimizer(), clip, options=options))
  try:
    if kind == 'stage_axis':
      build_program('sideways', parallel.make_mesh(1, 3), clip)
    elif kind == 'data_batch':
      build_program('sideways', parallel.make_mesh(3, 2), clip)
    elif kind == 'too_many_devices':
      parallel.make_mesh(3, 3)
    elif kind == 'short_clip':
      build_program('sideways', parallel.make_mesh(1, 2), clip[:2])
    elif kind in ('option_elsewhere', 'option_value', 'old_name'):
      algorithm, options = {
          'option_elsewhere': ('sideways', {'mode': 'batched'}),
          'option_value': ('sideways', {'target_alignment': 'future'}),
          'old_name': ('bp_model', {})}[kind]
      build_program(algorithm, parallel.make_mesh(1, 2), clip, options)
    elif kind == 'temporal_pipeline':
      temporal = build('temporal', 6)
      parallel.mesh_program('bp_1f1b', temporal, init_variables(temporal),
                            parallel.make_mesh(1, 6), xent, _optimizer(),
                            batch(11, 4, 0)[0])
    elif kind == 'wrong_batch_at_call':
      program = build_program('bp', parallel.make_mesh(2, 2), clip)
      state = program.init(variables, jax.random.PRNGKey(0))
      program.update(state, *program.place(*batch(4, 2, 0)))
    else:
      raise ValueError(kind)
  except ValueError as e:
    return str(e)
  return ''


def speed_smoke(config_file: str, workdir: str) -> dict:
  """Runs the speed runner on a tiny config (all five algorithms)."""
  import importlib  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from sideways_jax.experiments import speed
  module = importlib.import_module(f'configs.{config_file}')
  config = module.get_config('smoke')
  with config.unlocked():
    # This process already has its 8 devices; fast-compiling convolutions.
    config.distributed.num_cpu_devices = 0
    config.model.kwargs.impl = 'xla'
  return speed.run(config, workdir)


class _Dense(nn.Module):
  """Dense; with `unit`, first x / |x| per example: NaN on zeros (0 / 0)."""
  features: int
  unit: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    if self.unit:
      x = x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    return nn.Dense(self.features)(x)


def masked_non_finite(num_stages: int = 3) -> dict:
  """Sideways on a mesh where every warm-up step computes NaN.

  Stages above the first normalise their input, so the zeros they run on
  before the clip's first frame reaches them give 0 / 0 = NaN outputs,
  losses and cotangents at exactly the steps the masks leave out. Returns
  whether that NaN appears (the check is not vacuous), the finiteness of
  the mesh's and one device's gradients, and how far apart they are.
  """
  stages = (_Dense(6, unit=False),) + tuple(
      _Dense(6 if i < num_stages - 1 else NUM_CLASSES)
      for i in range(1, num_stages))
  frame = jnp.zeros((PER_SHARD, 5))
  variables = jax.jit(lambda k: sj.init_chain(stages, k, frame))(
      jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  num_frames = 2 * num_stages
  clip = rng.standard_normal((num_frames, PER_SHARD, 5)).astype(np.float32)
  targets = np.broadcast_to(rng.integers(0, NUM_CLASSES, (PER_SHARD,)),
                            (num_frames, PER_SHARD)).astype(np.int32)
  warm_up = sj.apply_stage(stages[1], variables[1]['params'], {},
                           jnp.zeros((PER_SHARD, 6)), train=True, rng=None)[0]
  program = parallel.mesh_program('sideways', stages, variables,
                                  parallel.make_mesh(1, num_stages), xent,
                                  _optimizer(), clip)
  state = program.init(variables, jax.random.PRNGKey(0))
  got = program.grads(state, *program.place(clip, targets))
  want = jax.jit(lambda v, c, y: sj.sideways_grads(stages, v, c, y, xent))(
      variables, clip, targets)
  _, metrics = program.update(state, *program.place(clip, targets))
  finite = lambda tree: all(bool(np.all(np.isfinite(np.asarray(x))))
                            for x in jax.tree.leaves(tree))
  return {'warm_up_is_nan': bool(np.all(np.isnan(np.asarray(warm_up)))),
          'mesh_finite': finite(got.grads) and finite(got.loss),
          'update_finite': bool(metrics['loss_is_finite']),
          'device_finite': finite(want.grads),
          'grads': close_ratio(got.grads, want.grads),
          'loss': close_ratio(got.loss, want.loss),
          'grad_scale': max_abs(want.grads)}


CASES = {'train_equivalence': train_equivalence, 'setup_error': setup_error,
         'speed_smoke': speed_smoke, 'masked_non_finite': masked_non_finite}

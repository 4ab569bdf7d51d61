"""The speed benchmark of the paper's Table 2, on whatever devices JAX sees.

Training steps per second (one step = one clip of K random-number frames and
one optimizer update) for BP model-parallel, BP data-parallel and Sideways
on the same D x num_data devices; 100 steps x 3 repeats, best average, as in
the paper. Also the per-stage cost table (one Sideways step of each stage,
timed on one device) and the load-balance bound sum(cost) / max(cost).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import optax

import sideways_jax as sj
from sideways_jax import models
from sideways_jax.parallel import distributed
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import timing
from sideways_jax.parallel import trainer as trainer_lib

LAYER_BUILDERS = {'simple_cnn': models.simple_cnn_layers,
                  'vgg8': models.vgg8_layers}
PARTITIONS = ('layers', 'flops', 'measured', 'explicit')


@dataclasses.dataclass(frozen=True)
class SpeedSettings:
  """What to measure (see configs/speed_*.py for the meaning of each)."""
  model: str
  model_kwargs: Mapping[str, Any]
  num_classes: int
  num_stages: int
  num_data: int
  partition: str
  boundaries: tuple[int, ...]
  batch_size: int
  num_frames: int
  frame_size: int
  algorithms: tuple[str, ...]
  num_steps: int
  repeats: int
  cost_iters: int
  learning_rate: float
  bp_mode: str
  seed: int
  output: str

  def __post_init__(self):
    if self.model not in LAYER_BUILDERS:
      raise ValueError(f'unknown model {self.model!r}; choose one of '
                       f'{sorted(LAYER_BUILDERS)}')
    if self.partition not in PARTITIONS:
      raise ValueError(f'unknown partition {self.partition!r}; choose one '
                       f'of {PARTITIONS}')
    unknown = set(self.algorithms) - set(trainer_lib.ALGORITHMS)
    if unknown or not self.algorithms:
      raise ValueError(f'algorithms must be a non-empty subset of '
                       f'{trainer_lib.ALGORITHMS}, got {self.algorithms}')


def _stages(settings: SpeedSettings, frame: jax.Array):
  """Cuts the model into num_stages stages as `settings.partition` says."""
  layers = LAYER_BUILDERS[settings.model](settings.num_classes,
                                          **dict(settings.model_kwargs))
  frame_shape = tuple(frame.shape[1:])
  if settings.partition == 'layers':
    if settings.num_stages != len(layers):
      raise ValueError(
          f"partition='layers' puts one of the {len(layers)} layers on each "
          f'stage, but num_stages={settings.num_stages}: use another '
          'partition or num_stages=len(layers)')
    boundaries = tuple(range(1, len(layers)))
  elif settings.partition == 'explicit':
    boundaries = tuple(settings.boundaries)
  elif settings.partition == 'flops':
    stages = models.make_stages(layers, num_stages=settings.num_stages,
                                frame_shape=frame_shape)
    return stages, _boundaries_of(stages)
  else:  # 'measured': balance the timed cost of each layer.
    singles = models.group_layers(layers, range(1, len(layers)))
    costs = timing.stage_costs(singles, _init(singles, frame, settings.seed),
                               frame, settings.cost_iters)
    if jax.process_count() > 1:
      # Timings differ from process to process, but every process must cut
      # the model alike (else their programs differ and the run hangs).
      costs = multihost_utils.broadcast_one_to_all(
          np.asarray(costs, np.float32))
    boundaries = models.balanced_boundaries(
        [float(c) for c in costs], settings.num_stages)
  return models.group_layers(layers, boundaries), tuple(boundaries)


def _boundaries_of(stages) -> tuple[int, ...]:
  sizes = [len(stage.names) for stage in stages]
  return tuple(sum(sizes[:i]) for i in range(1, len(sizes)))


def _init(stages, frame, seed):
  return jax.jit(lambda k: sj.init_chain(stages, k, frame))(
      jax.random.PRNGKey(seed))


def _xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def run_speed(settings: SpeedSettings) -> dict[str, Any]:
  """Measures every algorithm; returns a JSON-able dict of the results."""
  d, b = settings.num_stages, settings.batch_size
  size = settings.frame_size
  local_batch = mesh_lib.check_batch(b, settings.num_data)
  frame = jnp.zeros((local_batch, size, size, 3), jnp.float32)
  stages, boundaries = _stages(settings, frame)
  if len(stages) != d:
    raise ValueError(f'got {len(stages)} stages for num_stages={d}')
  variables = _init(stages, frame, settings.seed)
  summary = models.describe(stages, frame, variables)
  costs = timing.stage_costs(stages, variables, frame, settings.cost_iters)
  mesh = mesh_lib.make_mesh(settings.num_data, d)
  clip_shape = (settings.num_frames, b, size, size, 3)
  results: dict[str, Any] = {
      'settings': dataclasses.asdict(settings),
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind} '
                 f'in {jax.process_count()} process(es)',
      'load_average': list(os.getloadavg()),
      'boundaries': list(boundaries),
      'stages': [{'layers': list(s.layers), 'mflops_per_frame': s.flops / 1e6,
                  'params': s.num_params, 'step_ms': 1e3 * c}
                 for s, c in zip(summary.stages, costs)],
      'balance_bound': timing.balance_bound(costs),
      'flops_balance_bound': timing.balance_bound(
          [s.flops for s in summary.stages]),
      'steps_per_s': {}, 'repeats': {}, 'cpu_share': {}, 'skipped': {},
  }
  optimizer = optax.sgd(settings.learning_rate, momentum=0.9)
  runs = {}
  for algorithm in settings.algorithms:
    shards = settings.num_data * (d if algorithm == 'bp_data' else 1)
    if b % shards:
      results['skipped'][algorithm] = (
          f'batch {b} does not split over {shards} devices')
      continue
    trainer = trainer_lib.ParallelTrainer(
        algorithm, stages, variables, mesh, _xent, optimizer,
        jax.ShapeDtypeStruct(clip_shape, jnp.float32),
        bp_mode=settings.bp_mode)
    clip, labels = timing.random_batch(mesh, trainer.batch_spec, clip_shape,
                                       settings.num_classes, settings.seed)
    step = lambda s, t=trainer, c=clip, y=labels: t.train_step(s, c, y)
    state, out = step(trainer.init(variables))  # Compiles.
    jax.block_until_ready(out)
    runs[algorithm] = [step, state]
  # Repeats interleave the algorithms, so that a change in the machine's
  # load during the run hits all of them alike.
  for _ in range(settings.repeats):
    for algorithm, run in runs.items():
      rate, cpu_share, run[1] = timing.time_steps(run[0], run[1],
                                                  settings.num_steps)
      results['repeats'].setdefault(algorithm, []).append(rate)
      results['cpu_share'].setdefault(algorithm, []).append(cpu_share)
  for algorithm, rates in results['repeats'].items():
    results['steps_per_s'][algorithm] = max(rates)
  del runs
  results['load_average_end'] = list(os.getloadavg())
  rate = results['steps_per_s']
  if 'sideways' in rate and 'bp_model' in rate:
    results['speedup_vs_bp_model'] = rate['sideways'] / rate['bp_model']
    # What is left once stage imbalance is accounted for: communication and
    # the per-step overheads of the parallel programs.
    results['fraction_of_balance_bound'] = (
        results['speedup_vs_bp_model'] / results['balance_bound'])
  if 'sideways' in rate and 'bp_data' in rate:
    results['speedup_vs_bp_data'] = rate['sideways'] / rate['bp_data']
  if settings.output and jax.process_index() == 0:
    with open(settings.output, 'w') as f:
      json.dump(results, f, indent=1)
  return results


def format_report(results: Mapping[str, Any]) -> str:
  """A printable report: Table 2's row, the stage table and the bound."""
  s = results['settings']
  lines = [
      f"{s['model']}: batch {s['batch_size']} x {s['num_frames']} frames x "
      f"{s['frame_size']}x{s['frame_size']}, {s['num_stages']} stages x "
      f"{s['num_data']} data shards on {results['devices']}",
      f"load average at start: {results['load_average']}, at end: "
      f"{results['load_average_end']}",
      f"training steps/s (best of {s['repeats']} x {s['num_steps']} steps):"]
  for name, rate in results['steps_per_s'].items():
    runs = ', '.join(f'{r:.3f}' for r in results['repeats'][name])
    share = ', '.join(f'{c:.2f}' for c in results['cpu_share'][name])
    lines.append(f'  {name:9s} {rate:8.3f}   (repeats: {runs}; process '
                 f'CPU share: {share})')
  for name, why in results['skipped'].items():
    lines.append(f'  {name:9s}      n/a   ({why})')
  for key in ('speedup_vs_bp_model', 'speedup_vs_bp_data'):
    if key in results:
      lines.append(f'  Sideways / {key[11:]}: {results[key]:.2f}x')
  lines.append(f"per-stage cost of one Sideways step (boundaries "
               f"{results['boundaries']}):")
  lines.append('  stage  layers                 MFLOPs/frame    ms/step')
  for i, row in enumerate(results['stages']):
    lines.append(f"  {i:5d}  {'+'.join(row['layers']):22s} "
                 f"{row['mflops_per_frame']:12.1f} {row['step_ms']:10.2f}")
  lines.append(f"load-balance bound sum/max: {results['balance_bound']:.2f} "
               f"measured, {results['flops_balance_bound']:.2f} by FLOPs "
               f"(ideal {s['num_stages']})")
  if 'fraction_of_balance_bound' in results:
    lines.append(f"Sideways / bp_model reaches "
                 f"{results['fraction_of_balance_bound']:.0%} of the measured "
                 'bound')
  return '\n'.join(lines)


def main(config: Mapping[str, Any]) -> dict[str, Any]:
  """Joins the processes, runs the benchmark and prints the report.

  Args:
    config: the fields of `SpeedSettings` plus 'distributed' (the fields of
      `DistributedConfig`), e.g. `configs/speed_simplecnn.py`'s `to_dict()`.

  Returns:
    The results of `run_speed`.
  """
  config = dict(config)
  distributed.initialize_distributed(
      distributed.DistributedConfig(**config.pop('distributed')))
  settings = SpeedSettings(**{
      **config, 'model_kwargs': dict(config['model_kwargs']),
      'boundaries': tuple(config['boundaries']),
      'algorithms': tuple(config['algorithms'])})
  try:
    results = run_speed(settings)
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    raise RuntimeError(
        f'process {jax.process_index()}: a computation shared with the other '
        f'{jax.process_count() - 1} process(es) failed, most likely because '
        'one of them died or lost its network connection; see their logs. '
        f'Original error: {e}') from e
  if jax.process_index() == 0:
    print(format_report(results), flush=True)
  return results

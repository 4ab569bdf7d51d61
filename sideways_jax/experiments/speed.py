"""The speed runner (paper Table 2): steps/s and memory per device.

`run(config, workdir)` measures training steps per second (one step = one
clip of K random-number frames and one optimizer update) of the config's
algorithms on the same D x mesh.data devices: 'bp_model' (exact BP, one
stage per device, the paper's baseline), 'bp_data' (exact BP, data
parallel), 'bp_gpipe' and 'bp_1f1b' (exact BP pipelined over frames) and
'sideways'. `num_train_steps` steps x `repeats`, best average, as in the
paper. Also: each algorithm's memory per device from the compiled program
at every K of `memory_clip_lengths`, the per-stage cost table (one Sideways
step of each stage, timed on one device), the load-balance bound
sum(cost) / max(cost) and the fraction of it each pipeline reaches.

Writes into the workdir (process 0): results.json (every number) and
schedule.png (which device works on which frame at each tick, drawn from
the tables the programs run). `repeats=0` only compiles and sizes.

  python experiments/speed.py --config=configs/speed_vgg8.py:smoke
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils

import sideways_jax as sj
from sideways_jax import models
from sideways_jax.experiments import common
from sideways_jax.experiments import schedule_plot
from sideways_jax.parallel import distributed
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import timing
from sideways_jax.parallel import trainer as trainer_lib

LAYER_BUILDERS = {'simple_cnn': models.simple_cnn_layers,
                  'vgg8': models.vgg8_layers}
PARTITIONS = ('layers', 'flops', 'measured', 'explicit')
# compare=True runs every algorithm, the baseline first.
ALGORITHMS = trainer_lib.ALGORITHMS
PIPELINED = ('bp_gpipe', 'bp_1f1b', 'sideways')


def _layers(config: Any):
  return LAYER_BUILDERS[config.model.name](config.data.num_classes,
                                           **config.model.kwargs.to_dict())


def check_config(config: Any) -> tuple[tuple[str, ...], dict[str, str]]:
  """(the algorithms to run, {skipped algorithm: why}).

  Under compare=True an algorithm whose batch shards cannot split the batch
  (bp_data splits it over every device) is skipped, and the report says so.
  Reads the config only (no device is touched, nothing compiles).

  Raises:
    common.ConfigError: the config cannot work.
  """
  algorithms = common.run_algorithms(config, ALGORITHMS, ALGORITHMS)
  if config.runner != 'speed':
    raise common.ConfigError(f"runner={config.runner!r}: this is the 'speed' "
                             'runner')
  if config.model.name not in LAYER_BUILDERS:
    raise common.ConfigError(f'model.name={config.model.name!r}: choose one '
                             f'of {sorted(LAYER_BUILDERS)}')
  if config.model.partition not in PARTITIONS:
    raise common.ConfigError(f'model.partition={config.model.partition!r}: '
                             f'choose one of {PARTITIONS}')
  d = config.model.num_stages
  if config.mesh.stages != d:
    raise common.ConfigError(
        f'mesh.stages={config.mesh.stages} but model.num_stages={d}: one '
        'stage per stage-device; set model.num_stages (mesh.stages follows)')
  if d < 1 or config.mesh.data < 1:
    raise common.ConfigError('model.num_stages and mesh.data must be >= 1')
  num_layers = len(_layers(config))
  if config.model.partition == 'layers' and d != num_layers:
    raise common.ConfigError(
        f"model.partition='layers' puts one of the {num_layers} layers on "
        f'each stage, but model.num_stages={d}: use another partition or '
        f'model.num_stages={num_layers}')
  if config.model.partition == 'explicit' and (
      len(config.model.boundaries) != d - 1):
    raise common.ConfigError(
        f'model.boundaries={tuple(config.model.boundaries)} must list the '
        f'{d - 1} layer indices that open stages 2..{d}')
  if d > num_layers:
    raise common.ConfigError(f'model.num_stages={d} exceeds the '
                             f'{num_layers} layers of {config.model.name}')
  skipped = {}
  for algorithm in algorithms:
    shards = config.mesh.data * (d if algorithm == 'bp_data' else 1)
    if config.batch_size % shards:
      why = (f'batch_size={config.batch_size} does not split over the '
             f'{shards} batch shards of {algorithm!r}: use a multiple of '
             f'{shards}')
      if not config.compare or algorithm != 'bp_data':
        raise common.ConfigError(why)
      skipped[algorithm] = why
  algorithms = tuple(a for a in algorithms if a not in skipped)
  if 'sideways' in algorithms and config.data.clip_length < 2 * d - 1:
    raise common.ConfigError(
        f'Sideways on {d} stages needs clips of >= {2 * d - 1} frames; got '
        f'data.clip_length={config.data.clip_length}')
  if config.num_train_steps < 1 or config.repeats < 0:
    raise common.ConfigError('num_train_steps must be >= 1 and repeats >= 0')
  if config.options.bp.mode not in ('batched', 'scanned'):
    raise common.ConfigError(f"options.bp.mode={config.options.bp.mode!r}: choose 'batched' "
                             "or 'scanned'")
  return algorithms, skipped


def _init(stages, frame, seed):
  return jax.jit(lambda k: sj.init_chain(stages, k, frame))(
      jax.random.PRNGKey(seed))


def _boundaries_of(stages) -> tuple[int, ...]:
  sizes = [len(stage.names) for stage in stages]
  return tuple(sum(sizes[:i]) for i in range(1, len(sizes)))


def _stages(config: Any, frame: jax.Array):
  """Cuts the model into num_stages stages as `model.partition` says."""
  layers = _layers(config)
  d = config.model.num_stages
  partition = config.model.partition
  if partition == 'layers':
    boundaries = tuple(range(1, len(layers)))
  elif partition == 'explicit':
    boundaries = tuple(config.model.boundaries)
  elif partition == 'flops':
    stages = models.make_stages(layers, num_stages=d,
                                frame_shape=tuple(frame.shape[1:]))
    return stages, _boundaries_of(stages)
  else:  # 'measured': balance the timed cost of each layer.
    singles = models.group_layers(layers, range(1, len(layers)))
    costs = timing.stage_costs(singles, _init(singles, frame, config.seed),
                               frame, config.cost_iters)
    if jax.process_count() > 1:
      # Timings differ from process to process, but every process must cut
      # the model alike (else their programs differ and the run hangs).
      costs = multihost_utils.broadcast_one_to_all(
          np.asarray(costs, np.float32))
    boundaries = models.balanced_boundaries([float(c) for c in costs], d)
  return models.group_layers(layers, boundaries), tuple(boundaries)


def _xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def _options(config: Any, algorithm: str) -> dict[str, Any]:
  return ({'bp_mode': config.options.bp.mode} if algorithm == 'bp_data'
          else {})


def _measure(config: Any, algorithms: tuple[str, ...]) -> dict[str, Any]:
  d, b = config.model.num_stages, config.batch_size
  size = config.data.resolution
  num_frames = config.data.clip_length
  local_batch = b // config.mesh.data
  frame = jnp.zeros((local_batch, size, size, 3), jnp.float32)
  stages, boundaries = _stages(config, frame)
  variables = _init(stages, frame, config.seed)
  summary = models.describe(stages, frame, variables)
  timed = config.repeats > 0
  costs = (timing.stage_costs(stages, variables, frame, config.cost_iters)
           if timed else [])
  mesh = mesh_lib.make_mesh(config.mesh.data, d)
  clip_shape = (num_frames, b, size, size, 3)
  results: dict[str, Any] = {
      'config': config.to_dict(),
      'algorithms': list(algorithms),
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind} '
                 f'in {jax.process_count()} process(es)',
      'load_average': list(os.getloadavg()),
      'boundaries': list(boundaries),
      'stages': [{'layers': list(s.layers), 'mflops_per_frame': s.flops / 1e6,
                  'params': s.num_params,
                  **({'step_ms': 1e3 * c} if timed else {})}
                 for s, c in zip(summary.stages, costs or [0.0] * d)],
      'flops_balance_bound': timing.balance_bound(
          [s.flops for s in summary.stages]),
      'steps_per_s': {}, 'repeats': {}, 'cpu_share': {}, 'memory': {},
  }
  if timed:
    results['balance_bound'] = timing.balance_bound(costs)
  optimizer = optax.sgd(config.optimizer.learning_rate, momentum=0.9)
  lengths = sorted({num_frames, *config.memory_clip_lengths})
  runs = {}
  for algorithm in algorithms:
    trainer = trainer_lib.ParallelTrainer(
        algorithm, stages, variables, mesh, _xent, optimizer,
        jax.ShapeDtypeStruct(clip_shape, jnp.float32),
        options=_options(config, algorithm))
    state = trainer.init(variables)
    # Sideways needs K >= 2D-1: shorter memory points are left out (n/a).
    shortest = 2 * d - 1 if algorithm == 'sideways' else 1
    results['memory'][algorithm] = {
        str(k): trainer.memory_analysis(state, *trainer.abstract_batch(k))
        for k in lengths if k >= shortest}
    if algorithm in schedule_lib.PIPELINES:
      results.setdefault('stored_bytes', {})[algorithm] = {
          str(k): _stored_bytes(trainer, algorithm, k) for k in lengths}
    if not timed:
      continue
    clip, labels = timing.random_batch(mesh, trainer.batch_spec, clip_shape,
                                       config.data.num_classes, config.seed)
    step = lambda s, t=trainer, c=clip, y=labels: t.train_step(s, c, y)
    state, metrics = step(state)  # Compiles.
    if not bool(metrics['loss_is_finite']):
      raise FloatingPointError(f'{algorithm}: non-finite loss or gradient; '
                               'lower optimizer.learning_rate')
    runs[algorithm] = [step, state]
  # Repeats interleave the algorithms, so that a change in the machine's
  # load during the run hits all of them alike.
  for _ in range(config.repeats):
    for algorithm, run_ in runs.items():
      rate, cpu_share, run_[1] = timing.time_steps(run_[0], run_[1],
                                                   config.num_train_steps)
      results['repeats'].setdefault(algorithm, []).append(rate)
      results['cpu_share'].setdefault(algorithm, []).append(cpu_share)
  del runs
  for algorithm, rates in results['repeats'].items():
    results['steps_per_s'][algorithm] = max(rates)
  results['load_average_end'] = list(os.getloadavg())
  rate = results['steps_per_s']
  if 'bp_model' in rate:
    results['vs_bp_model'] = {a: r / rate['bp_model'] for a, r in rate.items()}
    # What is left once stage imbalance is accounted for: bubbles,
    # communication and the per-step overheads of each program.
    results['fraction_of_balance_bound'] = {
        a: results['vs_bp_model'][a] / results['balance_bound']
        for a in PIPELINED if a in rate}
  return results


def _stored_bytes(trainer: trainer_lib.ParallelTrainer, algorithm: str,
                  num_frames: int) -> int:
  """Bytes of the inputs and cotangents a pipeline stores, per device.

  From the tick table: part of the compiled program's temp bytes, which
  also hold the gradient sums and the update's buffers (the peak may lie
  outside the tick loop, where these buffers are not live).
  """
  layout = trainer.layout
  depths = schedule_lib.buffer_depths(schedule_lib.make_schedule(
      algorithm, num_frames, trainer.num_stages))
  row = layout.frame.shape[0] * layout.act_size * layout.act_dtype.itemsize
  return sum(depths) * row


def _mib(n: int) -> str:
  return f'{n / 2**20:9.1f}'


def format_report(results: dict[str, Any]) -> str:
  """A printable report: Table 2's row, memory, the stage table, the bound."""
  c = results['config']
  lengths = sorted({int(k) for m in results['memory'].values() for k in m})
  lines = [
      f"{c['model']['name']}: batch {c['batch_size']} x "
      f"{c['data']['clip_length']} frames x {c['data']['resolution']}^2, "
      f"{c['model']['num_stages']} stages x {c['mesh']['data']} data shards "
      f"on {results['devices']}",
      f"load average at start: {results['load_average']}, at end: "
      f"{results['load_average_end']}"]
  if results['steps_per_s']:
    lines.append(f"training steps/s (best of {c['repeats']} x "
                 f"{c['num_train_steps']} steps):")
  head = '  algorithm   steps/s  x bp_model' + ''.join(
      f'  MiB@K={k:<3d}' for k in lengths)
  lines.append(head + '   (memory per device: temp + arguments)')
  for name, memory in results['memory'].items():
    rate = results['steps_per_s'].get(name)
    ratio = results.get('vs_bp_model', {}).get(name)
    lines.append(
        f'  {name:9s} ' + (f'{rate:9.3f}' if rate else '      n/a')
        + (f'  {ratio:9.2f}x' if ratio else '          ')
        + ''.join(f'  {_mib(memory[str(k)]["total_bytes"])}'
                  if str(k) in memory else '        n/a' for k in lengths))
  for name, by_k in results.get('stored_bytes', {}).items():
    lines.append(f'  {name:9s} of which stored inputs + cotangents: '
                 + ', '.join(f'{_mib(by_k[str(k)]).strip()} MiB at K={k}'
                             for k in lengths))
  for name, why in results['skipped'].items():
    lines.append(f'  {name:9s}       n/a  ({why})')
  for name, runs in results['repeats'].items():
    lines.append(f'  {name:9s} repeats: '
                 + ', '.join(f'{r:.3f}' for r in runs) + '; process CPU '
                 'share: ' + ', '.join(f'{s:.2f}'
                                       for s in results['cpu_share'][name]))
  lines.append(f"per-stage cost of one Sideways step (boundaries "
               f"{results['boundaries']}):")
  lines.append('  stage  layers                 MFLOPs/frame    ms/step')
  for i, row in enumerate(results['stages']):
    ms = f"{row['step_ms']:10.2f}" if 'step_ms' in row else '       n/a'
    lines.append(f"  {i:5d}  {'+'.join(row['layers']):22s} "
                 f"{row['mflops_per_frame']:12.1f} {ms}")
  if 'balance_bound' in results:
    lines.append(f"load-balance bound sum/max: {results['balance_bound']:.2f} "
                 f"measured, {results['flops_balance_bound']:.2f} by FLOPs "
                 f"(ideal {c['model']['num_stages']})")
  for name, frac in results.get('fraction_of_balance_bound', {}).items():
    lines.append(f'  {name} / bp_model reaches {frac:.0%} of the measured '
                 'bound')
  return '\n'.join(lines)


def run(config: Any, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Joins the processes, measures, writes results.json and schedule.png.

  Raises:
    common.ConfigError: the config cannot work (before anything compiles).
  """
  algorithms, skipped = check_config(config)
  distributed.initialize_distributed(distributed.DistributedConfig(
      **config.distributed.to_dict()))
  try:
    results = _measure(config, algorithms)
    results['skipped'] = skipped
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    raise RuntimeError(
        f'process {jax.process_index()}: a computation shared with the other '
        f'{jax.process_count() - 1} process(es) failed, most likely because '
        'one of them died or lost its network connection; see their logs. '
        f'Original error: {e}') from e
  if jax.process_index() == 0:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / 'results.json', 'w') as f:
      json.dump(results, f, indent=1)
    d = config.model.num_stages
    tables = [schedule_lib.make_schedule(name, schedule_plot.clip_length(d),
                                         d) for name in schedule_lib.SCHEDULES]
    common.save_figure(schedule_plot.draw(common.pyplot(), tables),
                       workdir / 'schedule.png')
    print(format_report(results), flush=True)
  return results


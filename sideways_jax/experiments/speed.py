"""The speed runner (paper Table 2): steps/s and memory per device.

`run(config, workdir)` measures training steps per second (one step = one
clip of K random-number frames and one optimizer update) of the config's
algorithms on the same D x mesh.data devices: with `compare=True` every
mesh algorithm of the table (`sideways_jax.algorithms.MESH_ALGORITHMS`),
the paper's baseline first ('bp': exact BP, one stage per device).
`timed_steps` steps x `repeats`, best average, as in the paper. Also: each
algorithm's memory per device from the compiled program at every K of
`memory_clip_lengths`, the per-stage cost table (one Sideways step of each
stage, `kernel.stage_step`, timed on one device), the load-balance bound
sum(cost) / max(cost) and the fraction of it each pipeline reaches.

Writes into the workdir (process 0): results.json (every number) and
schedule.png (which device works on which frame at each tick, drawn from
the tables the programs run). `repeats=0` only compiles and sizes.

  python experiments/speed.py --config=configs/speed_vgg8.py:smoke
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils

import sideways_jax as sj
from sideways_jax import algorithms
from sideways_jax import models
from sideways_jax.experiments import common
from sideways_jax.experiments import schedule_plot
from sideways_jax.experiments import workdir as workdir_lib
from sideways_jax.parallel import distributed
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import program as program_lib
from sideways_jax.parallel import schedule as schedule_lib
from sideways_jax.parallel import timing

PARTITIONS = ('layers', 'flops', 'measured', 'explicit')
# compare=True runs every mesh algorithm; the table lists the paper's
# baseline (model-parallel BP) first, and ratios are to it.
ALGORITHMS = algorithms.MESH_ALGORITHMS
BASELINE = ALGORITHMS[0]


def _layers(config: Any) -> tuple[models.Layer, ...]:
  return models.build_model(config.model.name, 'layers',
                            config.data.num_classes,
                            **config.model.kwargs.to_dict())


def _check_model(config: Any) -> None:
  """The model, its cut and the mesh fit together (nothing is built)."""
  try:
    models.get_model_builder(config.model.name, 'layers')
  except ValueError as e:
    raise common.ConfigError(f'model.name: {e}') from None
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


def _check_algorithm(config: Any, name: str) -> str | None:
  """Why `name` cannot run with this config (None: it can).

  Raises:
    common.ConfigError: a bad option or a clip too short, which no
      algorithm choice fixes.
  """
  row, d = algorithms.get(name), config.model.num_stages
  try:
    algorithms.resolve_options(name, config.options[name].to_dict(),
                               algorithms.MESH)
    row.check_clip_length(config.data.clip_length, d)
  except ValueError as e:
    raise common.ConfigError(f'{name}: {e}') from None
  shards = row.load_mesh_program().num_batch_shards(config.mesh.data, d)
  if config.batch_size % shards:
    return (f'batch_size={config.batch_size} does not split over the '
            f'{shards} batch shards of {name!r}: use a multiple of {shards}')
  return None


def check_config(config: Any) -> tuple[tuple[str, ...], dict[str, str]]:
  """(the algorithms to run, {skipped algorithm: why}).

  Under compare=True an algorithm whose batch shards cannot split the batch
  (bp_data splits it over every device) is skipped, and the report says so;
  the config's own `algorithm` must run. Reads the config only (no device
  is touched, nothing compiles).

  Raises:
    common.ConfigError: the config cannot work.
  """
  to_run = common.run_algorithms(config, ALGORITHMS, ALGORITHMS)
  if config.runner != 'speed':
    raise common.ConfigError(f"runner={config.runner!r}: this is the 'speed' "
                             'runner')
  _check_model(config)
  if config.timed_steps < 1 or config.repeats < 0:
    raise common.ConfigError('timed_steps must be >= 1 and repeats >= 0')
  skipped = {}
  for name in to_run:
    why = _check_algorithm(config, name)
    if why and name == config.algorithm:
      raise common.ConfigError(why)
    if why:
      skipped[name] = why
  return tuple(a for a in to_run if a not in skipped), skipped


def _init(stages, frame, seed):
  return jax.jit(lambda k: sj.init_chain(stages, k, frame))(
      jax.random.PRNGKey(seed))


def _boundaries_of(stages) -> tuple[int, ...]:
  sizes = [len(stage.names) for stage in stages]
  return tuple(sum(sizes[:i]) for i in range(1, len(sizes)))


def _xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def _stage_costs(config: Any, stages, variables, frame) -> list[float]:
  """Seconds of one Sideways step of each stage, with the training loss."""
  labels = jnp.zeros((frame.shape[0],), jnp.int32)
  return timing.stage_costs(stages, variables, frame, labels, _xent,
                            config.cost_iters)


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
    costs = _stage_costs(config, singles, _init(singles, frame, config.seed),
                         frame)
    if jax.process_count() > 1:
      # Timings differ from process to process, but every process must cut
      # the model alike (else their programs differ and the run hangs).
      costs = multihost_utils.broadcast_one_to_all(
          np.asarray(costs, np.float32))
    boundaries = models.balanced_boundaries([float(c) for c in costs], d)
  return models.group_layers(layers, boundaries), tuple(boundaries)


def _describe(config: Any, algorithms_run: tuple[str, ...], stages,
              boundaries, variables, frame, costs) -> dict[str, Any]:
  """The results' header: setup, devices, load and the stage table."""
  summary = models.describe(stages, frame, variables)
  results = {
      'config': config.to_dict(),
      'algorithms': list(algorithms_run),
      'baseline': BASELINE,
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind} '
                 f'in {jax.process_count()} process(es)',
      'load_average': list(os.getloadavg()),
      'boundaries': list(boundaries),
      'stages': [{'layers': list(s.layers), 'mflops_per_frame': s.flops / 1e6,
                  'params': s.num_params,
                  **({'step_ms': 1e3 * c} if costs else {})}
                 for s, c in zip(summary.stages,
                                 costs or [0.0] * len(stages))],
      'flops_balance_bound': timing.balance_bound(
          [s.flops for s in summary.stages]),
      'steps_per_s': {}, 'repeats': {}, 'cpu_share': {}, 'memory': {},
  }
  if costs:
    results['balance_bound'] = timing.balance_bound(costs)
  return results


def _size(config: Any, name: str, program: program_lib.MeshProgram,
          state: Any, results: dict[str, Any]) -> None:
  """Memory per device at every clip length, and what pipelines store."""
  row = algorithms.get(name)
  lengths = sorted({config.data.clip_length, *config.memory_clip_lengths})
  # Sideways needs K >= 2D-1: shorter memory points are left out (n/a).
  shortest = row.min_clip_length(program.num_stages)
  results['memory'][name] = {
      str(k): program.memory_analysis(state, *program.abstract_batch(k))
      for k in lengths if k >= shortest}
  if row.pipelined and row.exact:  # GPipe, 1F1B: stored frames.
    results.setdefault('stored_bytes', {})[name] = {
        str(k): _stored_bytes(program, k) for k in lengths}


def _prepare(config: Any, name: str, stages, variables, mesh,
             results: dict[str, Any]):
  """Builds, sizes and (if timed) compiles one algorithm: [step, state]."""
  size = config.data.resolution
  clip_shape = (config.data.clip_length, config.batch_size, size, size, 3)
  optimizer = optax.sgd(config.optimizer.learning_rate, momentum=0.9)
  program = program_lib.mesh_program(
      name, stages, variables, mesh, _xent, optimizer,
      jax.ShapeDtypeStruct(clip_shape, jnp.float32),
      options=config.options[name].to_dict())
  state = program.init(variables, jax.random.PRNGKey(config.seed))
  _size(config, name, program, state, results)
  if config.repeats == 0:
    return None
  clip, labels = timing.random_batch(mesh, program.batch_spec, clip_shape,
                                     config.data.num_classes, config.seed)
  step = lambda s, p=program, c=clip, y=labels: p.update(s, c, y)
  state, metrics = step(state)  # Compiles.
  if not bool(metrics['loss_is_finite']):
    raise FloatingPointError(f'{name}: non-finite loss or gradient; lower '
                             'optimizer.learning_rate')
  return [step, state]


def _time(config: Any, runs: dict[str, list], results: dict[str, Any]
          ) -> None:
  """Times every run; ratios to the baseline and to the balance bound."""
  # Repeats interleave the algorithms, so that a change in the machine's
  # load during the run hits all of them alike.
  for _ in range(config.repeats):
    for name, run_ in runs.items():
      rate, cpu_share, run_[1] = timing.time_steps(run_[0], run_[1],
                                                   config.timed_steps)
      results['repeats'].setdefault(name, []).append(rate)
      results['cpu_share'].setdefault(name, []).append(cpu_share)
  for name, rates in results['repeats'].items():
    results['steps_per_s'][name] = max(rates)
  results['load_average_end'] = list(os.getloadavg())
  rate = results['steps_per_s']
  if BASELINE in rate:
    results['vs_baseline'] = {a: r / rate[BASELINE] for a, r in rate.items()}
    # What is left once stage imbalance is accounted for: bubbles,
    # communication and the per-step overheads of each program.
    results['fraction_of_balance_bound'] = {
        a: results['vs_baseline'][a] / results['balance_bound']
        for a in rate if algorithms.get(a).pipelined}


def _measure(config: Any, algorithms_run: tuple[str, ...]) -> dict[str, Any]:
  size = config.data.resolution
  local_batch = config.batch_size // config.mesh.data
  frame = jnp.zeros((local_batch, size, size, 3), jnp.float32)
  stages, boundaries = _stages(config, frame)
  variables = _init(stages, frame, config.seed)
  costs = (_stage_costs(config, stages, variables, frame)
           if config.repeats > 0 else [])
  results = _describe(config, algorithms_run, stages, boundaries, variables,
                      frame, costs)
  mesh = mesh_lib.make_mesh(config.mesh.data, config.model.num_stages)
  runs = {}
  for name in algorithms_run:
    run_ = _prepare(config, name, stages, variables, mesh, results)
    if run_ is not None:
      runs[name] = run_
  _time(config, runs, results)
  return results


def _stored_bytes(program: Any, num_frames: int) -> int:
  """Bytes of the inputs and cotangents a pipeline stores, per device.

  From the tick table: part of the compiled program's temp bytes, which
  also hold the gradient sums and the update's buffers (the peak may lie
  outside the tick loop, where these buffers are not live).
  """
  layout = program.layout
  depths = schedule_lib.buffer_depths(program.schedule(num_frames,
                                                       program.num_stages))
  row = layout.frame.shape[0] * layout.act_size * layout.act_dtype.itemsize
  return sum(depths) * row


def _mib(n: int) -> str:
  return f'{n / 2**20:9.1f}'


def _speed_lines(results: dict[str, Any]) -> list[str]:
  """Steps/s, ratio to the baseline and memory of every algorithm."""
  c = results['config']
  lengths = sorted({int(k) for m in results['memory'].values() for k in m})
  lines = []
  if results['steps_per_s']:
    lines.append(f"training steps/s (best of {c['repeats']} x "
                 f"{c['timed_steps']} steps):")
  lines.append(f"  algorithm   steps/s  x {results['baseline']:7s}" + ''.join(
      f'  MiB@K={k:<3d}' for k in lengths)
               + '   (memory per device: temp + arguments)')
  for name, memory in results['memory'].items():
    rate = results['steps_per_s'].get(name)
    ratio = results.get('vs_baseline', {}).get(name)
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
  return lines


def _stage_lines(results: dict[str, Any]) -> list[str]:
  """The per-stage cost table and the balance bound."""
  lines = [f"per-stage cost of one Sideways step (boundaries "
           f"{results['boundaries']}):",
           '  stage  layers                 MFLOPs/frame    ms/step']
  for i, row in enumerate(results['stages']):
    ms = f"{row['step_ms']:10.2f}" if 'step_ms' in row else '       n/a'
    lines.append(f"  {i:5d}  {'+'.join(row['layers']):22s} "
                 f"{row['mflops_per_frame']:12.1f} {ms}")
  if 'balance_bound' in results:
    lines.append(f"load-balance bound sum/max: {results['balance_bound']:.2f} "
                 f"measured, {results['flops_balance_bound']:.2f} by FLOPs "
                 f"(ideal {results['config']['model']['num_stages']})")
  for name, frac in results.get('fraction_of_balance_bound', {}).items():
    lines.append(f"  {name} / {results['baseline']} reaches {frac:.0%} of "
                 'the measured bound')
  return lines


def format_report(results: dict[str, Any]) -> str:
  """A printable report: Table 2's row, memory, the stage table, the bound."""
  c = results['config']
  return '\n'.join([
      f"{c['model']['name']}: batch {c['batch_size']} x "
      f"{c['data']['clip_length']} frames x {c['data']['resolution']}^2, "
      f"{c['model']['num_stages']} stages x {c['mesh']['data']} data shards "
      f"on {results['devices']}",
      f"load average at start: {results['load_average']}, at end: "
      f"{results['load_average_end']}"] + _speed_lines(results)
                   + _stage_lines(results))


def schedules(num_stages: int) -> list[tuple[str, schedule_lib.Schedule]]:
  """(title, tick table) of every mesh algorithm that has one."""
  k = schedule_plot.clip_length(num_stages)
  out = []
  for name in ALGORITHMS:
    program = algorithms.get(name).load_mesh_program()
    if program.schedule is not None:
      table = program.schedule(k, num_stages)
      out.append((f'{name}: {table.title}', table))
  return out


def run(config: Any, workdir: workdir_lib.PathLike) -> dict[str, Any]:
  """Joins the processes, measures, writes results.json and schedule.png.

  `workdir` may be a local folder or a bucket URL; results.json is written
  whole and strict (`workdir.py`).

  Raises:
    common.ConfigError: the config cannot work (before anything compiles).
  """
  algorithms_run, skipped = check_config(config)
  distributed.initialize_distributed(distributed.DistributedConfig(
      **config.distributed.to_dict()))
  try:
    results = _measure(config, algorithms_run)
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
    workdir = workdir_lib.prepare_folder(workdir)
    workdir_lib.write_json(workdir / 'results.json', results)
    common.save_figure(schedule_plot.draw(
        common.pyplot(), schedules(config.model.num_stages)),
                       workdir / 'schedule.png')
    print(format_report(results), flush=True)
  return results

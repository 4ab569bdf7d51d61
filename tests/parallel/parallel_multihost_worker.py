"""One process of a multi-process run (or the whole run, with one process).

Trains a tiny Simple-CNN for two steps with each algorithm on a 2 x 2
(data x stage) mesh and writes the final variables and losses to an .npz
(process 0 only). With 2 processes of 2 CPU devices each, neighbouring
stages sit in different processes, so activations, cotangents and the data
reductions cross the process boundary through gloo collectives. With 1
process of 4 devices it computes the same thing in one process.

--fail_process P --fail_after_step N makes process P fail after N steps of
the first algorithm, to check that the others stop with an error instead of
hanging: --fail_how=exit dies at once (peers see closed connections),
--fail_how=stop freezes itself with SIGSTOP (no connection closes; only the
missing heartbeats reveal it).
"""

import argparse
import os
import signal
import sys
import time

# GPipe runs the same programs as 1F1B (another tick table): left out to
# keep the three-process test short.
ALGORITHMS = ('sideways', 'bp', 'bp_data', 'bp_1f1b')


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  parser.add_argument('--coordinator_address', default='')
  parser.add_argument('--num_processes', type=int, default=1)
  parser.add_argument('--process_id', type=int, default=0)
  parser.add_argument('--heartbeat_timeout_s', type=int, default=10)
  parser.add_argument('--out', default='')
  parser.add_argument('--fail_process', type=int, default=-1)
  parser.add_argument('--fail_after_step', type=int, default=0)
  parser.add_argument('--fail_how', choices=('exit', 'stop'), default='exit')
  return parser.parse_args()


def main() -> None:
  args = _parse_args()

  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  from sideways_jax import parallel  # pylint: disable=g-import-not-at-top
  devices_per_process = 4 // args.num_processes
  parallel.initialize_distributed(parallel.DistributedConfig(
      coordinator_address=args.coordinator_address,
      num_processes=args.num_processes, process_id=args.process_id,
      heartbeat_timeout_s=args.heartbeat_timeout_s,
      initialization_timeout_s=60, shutdown_timeout_s=30,
      num_cpu_devices=devices_per_process))

  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import parallel_cases as cases  # pylint: disable=g-import-not-at-top

  # Stage-neighbours in different processes: [p0 d0, p1 d0] is data row 0.
  devices = jax.devices()
  if args.num_processes > 1:
    local = [[d for d in devices if d.process_index == p]
             for p in range(args.num_processes)]
    devices = [group[i] for i in range(devices_per_process) for group in local]
  mesh = parallel.make_mesh(2, 2, devices=devices)
  stages = cases.build('simple_cnn', 2)
  variables = cases.init_variables(stages)
  results = {}
  for algorithm in ALGORITHMS:
    clips = [cases.batch(4, 2 * cases.PER_SHARD, seed) for seed in range(2)]
    optimizer = cases._optimizer()  # pylint: disable=protected-access
    program = parallel.mesh_program(algorithm, stages, variables, mesh,
                                    cases.xent, optimizer, clips[0][0])
    state = program.init(variables, jax.random.PRNGKey(3))
    for step, (clip, targets) in enumerate(clips):
      if step == args.fail_after_step and args.process_id == args.fail_process:
        print(f'process {args.process_id}: failing ({args.fail_how})',
              flush=True)
        if args.fail_how == 'exit':
          os._exit(3)  # pylint: disable=protected-access
        os.kill(os.getpid(), signal.SIGSTOP)
      state, metrics = program.update(state, *program.place(clip, targets))
      loss = float(parallel.fetch(metrics['loss'], mesh))
      results[f'{algorithm}/loss{step}'] = loss
      print(f'process {args.process_id}: {algorithm} step {step} loss '
            f'{loss:.6f} at {time.time():.1f}', flush=True)
    final = program.variables(state)
    for i, leaf in enumerate(jax.tree.leaves(final)):
      results[f'{algorithm}/leaf{i}'] = np.asarray(leaf)
  if args.out and args.process_id == 0:
    np.savez(args.out, **results)
  print(f'process {args.process_id}: done', flush=True)


if __name__ == '__main__':
  main()

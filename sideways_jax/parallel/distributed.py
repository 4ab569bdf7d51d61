"""Joining several processes (hosts) into one JAX program.

Every process runs the same command with its own process id; after
`initialize_distributed`, `jax.devices()` lists the devices of every
process and a mesh built from them spans all hosts, so the rest of the
program does not change. Call it before anything touches a JAX backend.

Failure behaviour: each process sends heartbeats to the coordination service
(process 0). When a process dies, the service notices within
`heartbeat_timeout_s` and every other process is stopped with an error that
names the missing task, instead of waiting forever in a collective; a
collective whose peer has gone also fails as soon as the connection drops.
"""

from __future__ import annotations

import dataclasses
import logging

import jax


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """How this process joins a multi-process run.

  Attributes:
    coordinator_address: 'host:port' of process 0 ('' for one process, or to
      let `auto_detect` find it).
    num_processes: number of processes in the run (1: no initialization).
    process_id: this process's index, 0 <= process_id < num_processes.
    auto_detect: let JAX read everything from the cluster environment
      (SLURM, Open MPI, TPU VM pods); the three fields above are then unused.
    initialization_timeout_s: how long to wait for every process to join.
    heartbeat_timeout_s: a process silent this long is declared dead and
      the others stop with an error.
    shutdown_timeout_s: how long a finishing process waits for the others.
    cpu_collectives: collectives between CPU processes ('gloo' or 'mpi');
      unused by GPU and TPU backends.
    num_cpu_devices: CPU devices per process (0: JAX's default); only for
      CPU runs, e.g. several fake devices per process in tests.
  """
  coordinator_address: str = ''
  num_processes: int = 1
  process_id: int = 0
  auto_detect: bool = False
  initialization_timeout_s: int = 300
  heartbeat_timeout_s: int = 100
  shutdown_timeout_s: int = 300
  cpu_collectives: str = 'gloo'
  num_cpu_devices: int = 0


def validate(config: DistributedConfig) -> None:
  """Raises a ValueError for an inconsistent configuration."""
  if config.auto_detect:
    return
  if config.num_processes < 1:
    raise ValueError(f'num_processes must be >= 1, got '
                     f'{config.num_processes}')
  if not 0 <= config.process_id < config.num_processes:
    raise ValueError(
        f'process_id must be in [0, {config.num_processes}), got '
        f'{config.process_id}')
  if config.num_processes > 1:
    host, _, port = config.coordinator_address.rpartition(':')
    if not host or not port.isdigit():
      raise ValueError(
          'a multi-process run needs coordinator_address="host:port" (the '
          'address of process 0, reachable from every process), got '
          f'{config.coordinator_address!r}')
  for name in ('initialization_timeout_s', 'heartbeat_timeout_s',
               'shutdown_timeout_s'):
    if getattr(config, name) <= 0:
      raise ValueError(f'{name} must be positive, got '
                       f'{getattr(config, name)}')


def initialize_distributed(config: DistributedConfig) -> bool:
  """Joins the run described by `config`; returns True when multi-process.

  With `num_processes == 1` and no auto-detection it only applies
  `num_cpu_devices`. Must run before any JAX computation or `jax.devices()`.
  """
  validate(config)
  if config.num_cpu_devices:
    jax.config.update('jax_num_cpu_devices', config.num_cpu_devices)
  if not config.auto_detect and config.num_processes == 1:
    return False
  # Without this, CPU processes could not run collectives with each other;
  # GPU (NCCL) and TPU (ICI) backends ignore it.
  jax.config.update('jax_cpu_collectives_implementation',
                    config.cpu_collectives)
  timeouts = dict(initialization_timeout=config.initialization_timeout_s,
                  heartbeat_timeout_seconds=config.heartbeat_timeout_s,
                  shutdown_timeout_seconds=config.shutdown_timeout_s)
  if config.auto_detect:
    jax.distributed.initialize(**timeouts)
  else:
    jax.distributed.initialize(
        coordinator_address=config.coordinator_address,
        num_processes=config.num_processes, process_id=config.process_id,
        **timeouts)
  logging.info('process %d of %d joined: %d local / %d global devices',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
  return True

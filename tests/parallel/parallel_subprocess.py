"""Environment and helpers for the subprocesses the parallel tests start."""

import os
import pathlib
import socket

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]


def worker_env() -> dict:
  """This environment, minus anything that would fix the device count."""
  env = dict(os.environ)
  flags = [f for f in env.get('XLA_FLAGS', '').split()
           if 'xla_force_host_platform_device_count' not in f]
  # Compile fast: these programs are tiny and run once.
  flags.append('--xla_backend_optimization_level=0')
  env['XLA_FLAGS'] = ' '.join(flags)
  env['JAX_PLATFORMS'] = 'cpu'
  env['PYTHONPATH'] = os.pathsep.join(
      [str(REPO)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                     if p])
  return env


def free_port() -> int:
  """A TCP port on the loopback interface that nothing listens on now."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]

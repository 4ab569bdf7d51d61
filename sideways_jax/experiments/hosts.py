"""Which process of a (possibly multi-host) run does what.

Every process trains and saves its own checkpoint shards; process 0, the
lead, alone writes the run's files (config, logs, summary), holds the
workdir lock and decides where to resume. `agree` hands its decision to the
others, so all processes restore the same step or stop together.

A process whose peer dies is ended by JAX's coordination service from C++
(an abort with a page of native log lines) that Python cannot catch.
`supervise` therefore runs each process of a multi-host run in a child and
turns that abort into one line: `error: process N of this multi-host run
stopped answering ...`, exit code 1.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from sideways_jax.experiments import common


def is_lead() -> bool:
  """True in process 0 (and in every single-process run)."""
  return jax.process_index() == 0


def agree(values: tuple[int, ...]) -> tuple[int, ...]:
  """Process 0's `values` on every process (a collective across processes)."""
  if jax.process_count() == 1:
    return tuple(values)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  out = multihost_utils.broadcast_one_to_all(np.asarray(values, np.int32))
  return tuple(int(v) for v in np.asarray(out))


_MAX_VALUES = 8  # Every process must broadcast arrays of one shape.


class PeerStopped(common.RunError):
  """Process 0 stopped the run before training; its error says why."""


def decide(decision: Callable[[], tuple[int, ...]]) -> tuple[int, ...]:
  """Runs `decision()` on the lead and shares its result (ints) with all.

  If the lead fails, every other process raises PeerStopped instead of
  waiting for it at the next collective; the lead raises its own error.

  Args:
    decision: called on the lead only; returns up to 8 ints.
  """
  error, values = None, None
  if is_lead():
    try:
      values = tuple(decision())
    except BaseException as e:  # pylint: disable=broad-except
      error = e
  size = len(values) if values is not None else 0
  shared = agree((1 if error is None else 0, size) + (values or ()) +
                 (0,) * (_MAX_VALUES - size))
  if error is not None:
    raise error
  if not shared[0]:
    raise PeerStopped('process 0 stopped this run before training (its '
                      'error says why)')
  return shared[2:2 + shared[1]]


# Set in the child that `supervise` starts (so it does not start another).
SUPERVISED_ENV = 'SIDEWAYS_JAX_SUPERVISED'
# A native (C++) log line, 'E1204 03:13:35.885 15200 x.cc:1] ...': held from
# the first error, or the first warning about the coordination service.
_NATIVE = re.compile(r'^([IWEF])\d{4} [\d:.]+\s+\d+ \S+\.(?:cc|h|cpp):\d+\]')
_COORDINATION = re.compile(r'coordination|heartbeat|preemption|barrier',
                           re.IGNORECASE)
# What the coordination service says when a peer is gone: (pattern, peer).
_PEER_LOST = (
    (re.compile(r'Task (\d+) heartbeat timeout'), None),
    (re.compile(r'stopped sending heartbeats\):\s*(\d+)'), None),
    (re.compile(r'leader task was preempted/died|Failed to send RPC to '
                r'coordination service'), 0),
)
_ABORTED_BY_SERVICE = 'JAX distributed service detected fatal errors'


def needs_supervisor(config: Any) -> bool:
  """True for a process of a multi-host run not yet under `supervise`."""
  joins = config.get('distributed') if hasattr(config, 'get') else None
  return (joins is not None and (joins.num_processes > 1 or joins.auto_detect)
          and not os.environ.get(SUPERVISED_ENV))


def lost_peer(native_log: str) -> str | None:
  """'process N' when `native_log` says a peer of this run stopped, else None.

  Args:
    native_log: what a process printed on stderr from its first native
      error line on.
  """
  for pattern, peer in _PEER_LOST:
    match = pattern.search(native_log)
    if match:
      return (f'process {match.group(1)}' if peer is None
              else f'process {peer} (the coordinator)')
  return 'a process' if _ABORTED_BY_SERVICE in native_log else None


def die_with_supervisor() -> None:
  """In a supervised process: be killed when the supervisor dies (Linux).

  A supervisor killed with -9 must not leave its run going on alone (the
  peers would wait for a process that no longer reports). Set by the child
  itself at start (a `preexec_fn` would fork a multithreaded process); a
  supervisor already gone by then ends the child here.
  """
  if not os.environ.get(SUPERVISED_ENV) or not sys.platform.startswith(
      'linux'):
    return
  import ctypes  # pylint: disable=g-import-not-at-top
  pr_set_pdeathsig = 1
  ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
  if os.getppid() == 1:  # Re-parented: the supervisor died before this.
    os.kill(os.getpid(), signal.SIGKILL)


def supervise(argv: Sequence[str]) -> int:
  """Runs `python argv` in a child; returns the exit code to end with.

  The child's stdout is this process's; its stderr passes through line by
  line until a native error (or coordination warning) line or its `error: `
  line appears. From there on it is held until the child ends: if the child
  failed because a peer stopped answering, the held lines become one line,
  and the code 1; otherwise they are printed as they were and the child's
  code is returned (128 + signal for a child killed by a signal).

  Args:
    argv: the command line after the interpreter (e.g. `sys.argv`).
  """
  child = subprocess.Popen([sys.executable, *argv], stderr=subprocess.PIPE,
                           env=dict(os.environ, **{SUPERVISED_ENV: '1'}))
  # Ctrl-C reaches the child from the terminal and it stops by itself (one
  # line); a SIGTERM sent to this process only is passed on.
  handlers = (signal.signal(signal.SIGINT, signal.SIG_IGN),
              signal.signal(signal.SIGTERM,
                            lambda sig, _: child.send_signal(sig)))
  held = []
  try:
    for raw in child.stderr:
      line = raw.decode('utf-8', errors='replace')
      # The child's own one-line error is held too: when a peer is gone, the
      # service's reason replaces it (a collective's error names no process).
      native = _NATIVE.match(line)
      if (held or line.startswith('error: ') or native and (
          native.group(1) in 'EF' or _COORDINATION.search(line))):
        held.append(line)
      else:
        sys.stderr.write(line)
        sys.stderr.flush()
  finally:
    signal.signal(signal.SIGINT, handlers[0])
    signal.signal(signal.SIGTERM, handlers[1])
  code = child.wait()
  text = ''.join(held)
  peer = lost_peer(text) if code != 0 else None
  if peer:
    print(f'error: {peer} of this multi-host run stopped answering, so this '
          'process stopped too; restart every process with the same command '
          'to resume from the newest checkpoint', file=sys.stderr, flush=True)
    return 1
  sys.stderr.write(text)
  sys.stderr.flush()
  return code if code >= 0 else 128 - code

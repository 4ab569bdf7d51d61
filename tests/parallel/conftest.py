"""Fixtures for the depth-parallel tests.

Multi-device cases run in one worker process with 8 fake CPU devices (see
parallel_case_worker.py), shared by the whole session: whatever JAX state
the rest of the suite leaves in this process cannot change its devices.
"""

import json
import selectors
import subprocess
import sys
import tempfile

import pytest

from parallel_subprocess import HERE
from parallel_subprocess import REPO
from parallel_subprocess import worker_env


class CaseWorker:
  """Runs cases from parallel_cases.py in the 8-device worker process."""

  def __init__(self):
    self._proc = None
    self._log = tempfile.NamedTemporaryFile('w+', suffix='.log',
                                            prefix='parallel_worker_')

  def _start(self):
    self._proc = subprocess.Popen(
        [sys.executable, str(HERE / 'parallel_case_worker.py')],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
        text=True, env=worker_env(), cwd=str(REPO))

  def _log_tail(self) -> str:
    self._log.flush()
    self._log.seek(0)
    return self._log.read()[-4000:]

  def run(self, case: str, timeout: float = 900, **kwargs):
    """Returns the case's result; fails the test on an error or timeout."""
    if self._proc is None or self._proc.poll() is not None:
      self._start()
    self._proc.stdin.write(json.dumps({'case': case, 'kwargs': kwargs}) + '\n')
    self._proc.stdin.flush()
    selector = selectors.DefaultSelector()
    selector.register(self._proc.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout)
    selector.close()
    if not ready:
      self.close()
      pytest.fail(f'case {case}{kwargs} timed out after {timeout} s; worker '
                  f'log:\n{self._log_tail()}')
    line = self._proc.stdout.readline()
    if not line:
      code = self._proc.wait()
      self._proc = None
      pytest.fail(f'the worker died (exit code {code}) running {case}'
                  f'{kwargs}; log:\n{self._log_tail()}')
    reply = json.loads(line)
    if not reply['ok']:
      pytest.fail(f'case {case}{kwargs} raised:\n{reply["error"]}')
    return reply['result']

  def close(self):
    if self._proc is not None and self._proc.poll() is None:
      self._proc.stdin.close()
      try:
        self._proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self._proc.kill()
        self._proc.wait()
    self._proc = None
    self._log.close()


@pytest.fixture(scope='session')
def case_worker():
  worker = CaseWorker()
  yield worker
  worker.close()

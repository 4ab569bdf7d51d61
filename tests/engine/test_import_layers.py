"""Each library layer imports on its own and never pulls in the runners.

The engine, models, data, parallel and streaming packages sit below
`sideways_jax.experiments`; an import of the runners from any of them would
be an import circle waiting to happen. One fresh interpreter imports every
package in turn, forgetting all `sideways_jax*` modules in between (jax and
flax stay loaded, which keeps this fast), and reports what each one loaded.
"""

import json
import subprocess
import sys

import pytest

LIBRARY = ('sideways_jax', 'sideways_jax.models', 'sideways_jax.data',
           'sideways_jax.parallel', 'sideways_jax.streaming')
RUNNERS = 'sideways_jax.experiments.cli'

_PROBE = '''
import importlib, json, sys, traceback
report = {}
for name in sys.argv[1:]:
  for module in [m for m in sys.modules if m.startswith('sideways_jax')]:
    del sys.modules[module]
  try:
    importlib.import_module(name)
    error = None
  except Exception:
    error = traceback.format_exc(limit=3)
  report[name] = {
      'error': error,
      'loaded': sorted(m for m in sys.modules if m.startswith('sideways_jax')),
  }
print(json.dumps(report))
'''


@pytest.fixture(scope='module')
def report():
  done = subprocess.run([sys.executable, '-c', _PROBE, *LIBRARY, RUNNERS],
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 0, done.stderr
  return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('package', LIBRARY)
def test_library_layer_imports_without_the_runners(report, package):
  entry = report[package]
  assert entry['error'] is None, entry['error']
  assert package in entry['loaded']
  runners = [m for m in entry['loaded']
             if m.startswith('sideways_jax.experiments')]
  assert not runners, f'{package} imports {runners}'


def test_runners_import(report):
  entry = report[RUNNERS]
  assert entry['error'] is None, entry['error']
  assert RUNNERS in entry['loaded']

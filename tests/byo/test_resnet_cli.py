"""The user's ResNet trained by the runner, named by import path only.

As a user runs it from the repository root, with no library file touched:

  python experiments/main.py --config=tests/byo/resnet_config.py:smoke \
      --config.model.name=tests.byo.resnet_flax:build --workdir=W

then evaluated from its workdir with --mode=eval.
"""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def main_py(*args: str) -> subprocess.CompletedProcess:
  # A user's shell: no PYTHONPATH; main.py puts the repository root on
  # sys.path, so `tests.byo.resnet_flax` imports from there.
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  return subprocess.run([sys.executable, 'experiments/main.py', *args],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=600, check=False)


def test_resnet_trains_and_evaluates_through_main_py(tmp_path):
  workdir = tmp_path / 'resnet'
  common = ['--config=tests/byo/resnet_config.py:smoke',
            '--config.model.name=tests.byo.resnet_flax:build',
            f'--workdir={workdir}']
  done = main_py(*common, '--config.algorithm=sideways')
  assert done.returncode == 0, done.stderr[-3000:]
  summary = json.loads((workdir / 'sideways' / 'summary.json').read_text())
  assert summary['steps'] == 2 and summary['eval'], summary
  assert summary['ran']['algorithm'] == 'sideways'
  done = main_py(*common, '--mode=eval')
  assert done.returncode == 0, done.stderr[-3000:]
  row = done.stdout.strip().splitlines()[-1].split()
  assert row[:4] == ['sideways', 'sideways', '2', 'test'], done.stdout

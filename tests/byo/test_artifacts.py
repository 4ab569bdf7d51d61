"""Runs as artifacts: eval-only, load_run, and exported variables.

One smoke run (2 steps, checkpoints at 1 and 2) serves every test; the
tests read it and must leave its folder exactly as it was.
"""

import importlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from sideways_jax import chain
from sideways_jax.experiments import artifacts
from sideways_jax.experiments import cli
from sideways_jax.experiments import export
from sideways_jax.experiments.classification import experiment

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_FILE = 'configs/synthetic_simplecnn.py:smoke'


def smoke_config():
  config = importlib.import_module('configs.synthetic_simplecnn').get_config(
      'smoke')
  with config.unlocked():
    config.compare = False
    config.algorithm = 'bp'
  return config


def snapshot(folder: pathlib.Path) -> dict[str, tuple[int, int]]:
  """Every file under `folder` with its size and modification time."""
  return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
          for p in sorted(folder.rglob('*'))}


# The smoke programs compile in about a second, around JAX's default
# threshold for the persistent cache: cached all, the eval and restore of
# each test (and main.py's) reuse what the training run compiled.
MIN_COMPILE_TIME = 'jax_persistent_cache_min_compile_time_secs'


@pytest.fixture(scope='module', autouse=True)
def cache_every_program():
  old = getattr(jax.config, MIN_COMPILE_TIME)
  jax.config.update(MIN_COMPILE_TIME, 0.0)
  yield
  jax.config.update(MIN_COMPILE_TIME, old)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory, cache_every_program) -> pathlib.Path:
  root = tmp_path_factory.mktemp('artifact_run')
  experiment.run(smoke_config(), root, stream=io.StringIO())
  return root


def final_eval(workdir: pathlib.Path) -> dict:
  return json.loads((workdir / 'bp' / 'summary.json').read_text())['eval']


def test_eval_mode_gives_the_runs_own_final_eval_and_writes_nothing(
    workdir, tmp_path):
  """--mode=eval through main.py (the test split), then another split."""
  before = snapshot(workdir)
  env = {**os.environ, 'PYTHONPATH': str(REPO),
         MIN_COMPILE_TIME.upper(): '0'}
  table = tmp_path / 'eval.json'
  done = subprocess.run(
      [sys.executable, 'experiments/main.py', f'--config={CONFIG_FILE}',
       f'--workdir={workdir}', '--mode=eval', f'--out={table}'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  rows = json.loads(table.read_text())
  assert [(r['run'], r['algorithm'], r['step'], r['split']) for r in rows] == [
      ('bp', 'bp', 2, 'test')]
  want = final_eval(workdir)
  for key in ('video_accuracy', 'frame_accuracy', 'loss', 'num_videos'):
    assert rows[0][key] == want[key], key
  lines = done.stdout.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith('run '))
  assert 'video acc' in lines[start]
  assert lines[start].split()[:4] == ['run', 'algorithm', 'step', 'split']
  assert lines[start + 2].split()[:4] == ['bp', 'bp', '2', 'test']
  # Another split is another evaluation.
  out = io.StringIO()
  val = artifacts.run_mode('eval', workdir, split='val', stream=out)[0]
  assert val['split'] == 'val' and val['loss'] != want['loss']
  assert out.getvalue().splitlines()[2].split()[:4] == ['bp', 'bp', '2', 'val']
  assert snapshot(workdir) == before


def test_load_run_and_exported_variables_predict_the_same(workdir, tmp_path):
  before = snapshot(workdir)
  run = artifacts.load_run(workdir)  # The experiment folder's one run.
  assert (run.step, run.algorithm, run.num_classes) == (2, 'bp', 10)
  assert run.workdir == workdir / 'bp'
  assert run.config.data.resolution == 32
  clip = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 32, 32, 3))
  want = np.asarray(chain.apply_clip(run.stages, run.variables, clip))
  assert want.shape == (3, 2, 10)

  path = tmp_path / 'model.msgpack'
  artifacts.export_run(run, path)
  stages, variables = export.load_model(path)
  assert jax.tree.structure(variables) == jax.tree.structure(run.variables)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(run.variables)):
    assert a.dtype == b.dtype and np.array_equal(a, b)
  got = np.asarray(chain.apply_clip(stages, variables, clip))
  np.testing.assert_array_equal(got, want)
  info = export.read_info(path)
  assert (info['step'], info['algorithm'], info['model']['name']) == (
      2, 'bp', 'simple_cnn')
  # The runner feeds (frames - mean) / std: the file says so.
  assert (info['input_mean'], info['input_std']) == (0.5, 0.25)
  assert snapshot(workdir) == before

  (tmp_path / 'junk.msgpack').write_bytes(b'not msgpack at all')
  with pytest.raises(export.ExportFileError, match='not a variables file'):
    export.load_variables(tmp_path / 'junk.msgpack')


def test_a_checkpoint_that_fails_to_verify_is_skipped_not_moved(
    workdir, tmp_path, capsys):
  copy = tmp_path / 'bp'
  shutil.copytree(workdir / 'bp', copy)
  victim = next(p for p in sorted((copy / 'checkpoints' / '2').rglob('*'))
                if p.is_file() and p.name != 'manifest.json')
  victim.write_bytes(victim.read_bytes() + b'\0')
  before = snapshot(copy)
  run = artifacts.load_run(copy)
  assert run.step == 1
  assert 'checkpoint 2' in capsys.readouterr().err
  assert snapshot(copy) == before


def test_cli_mistakes_end_in_one_line(workdir, tmp_path, capsys):
  config = smoke_config()
  # An override equal to the recorded value repeats the train command and is
  # accepted; another seed would rebuild another run.
  reseeded = smoke_config()
  reseeded.seed = config.seed + 1
  empty = tmp_path / 'empty'
  empty.mkdir()
  cases = [
      (dict(workdir=str(tmp_path / 'missing'), mode='eval'), 'does not exist'),
      (dict(workdir=str(empty), mode='eval'), 'holds no trained run'),
      (dict(workdir=str(workdir), mode='eval', overrides=['seed']),
       '--config.seed: eval and export rebuild the run'),
      (dict(workdir=str(workdir), mode='export'), 'needs --out=FILE'),
      (dict(workdir=str(workdir), split='val'), '--split applies to'),
  ]
  for kwargs, message in cases:
    with pytest.raises(SystemExit) as e:
      cli.run(reseeded if kwargs.get('overrides') else config,
              config_file=CONFIG_FILE, **kwargs)
    err = capsys.readouterr().err
    assert e.value.code == 2, (kwargs, err)
    assert len(err.strip().splitlines()) == 1 and message in err, err
  assert not (tmp_path / 'missing').exists()
  assert not list(empty.iterdir())

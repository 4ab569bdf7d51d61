"""Helpers for the runner tests: config loading and fixture datasets."""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import pathlib
import shutil
import sys
import tempfile
import types

import jax
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
# configs/ is a top-level package of the repository, not of sideways_jax.
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

# The runner tests compile the same smoke models many times (and in the CLI
# subprocesses): a session-wide persistent XLA cache makes repeats ~10x
# cheaper. Set at import, before anything compiles; an existing setting wins.
if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
      prefix='sideways-jax-test-xla-cache-')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'],
                  ignore_errors=True)
jax.config.update('jax_compilation_cache_dir',
                  os.environ['JAX_COMPILATION_CACHE_DIR'])
# Smoke programs compile in about a second, around JAX's default threshold
# for caching one: cache every program, so that a test rebuilding a run
# (a resume, a CLI subprocess) reuses what an earlier test compiled.
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
jax.config.update(
    'jax_persistent_cache_min_compile_time_secs',
    float(os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS']))

CONFIG_NAMES = ('synthetic_simplecnn', 'hmdb_simplecnn', 'hmdb_vgg8',
                'ucf101_simplecnn', 'ucf101_vgg8', 'ucf101_vgg8_dropout',
                'stride_sweep', 'synthetic_temporal')


def load_config(name: str, arg: str | None = 'smoke'):
  """configs/<name>.py's get_config(arg), as --config=configs/<name>.py:arg."""
  return importlib.import_module(f'configs.{name}').get_config(arg)


def _data_fixtures() -> types.ModuleType:
  """The dataset-layout writers of tests/data/conftest.py (PyAV videos)."""
  pytest.importorskip('av')
  pytest.importorskip('cv2')
  path = REPO / 'tests' / 'data' / 'conftest.py'
  name = '_runner_data_fixtures'
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # The module may look itself up while loading.
    spec.loader.exec_module(module)
  return sys.modules[name]


@pytest.fixture(scope='session')
def dataset_roots(tmp_path_factory) -> dict[str, pathlib.Path]:
  """Tiny HMDB51 and UCF101 layouts (30-frame grey videos, 16x12)."""
  fx = _data_fixtures()
  root = tmp_path_factory.mktemp('datasets')
  # 30 frames: a smoke clip (at most 15 frames at stride 1, 11 at stride 2)
  # is all real frames, so every step contributes to the loss.
  return {'hmdb51': fx.build_hmdb51(root / 'hmdb51', num_frames=30),
          'ucf101': fx.build_ucf101(root / 'ucf101', num_frames=30)}


def smoke_config(name: str, dataset_roots=None, **overrides):
  """The :smoke config of `name`, reading fixture data for real datasets."""
  config = load_config(name, 'smoke')
  if dataset_roots is not None and config.data.name in ('hmdb51', 'ucf101'):
    config.data.root = str(dataset_roots[config.data.name])
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split('__')
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config

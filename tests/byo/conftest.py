"""Shared set-up of the bring-your-own-model tests."""

from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import sys
import tempfile

import jax

REPO = pathlib.Path(__file__).resolve().parents[2]
# configs/ and tests/byo are imported as a user's code would be: from the
# repository root.
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

# The runs here compile the same smoke models in-process and in CLI
# subprocesses: a session-wide persistent XLA cache makes repeats cheaper.
if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
      prefix='sideways-jax-test-xla-cache-')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'],
                  ignore_errors=True)
jax.config.update('jax_compilation_cache_dir',
                  os.environ['JAX_COMPILATION_CACHE_DIR'])

"""Fixtures for the engine tests."""

import jax
import pytest


@pytest.fixture(params=[False, True], ids=['eager', 'jit'])
def maybe_jit(request):
  """Wraps a function in jax.jit or leaves it alone: tests run both ways."""
  return jax.jit if request.param else (lambda f: f)

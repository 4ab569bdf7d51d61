"""The CATER-like stream's two motions (the streaming experiment's inputs)."""

import numpy as np
import pytest

from sideways_jax import data


def _video(motion, index=1):
  return data.CaterLikeStream(3, 96, 16, seed=4, motion=motion).get(
      index)['video'].astype(np.float32) / 255.0


def test_intermittent_motion_is_mostly_still_and_same_scene():
  continuous, intermittent = _video('continuous'), _video('intermittent')
  np.testing.assert_array_equal(continuous[0], intermittent[0])  # Same scene.
  change = {m: np.mean(np.square(np.diff(v, axis=0)), axis=(1, 2, 3))
            for m, v in (('continuous', continuous),
                         ('intermittent', intermittent))}
  assert (change['continuous'] > 0).all()
  still = np.mean(change['intermittent'] < 1e-7)
  assert 0.2 < still < 0.95, still  # Rests and moves both occur.
  assert change['intermittent'].mean() < 0.5 * change['continuous'].mean()
  # Deterministic.
  np.testing.assert_array_equal(intermittent, _video('intermittent'))


def test_bad_motion_is_refused():
  with pytest.raises(ValueError, match='motion'):
    data.CaterLikeStream(1, 4, 16, seed=0, motion='jerky')

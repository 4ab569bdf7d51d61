"""MovingShapes needs motion: paired classes look alike frame by frame.

Classes that differ only in the direction of motion (square_right vs
square_left, triangle_spin_cw vs triangle_spin_ccw) must be indistinguishable
from mirror-invariant appearance statistics of single frames, yet separable
from frame differences. Two cheap statistics decide it:

- appearance: per frame, colour means/stds, a luminance histogram, gradient
  energies and a row profile (all unchanged by a horizontal flip, which maps
  each class of a pair onto the other), averaged over the clip and fed to a
  ridge-regularised Fisher discriminant, scored by two-fold cross-validation;
- motion: a global affine optical-flow fit (Lucas-Kanade) between
  consecutive frames, whose mean horizontal velocity and curl give the
  direction of translation and of rotation.

A power check keeps the appearance test honest: the same discriminant must
detect a modest appearance change (pixel noise std 8 -> 15 grey levels). The
one single-frame cue of direction is the motion trail: a trail leaves a soft
edge behind a moving object and a sharp one in front, which a
(mirror-sensitive) edge-asymmetry statistic reads; without the trail it is
at chance.
"""

import functools

import numpy as np
import pytest

from sideways_jax.data.synthetic import MovingShapes
from sideways_jax.data.synthetic import moving_shapes

CLIPS_PER_CLASS = 100
FRAMES, RES = 8, 32
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@functools.cache
def _clips(name: str, seed: int = 0, **options) -> np.ndarray:
  """CLIPS_PER_CLASS clips of one class: [N, K, H, W, 3] uint8 (memoised)."""
  source = MovingShapes(CLIPS_PER_CLASS * MovingShapes.num_classes, FRAMES,
                        RES, seed, 'train', **options)
  label = moving_shapes.CLASS_NAMES.index(name)
  indices = range(label, len(source), source.num_classes)
  return np.stack([source.get(i)['video'] for i in indices])


def _appearance(clips: np.ndarray) -> np.ndarray:
  """Mirror-invariant single-frame statistics, clip-averaged: [N, F]."""
  rgb = clips.astype(np.float32) / 255.0
  luma = rgb @ _LUMA  # [N, K, H, W]
  n, k, h, w = luma.shape
  hist = np.stack([
      np.mean((luma >= lo) & (luma < lo + 0.125), axis=(2, 3))
      for lo in np.arange(8) * 0.125
  ], axis=-1)
  feats = np.concatenate([
      rgb.mean(axis=(2, 3)), rgb.std(axis=(2, 3)), hist,
      np.abs(np.diff(luma, axis=3)).mean(axis=(2, 3))[..., None],
      np.abs(np.diff(luma, axis=2)).mean(axis=(2, 3))[..., None],
      luma.reshape(n, k, 8, h // 8, w).mean(axis=(3, 4)),
  ], axis=-1)
  return feats.mean(axis=1)


def _affine_flow(clips: np.ndarray) -> np.ndarray:
  """Mean (u, v, curl) of a global affine flow fit per clip: [N, 3]."""
  luma = clips.astype(np.float32) / 255.0 @ _LUMA
  mid = 0.5 * (luma[:, 1:] + luma[:, :-1])
  it = luma[:, 1:] - luma[:, :-1]
  gy, gx = np.gradient(mid, axis=(2, 3))
  h, w = luma.shape[2:]
  y, x = np.mgrid[0:h, 0:w].astype(np.float32)
  x, y = (x - w / 2) / w, (y - h / 2) / h
  # Flow (a + b x + c y, d + e x + f y); brightness constancy is linear in it.
  basis = np.stack([gx, gx * x, gx * y, gy, gy * x, gy * y], axis=-1)
  lhs = np.einsum('nkhwi,nkhwj->nkij', basis, basis)
  rhs = -np.einsum('nkhwi,nkhw->nki', basis, it)
  p = np.linalg.solve(lhs + 1e-6 * np.eye(6), rhs[..., None])[..., 0]
  return np.stack([p[..., 0], p[..., 3], p[..., 4] - p[..., 2]],
                  axis=-1).mean(axis=1)


def _edge_asymmetry(clips: np.ndarray) -> np.ndarray:
  """Sharp falling minus sharp rising horizontal edges, per clip: [N]."""
  gx = np.diff(clips.astype(np.float32) / 255.0 @ _LUMA, axis=3)
  rising, falling = np.maximum(gx, 0.0), np.maximum(-gx, 0.0)
  return (falling ** 2 - rising ** 2).mean(axis=(1, 2, 3))


def _fisher_accuracy(a: np.ndarray, b: np.ndarray) -> float:
  """Two-fold held-out accuracy of a ridge Fisher discriminant."""
  halves = [(slice(None, len(a) // 2), slice(len(a) // 2, None)),
            (slice(len(a) // 2, None), slice(None, len(a) // 2))]
  accuracies = []
  for fit, held in halves:
    train = np.concatenate([a[fit], b[fit]])
    mu, sd = train.mean(0), train.std(0) + 1e-8
    za, zb = (a - mu) / sd, (b - mu) / sd
    ma, mb = za[fit].mean(0), zb[fit].mean(0)
    centred = np.concatenate([za[fit] - ma, zb[fit] - mb])
    cov = centred.T @ centred / len(centred) + np.eye(a.shape[1])
    w = np.linalg.solve(cov, ma - mb)
    threshold = w @ (ma + mb) / 2
    correct = (np.sum(za[held] @ w > threshold)
               + np.sum(zb[held] @ w <= threshold))
    accuracies.append(correct / (len(za[held]) + len(zb[held])))
  return float(np.mean(accuracies))


PAIRS = [('square_right', 'square_left'), ('triangle_right', 'triangle_left'),
         ('square_spin_cw', 'square_spin_ccw'),
         ('triangle_spin_cw', 'triangle_spin_ccw')]


@pytest.mark.parametrize('pair', PAIRS)
def test_paired_classes_match_in_single_frame_appearance(pair):
  a, b = (_appearance(_clips(name)) for name in pair)
  # Chance is 0.5; 0.65 is four standard errors above it (200 held-out
  # clip predictions over the two folds).
  assert _fisher_accuracy(a, b) < 0.65


def test_appearance_statistic_detects_a_modest_change():
  default_noise = MovingShapes(1, 1, 8, 0, 'train').noise
  a = _appearance(_clips('square_left'))
  b = _appearance(_clips('square_left', seed=1, noise=2.0 * default_noise))
  assert _fisher_accuracy(a, b) > 0.9


@pytest.mark.parametrize('pair', PAIRS[:2])
def test_translation_direction_read_from_frame_differences(pair):
  right, left = (_affine_flow(_clips(name)) for name in pair)
  accuracy = (np.mean(right[:, 0] > 0) + np.mean(left[:, 0] < 0)) / 2
  assert accuracy > 0.95


@pytest.mark.parametrize('pair', PAIRS[2:])
def test_spin_direction_read_from_frame_differences(pair):
  cw, ccw = (_affine_flow(_clips(name)) for name in pair)
  # Screen coordinates (y down): clockwise is positive curl.
  accuracy = (np.mean(cw[:, 2] > 0) + np.mean(ccw[:, 2] < 0)) / 2
  assert accuracy > 0.9


@pytest.mark.parametrize('trail', [None, 0.0])
def test_trail_is_the_single_frame_cue_of_direction(trail):
  options = {} if trail is None else {'trail': trail}
  right = _edge_asymmetry(_clips('square_right', **options))
  left = _edge_asymmetry(_clips('square_left', **options))
  # Bright objects: a right-mover's sharp edge is its right, falling edge.
  accuracy = (np.mean(right > 0) + np.mean(left < 0)) / 2
  if trail is None:
    assert accuracy > 0.85
  else:
    assert 0.35 < accuracy < 0.65

"""Temporal indices, padding, crops and normalisation against hand-written values."""

import jax.numpy as jnp
import numpy as np
import pytest

from sideways_jax.data.normalize import normalize_video
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.sampling import clip_frame_indices
from sideways_jax.data.sampling import crop_box
from sideways_jax.data.sampling import crop_resize
from sideways_jax.data.sampling import sample_clip
from sideways_jax.data.source import VideoReadError


@pytest.mark.parametrize('num_frames, k, s, indices, mask', [
    # N=20, K=4, s=2: window 7, slack 13, centred start 6.
    (20, 4, 2, [6, 8, 10, 12], [1, 1, 1, 1]),
    # Window exactly the video.
    (10, 4, 3, [0, 3, 6, 9], [1, 1, 1, 1]),
    # Short video: stride kept, last real frame repeated, mask False.
    (7, 4, 3, [0, 3, 6, 6], [1, 1, 1, 0]),
    (3, 5, 1, [0, 1, 2, 2, 2], [1, 1, 1, 0, 0]),
    (1, 3, 6, [0, 0, 0], [1, 0, 0]),
    # Odd slack rounds the centred start down: N=12, W=9, slack 3 -> 1.
    (12, 3, 4, [1, 5, 9], [1, 1, 1]),
    (5, 1, 4, [2], [1]),
])
def test_eval_indices_match_hand_written(num_frames, k, s, indices, mask):
  got, got_mask = clip_frame_indices(num_frames, k, s, train=False)
  np.testing.assert_array_equal(got, indices)
  np.testing.assert_array_equal(got_mask, np.array(mask, bool))


def test_train_start_is_uniform_over_all_offsets():
  starts = set()
  for seed in range(200):
    got, mask = clip_frame_indices(20, 4, 2, train=True,
                                   rng=np.random.default_rng(seed))
    assert mask.all()
    np.testing.assert_array_equal(np.diff(got), [2, 2, 2])
    starts.add(int(got[0]))
  assert starts == set(range(14))  # slack 13: starts 0..13, each reachable


def test_train_short_video_pads_like_eval():
  got, mask = clip_frame_indices(7, 4, 3, train=True,
                                 rng=np.random.default_rng(0))
  np.testing.assert_array_equal(got, [0, 3, 6, 6])
  np.testing.assert_array_equal(mask, [True, True, True, False])


def test_train_without_rng_is_an_error():
  with pytest.raises(ValueError, match='rng'):
    clip_frame_indices(20, 4, 2, train=True)


def test_clip_spec_validates_and_reports_window():
  assert ClipSpec(clip_length=64, stride=3, resolution=112,
                  train=True).window == 190
  for bad in (dict(clip_length=0), dict(stride=0), dict(resolution=0),
              dict(crop_fraction=0.0), dict(crop_fraction=1.5)):
    kwargs = dict(clip_length=4, stride=1, resolution=8, train=True) | bad
    with pytest.raises(ValueError):
      ClipSpec(**kwargs)


def test_crop_box_centre_and_random_range():
  # short side 12 * 0.875 = 10.5 -> 10 (round half to even); centred.
  assert crop_box(12, 16, 0.875, train=False) == (1, 3, 10)
  assert crop_box(240, 320, 1.0, train=False) == (0, 40, 240)
  boxes = {crop_box(12, 16, 0.5, train=True, rng=np.random.default_rng(i))
           for i in range(300)}
  assert {b[2] for b in boxes} == {6}
  assert {b[0] for b in boxes} == set(range(7))
  assert {b[1] for b in boxes} == set(range(11))


def _reader(num_real, log):
  """Fake reader: frame i is a ramp along x (so flips show) offset by 10*i."""
  def read(indices):
    log.append(list(indices))
    x = np.arange(16, dtype=np.uint8)
    frames = [np.broadcast_to((x + 10 * i)[None, :, None], (12, 16, 3))
              for i in indices if i < num_real]
    if not frames:
      raise VideoReadError('fake.avi', 'no decodable frame')
    return np.stack(frames).astype(np.uint8)
  return read


def test_sample_clip_pads_with_last_frame_and_reads_only_needed_frames():
  spec = ClipSpec(clip_length=4, stride=3, resolution=12, train=False,
                  crop_fraction=1.0)
  log = []
  clip = sample_clip(7, _reader(7, log), spec, np.random.default_rng(0),
                     bgr=False)
  assert log == [[0, 3, 6]]  # each needed frame once, padding not re-read
  assert not clip['truncated']
  np.testing.assert_array_equal(clip['mask'], [True, True, True, False])
  assert clip['video'].shape == (4, 12, 12, 3) and clip['video'].dtype == np.uint8
  # Centre crop of 12 columns out of 16 starts at x=2: pixel = x + 10*i.
  np.testing.assert_array_equal(clip['video'][:, 0, 0, 0], [2, 32, 62, 62])


def test_sample_clip_truncated_video_masks_the_missing_tail():
  spec = ClipSpec(clip_length=4, stride=2, resolution=12, train=False,
                  crop_fraction=1.0)
  # Header says 8 frames, only 3 decode.
  clip = sample_clip(8, _reader(3, []), spec, np.random.default_rng(0),
                     bgr=False)
  assert clip['truncated']
  np.testing.assert_array_equal(clip['mask'], [True, True, False, False])
  np.testing.assert_array_equal(clip['video'][:, 0, 0, 0], [2, 22, 22, 22])


@pytest.mark.parametrize('seed', range(6))
def test_truncated_video_is_sampled_as_the_video_of_what_decodes(seed):
  # Header 30 frames, 20 decode: random windows past frame 19 read nothing
  # (VideoReadError) or too little; the clip is then the one a 20-frame
  # video gives with the same generator, never a skip.
  spec = ClipSpec(clip_length=3, stride=2, resolution=6, train=True)
  got = sample_clip(30, _reader(20, []), spec, np.random.default_rng(seed),
                    bgr=True)
  plain = sample_clip(30, _reader(30, []), spec,
                      np.random.default_rng(seed), bgr=True)
  assert bool(got['truncated']) == (seed != 1)  # Seed 1 starts at frame 12.
  if got['truncated']:
    short = sample_clip(20, _reader(20, []), spec,
                        np.random.default_rng(seed), bgr=True)
    np.testing.assert_array_equal(got['video'], short['video'])
  else:
    np.testing.assert_array_equal(got['video'], plain['video'])
  with pytest.raises(VideoReadError):
    sample_clip(30, _reader(0, []), spec, np.random.default_rng(seed),
                bgr=True)


def test_sample_clip_converts_bgr_and_flips_only_in_training():
  eval_spec = ClipSpec(clip_length=1, stride=1, resolution=12, train=False,
                       crop_fraction=1.0)

  def read(indices):
    frame = np.zeros((1, 12, 12, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    frame[:, :, 0, 1] = 50  # left column green
    return frame

  clip = sample_clip(1, read, eval_spec, np.random.default_rng(0), bgr=True)
  assert clip['video'][0, 0, 5, 2] == 200 and clip['video'][0, 0, 5, 0] == 0
  assert clip['video'][0, 0, 0, 1] == 50
  train_spec = ClipSpec(clip_length=1, stride=1, resolution=12, train=True,
                        crop_fraction=1.0)
  flipped = {bool(sample_clip(1, read, train_spec, np.random.default_rng(s),
                              bgr=True)['video'][0, 0, -1, 1] == 50)
             for s in range(20)}
  assert flipped == {True, False}


@pytest.mark.parametrize('side, resolution', [(210, 112), (210, 64),
                                              (240, 64), (50, 64)])
def test_crop_resize_keeps_flat_regions_flat(side, resolution):
  frames = np.zeros((2, 240, 320, 3), np.uint8)
  frames[0] = 90
  frames[1, :, :160] = 30  # left half dark, right half bright
  frames[1, :, 160:] = 200
  left = (320 - side) // 2
  out = crop_resize(frames, ((240 - side) // 2, left, side), resolution)
  assert out.shape == (2, resolution, resolution, 3)
  np.testing.assert_array_equal(out[0], 90)
  # The edge of the right half stays in the middle of the output.
  row = out[1, resolution // 2, :, 0].astype(int)
  assert row[0] == 30 and row[-1] == 200
  assert abs(int(np.argmax(row > 115)) - resolution * (160 - left) / side) <= 2


def test_sample_clip_is_a_function_of_the_rng():
  spec = ClipSpec(clip_length=3, stride=2, resolution=6, train=True)
  a = sample_clip(30, _reader(30, []), spec, np.random.default_rng(7), bgr=True)
  b = sample_clip(30, _reader(30, []), spec, np.random.default_rng(7), bgr=True)
  np.testing.assert_array_equal(a['video'], b['video'])


def test_normalize_video():
  video = jnp.array([[0, 51, 255]], jnp.uint8).reshape(1, 1, 1, 3)
  np.testing.assert_allclose(normalize_video(video).ravel(), [0.0, 0.2, 1.0])
  out = normalize_video(video, mean=[0.5, 0.5, 0.5], std=0.5)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out.ravel(), [-1.0, -0.6, 1.0], rtol=1e-6)
  with pytest.raises(TypeError, match='uint8'):
    normalize_video(video.astype(jnp.float32))

"""The TFDS ucf101 source, without TensorFlow.

TFDS's mock data needs TensorFlow (the ucf101 builder imports it), which is
not installed for CI; the source is tested here on an injected data source
shaped like TFDS's ({'video': encoded frames or a uint8 array, 'label'}).
"""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.source import VideoReadError
from sideways_jax.data.tfds_ucf101 import TfdsUcf101Source
from sideways_jax.data.tfds_ucf101 import open_tfds_ucf101
from sideways_jax.data.tfds_ucf101 import tfds_config_name

SPEC = ClipSpec(clip_length=3, stride=2, resolution=8, train=False,
                crop_fraction=1.0)


def _frames(n):
  """RGB frames whose red channel is 10 * index, green 7."""
  frames = np.zeros((n, 8, 8, 3), np.uint8)
  frames[..., 0] = (10 * np.arange(n))[:, None, None]
  frames[..., 1] = 7
  return frames


def _png(frame_rgb):
  ok, data = cv2.imencode('.png', frame_rgb[..., ::-1])
  assert ok
  return data.tobytes()


def test_encoded_frames_are_decoded_per_clip():
  records = [{'video': [_png(f) for f in _frames(9)], 'label': 5}]
  source = TfdsUcf101Source(split='train', fold=1, spec=SPEC,
                            data_source=records)
  assert len(source) == 1 and source.num_classes == 101
  example = source.get(0, np.random.default_rng(0))
  # 9 frames, window 5: centred start 2 -> frames 2, 4, 6; RGB preserved.
  np.testing.assert_array_equal(example['video'][:, 0, 0, 0], [20, 40, 60])
  np.testing.assert_array_equal(example['video'][:, 0, 0, 1], [7, 7, 7])
  assert int(example['label']) == 5 and example['mask'].all()


def test_decoded_array_frames_and_padding():
  records = [{'video': _frames(3), 'label': np.int64(2)}]
  source = TfdsUcf101Source(split='test', fold=1, spec=SPEC,
                            data_source=records, class_names=['a', 'b', 'c'])
  assert source.num_classes == 3
  example = source.get(0, np.random.default_rng(0))
  np.testing.assert_array_equal(example['video'][:, 0, 0, 0], [0, 20, 20])
  np.testing.assert_array_equal(example['mask'], [True, True, False])


def test_undecodable_frames_raise_video_read_error():
  records = [{'video': [b'not an image'] * 4, 'label': 0}]
  source = TfdsUcf101Source(split='train', fold=1, spec=SPEC,
                            data_source=records)
  with pytest.raises(VideoReadError):
    source.get(0, np.random.default_rng(0))


def test_config_names():
  assert tfds_config_name(1) == 'ucf101_1_256'
  assert tfds_config_name(3) == 'ucf101_3'
  with pytest.raises(ValueError):
    tfds_config_name(0)


def test_opening_without_tfds_says_what_to_install():
  try:
    import tensorflow_datasets  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    with pytest.raises(ImportError, match=r'sideways-jax\[tfds\]'):
      open_tfds_ucf101(split='train', fold=1, data_dir=None)
  else:
    pytest.skip('tensorflow_datasets is installed')


def test_importing_the_data_package_does_not_import_tensorflow():
  code = ('import sys, sideways_jax.data; '
          'bad = [m for m in ("tensorflow", "tensorflow_datasets") '
          'if m in sys.modules]; print(bad); sys.exit(bool(bad))')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stdout + result.stderr

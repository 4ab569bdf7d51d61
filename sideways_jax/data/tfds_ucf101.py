"""UCF101 from TensorFlow Datasets (optional extra `tfds`).

For users who already have TFDS's `ucf101` prepared. Random access needs
the ArrayRecord file format:

    tfds build ucf101 --config=ucf101_1_256 --file_format=array_record

TFDS (and TensorFlow, which its `ucf101` builder needs) is imported only
when this source is built without an injected `data_source`. Frames are
left encoded (tfds.decode.SkipDecoding) and only the clip's frames are
decoded, with OpenCV. Labels are TFDS's, 0-based in classInd order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.sampling import sample_clip
from sideways_jax.data.source import Example
from sideways_jax.data.source import VideoReadError
from sideways_jax.data.video import require_cv2

NUM_CLASSES = 101
_INSTALL = ('the tfds_ucf101 source needs TensorFlow Datasets and TensorFlow: '
            'pip install "sideways-jax[tfds]" (tensorflow-datasets, '
            'tensorflow-cpu, array-record)')


def tfds_config_name(fold: int) -> str:
  """TFDS config for a fold: fold 1 at 256x256 (the default), else full size."""
  if fold not in (1, 2, 3):
    raise ValueError(f'UCF101 fold must be 1, 2 or 3, got {fold}')
  return 'ucf101_1_256' if fold == 1 else f'ucf101_{fold}'


def open_tfds_ucf101(*, split: str, fold: int,
                     data_dir: str | os.PathLike[str] | None,
                     config: str | None = None) -> tuple[Sequence[Any], list[str]]:
  """Opens TFDS's prepared ucf101 as a random-access data source.

  Returns:
    (data source of {'video': encoded frames, 'label': int}, class names).
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(_INSTALL) from e
  name = f'ucf101/{config or tfds_config_name(fold)}'
  data_dir = None if data_dir is None else os.fspath(data_dir)
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(
        f'TFDS dataset {name} is not prepared in {builder.data_dir}: run\n'
        f'  tfds build ucf101 --config={name.split("/")[1]} '
        f'--file_format=array_record' +
        (f' --data_dir={data_dir}' if data_dir else ''))
  try:
    source = builder.as_data_source(
        split=split, decoders={'video': tfds.decode.SkipDecoding()})
  except (NotImplementedError, ValueError) as e:
    raise ValueError(
        f'TFDS {name} cannot be read with random access ({e}); rebuild it '
        'with --file_format=array_record') from e
  return source, list(builder.info.features['label'].names)


class TfdsUcf101Source:
  """ClipSource over TFDS's ucf101.

  Attributes:
    num_classes: 101 (or as many as the injected class names).
    class_names: label names.
  """

  def __init__(self, *, split: str, fold: int, spec: ClipSpec,
               data_dir: str | os.PathLike[str] | None = None,
               config: str | None = None,
               data_source: Sequence[Any] | None = None,
               class_names: Sequence[str] | None = None):
    """Builds the source.

    Args:
      split: 'train' or 'test' (any TFDS split string works).
      fold: 1, 2 or 3 (picks the TFDS config).
      spec: how clips are cut.
      data_dir: TFDS data dir (default: TFDS's own default).
      config: TFDS config name, overriding the one picked from `fold`.
      data_source: an already-open random-access source of
        {'video': frames, 'label': int}; tests inject one to avoid TF.
        Frames may be encoded images (bytes) or a uint8 [T, H, W, 3] array.
      class_names: names for an injected source.
    """
    if data_source is None:
      data_source, class_names = open_tfds_ucf101(
          split=split, fold=fold, data_dir=data_dir, config=config)
    self._data = data_source
    self.class_names = tuple(class_names or ())
    self.num_classes = len(self.class_names) or NUM_CLASSES
    self.spec = spec
    self.name = f'tfds_ucf101/{split}{fold}'

  def __len__(self) -> int:
    return len(self._data)

  @property
  def deterministic(self) -> bool:
    """Evaluation clips ignore the rng (centred window, no crop or flip)."""
    return not self.spec.train

  def get(self, index: int, rng: np.random.Generator) -> Example:
    """Samples one clip; raises VideoReadError for undecodable frames."""
    record = self._data[index]
    frames = record['video']
    where = f'{self.name}[{index}]'
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
      if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoReadError(where, f'bad frame array {frames.shape}')
      example = sample_clip(frames.shape[0], lambda i: frames[np.asarray(i)],
                            self.spec, rng, bgr=False)
    else:
      if len(frames) == 0:
        raise VideoReadError(where, 'no frame')
      example = sample_clip(len(frames),
                            lambda i: _decode_frames(frames, i, where),
                            self.spec, rng, bgr=True)
    example['label'] = np.asarray(int(record['label']), np.int32)
    return example


def _decode_frames(encoded: Sequence[bytes], indices: Sequence[int],
                   where: str) -> np.ndarray:
  """Decodes the encoded images at `indices` to BGR, stopping at a bad one."""
  cv2 = require_cv2()
  frames = []
  for i in indices:
    data = encoded[int(i)]
    buffer = np.frombuffer(bytes(data), np.uint8)
    frame = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if frame is None:
      break
    frames.append(frame)
  if not frames:
    raise VideoReadError(where, 'frames cannot be decoded')
  return np.stack(frames)

"""Streaming auto-encoding on CATER (paper §4.4, Table 3): BP vs Sideways.

  python experiments/main.py --config=configs/cater_autoencoder.py

One frame arrives per computation step; Sideways takes every frame and
updates after every step, BP is blocked 2D-2 steps per frame and holds its
output. Needs CATER's pre-rendered videos under data/cater (see
`bash data/prepare_cater.sh`); only the frames are used. The paper gives no
resolution, batch or optimizer for this task: the values below are ours
(marked), sized for a GPU. `configs/synthetic_autoencoder.py` is the same
experiment on the shipped CATER-like stream, sized for 2 CPU cores.
"""

import ml_collections
from ml_collections import config_dict

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = common.parse_arg(arg)
  c = ml_collections.ConfigDict()
  # Read by experiments/main.py to hand the config to the streaming runner.
  c.runner = 'streaming'
  c.seed = 0  # Same initial weights and stream for both algorithms.
  # Both algorithms on the same stream, reported side by side (Table 3);
  # --config.compare=False trains only config.algorithm.
  c.algorithm = 'sideways'
  c.compare = True
  # Paper: the loss at step t compares the top output with the frame of
  # step t ('origin': with the frame the output came from, t-D+1).
  c.target_alignment = 'current'
  _variants(c)
  _model(c)
  _data(c)
  c.batch_size = 8  # Streams played side by side (paper: batches of 8).
  c.eval_batch_size = 8
  # Frames in the training stream, one per computation step (BP takes one
  # in 2D-1 of them), a multiple of data.clip_length.
  c.stream_frames = 100_000  # Ours: ~2 passes over CATER's training videos.
  c.max_eval_batches = 0  # 0: every held-out video.
  _optimizer(c)
  c.log_every = 50  # Video batches between progress lines.
  # The stream's smoothness: a larger temporal stride makes consecutive
  # frames differ more. Each value trains both algorithms once.
  c.sweep = ml_collections.ConfigDict()
  c.sweep.field = 'data.stride'  # Dotted key; '' for no sweep.
  c.sweep.choices = (1, 2, 3)
  if 'smoke' in options:
    shrink_for_smoke(c)
  c.lock()
  return c


def _variants(c: ml_collections.ConfigDict) -> None:
  """The rows compared with plain Sideways, one change each."""
  # Corrections for the staleness of Sideways' per-step pseudo-gradients
  # (sideways_jax/streaming/staleness.py). The switches apply to the
  # 'sideways' row and are off (the paper's plain Sideways); with compare,
  # every correction in `compare` is also run alone as a row
  # 'sideways_<fix>'.
  c.staleness = ml_collections.ConfigDict()
  c.staleness.delay_lr = False  # PipeMare: stage rate x delay^-p.
  c.staleness.spike_compensation = False  # Kosson et al., for Adam.
  c.staleness.compare = ('delay_lr', 'spike_compensation')
  c.staleness.delay_lr_settings = ml_collections.ConfigDict()
  c.staleness.delay_lr_settings.power = 1.0  # p at the start.
  c.staleness.delay_lr_settings.anneal_steps = 1000  # p -> 0 (0: never).
  # With compare, Sideways also runs with each of these algorithm options
  # (sideways_jax/algorithms.py), as a row 'sideways_<name>': the loss
  # against the frame the output came from, the objective of score (b).
  c.option_rows = ml_collections.ConfigDict(
      {'origin_target': {'target_alignment': 'origin'}})
  # Cosine between each stage's pseudo-gradient and the exact gradient,
  # measured after training on the first `frames` frames of `streams`
  # held-out videos of the first eval batch (0 streams: off).
  c.diagnostic = ml_collections.ConfigDict()
  c.diagnostic.streams = 2
  c.diagnostic.frames = 32


def _model(c: ml_collections.ConfigDict) -> None:
  c.model = ml_collections.ConfigDict()
  c.model.name = 'conv_autoencoder'  # Or 'my_pkg.my_module:build'.
  c.model.num_stages = 6  # Paper §4.2: 5 encoder stages + the decoder.
  c.model.kwargs = ml_collections.ConfigDict()  # Builder arguments.
  c.model.kwargs.channels = (32, 64, 64, 128, 256)  # Simple-CNN's encoder.
  c.model.kwargs.output_activation = 'sigmoid'  # Frames scored in [0, 1].


def _data(c: ml_collections.ConfigDict) -> None:
  c.data = ml_collections.ConfigDict()
  c.data.name = 'cater'
  c.data.root = config_dict.placeholder(str)  # None: data/cater.
  c.data.train_split = 'train'  # CATER's own lists (first task folder).
  c.data.eval_split = 'val'
  # Ours: 100 frames at native rate; the stride sweep reads up to 298 of
  # CATER's 300 frames, so no video is padded.
  c.data.clip_length = 100
  c.data.stride = 1
  c.data.resolution = 64  # Ours: CATER's scenes stay legible at 64x64.
  c.data.kwargs = ml_collections.ConfigDict()  # Both splits' make_source.
  c.data.kwargs.crop_fraction = 1.0  # Keep the whole height of the scene.
  c.data.train_kwargs = ml_collections.ConfigDict()
  c.data.eval_kwargs = ml_collections.ConfigDict()
  c.data.cache = False  # Real videos are re-read for each algorithm.
  c.data.num_threads = 2
  c.data.prefetch = 2


def _optimizer(c: ml_collections.ConfigDict) -> None:
  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adam'  # Paper silent; Adam as in its other tasks.
  # One rate per row (ours, untuned on CATER): BP updates once per 2D-1
  # steps with exact gradients, Sideways every step with delayed ones.
  # Choose them on data.eval_split='val', never on a test split.
  c.optimizer.row_learning_rates = ml_collections.ConfigDict(
      {'bp': 1e-4, 'sideways': 1e-4, 'sideways_delay_lr': 1e-4,
       'sideways_spike_compensation': 1e-4, 'sideways_origin_target': 1e-4})
  c.optimizer.kwargs = ml_collections.ConfigDict()  # More optax arguments.


def shrink_for_smoke(c: ml_collections.ConfigDict) -> None:
  """A run of a few tiny videos that exercises every part of the runner."""
  c.model.kwargs.channels = (4, 4, 4, 4, 4)
  c.data.clip_length = 2 * c.model.num_stages + 1  # Just past 2D-1.
  c.data.resolution = 16
  c.data.num_threads = 1
  c.data.prefetch = 1
  c.batch_size = 2
  c.eval_batch_size = 2
  c.stream_frames = 2 * c.data.clip_length  # Two video batches.
  c.max_eval_batches = 1
  c.staleness.delay_lr_settings.anneal_steps = 10
  c.diagnostic.frames = c.data.clip_length
  c.log_every = 1
  c.sweep.choices = c.sweep.choices[:2]

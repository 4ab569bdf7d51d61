"""Streaming auto-encoding on the shipped CATER-like stream, on 2 CPU cores.

  python experiments/main.py --config=configs/synthetic_autoencoder.py
  python experiments/main.py --config=configs/synthetic_autoencoder.py:speed

The CATER experiment (configs/cater_autoencoder.py) scaled down: 32x32
frames, a half-width auto-encoder and 4 streams of 64-frame videos, every
training video streamed once. Two streams (the sweep of data.kwargs.motion):
'continuous' (every object always glides) and 'intermittent' (objects rest
and move in turns, most of the scene still, as in CATER's videos). On each:
BP, Sideways and Sideways with each staleness correction, held-out MSE on
both scores with the lag floors (results.md). `:speed` sweeps the
continuous stream's speed instead (BP and Sideways only).

Hyper-parameters were chosen on the 'val' split
(--config.data.eval_split=val); the numbers reported are on 'test'.

Measured here (held-out 'test', 32 videos; 3 min 38 s wall on 2 idle
cores): BP / Sideways on
score (b), each frame against its own reconstruction, is 1.35x continuous
and 1.57x intermittent (1.73x / 1.75x with target 'origin'); on score (a)
1.24x / 1.49x. The issue's 3x is not reached: on the continuous stream BP's
score (b) cannot fall below its lag floor (0.0107: five held-out frames in
six are never processed and are charged the held output), so 3x needs a
Sideways reconstruction error of 0.0036, and the best one reached in 3072
steps is 0.0061. On the intermittent stream BP's floor is only 0.0018 and
its error (0.0102) is its own reconstruction, learnt from 288 frames.
Neither staleness correction helped on 'test': the delay-scaled rate lifts
the bottom stage's gradient cosine on the continuous stream (0.09 -> 0.27;
not on the intermittent one, 0.23 -> -0.33) but learns more slowly; spike
compensation does not raise the cosines. The cosines are means over 2
held-out streams of 32 steps (22 with a gradient for the bottom stage): a
small sample.
"""

import ml_collections

from configs import cater_autoencoder
from configs import common

ARGS = ('smoke', 'speed')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = common.parse_arg(arg, ARGS)
  c = cater_autoencoder.get_config()
  c.unlock()  # The synthetic source takes other make_source arguments.
  c.model.kwargs.channels = (16, 32, 32, 64, 128)  # Half width.
  c.data.name = 'cater_like'
  c.data.train_split = 'train'  # Synthetic splits differ by their seed.
  c.data.eval_split = 'test'  # Held out; hyper-parameters: use 'val'.
  c.data.clip_length = 64
  c.data.resolution = 32
  c.data.kwargs = ml_collections.ConfigDict()
  c.data.kwargs.speed = 0.02  # Mean travel per (moving) frame, frame widths.
  c.data.kwargs.num_objects = 5
  c.data.kwargs.motion = 'continuous'
  c.data.cache = True  # Rendered once, streamed to every row.
  c.data.num_threads = 1
  c.batch_size = 4
  c.eval_batch_size = 8
  c.num_train_steps = 3072  # 48 video batches of 64 frames.
  # Every training video is streamed once (follows overrides of either).
  c.data.train_kwargs.num_videos = c.get_ref('batch_size') * (
      c.get_ref('num_train_steps') // c.data.get_ref('clip_length'))
  c.data.eval_kwargs.num_videos = 32  # Held-out: the 'test' seed.
  # Per row, chosen on the 'val' split (16 videos, continuous stream at
  # speed 0.02; held-out MSE (a) / (b)): BP 3e-4 (0.0099) beat 1e-3 (0.0109);
  # Sideways 3e-4 (0.0082 / 0.0075) beat 1e-4 and 1e-3 (plateaus); with the
  # delay-scaled rate 1e-3 (0.0087 / 0.0082) beat 3e-4 (0.0089 / 0.0083),
  # and power 1 beat 0.5 (0.0100 / 0.0097); with spike compensation 3e-4
  # (0.0082 / 0.0076) beat 1e-3 (0.0090 / 0.0086); target 'origin': 3e-4
  # (0.0085 / 0.0059), the only rate tried.
  c.optimizer.learning_rate.bp = 3e-4
  c.optimizer.learning_rate.sideways = 3e-4
  c.optimizer.learning_rate.sideways_delay_lr = 1e-3
  c.optimizer.learning_rate.sideways_spike_compensation = 3e-4
  c.optimizer.learning_rate.sideways_origin_target = 3e-4
  c.staleness.delay_lr_settings.anneal_steps = 1000  # A third of the run.
  c.log_every = 16
  c.sweep.field = 'data.kwargs.motion'
  c.sweep.choices = ('continuous', 'intermittent')
  if 'speed' in options:
    c.staleness.compare = ()
    c.sweep.field = 'data.kwargs.speed'
    c.sweep.choices = (0.0, 0.005, 0.01, 0.02, 0.04)
  if 'smoke' in options:
    cater_autoencoder.shrink_for_smoke(c)
    c.data.eval_kwargs.num_videos = 2
  c.lock()
  return c

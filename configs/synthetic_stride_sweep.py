"""Temporal stride sweep 2..6 on shipped textured-object videos (Fig. 5).

  python experiments/main.py --config=configs/synthetic_stride_sweep.py

The main job's model and data, BP and Sideways from the same weights and
batches at every stride, into <workdir>/stride=<s>/<algorithm>, then one
accuracy/loss curve per stride for each algorithm
(plots/stride_sweep.png). The clip stays K = 24 frames; stride s shows
every s-th frame of the video, so motion between the frames a stage sees
grows s-fold: the smoothness Sideways relies on degrades. Sized for ~15
minutes on 2 CPU cores (10 runs, shorter than the main job's).
"""

from configs import synthetic_simplecnn


def get_config(arg: str | None = None):
  c = synthetic_simplecnn.get_config(arg)
  c.sweep.field = 'data.stride'
  c.sweep.choices = (2, 3, 4, 5, 6)  # Paper Fig. 5.
  if c.num_train_steps > 2:  # Not for :smoke.
    c.num_train_steps = 500  # 10 runs must fit in ~15 minutes here.
    c.data.train_kwargs.num_videos = 1000
    c.data.eval_kwargs.num_videos = 300
    c.eval_every = 100
    c.checkpoint_every = 500
  return c

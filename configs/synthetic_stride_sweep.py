"""Temporal stride sweep 2..6 on shipped textured-object videos (Fig. 5).

  python experiments/main.py --config=configs/synthetic_stride_sweep.py

The main job's model and data, BP and Sideways from the same weights and
batches at every stride, into <workdir>/stride=<s>/<algorithm>, then one
accuracy/loss curve per stride for each algorithm
(plots/stride_sweep.png). The clip stays K = 24 frames; stride s shows
every s-th frame of the video, so motion between the frames a stage sees
grows s-fold: the smoothness Sideways relies on degrades. 10 min 05 s on
2 idle CPU cores (10 runs of 1000 steps). Measured eval video accuracy at
strides 2-6: BP 93.0, 91.3, 93.7, 93.3, 94.0%; Sideways 81.7, 84.3, 82.3,
74.0, 71.0% (paper Fig. 5: Sideways degrades with the stride, BP does not).
"""

from configs import synthetic_simplecnn


def get_config(arg: str | None = None):
  c = synthetic_simplecnn.get_config(arg)
  c.sweep.field = 'data.stride'
  c.sweep.choices = (2, 3, 4, 5, 6)  # Paper Fig. 5.
  if c.num_train_steps > 2:  # Not for :smoke.
    # 10 runs in < 15 minutes here; by step 1000 the main job is past 92%.
    c.num_train_steps = 1000
    c.data.eval_kwargs.num_videos = 300
    c.checkpoint_every = 500
    c.eval_every = 200
  return c

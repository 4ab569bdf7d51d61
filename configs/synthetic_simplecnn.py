"""The main job: Simple-CNN on synthetic moving shapes, BP vs Sideways.

  python experiments/main.py --config=configs/synthetic_simplecnn.py

Trains and evaluates both algorithms on the shipped moving-shapes set
(10 classes of shape x motion, rendered on the fly, nothing to download) and
prints a comparison table; sized to finish in under 10 minutes on 2 CPU
cores. The paper's Simple-CNN (6 stages) and clip layout, scaled down:
32x32 frames, 12-frame clips (Sideways with 6 stages needs K >= 2D-1 = 11)
and half the channel widths.
"""

from configs import common


def get_config(arg: str | None = None):
  options = common.parse_arg(arg)
  c = common.base_config()
  # Half the paper's widths: 2.7x cheaper steps on CPU, so twice as many
  # steps fit in the time budget (measured: more steps beat width here).
  c.model.kwargs.channels = (16, 32, 32, 64, 128)
  c.compare = True  # The main job prints the BP-vs-Sideways table.
  c.data.name = 'moving_shapes'
  c.data.train_split = 'train'
  c.data.eval_split = 'test'
  c.data.clip_length = 12  # Just above Sideways' minimum of 11 frames.
  c.data.resolution = 32  # With half widths: ~7 steps/s on 2 CPU cores.
  c.data.train_kwargs.num_videos = 2000  # Rendered once, then cached.
  c.data.eval_kwargs.num_videos = 400
  c.data.cache = True
  c.data.num_threads = 1  # Rendering is cached: one thread is enough.
  c.bp_mode = 'scanned'  # Faster on CPU (0.26 vs 0.37 s of CPU per step).
  c.batch_size = 8  # Paper Table 2's batch.
  c.eval_batch_size = 50
  c.num_train_steps = 1200  # About 3-4 minutes per algorithm here.
  # A short run needs a larger step than the paper's 1e-5 (which is tuned
  # for 10^5 iterations on real video).
  c.optimizer.learning_rate = 1e-3
  c.optimizer.warmup_steps = 50
  c.log_every = 10
  c.eval_every = 400
  c.checkpoint_every = 200
  if 'smoke' in options:
    common.shrink_for_smoke(c)
    c.data.train_kwargs.num_videos = 8
    c.data.eval_kwargs.num_videos = 4
  c.lock()
  return c

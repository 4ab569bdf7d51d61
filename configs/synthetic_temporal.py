"""MovingShapes: frame and temporal Simple-CNN, each with BP and Sideways.

  python experiments/main.py --config=configs/synthetic_temporal.py
  python experiments/main.py --config=configs/synthetic_temporal.py:no_upper

`MovingShapes` (shipped, rendered by the code) has 10 classes that differ
by shape and motion (left/right, bounce, spin clockwise/anticlockwise),
with mirror-symmetric nuisances, so a single frame hardly tells the motion.
The sweep trains the frame Simple-CNN (`simple_cnn`) and the temporal one
(`temporal_simple_cnn`: conv1 a causal (2+1)D window of 3 frames on the
pixels, conv3 a window of 3 frames on features), each with BP (exact BP
through time for the temporal model) and with Sideways (window cotangents
summed), from the same weights per model and on the same batches, into
<workdir>/name=<model>/<algorithm>. `:no_upper` trains only the temporal
model without its upper temporal stage (conv3 a frame conv).

Measured (1000 steps, 400 test videos; 9 min 38 s for the four runs on the
shared 2-core CPU, load average 1.3-2.0), eval video accuracy:

  model                                  BP       Sideways
  simple_cnn (frame)                     30.2%    25.0%
  temporal_simple_cnn                    97.5%    62.7%
  temporal_simple_cnn, :no_upper         97.5%    51.5%

The temporal model beats the frame model by 67 (BP) and 38 (Sideways)
points; Sideways stays 35 points below BP on it. Its lower stages pair a
frame's activation with a cotangent from 2(D - i) frames earlier (up to
10), and MovingShapes' motions change within that lag (a bounce period is
6-10 frames, a spin turns 1.5-3 rad in 10 frames), so those stages'
updates point elsewhere than BP's (cosine with BP after 300 BP steps: 0.35,
0.56, 0.58, 0.69, 0.93, 1.0 from stage 1 up; 0.94-1.0 for the frame model)
and the logits grow unstable.
"""

from configs import common
from configs import synthetic_simplecnn

ARGS = ('smoke', 'no_upper')


def get_config(arg: str | None = None):
  options = common.parse_arg(arg, ARGS)
  c = synthetic_simplecnn.get_config(
      ','.join(sorted(options & set(common.ARGS))) or None)
  c.unlock()
  c.data.name = 'moving_shapes'
  c.data.eval_split = 'test'
  c.model.kwargs.unlock()
  if c.num_train_steps > 2:  # Not for :smoke.
    # Four runs in about 10 minutes on 2 CPU cores (the temporal model's
    # exact BP through time is the slowest, ~2.5x a frame model's step).
    c.num_train_steps = 1000
    c.eval_every = 500
  if 'no_upper' in options:
    c.model.name = 'temporal_simple_cnn'
    c.model.kwargs.upper = ()
  else:
    # Both models take `channels`; the temporal model's own arguments keep
    # their defaults (models/temporal_simple_cnn.py).
    c.sweep.field = 'model.name'
    c.sweep.choices = ('simple_cnn', 'temporal_simple_cnn')
  c.lock()
  return c

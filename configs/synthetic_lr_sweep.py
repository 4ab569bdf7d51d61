"""Learning-rate sensitivity, BP vs Sideways, on shipped textured objects.

  python experiments/main.py --config=configs/synthetic_lr_sweep.py

The main job at two learning rates, both algorithms from the same weights
and batches at each, into <workdir>/learning_rate=<lr>/<algorithm>, then
one curve per rate for each algorithm (plots/learning_rate_sweep.png). The
paper (§4.3) finds Sideways the more sensitive of the two at high rates;
this checks whether that holds here. Measured (3 min 59 s on 2 idle CPU
cores): 2e-3 BP 92.0%, Sideways 81.7%; 8e-3 BP 64.7%, Sideways 58.7%: both
lose about as much at the high rate, so here Sideways is not the more
sensitive one.
"""

from configs import synthetic_simplecnn


def get_config(arg: str | None = None):
  c = synthetic_simplecnn.get_config(arg)
  c.sweep.field = 'optimizer.learning_rate'
  # The main job's rate and four times it.
  c.sweep.choices = (2e-3, 8e-3)
  if c.num_train_steps > 2:  # Not for :smoke.
    c.num_train_steps = 1000  # 4 runs must fit in ~15 minutes here.
    c.data.eval_kwargs.num_videos = 300
  return c

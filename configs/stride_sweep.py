"""Temporal stride sweep 2..6 on UCF101 with Simple-CNN (paper Fig. 5).

Trains BP and Sideways once per stride (--config.compare=False: only
config.algorithm), into <workdir>/stride=<s>/<algorithm>,
and plots accuracy against steps per stride (plots/stride_sweep.png). The
clip length stays K; a stride s reads a (K-1)s+1 frame window.
"""

from configs import ucf101_simplecnn


def get_config(arg: str | None = None):
  c = ucf101_simplecnn.get_config(arg)
  c.sweep.field = 'data.stride'
  c.sweep.choices = (2, 3, 4, 5, 6)  # Paper Fig. 5.
  c.compare = True  # Fig. 5 has both algorithms at every stride.
  return c

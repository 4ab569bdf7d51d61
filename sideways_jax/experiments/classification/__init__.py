"""Training and evaluation of video classifiers with BP or Sideways.

`run(config, workdir)` trains and evaluates `config.algorithm` (or both
algorithms, with `config.compare`; see configs/common.py), resumably, and
reports a table; the pieces it
is built from are exported for custom loops.
"""

from sideways_jax.train.builders import build_loader
from sideways_jax.train.builders import build_optimizer
from sideways_jax.train.builders import build_schedule
from sideways_jax.train.builders import build_source
from sideways_jax.train.builders import build_stages
from sideways_jax.train.builders import CachedSource
from sideways_jax.train.checkpoint import check_same_run
from sideways_jax.train.checkpoint import Checkpointer
from sideways_jax.train.experiment import expand_sweep
from sideways_jax.train.experiment import format_table
from sideways_jax.train.experiment import run
from sideways_jax.train.loop import evaluate
from sideways_jax.train.loop import NonFiniteLossError
from sideways_jax.train.loop import RunSummary
from sideways_jax.train.loop import train_and_evaluate
from sideways_jax.train.plots import make_plots
from sideways_jax.train.plots import plot_sweep
from sideways_jax.train.plots import plot_training_dynamics
from sideways_jax.train.progress import Progress
from sideways_jax.train.state import create_train_state
from sideways_jax.train.state import TrainState
from sideways_jax.train.step import forward_frames
from sideways_jax.train.step import frame_xent
from sideways_jax.train.step import make_eval_step
from sideways_jax.train.step import make_train_step
from sideways_jax.train.step import video_predictions
from sideways_jax.train.validate import check_clip_length
from sideways_jax.train.validate import ConfigError
from sideways_jax.train.validate import validate_config
from sideways_jax.train.writers import MetricWriter
from sideways_jax.train.writers import read_metrics

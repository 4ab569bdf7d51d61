"""Training and evaluation of video classifiers with BP or Sideways.

`experiment.run(config, workdir)` trains and evaluates `config.algorithm`
(or both algorithms, with `config.compare`; see configs/common.py) on one
device or on a (data, stage) mesh (`config.mesh`), resumably, and reports a
table; the pieces it is built from are exported for custom loops.
"""

from sideways_jax.experiments.classification.backend import make_backend
from sideways_jax.experiments.classification.builders import build_loader
from sideways_jax.experiments.classification.builders import build_optimizer
from sideways_jax.experiments.classification.builders import build_source
from sideways_jax.experiments.classification.builders import build_stages
from sideways_jax.experiments.classification.checkpoint import Checkpointer
from sideways_jax.experiments.classification.experiment import format_table
from sideways_jax.experiments.classification.experiment import run
from sideways_jax.experiments.classification.loop import NonFiniteLossError
from sideways_jax.experiments.classification.loop import RunSummary
from sideways_jax.experiments.classification.loop import train_and_evaluate
from sideways_jax.experiments.classification.plots import make_plots
from sideways_jax.experiments.classification.state import create_train_state
from sideways_jax.experiments.classification.state import TrainState
from sideways_jax.experiments.classification.step import make_eval_step
from sideways_jax.experiments.classification.validate import validate_config
from sideways_jax.experiments.classification.writers import read_metrics
from sideways_jax.experiments.classification.builders import build_schedule
from sideways_jax.experiments.classification.loop import evaluate
from sideways_jax.experiments.classification.progress import Progress
from sideways_jax.experiments.classification.writers import MetricWriter

"""sideways-jax: depth-parallel training of frame-based video models.

Switch algorithm with one word: `grad_fn('sideways')` or `grad_fn('bp')`;
both return a function with the same signature; `algorithms.py` is the
table of every algorithm (one device and mesh). The
schedule is written down in docs/algorithm.md.
"""

from sideways_jax.algorithms import Algorithm
from sideways_jax.algorithms import ALGORITHMS
from sideways_jax.algorithms import grad_fn
from sideways_jax.algorithms import GradFn
from sideways_jax.algorithms import OPTIONS
from sideways_jax.bp import bp_grads
from sideways_jax.chain import apply_chain
from sideways_jax.chain import apply_stage
from sideways_jax.chain import init_chain
from sideways_jax.chain import output_shapes
from sideways_jax.pipeline import EpisodeResult
from sideways_jax.pipeline import init_pipeline
from sideways_jax.pipeline import PipelineState
from sideways_jax.pipeline import reset_pipeline
from sideways_jax.pipeline import sideways_step
from sideways_jax.pipeline import StepOutput
from sideways_jax.pipeline import take_gradients
from sideways_jax.precision import Precision
from sideways_jax.result import check_finite
from sideways_jax.result import GradResult
from sideways_jax.sideways import min_clip_length
from sideways_jax.sideways import sideways_grads
from sideways_jax.sideways import valid_step_counts
from sideways_jax.train_state import TrainState
from sideways_jax.trainer import Trainer

__version__ = '0.1.0'

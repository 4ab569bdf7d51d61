"""sideways-jax: depth-parallel training of frame-based video models.

Switch algorithm with one word: `grad_fn('sideways')` or `grad_fn('bp')`;
both return a function with the same signature (see `registry.py`). The
schedule is written down in docs/algorithm.md.
"""

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
from sideways_jax.registry import ALGORITHMS
from sideways_jax.registry import grad_fn
from sideways_jax.registry import GradFn
from sideways_jax.registry import OPTIONS
from sideways_jax.result import check_finite
from sideways_jax.result import GradResult
from sideways_jax.sideways import min_clip_length
from sideways_jax.sideways import sideways_grads
from sideways_jax.sideways import valid_step_counts

__version__ = '0.1.0'

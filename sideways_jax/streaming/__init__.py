"""Streaming auto-encoding under a real-time frame rate (paper §4.4, Table 3).

One new frame arrives per computation step. Sideways takes every frame and
updates after every step (episode length 1); BP is blocked while a frame
goes up and down its D stages and holds its last output in between. The
errors are scored two ways (see `metric`): what each system shows at step t
against frame t (latency charged), and each frame against the reconstruction
made from it (throughput charged). `staleness` holds per-stage corrections
for Sideways' delayed pseudo-gradients, `diagnostics` measures them.

    learner = init_learner(variables, optax.adam(1e-3))
    learner, trace = sideways_train_video(stages, opt, learner, video)
    trace = bp_infer_video(stages, learner.variables, video)
    mse = stream_mse(trace.errors, trace.emitted,
                     first_step=first_scored_step(len(stages)))
"""

from sideways_jax.streaming.bp_stream import bp_infer_video
from sideways_jax.streaming.bp_stream import bp_latency
from sideways_jax.streaming.bp_stream import bp_period
from sideways_jax.streaming.bp_stream import bp_train_video
from sideways_jax.streaming.diagnostics import gradient_cosines
from sideways_jax.streaming.learner import apply_stage_updates
from sideways_jax.streaming.learner import init_learner
from sideways_jax.streaming.learner import LearnerState
from sideways_jax.streaming.learner import mse_loss
from sideways_jax.streaming.learner import Optimizers
from sideways_jax.streaming.learner import stage_optimizers
from sideways_jax.streaming.metric import first_scored_step
from sideways_jax.streaming.metric import frame_error_sum
from sideways_jax.streaming.metric import frame_mse
from sideways_jax.streaming.metric import scored_error_sum
from sideways_jax.streaming.metric import stream_mse
from sideways_jax.streaming.metric import video_errors
from sideways_jax.streaming.sideways_stream import sideways_infer_video
from sideways_jax.streaming.sideways_stream import sideways_train_video
from sideways_jax.streaming.sideways_stream import train_step
from sideways_jax.streaming.staleness import scale_by_adam_spike_compensated
from sideways_jax.streaming.staleness import scale_by_delay
from sideways_jax.streaming.staleness import sideways_delays
from sideways_jax.streaming.staleness import spike_compensated_adam
from sideways_jax.streaming.trace import StreamTrace

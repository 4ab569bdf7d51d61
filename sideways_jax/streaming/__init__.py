"""Streaming auto-encoding under a real-time frame rate (paper §4.4, Table 3).

One new frame arrives per computation step. Sideways takes every frame and
updates after every step (episode length 1); BP is blocked while a frame
goes up and down its D stages and holds its last output in between.
`schedules` says which schedule each algorithm of `sideways_jax.algorithms`
runs, in training and in the two held-out schedules. The errors are scored
three ways (see `metric`): what each system shows at step t against frame t
(latency charged), and each frame against the reconstruction made from it,
a skipped frame charged either the output shown at its step or, latency-
free, the nearest earlier processed frame's reconstruction. `staleness`
holds per-stage corrections for Sideways' delayed pseudo-gradients,
`diagnostics` measures them.

    stream = streamer('sideways')
    learner = init_learner(chain_variables, opt, jax.random.key(1))
    learner, trace = stream.train(stages, opt, learner, video)
    trace = stream.infer[TRAINING](stages, variables(learner), video)
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
from sideways_jax.streaming.learner import mse_loss
from sideways_jax.streaming.learner import Optimizers
from sideways_jax.streaming.learner import stage_optimizers
from sideways_jax.streaming.learner import variables
from sideways_jax.streaming.metric import first_scored_step
from sideways_jax.streaming.metric import frame_error_sum
from sideways_jax.streaming.metric import frame_mse
from sideways_jax.streaming.metric import scored_error_sum
from sideways_jax.streaming.metric import SCORES
from sideways_jax.streaming.metric import stream_mse
from sideways_jax.streaming.metric import video_errors
from sideways_jax.streaming.schedules import PIPELINED
from sideways_jax.streaming.schedules import SCHEDULES
from sideways_jax.streaming.schedules import Streamer
from sideways_jax.streaming.schedules import streamer
from sideways_jax.streaming.schedules import TRAINING
from sideways_jax.streaming.sideways_stream import pipelined_infer_video
from sideways_jax.streaming.sideways_stream import sideways_train_video
from sideways_jax.streaming.sideways_stream import train_step
from sideways_jax.streaming.staleness import scale_by_adam_spike_compensated
from sideways_jax.streaming.staleness import scale_by_delay
from sideways_jax.streaming.staleness import sideways_delays
from sideways_jax.streaming.staleness import spike_compensated_adam
from sideways_jax.streaming.trace import StreamTrace

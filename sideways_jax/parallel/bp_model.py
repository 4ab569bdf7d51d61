"""Exact BP, one stage per device (model parallelism): per-device program.

The paper's baseline (Table 2). For each frame the activation climbs the
stage-devices one tick at a time (device k works at tick k, the others wait),
the top device computes the loss, and autodiff replays the ticks in reverse:
the transpose of each tick's `lax.cond` runs stage k's backward on device k
only and the transpose of each `ppermute` sends the cotangent one device
down. So at any moment one device works, as in model-parallel BP on GPUs.

Frames are processed one after another in a `lax.scan` (memory constant in
the clip length), giving the same numbers as `sideways_jax.bp_grads`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from sideways_jax import chain as chain_lib
from sideways_jax.parallel import flat as flat_lib
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import slots as slots_lib
from sideways_jax.parallel.sideways_mp import LocalFn
from sideways_jax.parallel.sideways_mp import LocalResult


def bp_model_local(stages: chain_lib.Stages, layout: layout_lib.ChainLayout,
                   loss_fn: Callable, *, train: bool = True,
                   unroll: int | bool = 1) -> LocalFn:
  """Builds the per-device model-parallel BP program for one clip.

  Args:
    stages: the D stage modules (stage k runs on stage-device k).
    layout: the chain's buffer layout for one device's batch.
    loss_fn: `loss_fn(top_output, target) -> scalar`.
    train: training mode for batchnorm and dropout.
    unroll: passed to the `lax.scan` over frames.

  Returns:
    `local_fn(params, state, clip, targets, rng) -> LocalResult`, like
    `sideways_local` (every stage averages over all K frames).
  """
  num_stages = layout.num_stages
  plan = layout.param_slots

  def local_fn(params, state, clip, targets, rng):
    stage_index = lax.axis_index(mesh_lib.STAGE)
    batch = clip.shape[1]
    zeros_a = mesh_lib.vary(jnp.zeros((batch, layout.act_size),
                                      layout.act_dtype))
    zeros_s = mesh_lib.vary(jnp.zeros_like(state))
    # Every stage's structure read from this device's slots, once per clip
    # (only stage k's is real on device k). Differentiating these, not the
    # slots, keeps each tick's gradient the size of its own stage.
    stage_params = tuple(
        slots_lib.unflatten_slots(layout.params[k], plan.places[k], params)
        for k in range(num_stages))

    zeros_o = mesh_lib.vary(jnp.zeros((batch, layout.out_size),
                                      layout.outputs[-1].dtype))

    def frame_loss(stage_params, frame, target, t):
      h, loss, new_state = zeros_a, mesh_lib.vary(jnp.zeros(())), zeros_s
      emit = zeros_o
      for k in range(num_stages):
        top = k == num_stages - 1

        def active(p, h, frame, target, k=k, top=top):
          x = frame if k == 0 else flat_lib.unflatten_batch(
              h, layout.outputs[k - 1])
          y, stage_state = chain_lib.apply_stage(
              stages[k], p, flat_lib.unflatten(layout.state[k], state), x,
              train=train, rng=chain_lib.stage_rng(rng, t, k))
          flat_state = flat_lib.flatten(layout.state[k], dict(stage_state),
                                        layout.state_size, layout.state_dtype)
          if top:
            out = (jnp.zeros_like(h), loss_fn(y, target).astype(jnp.float32),
                   y.reshape(zeros_o.shape).astype(zeros_o.dtype))
          else:
            out = (flat_lib.flatten_batch(y, layout.act_size).astype(
                h.dtype), jnp.zeros((), jnp.float32), zeros_o)
          return mesh_lib.vary(out + (flat_state,))

        def idle(p, h, frame, target):
          del p, frame, target
          return mesh_lib.vary((jnp.zeros_like(h), jnp.zeros((), jnp.float32),
                                zeros_o, jnp.zeros_like(state)))

        out, tick_loss, tick_emit, tick_state = lax.cond(
            stage_index == k, active, idle, stage_params[k], h, frame, target)
        loss = loss + tick_loss
        emit = emit + tick_emit
        new_state = new_state + tick_state
        if not top:
          h = lax.ppermute(out, mesh_lib.STAGE, [(k, k + 1)])
      return loss, (new_state, lax.stop_gradient(emit))

    value_and_grad = jax.value_and_grad(frame_loss, has_aux=True)
    accumulate = [
        lambda total, g, k=k: slots_lib.add_to_slots(
            layout.params[k], plan.places[k], total, g[k])
        for k in range(num_stages)]

    def step(carry, inputs):
      grad_sum, state_sum, loss_sum = carry
      (loss, (new_state, emit)), g = value_and_grad(stage_params, *inputs)
      grad_sum = lax.switch(stage_index, accumulate, grad_sum, g)
      return (grad_sum, state_sum + new_state, loss_sum + loss), emit

    num_frames = clip.shape[0]
    frames = jnp.arange(num_frames, dtype=jnp.int32)
    carry = mesh_lib.vary((jax.tree.map(jnp.zeros_like, params),
                           jnp.zeros_like(state), jnp.zeros((), jnp.float32)))
    (grad_sum, state_sum, loss_sum), outputs = lax.scan(
        step, carry, (clip, targets, frames), unroll=unroll)
    return LocalResult(grads=jax.tree.map(lambda g: g / num_frames, grad_sum),
                       state=state_sum / num_frames,
                       loss=loss_sum / num_frames,
                       valid_steps=mesh_lib.vary(
                           jnp.asarray(num_frames, jnp.int32)),
                       outputs=outputs)

  return local_fn

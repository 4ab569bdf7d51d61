"""What every one-stage-per-device program shares: a stage in buffer rows.

Inside `shard_map` over ('data', 'stage') a stage-device holds its rows of
the padded buffers of `layout.py`: parameter slots, one flat state row, and
activations and cotangents as [b, act_size] rows. A program's `lax.switch`
branch for stage i reads stage i's pytrees out of those rows, runs the
kernel (`sideways_jax.kernel`: `stage_step` or `stage_forward`) and writes
the results back into rows. `LocalSetup` does that packing, once for every
program (Sideways, model-parallel BP, GPipe and 1F1B); the programs keep
only their schedule and the exchange between devices.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax.parallel import flat as flat_lib
from sideways_jax.parallel import layout as layout_lib
from sideways_jax.parallel import mesh as mesh_lib
from sideways_jax.parallel import slots as slots_lib


class LocalResult(NamedTuple):
  """What one device's program leaves before reductions over devices."""
  grads: slots_lib.Slots  # this stage's G_i / n_i on this data shard, slots
  state: jax.Array        # [S]: this stage's averaged mutable state
  loss: jax.Array         # f32 []: the episode loss on the top device, else 0
  valid_steps: jax.Array  # int32 []: n_i
  outputs: jax.Array      # [K, b, ...]: top output per step (top device)
  output_frame: jax.Array  # int32 [K]: the frame each output came from
                           # (negative: a warm-up output, not real)


# local_fn(param slots, state [S], clip [K, b, ...], targets, rng)
#   -> LocalResult; called inside `shard_map` with this device's rows.
LocalFn = Callable[..., LocalResult]


class Rows(NamedTuple):
  """Zero rows of one device's batch, for what a stage does not send."""
  act: jax.Array    # [b, act_size]
  state: jax.Array  # [state_size]
  out: jax.Array    # [b, out_size]
  carry: jax.Array  # [carry_size]: a carry at the clip's start (zeros)


@dataclasses.dataclass(frozen=True)
class LocalSetup:
  """The static part of every per-device program: the chain and its rows.

  Attributes:
    stages: the D stage modules (stage i runs on stage-device i).
    layout: the chain's buffer layout for one device's batch.
    loss_fn: `loss_fn(top_output, target) -> scalar`.
    train: training mode for batchnorm and dropout.
  """
  stages: chain_lib.Stages
  layout: layout_lib.ChainLayout
  loss_fn: kernel.LossFn
  train: bool

  @property
  def num_stages(self) -> int:
    return self.layout.num_stages

  def position(self, i: int) -> kernel.Position:
    return kernel.Position(i, self.num_stages)

  def stage_params(self, i: int, params: slots_lib.Slots) -> Any:
    """Stage i's params pytree, read from this device's slots."""
    layout = self.layout
    return slots_lib.unflatten_slots(layout.params[i],
                                     layout.param_slots.places[i], params)

  def stage_state(self, i: int, state: jax.Array) -> dict:
    """Stage i's mutable state dict, read from this device's state row."""
    return flat_lib.unflatten(self.layout.state[i], state)

  def stage_input(self, i: int, row: jax.Array, frame: jax.Array
                  ) -> jax.Array:
    """What stage i runs on: the frame (i = 0) or the row from below."""
    return frame if i == 0 else flat_lib.unflatten_batch(
        row, self.layout.outputs[i - 1])

  def add(self, i: int) -> kernel.AddFn:
    """Adds stage i's gradient pytree into its slots (the others pass)."""
    return functools.partial(slots_lib.add_to_slots, self.layout.params[i],
                             self.layout.param_slots.places[i])

  def zeros(self, batch: int) -> Rows:
    layout = self.layout
    return Rows(act=jnp.zeros((batch, layout.act_size), layout.act_dtype),
                state=jnp.zeros((layout.state_size,), layout.state_dtype),
                out=jnp.zeros((batch, layout.out_size),
                              layout.outputs[-1].dtype),
                carry=jnp.zeros((layout.carry_size,), jnp.float32))

  def act_row(self, x: jax.Array) -> jax.Array:
    """An activation or cotangent [b, ...] as a padded [b, act_size] row."""
    return flat_lib.flatten_batch(x, self.layout.act_size).astype(
        self.layout.act_dtype)

  def state_row(self, i: int, state: dict) -> jax.Array:
    layout = self.layout
    return flat_lib.flatten(layout.state[i], dict(state), layout.state_size,
                            layout.state_dtype)

  def stage_carry(self, i: int, row: jax.Array) -> Any:
    """Stage i's carry pytree from its carry row (None: a frame stage)."""
    spec = self.layout.carries[i]
    return None if spec is None else flat_lib.unflatten(spec, row)

  def carry_row(self, i: int, carry: Any) -> jax.Array:
    """Stage i's carry as a [carry_size] row (zeros for a frame stage)."""
    layout, spec = self.layout, self.layout.carries[i]
    if spec is None:
      return jnp.zeros((layout.carry_size,), jnp.float32)
    return flat_lib.flatten(spec, carry, layout.carry_size, jnp.float32)

  def out_row(self, y: jax.Array) -> jax.Array:
    """The top stage's output [b, ...] as a [b, out_size] row."""
    out = self.layout.outputs[-1]
    return y.reshape(y.shape[0], self.layout.out_size).astype(out.dtype)

  def outputs(self, rows: jax.Array) -> jax.Array:
    """[K, b, out_size] top-output rows -> [K, b, ...] (the output shape)."""
    out = self.layout.outputs[-1]
    return rows.reshape((rows.shape[0],) + out.shape)

  def forward(self, i: int, params: Any, state: dict, x: jax.Array, *,
              frame: Any, rng: jax.Array | None,
              carry_row: jax.Array | None = None) -> tuple:
    """`kernel.stage_forward` of stage i (params and state as pytrees).

    Returns (output, state), and the next carry row as a third element when
    `carry_row` is given.
    """
    carry = None if carry_row is None else self.stage_carry(i, carry_row)
    out = kernel.stage_forward(self.stages[i], params, state, x,
                               position=self.position(i), frame=frame,
                               train=self.train, rng=rng, carry=carry)
    if carry_row is None:
      return out
    return (*out[:2], self.carry_row(i, out[2] if carry is not None
                                     else None))

  def step(self, i: int, params: slots_lib.Slots, state: jax.Array,
           x_row: jax.Array, frame: jax.Array, cotangent_row: jax.Array,
           grad_sum: slots_lib.Slots, *, frame_index: jax.Array,
           rng: jax.Array | None, target: Any = None,
           input_valid: Any = True, cotangent_valid: Any = True,
           carry_row: jax.Array | None = None,
           window_cotangents: str = 'sum') -> kernel.StageStep:
    """`kernel.stage_step` of stage i on rows; sums into the param slots.

    Args:
      i: the stage.
      params, state: this device's parameter slots and state row.
      x_row: the input row from below (unused at i = 0).
      frame: this step's clip frame [b, ...] (stage 0's input).
      cotangent_row: the output cotangent row from above (unused at the
        top, whose cotangent is the loss gradient).
      grad_sum: the gradient sum, in slots.
      frame_index: the clip frame the input came from (keys dropout).
      rng, target, input_valid, cotangent_valid, window_cotangents: as in
        `kernel.stage_step`.
      carry_row: this device's carry row (a temporal stage's carry); the
        StageStep's `carry` is then the next carry row.
    """
    top = i == self.num_stages - 1
    cotangent = None if top else flat_lib.unflatten_batch(
        cotangent_row, self.layout.outputs[i])
    carry = None if carry_row is None else self.stage_carry(i, carry_row)
    step = kernel.stage_step(
        self.stages[i], self.stage_params(i, params),
        self.stage_state(i, state),
        self.stage_input(i, x_row, frame), cotangent, grad_sum,
        position=self.position(i), frame=frame_index, train=self.train,
        rng=rng, loss_fn=self.loss_fn, target=target,
        input_valid=input_valid, cotangent_valid=cotangent_valid,
        add=self.add(i), carry=carry, window_cotangents=window_cotangents)
    if carry_row is None:
      return step
    return step._replace(carry=self.carry_row(i, step.carry))


def mean_over(sums: Any, count: jax.Array) -> Any:
  """sums / max(count, 1), leaf by leaf in each leaf's dtype."""
  count = jnp.maximum(count, 1)
  return jax.tree.map(lambda s: s / count.astype(s.dtype), sums)


def every_frame_result(grad_sum: slots_lib.Slots, state_sum: jax.Array,
                       loss_sum: jax.Array,
                       outputs: jax.Array) -> LocalResult:
  """The result of an exact-BP program: every stage averages over all K.

  Args:
    grad_sum, state_sum, loss_sum: sums over the clip's K frames.
    outputs: [K, b, ...], the top's output of frame t at t.
  """
  num_frames = outputs.shape[0]
  return LocalResult(
      grads=jax.tree.map(lambda g: g / num_frames, grad_sum),
      state=state_sum / num_frames, loss=loss_sum / num_frames,
      valid_steps=mesh_lib.vary(jnp.asarray(num_frames, jnp.int32)),
      outputs=outputs,
      output_frame=jnp.arange(num_frames, dtype=jnp.int32))

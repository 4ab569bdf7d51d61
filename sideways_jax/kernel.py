"""One stage, one computation step: the kernel every schedule is built from.

Every program in the library (the single-device Sideways scan, the Sideways
and pipelined-BP mesh programs, the streaming learner, the stage timer) does
the same thing at the heart of a step: run stage i at the input it holds,
take one `jax.vjp` there, get the output cotangent (from the loss at the top
stage, from the stage above otherwise), mask what must not count, and add the
parameter gradient to a running sum. This module writes that once; the
callers only decide *which* input, cotangent and frame a stage sees at a step
(the schedule) and how values move between stages (a tuple on one device,
`ppermute` on a mesh).

The masking rule (docs/algorithm.md, "Masks"): a step's parameter gradient
counts only when both the input and the cotangent come from real frames
(`mask`), and the input-cotangent sent down is zero otherwise. Both are
applied with `where`, never by multiplying or by zeroing the cotangent
before the vjp: a non-finite value in a masked step (a NaN frame before the
clip's real frames reach a stage, an overflow in a warm-up output) must not
leak into the sums.

A temporal stage (`sideways_jax.temporal`) also gets its carry and returns
the next one, kept only when the input is real. The carry is an input of
the step, not differentiated through time: the vjp is taken at (input,
carry), and under `window_cotangents='sum'` the cotangent of the earlier
inputs a window carry holds is added to the current input's cotangent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sideways_jax import chain as chain_lib
from sideways_jax import temporal

LossFn = Callable[[jax.Array, Any], jax.Array]
# add(grad_sum, grads) -> grad_sum: how a caller stores its gradient sum
# (a pytree like the params on one device, padded slots on a mesh).
AddFn = Callable[[Any, Any], Any]


def tree_add(total: Any, value: Any) -> Any:
  """total + value leaf by leaf, in the total's dtype (fp32 sums stay fp32)."""
  return jax.tree.map(lambda t, v: t + v.astype(t.dtype), total, value)


def masked(mask: jax.Array, tree: Any) -> Any:
  """`tree` where `mask`, zeros elsewhere (a select: NaN/Inf cannot leak)."""
  return jax.tree.map(lambda v: jnp.where(mask, v, jnp.zeros_like(v)), tree)


class Position(NamedTuple):
  """Where a stage sits in the chain (static: fixes the traced program)."""
  index: int        # 0-based stage index i
  num_stages: int   # D

  @property
  def first(self) -> bool:
    return self.index == 0

  @property
  def top(self) -> bool:
    return self.index == self.num_stages - 1


class StageStep(NamedTuple):
  """What one stage leaves after one computation step."""
  output: jax.Array            # y [B, ...]: sent up (the top's: emitted)
  input_cotangent: Any         # [B, ...] masked dL/dx sent down; None at i=0
  grad_sum: Any                # the caller's sum plus the masked dL/dθ
  state: dict                  # updated mutable collections; zeros where the
                               # input is not real
  loss: jax.Array              # f32 []: the top's loss if its input is real,
                               # else 0 (always 0 below the top)
  mask: jax.Array              # bool []: this step's gradient counted
  carry: Any = None            # a temporal stage's next carry (its old one
                               # where the input is not real); None for a
                               # frame stage


def stage_forward(stage: Any, params: chain_lib.Params, state: dict,
                  x: jax.Array, *, position: Position, frame: Any,
                  train: bool, rng: jax.Array | None, carry: Any = None
                  ) -> tuple[jax.Array, ...]:
  """Stage `position.index` on input x [B, ...] from clip frame `frame`.

  The dropout key is `chain.stage_rng(rng, frame, index)`: keyed by the
  frame the data came from, so a frame gets the same masks under every
  schedule. Returns (output, updated mutable state) for a frame stage, and
  (output, updated mutable state, next carry) when `carry` is given (a
  temporal stage).
  """
  stage_rng = chain_lib.stage_rng(rng, frame, position.index)
  if carry is None:
    return chain_lib.apply_stage(stage, params, state, x, train=train,
                                 rng=stage_rng)
  return chain_lib.apply_temporal_stage(stage, params, state, x, carry,
                                        train=train, rng=stage_rng)


def stage_step(stage: Any, params: chain_lib.Params, state: dict,
               x: jax.Array, cotangent: Any, grad_sum: Any, *,
               position: Position, frame: Any, train: bool,
               rng: jax.Array | None, loss_fn: LossFn, target: Any = None,
               input_valid: Any = True, cotangent_valid: Any = True,
               add: AddFn = tree_add, carry: Any = None,
               window_cotangents: str = 'sum') -> StageStep:
  """One stage, one computation step: forward + vjp at x, masked, summed.

  Args:
    stage: the stage's Flax module.
    params: its parameters (what the gradient is taken of).
    state: its other collections (e.g. 'batch_stats'), fixed in the step.
    x: the input it holds now, [B, ...] (the frame for the first stage).
    cotangent: the cotangent of its output that the stage above sent
      ([B, ...] like the output); ignored at the top stage, whose cotangent
      is the gradient of `loss_fn` at this step's output.
    grad_sum: the running gradient sum that `add` updates.
    position: the stage's (static) place in the chain.
    frame: index of the clip frame x came from (keys dropout).
    train: training mode (batchnorm statistics, dropout).
    rng: the episode's dropout key, or None.
    loss_fn: `loss_fn(top_output, target) -> scalar`, used at the top.
    target: the target of this step's loss (top stage only).
    input_valid: bool []: x comes from a real frame.
    cotangent_valid: bool []: the cotangent comes from a real frame (the top
      stage's cotangent is real exactly when its input is).
    add: `add(grad_sum, grads) -> grad_sum`.
    carry: a temporal stage's carry (None for a frame stage).
    window_cotangents: 'sum' adds the cotangent of a window carry's earlier
      inputs to the input cotangent; 'drop' leaves it out.

  Returns:
    The StageStep. The first stage needs no input gradient (the frame is
    data), so its vjp skips it and `input_cotangent` is None.
  """
  input_valid = jnp.asarray(input_valid)
  y, vjp_fn, (new_state, new_carry) = _stage_vjp(
      stage, params, state, x, carry, position=position, frame=frame,
      train=train, rng=rng, window_cotangents=window_cotangents)
  if carry is not None:
    new_carry = jax.tree.map(lambda n, o: jnp.where(input_valid, n, o),
                             new_carry, carry)
  if position.top:
    loss, cotangent = jax.value_and_grad(loss_fn)(y, target)
    loss = jnp.where(input_valid, loss, 0).astype(jnp.float32)
    mask = input_valid
  else:
    loss = jnp.zeros((), jnp.float32)
    mask = jnp.logical_and(input_valid, cotangent_valid)
  grads = vjp_fn(jnp.asarray(cotangent).astype(y.dtype))
  grad_sum = add(grad_sum, masked(mask, grads[0]))
  input_cotangent = None if position.first else masked(mask, grads[1])
  return StageStep(output=y, input_cotangent=input_cotangent,
                   grad_sum=grad_sum, state=masked(input_valid, new_state),
                   loss=loss, mask=mask, carry=new_carry)


def _stage_vjp(stage: Any, params: chain_lib.Params, state: dict,
               x: jax.Array, carry: Any, *, position: Position, frame: Any,
               train: bool, rng: jax.Array | None, window_cotangents: str):
  """`jax.vjp` of one stage at (params, x), and at its carry if temporal.

  Returns (y, vjp_fn, (new_state, new_carry)) with `vjp_fn(ct)` giving
  (param grads,) at the first stage and (param grads, input cotangent)
  above it; new_carry is None for a frame stage. For a window stage under
  the 'sum' rule the input cotangent includes the window's earlier inputs.
  The carry is an input: nothing flows back to the steps that built it.
  """
  temporal.check_window_cotangents(window_cotangents)

  def forward(p, a, c):
    y, new_state, *new_carry = stage_forward(
        stage, p, state, a, position=position, frame=frame, train=train,
        rng=rng, carry=c)
    return y, (new_state, new_carry[0] if new_carry else None)

  if position.first:
    return jax.vjp(lambda p: forward(p, x, carry), params, has_aux=True)
  if (carry is None or window_cotangents == 'drop'
      or not temporal.has_window(stage)):
    return jax.vjp(lambda p, a: forward(p, a, carry), params, x,
                   has_aux=True)
  y, vjp_fn, aux = jax.vjp(forward, params, x, carry, has_aux=True)

  def summed_vjp(cotangent):
    param_grads, x_grad, carry_grad = vjp_fn(cotangent)
    earlier = temporal.carry_input_cotangent(stage, carry_grad)
    return param_grads, x_grad + earlier.astype(x_grad.dtype)

  return y, summed_vjp, aux

"""The Sideways pipeline: its state and ONE computation step.

docs/algorithm.md writes the schedule out with 1-indexed stages; here they
are 0-indexed: D stages f_0 … f_{D-1}. At every step all stages work at once,
each on what its neighbours sent at the previous step:

* stage 0 consumes the current frame; stage i > 0 consumes
  `activations[i-1]`, the output stage i-1 produced one step earlier;
* the top stage gets its cotangent from the loss in the same step; stage
  i < D-1 uses `cotangents[i]`, the input-cotangent stage i+1 produced one
  step earlier;
* each stage runs ONE `jax.vjp` at its current input: forward and backward
  see the same activation, so nothing is buffered;
* stage i contributes to its gradient only when both its input and its
  cotangent come from real frames of this episode (mask m_i); with 1-indexed
  stages that is from step 2D - i on, so n_i = K - 2D + i + 1 steps count;
* a temporal stage (`sideways_jax.temporal`) keeps its carry here between
  steps: stage i's inputs arrive in frame order, so its carry is the one
  exact BP computes, and it changes only at steps whose input is real.

The step is public: a clip is a `lax.scan` of it (see `sideways.py`), and a
streaming loop (one optimizer update per step) drives it directly together
with `take_gradients`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sideways_jax import chain as chain_lib
from sideways_jax import kernel
from sideways_jax import temporal

LossFn = kernel.LossFn


class PipelineState(NamedTuple):
  """Everything Sideways carries from one step to the next.

  D is the number of stages, B the batch size.
  """
  activations: tuple[jax.Array, ...]  # D-1 × [B, *out_i]: input of stage i+1
  cotangents: tuple[jax.Array, ...]   # D-1 × [B, *out_i]: cotangent of out_i
  activation_valid: jax.Array         # bool [D-1]
  cotangent_valid: jax.Array          # bool [D-1]
  grad_sums: tuple[Any, ...]          # D × params_i: Σ_t m_i^t ∇θ_i
  valid_steps: jax.Array              # int32 [D]: Σ_t m_i^t
  state_sums: tuple[dict, ...]        # D × mutable_i: Σ updated collections
  state_counts: jax.Array             # int32 [D]: steps with a real input
  loss_sum: jax.Array                 # f32 []: Σ ℓ_t over valid top steps
  step: jax.Array                     # int32 []: steps since the last reset
  carries: tuple[Any, ...]            # D × each stage's carry (None for a
                                      # frame stage); zeros after a reset


class StepOutput(NamedTuple):
  """What one step emits at the top of the pipeline."""
  loss: jax.Array          # f32 []: ℓ_t (meaningless when not output_valid)
  output: jax.Array        # [B, ...]: top-stage output
  output_valid: jax.Array  # bool []: the output comes from a real frame
  origin: jax.Array        # int32 []: frame index (since reset) it came from


def _zeros_like_tree(tree: Any) -> Any:
  return jax.tree.map(jnp.zeros_like, tree)


def _sum_like(tree: Any) -> Any:
  """Zeros to sum `tree`'s values in: at least fp32 (bf16 sums drift)."""
  return jax.tree.map(
      lambda x: jnp.zeros(jnp.shape(x), jnp.promote_types(x.dtype,
                                                          jnp.float32)), tree)


def init_pipeline(stages: chain_lib.Stages,
                  variables: chain_lib.ChainVariables,
                  frame: jax.Array) -> PipelineState:
  """An empty (reset) pipeline for frames shaped like `frame` [B, ...]."""
  chain_lib.validate_chain(stages, variables)
  shapes = chain_lib.output_shapes(stages, variables, frame)
  between = [jnp.zeros(s.shape, s.dtype) for s in shapes[:-1]]
  carries = tuple(temporal.zero_carry(stage, x) for stage, x in zip(
      stages, [frame, *between]))
  num_stages = len(stages)
  params_and_state = [chain_lib.split_variables(v) for v in variables]
  return PipelineState(
      activations=tuple(between),
      cotangents=tuple(jnp.zeros_like(a) for a in between),
      activation_valid=jnp.zeros((num_stages - 1,), bool),
      cotangent_valid=jnp.zeros((num_stages - 1,), bool),
      grad_sums=tuple(_sum_like(p) for p, _ in params_and_state),
      valid_steps=jnp.zeros((num_stages,), jnp.int32),
      state_sums=tuple(_zeros_like_tree(s) for _, s in params_and_state),
      state_counts=jnp.zeros((num_stages,), jnp.int32),
      loss_sum=jnp.zeros((), jnp.float32),
      step=jnp.zeros((), jnp.int32),
      carries=carries,
  )


def reset_pipeline(state: PipelineState) -> PipelineState:
  """Empties the pipeline, its accumulators and carries (a new clip/video)."""
  return _zeros_like_tree(state)


def _stack_flags(flags: list[jax.Array]) -> jax.Array:
  """Stacks per-stage flags; a single-stage chain has none to stack."""
  return jnp.stack(flags) if flags else jnp.zeros((0,), bool)


def sideways_step(stages: chain_lib.Stages,
                  variables: chain_lib.ChainVariables,
                  state: PipelineState,
                  frame: jax.Array,
                  target: Any,
                  loss_fn: LossFn,
                  *,
                  train: bool = True,
                  rng: jax.Array | None = None,
                  window_cotangents: str = 'sum',
                  ) -> tuple[PipelineState, StepOutput]:
  """One Sideways computation step: every stage forward + backward at once.

  Each stage runs `kernel.stage_step` on what its neighbours sent at the
  previous step; this function only routes inputs and cotangents.

  Args:
    stages: the stage chain (D Flax modules).
    variables: one variables dict per stage; fixed within an episode.
    state: the pipeline carried from the previous step.
    frame: the new input frame, [B, ...].
    target: the target the top stage's loss uses at this step, [B, ...].
    loss_fn: `loss_fn(top_output, target) -> scalar` (mean over the batch).
    train: training mode for the stages (batchnorm statistics, dropout).
    rng: dropout key; stage i at step t uses `stage_rng(rng, t - i, i)`.
    window_cotangents: 'sum' or 'drop': what temporal window stages do with
      the cotangent of their earlier inputs (see `kernel.stage_step`).

  Returns:
    (the next pipeline state, what the top of the pipeline emitted).
  """
  num_stages = len(stages)
  t = state.step
  steps = []
  for i, (stage, stage_vars) in enumerate(zip(stages, variables)):
    params, stage_state = chain_lib.split_variables(stage_vars)
    top = i == num_stages - 1
    if i == 0:
      x, x_valid = frame, jnp.array(True)
    else:
      x, x_valid = state.activations[i - 1], state.activation_valid[i - 1]
    steps.append(kernel.stage_step(
        stage, params, stage_state, x,
        None if top else state.cotangents[i], state.grad_sums[i],
        position=kernel.Position(i, num_stages), frame=t - i, train=train,
        rng=rng, loss_fn=loss_fn, target=target, input_valid=x_valid,
        cotangent_valid=True if top else state.cotangent_valid[i],
        carry=state.carries[i], window_cotangents=window_cotangents))

  input_valid = [jnp.array(True)] + list(state.activation_valid)
  masks = jnp.stack([s.mask for s in steps])
  top = steps[-1]
  top_output = StepOutput(loss=top.loss, output=top.output,
                          output_valid=input_valid[-1],
                          origin=t - (num_stages - 1))
  next_state = PipelineState(
      activations=tuple(s.output for s in steps[:-1]),
      cotangents=tuple(s.input_cotangent for s in steps[1:]),
      activation_valid=_stack_flags(input_valid[:-1]),
      cotangent_valid=_stack_flags([s.mask for s in steps[1:]]),
      grad_sums=tuple(s.grad_sum for s in steps),
      valid_steps=state.valid_steps + masks.astype(jnp.int32),
      state_sums=tuple(kernel.tree_add(total, s.state)
                       for total, s in zip(state.state_sums, steps)),
      state_counts=state.state_counts + jnp.stack(input_valid).astype(
          jnp.int32),
      loss_sum=state.loss_sum + top.loss,
      step=t + 1,
      carries=tuple(s.carry for s in steps),
  )
  return next_state, top_output


class EpisodeResult(NamedTuple):
  """Gradients and state an episode leaves, ready for an optimizer update."""
  grads: tuple[Any, ...]       # D × params_i: G_i / n_i (zeros where n_i=0)
  state: tuple[dict, ...]      # D × mutable_i: mean of the updated state
  valid_steps: jax.Array       # int32 [D]: n_i
  loss: jax.Array              # f32 []: mean ℓ_t over valid top steps


def take_gradients(state: PipelineState,
                   variables: chain_lib.ChainVariables,
                   ) -> tuple[EpisodeResult, PipelineState]:
  """Ends an episode: averaged gradients, and the pipeline with cleared sums.

  The activations and cotangents in flight are kept, so a stream goes on
  where it was (the auto-encoding setting, episode length 1). A stage with no
  valid step gets a zero gradient and keeps its mutable state.
  """
  def mean(total, count):
    return jax.tree.map(lambda x: x / jnp.maximum(count, 1).astype(x.dtype),
                        total)

  grads = tuple(mean(g, n) for g, n in zip(state.grad_sums,
                                           state.valid_steps))
  new_states = []
  for i, stage_vars in enumerate(variables):
    _, old = chain_lib.split_variables(stage_vars)
    count = state.state_counts[i]
    averaged = mean(state.state_sums[i], count)
    new_states.append(jax.tree.map(lambda a, o: jnp.where(count > 0, a, o),
                                   averaged, old))
  num_top = state.valid_steps[-1]
  result = EpisodeResult(
      grads=grads, state=tuple(new_states), valid_steps=state.valid_steps,
      loss=state.loss_sum / jnp.maximum(num_top, 1).astype(jnp.float32))
  cleared = state._replace(
      grad_sums=_zeros_like_tree(state.grad_sums),
      valid_steps=jnp.zeros_like(state.valid_steps),
      state_sums=_zeros_like_tree(state.state_sums),
      state_counts=jnp.zeros_like(state.state_counts),
      loss_sum=jnp.zeros_like(state.loss_sum))
  return result, cleared

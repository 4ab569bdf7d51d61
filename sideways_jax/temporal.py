"""Temporal stages: state carried from one frame to the next, explicitly.

A frame stage maps one frame of every clip, [B, ...], to [B, ...] with
`__call__(x, train)`. A temporal stage also takes and returns a **carry**,
the state it keeps between the frames of a clip:

    init_carry(x) -> carry_spec       # x: its input [B, ...] (a
                                      # ShapeDtypeStruct); leaves with
                                      # .shape and .dtype
    __call__(x, carry, train) -> (y, carry)

The engine keeps one carry per stage, starts it at zeros at every new clip
(episode), hands the stage its carry at each real input and keeps the carry
the stage returns (docs/algorithm.md, "Temporal stages"). Carries are not
mutable collections: a stage's variables hold only 'params' and per-frame
statistics.

Two optional methods tell the algorithms more about the carry:

    carry_input_cotangent(carry_cotangent) -> like x
        The carry holds the stage's earlier inputs (a window): the cotangent
        those inputs got, mapped onto the current input. Sideways' option
        `window_cotangents='sum'` adds it to the current input's cotangent
        (the smooth-input approximation); without this method the carry is
        a recurrent state whose cotangent is dropped.
    window_carries(xs) -> carries
        The carry each frame of xs [K, B, ...] sees, built from the inputs
        alone (stacked on a leading K axis). It lets exact BP run all frames
        at once (`bp_grads(mode='batched')`); a stage without it (a
        recurrent cell) needs `mode='scanned'`.

`Window` and its helpers implement both for a window of the stage's last T
inputs, started by repeating the first input the stage sees (as if the
clip had been still before it began). Wrappers that hold the user's module
as `.stage` (`sideways_jax.Precision`, `sideways_jax.flax_stages`) are
looked through.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

# Sideways' rule for the cotangents of a window's earlier inputs.
WINDOW_COTANGENTS = ('sum', 'drop')


def check_window_cotangents(rule: str) -> None:
  """Raises a ValueError unless `rule` is 'sum' or 'drop'."""
  if rule not in WINDOW_COTANGENTS:
    raise ValueError(
        f"window_cotangents must be 'sum' or 'drop', got {rule!r}")


def interface(stage: Any) -> Any | None:
  """The object that defines `stage`'s carry (it, or a module it wraps).

  None for a frame stage. A couple of attribute lookups: cheap enough to
  run whenever a chain is validated or traced.
  """
  while stage is not None:
    if callable(getattr(stage, 'init_carry', None)):
      return stage
    stage = getattr(stage, 'stage', None)
  return None


def is_temporal(stage: Any) -> bool:
  """Whether `stage` carries state across frames (has `init_carry`)."""
  return interface(stage) is not None


def zero_carry(stage: Any, x: Any) -> Any:
  """The carry `stage` starts every clip with, for inputs shaped like x.

  Zeros shaped as `init_carry` says (the engine resets carries by zeroing
  them, so the start is zeros by definition); None for a frame stage.
  """
  owner = interface(stage)
  if owner is None:
    return None
  spec = owner.init_carry(jax.ShapeDtypeStruct(jnp.shape(x),
                                               jnp.result_type(x)))
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), spec)


def carry_args(stage: Any, x: Any) -> tuple:
  """(the clip-start carry,) for a temporal stage; () for a frame stage.

  What follows x in a call that initialises or traces the stage.
  """
  carry = zero_carry(stage, x)
  return () if carry is None else (carry,)


def has_window(stage: Any) -> bool:
  """Whether the stage's carry holds earlier inputs (a window)."""
  owner = interface(stage)
  return owner is not None and callable(
      getattr(owner, 'carry_input_cotangent', None))


def carry_input_cotangent(stage: Any, carry_cotangent: Any) -> jax.Array:
  """The cotangent of a window's earlier inputs, mapped onto the input."""
  return interface(stage).carry_input_cotangent(carry_cotangent)


def can_batch(stage: Any) -> bool:
  """A frame stage, or a temporal one whose carries come from its inputs."""
  owner = interface(stage)
  return owner is None or callable(getattr(owner, 'window_carries', None))


def window_carries(stage: Any, xs: jax.Array) -> Any:
  """Every frame's carry from the stage's inputs xs [K, B, ...]."""
  return interface(stage).window_carries(xs)


def like(new: Any, old: Any) -> Any:
  """`new` cast leaf by leaf to `old`'s dtypes (a scan's carry is fixed)."""
  return jax.tree.map(lambda n, o: jnp.asarray(n).astype(o.dtype), new, old)


# ---- windows: a carry holding the stage's last T - 1 inputs ---------------


class Window(NamedTuple):
  """The earlier inputs a window stage keeps between frames.

  Attributes:
    frames: T - 1 arrays [B, ...]: the previous inputs, oldest first (one
      array each: a stacked window costs copies in every step).
    started: bool []: the window has seen a real input since the reset.
  """
  frames: tuple[Any, ...]
  started: Any


def window_spec(x: Any, length: int) -> Window:
  """`init_carry` of a window of `length` inputs shaped like x [B, ...]."""
  if length < 1:
    raise ValueError(f'a temporal window needs length >= 1, got {length}')
  frame = jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)
  return Window(frames=(frame,) * (length - 1),
                started=jax.ShapeDtypeStruct((), jnp.bool_))


def window_push(window: Window,
                x: jax.Array) -> tuple[tuple[jax.Array, ...], Window]:
  """The full window (T arrays, oldest first, x last) and the next carry.

  A fresh window (right after a reset) is filled with copies of x: the
  clip is taken to have been still before its first frame, so a clip of
  identical frames gives every frame the same window.
  """
  frames = tuple(f.astype(x.dtype) for f in window.frames)
  # A select, not lax.cond: under shard_map the carry and x may vary over
  # different mesh axes, which cond's branches must not.
  earlier = tuple(jnp.where(window.started, f, x) for f in frames)
  full = (*earlier, x)
  return full, Window(frames=full[1:], started=jnp.ones((), jnp.bool_))


def window_cotangent(cotangent: Window) -> jax.Array:
  """The earlier inputs' cotangents summed (the smooth-input rule)."""
  return sum(cotangent.frames, jnp.zeros((), jnp.float32))


def window_history(xs: jax.Array, length: int) -> Window:
  """The window every frame of xs [K, B, ...] sees, each array on K.

  Frame s sees xs[s-T+1 .. s-1], with xs[0] repeated before the clip (as
  `window_push` does), so applying the stage to (xs[s], history[s]) for
  all s at once is the scanned forward, differentiable through xs.
  """
  num_frames = xs.shape[0]
  padded = jnp.concatenate(
      [jnp.broadcast_to(xs[:1], (length - 1, *xs.shape[1:])), xs], axis=0)
  # Slot j of frame s holds padded[s + j] = xs[s - (T - 1) + j].
  return Window(frames=tuple(padded[j:j + num_frames]
                             for j in range(length - 1)),
                started=jnp.ones((num_frames,), jnp.bool_))

"""Staleness corrections and the gradient-cosine diagnostic."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sideways_jax import streaming
import streaming_testlib as lib


def test_delays_and_delay_factor_by_hand():
  assert streaming.sideways_delays(4) == (6, 4, 2, 0)
  g = {'w': jnp.array([2.0, -4.0])}
  # power 1, annealed over 4 updates: 6^-1, 6^-0.75, ..., then 1.
  tx = streaming.scale_by_delay(6, power=1.0, anneal_steps=4)
  state = tx.init(g)
  for k in range(6):
    out, state = tx.update(g, state)
    np.testing.assert_allclose(out['w'], g['w'] * 6.0 ** -(1 - min(k / 4, 1)),
                               rtol=1e-6)
  top = streaming.scale_by_delay(0)  # No delay: the identity.
  out, _ = top.update(g, top.init(g))
  np.testing.assert_array_equal(out['w'], g['w'])
  with pytest.raises(ValueError, match='delay'):
    streaming.scale_by_delay(-1)


def test_spike_compensation_by_hand_and_identity_without_delay():
  b1, b2, lr = 0.9, 0.999, 0.1
  grads = [jnp.array([1.0]), jnp.array([-2.0]), jnp.array([0.5])]
  params = jnp.zeros((1,))
  plain, sc0 = optax.adam(lr), streaming.spike_compensated_adam(lr, 0)
  s_plain, s_sc0 = plain.init(params), sc0.init(params)
  for g in grads:  # Delay 0 is Adam.
    u_plain, s_plain = plain.update(g, s_plain)
    u_sc0, s_sc0 = sc0.update(g, s_sc0)
    np.testing.assert_allclose(u_sc0, u_plain, rtol=1e-6)
  # Delay 2, second step by hand: mu = 0.9*0.1*1 + 0.1*(-2) = -0.11,
  # mu_hat = -0.11/0.19; nu = 0.999*0.001 + 0.001*4, nu_hat = nu/(1-0.999^2).
  sc = streaming.spike_compensated_adam(lr, 2)
  state = sc.init(params)
  _, state = sc.update(grads[0], state)
  update, _ = sc.update(grads[1], state)
  mu_hat = -0.11 / 0.19
  nu_hat = (0.999 * 0.001 + 0.004) / (1 - 0.999 ** 2)
  keep = b1 ** 2
  want = -lr * (keep * mu_hat + (1 - keep) * -2.0) / (np.sqrt(nu_hat) + 1e-8)
  np.testing.assert_allclose(update, [want], rtol=1e-5)
  u_plain2 = optax.adam(lr).update(grads[1], optax.adam(lr).update(
      grads[0], optax.adam(lr).init(params))[1])[0]
  assert abs(float(update[0])) > abs(float(u_plain2[0]))  # The spike.


def test_per_stage_optimizers_change_only_what_they_scale():
  """Stage-wise 1/delay scaling: the first update of each stage shrinks by
  exactly its delay; the top stage (delay 0) moves as with plain Adam."""
  num_stages, lr = 3, 0.05
  stages, variables = lib.tiny_chain(num_stages)
  video = lib.random_video(2 * num_stages - 1)  # One update per stage.
  plain = optax.adam(lr)
  scaled = tuple(optax.chain(optax.adam(lr), streaming.scale_by_delay(d))
                 for d in streaming.sideways_delays(num_stages))
  runs = {}
  for name, opt in (('plain', plain), ('scaled', scaled),
                    ('one_per_stage', (plain,) * num_stages)):
    learner, _ = streaming.sideways_train_video(
        stages, opt, lib.init_learner(variables, opt), video)
    runs[name] = learner
  for a, b in zip(jax.tree.leaves(runs['plain'].params),
                  jax.tree.leaves(runs['one_per_stage'].params)):
    np.testing.assert_array_equal(a, b)  # Off: exactly the same numbers.
  # Stage i of 3 gets its first gradient at step 2(D-1)-i of 5: 1, 2, 3
  # updates (counted by each stage's scale_by_delay state).
  assert [int(s[1].count) for s in runs['scaled'].opt_state] == [1, 2, 3]
  # Stage 0 took one update: Adam's first step moves every weight by the
  # learning rate (g / |g|), scaled by 1/delay = 1/4 here.
  start = variables[0]['params']
  for name, size in (('plain', lr), ('scaled', lr / 4)):
    for a, b in zip(jax.tree.leaves(runs[name].params[0]),
                    jax.tree.leaves(start)):
      np.testing.assert_allclose(np.abs(a - b), size, rtol=1e-3)
  # The top stage's inputs in this short video were all computed before any
  # lower stage moved, so with delay 0 it follows plain Adam exactly.
  for a, b in zip(jax.tree.leaves(runs['scaled'].params[2]),
                  jax.tree.leaves(runs['plain'].params[2])):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  with pytest.raises(ValueError, match='optimizers for 3 stages'):
    lib.init_learner(variables, (plain,) * 2)


def test_gradient_cosines():
  """Frozen weights: exact on a still video (every stage), and for the top
  stage on any video (target 'origin'); NaN where a stage took no update."""
  num_stages, num_frames = 3, 8
  stages, variables = lib.tiny_chain(num_stages)
  frozen = optax.sgd(0.0)
  learner = lib.init_learner(variables, frozen)
  still = jnp.broadcast_to(lib.random_video(1), (num_frames, 2, 3))
  moving = lib.random_video(num_frames)
  fn = jax.jit(lambda l, v: streaming.gradient_cosines(
      stages, frozen, l, v, target_alignment='origin'))
  _, cos_still = fn(learner, still)
  _, cos_moving = fn(learner, moving)
  cos_still, cos_moving = np.asarray(cos_still), np.asarray(cos_moving)
  for i in range(num_stages):
    first = 2 * (num_stages - 1) - i  # Stage i's first real gradient.
    assert np.isnan(cos_still[:first, i]).all()
    np.testing.assert_allclose(cos_still[first:, i], 1.0, atol=1e-5)
  np.testing.assert_allclose(cos_moving[2:, -1], 1.0, atol=1e-5)
  assert np.nanmin(cos_moving[:, 0]) < 0.999  # Bottom: mixed frames.

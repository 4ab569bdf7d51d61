"""`grad_fn`: one call signature for every algorithm, options bound by name.

The bound options are exercised numerically where they matter:
`test_bp_batched_equals_bp_scanned` (mode) and
`test_origin_alignment_uses_target_of_the_output_frame` (target_alignment)
call the engine through `grad_fn`.
"""

import inspect

import pytest

import sideways_jax as sj
from sideways_jax import algorithms as registry


def test_every_algorithm_has_one_signature():
  expected = ['stages', 'variables', 'clip', 'targets', 'loss_fn', 'rng',
              'train']
  signatures = []
  for name in registry.DEVICE_ALGORITHMS:
    signature = inspect.signature(sj.grad_fn(name))
    assert list(signature.parameters) == expected
    signatures.append(signature)
  assert all(s == signatures[0] for s in signatures)
  assert sorted(registry.OPTIONS) == sorted(sj.ALGORITHMS)
  assert set(registry.DEVICE_ALGORITHMS) <= set(registry.MESH_ALGORITHMS)


def test_options_are_keywords_of_the_algorithm():
  for name in registry.DEVICE_ALGORITHMS:
    parameters = inspect.signature(sj.ALGORITHMS[name].grads).parameters
    for option in registry.ALGORITHMS[name].defaults('device'):
      assert parameters[option].kind == inspect.Parameter.KEYWORD_ONLY
  # BP has no lag, so it takes no target alignment.
  assert 'target_alignment' not in inspect.signature(sj.bp_grads).parameters


@pytest.mark.parametrize('name, option, value', [
    ('bp', 'target_alignment', 'current'),
    ('sideways', 'mode', 'scanned'),
    ('sideways', 'lr', 0.1),
])
def test_an_option_of_another_algorithm_is_refused(name, option, value):
  accepted = list(registry.OPTIONS[name])
  with pytest.raises(ValueError) as error:
    sj.grad_fn(name, **{option: value})
  message = str(error.value)
  assert repr(name) in message and option in message
  assert str(accepted) in message


def test_bad_option_values_and_unknown_names_are_refused():
  with pytest.raises(ValueError, match=r"mode must be one of \('batched', "
                                       r"'scanned'\), got 'chunked'"):
    sj.grad_fn('bp', mode='chunked')
  with pytest.raises(ValueError, match=r"\('current', 'origin'\)"):
    sj.grad_fn('sideways', target_alignment='future')
  with pytest.raises(ValueError, match=r"unknown algorithm 'backprop'.*"
                                       r"\['bp', 'sideways', 'bp_data'"):
    sj.grad_fn('backprop')
  with pytest.raises(ValueError, match="did you mean 'sideways'"):
    sj.grad_fn('sidewyas')
  # A mesh-only layout of BP is refused on one device, naming the choice.
  with pytest.raises(ValueError, match=r"'bp_gpipe' needs a mesh.*"
                                       r"\['bp', 'sideways'\]"):
    sj.grad_fn('bp_gpipe')


def test_options_a_placement_does_not_use_are_left_out():
  # BP on a mesh runs frame by frame: `mode` is accepted (a config carries
  # every option) but not passed on, and what runs is what is returned.
  assert registry.resolve_options('bp', {'mode': 'scanned'}, 'mesh') == {
      'unroll': 1}
  assert registry.resolve_options('bp', {'mode': 'scanned'}, 'device') == {
      'mode': 'scanned', 'unroll': 1}
  with pytest.raises(ValueError, match="mode must be one of"):
    registry.resolve_options('bp_data', {'mode': 'chunked'}, 'mesh')


def test_options_cannot_be_passed_at_call_time():
  # Refused by the signature itself, before any argument is looked at.
  with pytest.raises(TypeError, match='mode'):
    sj.grad_fn('bp')(None, None, None, None, None, mode='scanned')
  with pytest.raises(TypeError, match='target_alignment'):
    sj.grad_fn('sideways')(None, None, None, None, None,
                           target_alignment='origin')

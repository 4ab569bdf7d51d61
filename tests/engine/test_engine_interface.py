"""`grad_fn`: one call signature for every algorithm, options bound by name.

The bound options are exercised numerically where they matter:
`test_bp_batched_equals_bp_scanned` (mode) and
`test_origin_alignment_uses_target_of_the_output_frame` (target_alignment)
call the engine through `grad_fn`.
"""

import inspect

import pytest

import sideways_jax as sj
from sideways_jax import registry


def test_every_algorithm_has_one_signature():
  expected = ['stages', 'variables', 'clip', 'targets', 'loss_fn', 'rng',
              'train']
  signatures = []
  for name in sj.ALGORITHMS:
    signature = inspect.signature(sj.grad_fn(name))
    assert list(signature.parameters) == expected
    signatures.append(signature)
  assert all(s == signatures[0] for s in signatures)
  assert sorted(registry.OPTIONS) == sorted(sj.ALGORITHMS)


def test_options_are_keywords_of_the_algorithm():
  for name, options in registry.OPTIONS.items():
    parameters = inspect.signature(sj.ALGORITHMS[name]).parameters
    for option in options:
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
  with pytest.raises(ValueError, match="'batched' or 'scanned'"):
    sj.grad_fn('bp', mode='chunked')
  with pytest.raises(ValueError, match="'current' or 'origin'"):
    sj.grad_fn('sideways', target_alignment='future')
  with pytest.raises(ValueError, match=r"unknown algorithm 'backprop'.*"
                                       r"\['bp', 'sideways'\]"):
    sj.grad_fn('backprop')


def test_options_cannot_be_passed_at_call_time():
  # Refused by the signature itself, before any argument is looked at.
  with pytest.raises(TypeError, match='mode'):
    sj.grad_fn('bp')(None, None, None, None, None, mode='scanned')
  with pytest.raises(TypeError, match='target_alignment'):
    sj.grad_fn('sideways')(None, None, None, None, None,
                           target_alignment='origin')

"""The speed benchmark: configs, timing helpers and a tiny end-to-end run."""

import pytest

from configs import speed_simplecnn
from configs import speed_vgg8
from sideways_jax import parallel
from sideways_jax.parallel import speed
from sideways_jax.parallel import timing


@pytest.mark.parametrize('module', [speed_simplecnn, speed_vgg8])
@pytest.mark.parametrize('arg', [None, 'smoke', 'local2'])
def test_configs_build_settings(module, arg):
  config = module.get_config(arg)
  fields = config.to_dict()
  parallel.DistributedConfig(**fields.pop('distributed'))
  settings = speed.SpeedSettings(**fields)
  if arg is None:   # The paper's Table 2 setting.
    assert (settings.batch_size, settings.num_frames,
            settings.frame_size) == (8, 64, 112)
    assert (settings.num_steps, settings.repeats) == (100, 3)
    assert settings.num_stages == (6 if module is speed_simplecnn else 8)
  with pytest.raises(AttributeError):
    config.num_step = 3   # Locked: a typo is an error.


def test_config_rejects_unknown_argument():
  with pytest.raises(ValueError, match='unknown config argument'):
    speed_simplecnn.get_config('smok')


def test_settings_reject_bad_values():
  fields = speed_simplecnn.get_config().to_dict()
  del fields['distributed']
  for key, value, message in [('model', 'resnet', 'unknown model'),
                              ('partition', 'even', 'unknown partition'),
                              ('algorithms', ('bp',), 'algorithms')]:
    with pytest.raises(ValueError, match=message):
      speed.SpeedSettings(**{**fields, key: value})


def test_balance_bound():
  assert timing.balance_bound([1.0, 1.0, 1.0]) == pytest.approx(3.0)
  assert timing.balance_bound([3.0, 1.0]) == pytest.approx(4 / 3)


def test_time_steps_runs_every_step():
  calls = []

  def step(state):
    calls.append(state)
    return state + 1, state

  rate, cpu_share, final = timing.time_steps(step, 0, num_steps=4)
  assert rate > 0 and cpu_share >= 0
  assert final == 4 and calls == [0, 1, 2, 3]
  with pytest.raises(ValueError, match='num_steps'):
    timing.time_steps(step, 0, num_steps=0)


def test_speed_smoke_run(case_worker):
  results = case_worker.run('speed_smoke', config_file='speed_simplecnn')
  assert set(results['steps_per_s']) == {'bp_model', 'sideways'}
  assert all(r > 0 for r in results['steps_per_s'].values())
  assert results['speedup_vs_bp_model'] > 0
  assert len(results['stages']) == 2
  assert 1.0 <= results['balance_bound'] <= 2.0
  assert len(results['load_average']) == 3

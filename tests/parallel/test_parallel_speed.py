"""The speed runner: configs, errors, schedules, timing and a tiny run."""

import numpy as np
import pytest

from configs import speed_simplecnn
from configs import speed_vgg8
from sideways_jax import algorithms
from sideways_jax import parallel
from sideways_jax.experiments import common
from sideways_jax.experiments import speed
from sideways_jax.parallel import schedule
from sideways_jax.parallel import timing


@pytest.mark.parametrize('module', [speed_simplecnn, speed_vgg8])
@pytest.mark.parametrize('arg', [None, 'smoke', 'local2', 'local2,memory'])
def test_configs_pass_the_runner_checks(module, arg):
  config = module.get_config(arg)
  to_run, skipped = speed.check_config(config)
  assert speed.BASELINE == 'bp'   # model-parallel BP, the baseline, first
  # 8 clips do not split over 6 devices: the paper's Simple-CNN setting
  # runs BP data-parallel only with another batch size.
  assert list(skipped) == (['bp_data'] if (module, arg) == (
      speed_simplecnn, None) else [])
  assert to_run == tuple(a for a in algorithms.MESH_ALGORITHMS
                         if a not in skipped)
  parallel.DistributedConfig(**config.distributed.to_dict())
  if arg is None:   # The paper's Table 2 setting.
    assert (config.batch_size, config.data.clip_length,
            config.data.resolution) == (8, 64, 112)
    assert (config.timed_steps, config.repeats) == (100, 3)
    assert config.model.num_stages == (6 if module is speed_simplecnn else 8)
  with pytest.raises(AttributeError):
    config.timed_step = 3   # Locked: a typo is an error.
  config.model.num_stages = 3   # mesh.stages follows the model.
  assert config.mesh.stages == 3


def test_config_rejects_unknown_argument():
  with pytest.raises(ValueError, match='unknown config argument'):
    speed_simplecnn.get_config('smok')


@pytest.mark.parametrize('field,value,message', [
    ('algorithm', 'bp_model', 'choose one of'),
    ('model.name', 'resnet', "model.name: unknown layers model 'resnet'"),
    ('model.partition', 'even', 'model.partition'),
    ('mesh.stages', 3, 'mesh.stages=3 but model.num_stages=2'),
    ('mesh.data', 3, "batch_size=4 does not split over the 3 batch shards "
                     "of 'sideways'"),
    ('data.clip_length', 2, 'sideways: .*at least 2D-1=3 frames, got K=2'),
    ('options.bp_data.mode', 'fast', "bp_data: mode.*'fast'"),
])
def test_bad_config_raises_config_error_before_compiling(field, value,
                                                         message):
  config = common.with_field(speed_simplecnn.get_config('smoke'), field,
                             value)
  with pytest.raises(common.ConfigError, match=message):
    speed.check_config(config)


def test_schedules_do_each_frame_once_in_order():
  k, d = 6, 3
  programs = {name: algorithms.get(name).load_mesh_program()
              for name in algorithms.MESH_ALGORITHMS}
  ticks = {'bp': 2 * d * k, 'sideways': k, 'bp_gpipe': 2 * (k + d - 1),
           'bp_1f1b': k + 2 * (d - 1)}
  # The picture draws every mesh algorithm's table (bp_data has none).
  assert [title.split(':')[0] for title, _ in speed.schedules(d)] == [
      n for n in algorithms.MESH_ALGORITHMS if n in ticks]
  assert programs['bp_data'].schedule is None
  for name, expected in ticks.items():
    table = programs[name].schedule(k, d)
    assert table.num_ticks == expected, name
    for i in range(d):
      fwd = table.forward[:, i][table.forward[:, i] >= 0].tolist()
      bwd = table.backward[:, i][table.backward[:, i] >= 0].tolist()
      if table.idle_runs:   # Sideways: real frames only; warm-up on zeros.
        assert fwd == list(range(k - i))
        assert bwd == list(range(k - 2 * (d - 1) + i))
        continue
      assert fwd == bwd == list(range(k)), (name, i)
      for f in range(k):   # A backward after its forward, down the chain.
        tf = np.nonzero(table.forward[:, i] == f)[0][0]
        tb = np.nonzero(table.backward[:, i] == f)[0][0]
        assert tb >= tf
        if i < d - 1:
          assert tb > np.nonzero(table.backward[:, i + 1] == f)[0][0]
          assert np.nonzero(table.forward[:, i + 1] == f)[0][0] > tf
  # One device busy at a time under BP model-parallel.
  bp = programs['bp'].schedule(k, d)
  assert ((bp.forward >= 0) | (bp.backward >= 0)).sum(1).max() == 1
  # Stored frames: K for GPipe, 2(D-1) - 1 for 1F1B whatever K.
  assert schedule.buffer_depths(schedule.gpipe_schedule(16, 4)) == (16, 1)
  for k in (8, 32):
    assert schedule.buffer_depths(
        schedule.one_f_one_b_schedule(k, 4)) == (5, 1)


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


def test_speed_smoke_run(case_worker, tmp_path):
  results = case_worker.run('speed_smoke', config_file='speed_simplecnn',
                            workdir=str(tmp_path))
  assert list(results['steps_per_s']) == list(algorithms.MESH_ALGORITHMS)
  assert all(r > 0 for r in results['steps_per_s'].values())
  assert results['vs_baseline']['bp'] == 1.0
  assert set(results['fraction_of_balance_bound']) == {
      'bp_gpipe', 'bp_1f1b', 'sideways'}
  assert len(results['stages']) == 2
  assert 1.0 <= results['balance_bound'] <= 2.0
  assert len(results['load_average']) == 3
  assert (tmp_path / 'results.json').is_file()
  assert (tmp_path / 'schedule.png').stat().st_size > 1000
  # What the programs allocate (the clip, an argument, grows for all): GPipe
  # stores every frame's input, so it grows with K; the others store no
  # activation per frame (the top's [K, B, classes] outputs aside).
  memory = {a: {int(k): m['temp_bytes'] for k, m in by_k.items()}
            for a, by_k in results['memory'].items()}
  assert memory['bp_gpipe'][8] > memory['bp_gpipe'][4] + 1000
  for algorithm in ('bp', 'bp_1f1b', 'sideways'):
    assert memory[algorithm][8] - memory[algorithm][4] < (
        memory['bp_gpipe'][8] - memory['bp_gpipe'][4]) / 4, memory

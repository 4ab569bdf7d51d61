"""Metric logs, the progress bar and the plots."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from sideways_jax.experiments import classification as train
from sideways_jax.experiments.classification import plots
from sideways_jax.experiments.classification import progress as progress_lib


def test_metric_writer_resumes_from_the_checkpoints_records(tmp_path):
  with train.MetricWriter(tmp_path, tensorboard=True) as w:
    for step in (1, 2, 3):
      w.write(step, 'train', {'loss': 1.0 / step})
    w.write(2, 'eval', {'video_accuracy': 0.5, 'loss': math.nan})
  assert [r['step'] for r in train.read_metrics(tmp_path, 'train')] == [1, 2, 3]
  assert train.read_metrics(tmp_path, 'eval')[0]['loss'] is None  # NaN
  assert list((tmp_path / 'tensorboard').glob('events.out.tfevents.*'))
  # Resumed at step 2 with what checkpoint 2 logged: the file holds exactly
  # that, then the new records.
  kept = [r for r in train.read_metrics(tmp_path) if r['step'] <= 2]
  with train.MetricWriter(tmp_path, records=kept, resume_step=2,
                          tensorboard=False) as w:
    assert train.read_metrics(tmp_path) == kept
    w.write(3, 'train', {'loss': 7.0})
  records = train.read_metrics(tmp_path)
  assert [(r['step'], r['split']) for r in records] == [
      (1, 'train'), (2, 'train'), (2, 'eval'), (3, 'train')]
  assert records[-1]['loss'] == 7.0


def test_progress_shows_rate_and_eta(monkeypatch):
  clock = iter([0.0, 10.0, 10.0])
  monkeypatch.setattr(progress_lib.time, 'perf_counter', lambda: next(clock))
  out = io.StringIO()
  bar = train.Progress(100, initial=0, desc='sideways', stream=out,
                       log_interval=0.0)
  bar.update(0)
  bar.update(20, 'loss 1.2345')
  line = out.getvalue().splitlines()[-1]
  assert '20/100' in line and '2.00 steps/s' in line
  assert 'ETA 40s' in line and 'loss 1.2345' in line
  assert progress_lib.format_duration(3725) == '1h02m'


def _fake_run(path, losses, eval_acc):
  with train.MetricWriter(path, tensorboard=False) as w:
    for step, loss in enumerate(losses, 1):
      w.write(step, 'train', {'loss': loss, 'video_accuracy': 1 / loss})
    w.write(len(losses), 'eval', {'video_accuracy': eval_acc})


def test_plots_for_a_comparison_and_a_sweep(tmp_path):
  _fake_run(tmp_path / 'cmp' / 'bp', [3, 2, 1.5], 0.4)
  _fake_run(tmp_path / 'cmp' / 'sideways', [3, 2.5, 1.2], 0.5)
  figures = train.make_plots(tmp_path / 'cmp')
  assert [f.name for f in figures] == ['training_dynamics.png']
  assert figures[0].stat().st_size > 10_000
  for stride in (2, 10, 3):
    for algorithm in ('bp', 'sideways'):
      _fake_run(tmp_path / 'sweep' / f'stride={stride}' / algorithm,
                [4, 3, 2 + stride / 10], 0.3)
  figures = train.make_plots(tmp_path / 'sweep', tmp_path / 'out')
  names = sorted(f.name for f in figures)
  assert names[0] == 'stride_sweep.png' and len(names) == 4
  assert all(f.parent == tmp_path / 'out' for f in figures)
  with pytest.raises(FileNotFoundError, match='no run logs'):
    train.make_plots(tmp_path / 'empty')


def test_smooth_ignores_nans():
  np.testing.assert_allclose(plots.smooth([1, 3, math.nan, 5], 2),
                             [1, 2, 3, 5])

"""Bad setups fail early with messages that say what to change."""

import re

import pytest


@pytest.mark.parametrize('kind,message', [
    ('stage_axis', r"2 stages but the mesh's 'stage' axis has 3 devices"),
    ('data_batch', r"batch of 4 clips does not split evenly over the 'data' "
                   r'axis of size 3'),
    ('too_many_devices', r'needs 9 devices, but only 8 are available'),
    ('short_clip', r'at least 2D-1=3 frames, got K=2'),
    ('wrong_batch_at_call', r'built for batches of 4 clips, got 2'),
    ('option_elsewhere', r"'sideways' does not take option 'mode'.*is an "
                         r"option of \['bp', 'bp_data'\]"),
    ('option_value', r"target_alignment must be one of .*got 'future'"),
    # 'bp' on a mesh is model-parallel BP; the old word is not silently kept.
    ('old_name', r"unknown algorithm 'bp_model'"),
    ('temporal_pipeline', r"bp_gpipe and bp_1f1b treat the frames of a clip "
     r"as independent micro-batches.*use 'bp'"),
])
def test_bad_setup_raises_clear_error(case_worker, kind, message):
  error = case_worker.run('setup_error', kind=kind)
  assert error, f'{kind}: no error was raised'
  assert re.search(message, error), error

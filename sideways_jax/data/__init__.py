"""Video data: dataset readers, synthetic sets, clip sampling and the loader.

Typical use:

    source = make_source('ucf101', split='train', root=None, clip_length=64,
                         stride=2, resolution=112, train=True)
    with make_loader(source, batch_size=8, seed=0, train=True) as loader:
      batch = next(loader)   # {'video': uint8 [K,B,H,W,3], 'label': [B], 'mask': [K,B]}
      x = normalize_video(batch['video'])   # on device, inside the step

`data.name` in a config is a name of `registry.SOURCES` or an import path
'my_pkg.my_module:make_source' (see `registry`); `cache_source` keeps a
deterministic source's examples in memory.
"""

from sideways_jax.data.cache import cache_source
from sideways_jax.data.cache import CachedSource
from sideways_jax.data.cater import cater_entries
from sideways_jax.data.cater import cater_source
from sideways_jax.data.files import VideoEntry
from sideways_jax.data.files import VideoFileSource
from sideways_jax.data.folder import folder_entries
from sideways_jax.data.folder import folder_source
from sideways_jax.data.hmdb51 import hmdb51_entries
from sideways_jax.data.hmdb51 import hmdb51_source
from sideways_jax.data.loader import ClipLoader
from sideways_jax.data.loader_stats import LoaderStats
from sideways_jax.data.loader import make_loader
from sideways_jax.data.normalize import normalize_video
from sideways_jax.data.registry import get_source_builder
from sideways_jax.data.registry import make_source
from sideways_jax.data.registry import SOURCE_NAMES
from sideways_jax.data.registry import SOURCES
from sideways_jax.data.sampling import ClipSpec
from sideways_jax.data.sampling import clip_frame_indices
from sideways_jax.data.sampling import sample_clip
from sideways_jax.data.source import AllVideosUnreadable
from sideways_jax.data.source import ClipSource
from sideways_jax.data.source import DatasetLayoutError
from sideways_jax.data.source import UnreadableVideosError
from sideways_jax.data.source import VideoReadError
from sideways_jax.data.source import default_data_root
from sideways_jax.data.synthetic import CaterLikeStream
from sideways_jax.data.synthetic import MovingShapes
from sideways_jax.data.synthetic import RandomVideos
from sideways_jax.data.synthetic import TexturedObjects
from sideways_jax.data.tfds_ucf101 import TfdsUcf101Source
from sideways_jax.data.ucf101 import ucf101_entries
from sideways_jax.data.ucf101 import ucf101_source
from sideways_jax.data.video import read_video_frames

__all__ = [
    'AllVideosUnreadable',
    'CachedSource',
    'CaterLikeStream',
    'ClipLoader',
    'ClipSource',
    'ClipSpec',
    'DatasetLayoutError',
    'LoaderStats',
    'MovingShapes',
    'RandomVideos',
    'SOURCES',
    'SOURCE_NAMES',
    'TexturedObjects',
    'TfdsUcf101Source',
    'UnreadableVideosError',
    'VideoEntry',
    'VideoFileSource',
    'VideoReadError',
    'cache_source',
    'cater_entries',
    'cater_source',
    'clip_frame_indices',
    'default_data_root',
    'folder_entries',
    'folder_source',
    'get_source_builder',
    'hmdb51_entries',
    'hmdb51_source',
    'make_loader',
    'make_source',
    'normalize_video',
    'read_video_frames',
    'sample_clip',
    'ucf101_entries',
    'ucf101_source',
]

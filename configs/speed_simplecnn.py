"""Training speed of Simple-CNN on D devices (paper Table 2, first row).

  python experiments/speed.py --config=configs/speed_simplecnn.py

BP model-parallel (the paper's baseline), BP data-parallel, GPipe, 1F1B and
Sideways on the same devices, with random-number videos, and each one's
memory per device. Defaults are the paper's: one device per stage (6),
batches of 8 clips x 64 frames x 112x112, 100 steps x 3 repeats, best
average (paper: BP 1.7, Sideways 8.4 steps/s on 6 V100s).
Arguments after the file name (comma-separated):
  :smoke   a few tiny steps on 2 fake CPU devices (checks the pipeline);
  :local2  D = 2 sized for one CPU core per device, for two local processes
           pinned to one core each (benchmarks/parallel_speed_local.sh);
  :memory  compile only (repeats=0): memory per device at K = 8 ... 64 on
           fake CPU devices in one process (combine with local2 for D = 2).
Multi-host: set --config.distributed.* (see WORKSPACE.md).
"""

import ml_collections

from configs import common

ARGS = ('smoke', 'local2', 'memory')


def base_config() -> ml_collections.ConfigDict:
  """The fields every speed config has (the speed runner reads them all)."""
  c = ml_collections.ConfigDict()
  c.runner = 'speed'
  # A mesh algorithm of sideways_jax.algorithms ('bp' is model-parallel BP,
  # the paper's baseline); with compare=True all of them run side by side
  # (the baseline first).
  c.algorithm = 'sideways'
  c.compare = True
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  # A model with a 'layers' builder (sideways_jax.models.registry).
  c.model.name = 'simple_cnn'
  c.model.num_stages = 6  # = devices per pipeline (paper: 6 GPUs).
  c.model.kwargs = ml_collections.ConfigDict()  # More builder arguments.
  c.model.kwargs.impl = 'auto'  # im2col convolutions on CPU, native elsewhere.
  # How layers become stages: 'layers' one per stage (paper), 'flops'
  # FLOP-balanced, 'measured' balanced by timed layer costs, 'explicit' uses
  # `boundaries` (indices of the layers that open a stage).
  c.model.partition = 'layers'
  c.model.boundaries = ()

  c.data = ml_collections.ConfigDict()
  c.data.clip_length = 64  # Paper Table 2.
  c.data.resolution = 112  # Paper Table 2.
  c.data.num_classes = 101  # UCF101's classes (only the last layer's width).

  c.batch_size = 8  # Paper Table 2.
  # Timed steps (one clip and one optimizer update each) per repeat (paper:
  # 100, best of 3).
  c.timed_steps = 100
  c.repeats = 3  # 0: compile and size only (no timing).
  c.cost_iters = 20  # Timed calls per stage for the per-stage cost table.
  # Memory per device (compiled program, nothing runs) at these clip
  # lengths, beside the timed one.
  c.memory_clip_lengths = (8, 16, 32, 64)
  # Every algorithm's options, with the table's defaults (bp_data processes
  # frames one by one, like the rest: options.bp_data.mode='scanned').
  c.options = common.algorithm_options()
  c.optimizer = ml_collections.ConfigDict()
  # SGD + momentum 0.9; speed does not depend on the learning rate.
  c.optimizer.learning_rate = 1e-3

  # One stage per stage-device: mesh.stages follows model.num_stages.
  common.mesh_and_distributed(c, stages=c.model.get_ref('num_stages'))
  return c


def apply_args(c: ml_collections.ConfigDict, options) -> None:
  """The :smoke, :local2 and :memory variants, shared by both configs."""
  if 'smoke' in options:
    c.model.num_stages = 2
    c.model.partition = 'flops'
    c.batch_size = 4
    c.data.clip_length = 4
    c.data.resolution = 32
    c.timed_steps = 2
    c.repeats = 1
    c.cost_iters = 1
    c.memory_clip_lengths = (4, 8)
    c.distributed.num_cpu_devices = 2  # Fake devices: one process suffices.
  if 'local2' in options:
    # One core per device, so clips are shortened and steps fewer to keep a
    # run to minutes; the paper's batch and resolution are kept.
    c.model.num_stages = 2
    c.model.partition = 'measured'  # Balance what each core really spends.
    c.data.clip_length = 16
    c.timed_steps = 2  # ~7 s (Sideways) and ~13 s (BP) per repeat.
    c.repeats = 3
    c.cost_iters = 5
    c.memory_clip_lengths = ()  # Sized by :memory, in its own run.
  if 'memory' in options:
    c.repeats = 0
    c.memory_clip_lengths = (8, 16, 32, 64)
    if 'local2' in options:
      c.model.partition = 'flops'  # 'measured' would time layers.
    c.distributed.num_cpu_devices = (c.mesh.get_ref('data')
                                     * c.model.get_ref('num_stages'))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = common.parse_arg(arg, known=ARGS)
  c = base_config()
  if 'smoke' in options:
    c.model.kwargs.channels = (4, 4, 8, 8, 8)
  apply_args(c, options)
  c.lock()
  return c

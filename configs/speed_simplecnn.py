"""Training speed of Simple-CNN on D devices (paper Table 2, first row).

  python experiments/speed.py --config=configs/speed_simplecnn.py

BP model-parallel (the paper's baseline), BP data-parallel and Sideways on
the same devices, with random-number videos. Defaults are the paper's: one
device per stage (6), batches of 8 clips x 64 frames x 112x112, 100 steps x 3
repeats, best average (paper: BP 1.7, Sideways 8.4 steps/s on 6 V100s).
Arguments after the file name:
  :smoke   a few tiny steps on 2 fake CPU devices (checks the pipeline);
  :local2  D = 2 sized for one CPU core per device, for two local processes
           pinned to one core each (benchmarks/parallel_speed_local.sh).
Multi-host: set --config.distributed.* (see WORKSPACE.md).
"""

import ml_collections

from configs import common

ARGS = ('smoke', 'local2')


def parse_arg(arg: str | None) -> frozenset[str]:
  """The speed configs' `:arg` words (see the module docstring)."""
  return common.parse_arg(arg, known=ARGS)


def base_config() -> ml_collections.ConfigDict:
  """The fields every speed config has (read by sideways_jax.parallel.speed)."""
  c = ml_collections.ConfigDict()
  c.model = 'simple_cnn'  # 'simple_cnn' or 'vgg8'.
  c.model_kwargs = ml_collections.ConfigDict()  # More builder arguments.
  c.model_kwargs.impl = 'auto'  # im2col convolutions on CPU, native elsewhere.
  c.num_classes = 101  # UCF101's classes (only the last layer's width).
  c.num_stages = 6  # Stage-axis size = devices per pipeline (paper: 6 GPUs).
  c.num_data = 1  # Data-axis size: pipelines side by side (paper: 1).
  # How layers become stages: 'layers' one per stage (paper), 'flops'
  # FLOP-balanced, 'measured' balanced by timed layer costs, 'explicit' uses
  # `boundaries` (indices of the layers that open a stage).
  c.partition = 'layers'
  c.boundaries = ()
  c.batch_size = 8  # Paper Table 2.
  c.num_frames = 64  # Paper Table 2.
  c.frame_size = 112  # Paper Table 2.
  c.algorithms = ('bp_model', 'bp_data', 'sideways')
  c.num_steps = 100  # Paper: 100 steps, 3 repeats, the best average.
  c.repeats = 3
  c.cost_iters = 20  # Timed calls per stage for the per-stage cost table.
  c.learning_rate = 1e-3  # SGD + momentum 0.9; speed does not depend on it.
  c.bp_mode = 'scanned'  # bp_data processes frames one by one, like the rest.
  c.seed = 0
  c.output = ''  # JSON file for the results ('' = print only).

  # sideways_jax.parallel.DistributedConfig; one process by default.
  c.distributed = ml_collections.ConfigDict()
  c.distributed.coordinator_address = ''  # 'host:port' of process 0.
  c.distributed.num_processes = 1
  c.distributed.process_id = 0
  c.distributed.auto_detect = False  # True on SLURM / TPU VM pods.
  c.distributed.initialization_timeout_s = 300
  c.distributed.heartbeat_timeout_s = 100
  c.distributed.shutdown_timeout_s = 300
  c.distributed.cpu_collectives = 'gloo'
  c.distributed.num_cpu_devices = 0  # CPU devices per process; 0 = default.
  return c


def apply_args(c: ml_collections.ConfigDict, options) -> None:
  """The :smoke and :local2 variants, shared by both speed configs."""
  if 'smoke' in options:
    c.num_stages = 2
    c.partition = 'flops'
    c.batch_size = 2
    c.num_frames = 4
    c.frame_size = 32
    c.num_steps = 2
    c.repeats = 1
    c.cost_iters = 1
    c.distributed.num_cpu_devices = 2  # Fake devices: one process suffices.
  if 'local2' in options:
    # One core per device, so clips are shortened and steps fewer to keep a
    # run to minutes; the paper's batch and resolution are kept. The D = 2
    # comparison is Sideways vs BP model-parallel; add 'bp_data' to
    # `algorithms` for the data-parallel row (about a third more time).
    c.num_stages = 2
    c.partition = 'measured'  # Balance what each core really spends.
    c.algorithms = ('bp_model', 'sideways')
    c.num_frames = 16
    c.num_steps = 2  # ~7 s (Sideways) and ~13 s (BP) per repeat.
    c.repeats = 3
    c.cost_iters = 5


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  options = parse_arg(arg)
  c = base_config()
  if 'smoke' in options:
    c.model_kwargs.channels = (4, 4, 8, 8, 8)
  apply_args(c, options)
  c.lock()
  return c

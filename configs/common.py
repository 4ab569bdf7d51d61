"""Defaults shared by the classification experiments; each config overrides.

Values come from the paper (§4) where it gives them; otherwise the comment
says why they were chosen. Every field is read by the runner (no hidden
defaults in code); configs are locked, so a misspelt override is an error.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from sideways_jax import algorithms

ARGS = ('smoke',)


def parse_arg(arg: str | None, known: tuple[str, ...] = ARGS
              ) -> frozenset[str]:
  """Words of the `:arg` suffix of --config (comma-separated), all `known`.

  Every config parses its suffix with this, so `:smoke` and the other words
  mean the same everywhere.
  """
  words = frozenset(w.strip() for w in (arg or '').split(',') if w.strip())
  unknown = sorted(words - set(known))
  if unknown:
    raise ValueError(f'unknown config argument(s) {unknown}; this config '
                     f'knows {list(known)}, e.g. :{known[0]}')
  return words


def mesh_and_distributed(c: ml_collections.ConfigDict,
                         stages: int | config_dict.FieldReference = 0
                         ) -> None:
  """The device fields: a (data, stage) mesh and multi-host set-up.

  Args:
    c: the config to add `mesh` and `distributed` to.
    stages: the mesh's 'stage' size (devices per pipeline, one stage each);
      0 trains on one device.
  """
  c.mesh = ml_collections.ConfigDict()
  c.mesh.stages = stages
  c.mesh.data = 1  # Pipelines side by side, each on a slice of the batch.
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


def algorithm_options() -> ml_collections.ConfigDict:
  """`options.<algorithm>.<option>` for every algorithm, table defaults."""
  return ml_collections.ConfigDict(
      {name: row.defaults() for name, row in algorithms.ALGORITHMS.items()})


def base_config() -> ml_collections.ConfigDict:
  """Simple-CNN on HMDB51 as in the paper; the other configs start here."""
  c = ml_collections.ConfigDict()
  c.runner = 'classification'  # See sideways_jax/experiments/cli.py.
  c.seed = 0
  # The one word that switches algorithm: 'sideways' (the paper's) or 'bp'
  # (exact; on a mesh model-parallel, the paper's baseline); on a mesh also
  # 'bp_data', 'bp_gpipe' or 'bp_1f1b' (exact BP laid out on the devices in
  # other ways). See sideways_jax.ALGORITHMS.
  c.algorithm = 'sideways'
  # True: train BP and Sideways from the same weights and batches, one after
  # the other, and print a comparison table. Off for the real-data configs,
  # where each run takes days and is best launched as its own job (the plots
  # compare whatever runs share a workdir).
  c.compare = False
  # Every algorithm's options, with the library's defaults (one definition:
  # sideways_jax.algorithms). Paper: the top's loss at step t uses y^t
  # (options.sideways.target_alignment='origin': y^{t-D+1}). BP's two modes
  # are exact; batched is faster on GPU, scanned on CPU.
  c.options = algorithm_options()
  # Stages compute in this dtype ('float32' or 'bfloat16'); parameters,
  # gradient sums and optimizer state stay float32 (sideways_jax.Precision).
  c.precision = 'float32'
  # One device (stages=0), or one stage per device on a (data, stage) mesh:
  # --config.mesh.stages=6 (= model.num_stages) trains depth-parallel.
  mesh_and_distributed(c)

  c.model = ml_collections.ConfigDict()
  c.model.name = 'simple_cnn'
  c.model.num_stages = 6  # Paper §4.2: one Sideways module per layer.
  c.model.kwargs = ml_collections.ConfigDict()  # More builder arguments.

  c.data = ml_collections.ConfigDict()
  c.data.name = 'hmdb51'
  c.data.root = config_dict.placeholder(str)  # None: data/<name>.
  c.data.fold = 1  # Official split 1, the usual one to report.
  c.data.train_split = 'train'
  c.data.eval_split = 'test'
  c.data.clip_length = 64  # Paper Table 2: clips of 64 frames.
  c.data.stride = 1  # Native frame rate; the stride sweep (Fig. 5) varies it.
  c.data.resolution = 112  # Paper Table 2: 112x112.
  # Paper silent; centring and scaling keeps un-normalised Simple-CNN stable.
  c.data.mean = 0.5
  c.data.std = 0.25
  c.data.train_kwargs = ml_collections.ConfigDict()  # Passed to make_source.
  c.data.eval_kwargs = ml_collections.ConfigDict()
  c.data.cache = False  # Only for synthetic sources (no random crops).
  c.data.num_threads = 2  # Decoding threads: this machine has 2 cores.
  c.data.prefetch = 2

  c.batch_size = 8  # Paper Table 2: batches of 8 clips.
  c.eval_batch_size = 8
  c.num_train_steps = 300_000  # Paper Fig. 4 spans a few 10^5 iterations.
  c.max_eval_batches = 0  # 0: the whole eval split.

  c.optimizer = ml_collections.ConfigDict()
  # Paper silent on the optimizer; its learning rates (1e-5..1e-4) are Adam's
  # range, and weight decay is decoupled as in AdamW.
  c.optimizer.name = 'adamw'
  c.optimizer.learning_rate = 1e-5  # Paper Fig. 5: the favourable setting.
  c.optimizer.weight_decay = 1e-4  # Paper tries several, values not given.
  c.optimizer.b1 = 0.9  # Adam's defaults (SGD: momentum).
  c.optimizer.b2 = 0.999
  # Paper speaks of an initial learning rate, i.e. a decay; cosine is ours.
  c.optimizer.schedule = 'cosine'
  c.optimizer.warmup_steps = 1000  # Ours: avoids early Adam blow-ups.
  c.optimizer.grad_clip_norm = 0.0  # Paper mentions no clipping.

  c.log_every = 100
  c.eval_every = 10_000
  c.checkpoint_every = 2_000
  c.max_checkpoints_to_keep = 2
  c.tensorboard = True

  # A sweep trains every algorithm once per value of one field, in folders
  # <workdir>/<key>=<value>/<algorithm> (used by configs/stride_sweep.py).
  c.sweep = ml_collections.ConfigDict()
  c.sweep.field = ''  # Dotted config key, e.g. 'data.stride'; '' = no sweep.
  c.sweep.choices = ()
  return c


def shrink_for_smoke(c: ml_collections.ConfigDict) -> None:
  """A run of a few steps on tiny clips: checks the whole pipeline quickly."""
  c.data.clip_length = 2 * c.model.num_stages - 1  # Shortest Sideways clip.
  c.data.resolution = 32
  c.data.num_threads = 1
  c.data.prefetch = 1
  c.batch_size = 2
  c.eval_batch_size = 2
  c.num_train_steps = 2
  c.max_eval_batches = 1
  c.optimizer.warmup_steps = 1
  c.log_every = 1
  c.eval_every = 2
  c.checkpoint_every = 1

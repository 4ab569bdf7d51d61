"""Depth parallelism: one stage per device on a (data, stage) mesh.

    mesh = parallel.make_mesh(num_data=1, num_stages=len(stages))
    trainer = parallel.ParallelTrainer('sideways', stages, variables, mesh,
                                       loss_fn, optax.sgd(0.1), clip)
    state = trainer.init(variables)
    state, metrics = trainer.train_step(state, *trainer.place(clip, labels))

`parallel.ALGORITHMS`: 'bp_model' (exact BP, one stage per device, one
device busy at a time), 'bp_data' (exact BP, data parallel), 'bp_gpipe' and
'bp_1f1b' (exact BP pipelined over frames) and 'sideways', on the same
devices; `parallel.OPTIONS` lists the options each takes. The tick tables
of the pipelines are `parallel.make_schedule(name, K, D)`. Multi-host runs
call `parallel.initialize_distributed(...)` first; nothing else changes.
"""

from sideways_jax.parallel.distributed import DistributedConfig
from sideways_jax.parallel.distributed import initialize_distributed
from sideways_jax.parallel.layout import chain_layout
from sideways_jax.parallel.layout import ChainLayout
from sideways_jax.parallel.layout import stack_variables
from sideways_jax.parallel.layout import unstack_variables
from sideways_jax.parallel.mesh import AXES
from sideways_jax.parallel.mesh import DATA
from sideways_jax.parallel.mesh import fetch
from sideways_jax.parallel.mesh import make_mesh
from sideways_jax.parallel.mesh import put
from sideways_jax.parallel.mesh import STAGE
from sideways_jax.parallel.schedule import make_schedule
from sideways_jax.parallel.schedule import Schedule
from sideways_jax.parallel.trainer import ALGORITHMS
from sideways_jax.parallel.trainer import OPTIONS
from sideways_jax.parallel.trainer import ParallelTrainer
from sideways_jax.parallel.trainer import TrainState

"""Depth parallelism: one Sideways stage per device on a (data, stage) mesh.

    mesh = parallel.make_mesh(num_data=1, num_stages=len(stages))
    trainer = parallel.ParallelTrainer('sideways', stages, variables, mesh,
                                       loss_fn, optax.sgd(0.1), clip)
    state = trainer.init(variables)
    state, metrics = trainer.train_step(state, *trainer.place(clip, labels))

'bp_model' (exact BP, one stage per device) and 'bp_data' (exact BP, data
parallel) are the baselines on the same devices. Multi-host runs call
`parallel.initialize_distributed(...)` first; nothing else changes.
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
from sideways_jax.parallel.trainer import ALGORITHMS
from sideways_jax.parallel.trainer import ParallelTrainer
from sideways_jax.parallel.trainer import TrainState

"""Depth parallelism: one stage per device on a (data, stage) mesh.

    mesh = parallel.make_mesh(num_data=1, num_stages=len(stages))
    program = parallel.mesh_program('sideways', stages, variables, mesh,
                                    loss_fn, optax.sgd(0.1), clip)
    state = program.init(variables, jax.random.PRNGKey(0))
    state, metrics = program.update(state, *program.place(clip, labels))

Every mesh algorithm of the table (`sideways_jax.algorithms.MESH_ALGORITHMS`:
Sideways, and exact BP model-parallel, data-parallel or pipelined over
frames) runs on the same devices; `algorithms.ALGORITHMS[name].mesh_program`
names its program class (`staged.py`, `bp_data.py`). A pipelined program's
tick table is `program.schedule(K, D)`. Multi-host runs call
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
from sideways_jax.parallel.program import mesh_program
from sideways_jax.parallel.program import MeshProgram
from sideways_jax.parallel.program import MeshSetup
from sideways_jax.parallel.schedule import Schedule

"""The paper's networks as Sideways stage chains, and tools to cut them.

Each builder returns `tuple[flax.linen.Module, ...]`, one module per stage,
with `__call__(x, train)`; the `*_layers` variants return the uncut named
layers for custom partitions. `registry` is the one table of model names
every runner reads (built-in names and 'my_pkg.my_module:build' paths).
"""

from sideways_jax.models.autoencoder import conv_autoencoder
from sideways_jax.models.autoencoder import conv_autoencoder_layers
from sideways_jax.models.blocks import ConvDecoder
from sideways_jax.models.blocks import ConvLayer
from sideways_jax.models.blocks import DenseLayer
from sideways_jax.models.blocks import GlobalPoolHead
from sideways_jax.models.describe import ChainSummary
from sideways_jax.models.describe import describe
from sideways_jax.models.describe import describe_layers
from sideways_jax.models.describe import LayerSummary
from sideways_jax.models.describe import StageSummary
from sideways_jax.models.partition import balanced_boundaries
from sideways_jax.models.partition import check_num_stages
from sideways_jax.models.partition import group_layers
from sideways_jax.models.partition import Layer
from sideways_jax.models.partition import make_stages
from sideways_jax.models.partition import regroup_variables
from sideways_jax.models.partition import Stage
from sideways_jax.models.partition import stage_builder
from sideways_jax.models.partition import stage_slices
from sideways_jax.models.partition import validate_boundaries
from sideways_jax.models.registry import build_model
from sideways_jax.models.registry import get_model_builder
from sideways_jax.models.registry import MODELS
from sideways_jax.models.registry import model_names
from sideways_jax.models.registry import RegistryError
from sideways_jax.models.simple_cnn import simple_cnn
from sideways_jax.models.simple_cnn import simple_cnn_layers
from sideways_jax.models.vgg8 import vgg8
from sideways_jax.models.vgg8 import vgg8_layers

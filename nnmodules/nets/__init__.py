"""Networks as plain `torch.nn.Module`s: give one of these, or your own, to `Classifier` or `Regressor`.

Each keeps the arguments it was built with (`net.init_args`), which is how a checkpoint builds it again.
Widths named `input_dim`, `num_classes`, `output_dim`, `in_channels`, `image_size` and `numeric_features` are the
data's: a model given the network's class, or a config without them, takes them from the data
(`nets.configs`).
"""

from nnmodules.nets.cnn import SmallCNN
from nnmodules.nets.configs import build_from_config, builder_of, object_config
from nnmodules.nets.ensemble import Ensemble
from nnmodules.nets.mlp import MLP, check_dropout, check_widths
from nnmodules.nets.scratch import ScratchInit, ScratchNet
from nnmodules.nets.table import TableMLP
from nnmodules.nets.tabm import TabM

__all__ = [
    "MLP",
    "Ensemble",
    "ScratchInit",
    "ScratchNet",
    "SmallCNN",
    "TabM",
    "TableMLP",
    "build_from_config",
    "check_dropout",
    "builder_of",
    "check_widths",
    "object_config",
]

"""What learns: a task (`Classifier`, `Regressor`) with any network, the presets, the networks; and their runs.

`make_trainer` gives a Lightning Trainer with the project's defaults, in a run folder of its own;
`load_run` takes a run anywhere from its checkpoint alone. The names are imported when first used
(`datamodules.lazy`): the `litmodules` command starts at once.
"""

from datamodules.lazy import lazy_exports
from nnmodules import _moved

EXPORTS = {
    "MLP": "nnmodules.nets",
    "ScratchNet": "nnmodules.nets",
    "SmallCNN": "nnmodules.nets",
    "TabM": "nnmodules.nets",
    "TableMLP": "nnmodules.nets",
    "MLPClassifier": "nnmodules.presets",
    "MLPRegressor": "nnmodules.presets",
    "ScratchDeepNet": "nnmodules.presets",
    "ToyRegressor": "nnmodules.presets",
    "SEED": "nnmodules.runs",
    "ensemble_of": "nnmodules.runs",
    "load_run": "nnmodules.runs",
    "make_trainer": "nnmodules.runs",
    "Classifier": "nnmodules.tasks",
    "Regressor": "nnmodules.tasks",
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(EXPORTS)

_moved.install()  # 0.1.0's module paths (nnmodules.figures, nnmodules.mlp, ...), which its runs and recipes name

"""What feeds: LightningDataModules, and the facts they publish for models (`datamodules.contract`).

Its names are imported when first used (`datamodules.lazy`).
"""

from datamodules import _moved
from datamodules.lazy import lazy_exports

EXPORTS = {
    "DataFacts": "datamodules.contract",
    "ImageFolderDataModule": "datamodules.images",
    "MNISTDataModule": "datamodules.mnist",
    "TabularDataModule": "datamodules.tabular",
    "ToyRegressionDataModule": "datamodules.toy",
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = list(EXPORTS)

_moved.alias_modules(_moved.MOVED)  # 0.1.0's module paths, which its runs may name

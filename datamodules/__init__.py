"""What feeds: LightningDataModules, and the facts they publish for models (`datamodules.contract`)."""

from datamodules import _moved
from datamodules.contract import DataFacts
from datamodules.images import ImageFolderDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.tabular import TabularDataModule
from datamodules.toy import ToyRegressionDataModule

_moved.alias_modules(_moved.MOVED)  # 0.1.0's module paths, which its runs may name

__all__ = ["DataFacts", "ImageFolderDataModule", "MNISTDataModule", "TabularDataModule", "ToyRegressionDataModule"]

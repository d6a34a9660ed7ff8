"""What feeds: LightningDataModules."""

from datamodules.images import ImageFolderDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.tabular import TabularDataModule
from datamodules.toy import ToyRegressionDataModule

__all__ = ["ImageFolderDataModule", "MNISTDataModule", "TabularDataModule", "ToyRegressionDataModule"]

"""What feeds: LightningDataModules."""

from datamodules.mnist import MNISTDataModule
from datamodules.tabular import TabularDataModule
from datamodules.toy import ToyRegressionDataModule

__all__ = ["MNISTDataModule", "TabularDataModule", "ToyRegressionDataModule"]

"""What feeds: LightningDataModules."""

from datamodules.mnist import MNISTDataModule
from datamodules.tabular import TabularDataModule

__all__ = ["MNISTDataModule", "TabularDataModule"]

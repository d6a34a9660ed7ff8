"""Tables: a file or DataFrame read, its columns' roles found, split, and preprocessed on the training split."""

from datamodules.tabular.module import TabularDataModule, auto_batch_size
from datamodules.tabular.preprocess import TablePreprocessing
from datamodules.tabular.rows import detect_task

__all__ = ["TablePreprocessing", "TabularDataModule", "auto_batch_size", "detect_task"]

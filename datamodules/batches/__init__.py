"""The one fast batch path: each split held as tensors, batches cut by indexing (see `module.py`)."""

from datamodules.batches.loaders import DeviceLoader, TableLoader, batch_loader, device_loader
from datamodules.batches.module import TensorDataModule
from datamodules.batches.sampling import (
    POSITION,
    BatchShards,
    DeviceBatches,
    Resumption,
    TrainSampler,
    epoch_order,
    evaluation_rows,
)
from datamodules.batches.table import TensorTable

__all__ = [
    "POSITION",
    "BatchShards",
    "DeviceBatches",
    "DeviceLoader",
    "Resumption",
    "TableLoader",
    "TensorDataModule",
    "TensorTable",
    "TrainSampler",
    "batch_loader",
    "device_loader",
    "epoch_order",
    "evaluation_rows",
]

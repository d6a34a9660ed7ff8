"""The PyTorch introduction's synthetic regression: y = 1 + 2x + 0.3 N(0, 1), x ~ N(0, 1)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from datamodules.errors import UserError
from datamodules.tabular import TabularDataModule


class ToyRegressionDataModule(TabularDataModule):
    """`n_samples` points on a noisy line, split in order.

    The first for training, then validation, the last `test_fraction` for testing (the introduction trains on the
    first 70 of 100 and tests on the last 30).

    A `TabularDataModule` over the generated table, so splits and batches take the
    same path as any table; x and y are fed unscaled, as the model maps x to y directly.

    Args:
        n_samples: points to draw.
        slope, intercept: the true line.
        noise: standard deviation of the noise added to y.
        seed: seeds the points and the noise.
        val_fraction, test_fraction: shares of the points, taken in order after the training ones.
        batch_size: points per batch; None for full batches, as in the introduction.
        num_workers, pin_memory, device_resident: as for any data module.
    """

    def __init__(
        self,
        n_samples: int = 100,
        slope: float = 2.0,
        intercept: float = 1.0,
        noise: float = 0.3,
        seed: int = 42,
        val_fraction: float = 0.1,
        test_fraction: float = 0.3,
        batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        device_resident: bool | None = None,
    ) -> None:
        if n_samples < 3:
            raise UserError(f"n_samples must be at least 3 (one per split), got {n_samples}")
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(n_samples, generator=generator)
        y = intercept + slope * x + noise * torch.randn(n_samples, generator=generator)
        n_test, n_val = round(n_samples * test_fraction), round(n_samples * val_fraction)
        split = ["train"] * (n_samples - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
        table = pd.DataFrame({"x": x.numpy(), "y": y.numpy(), "split": split})
        super().__init__(
            table,
            target="y",
            split_column="split",
            task="regression",
            scaling="none",
            standardize_target=False,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            batch_size=batch_size or n_samples,
            seed=seed,
            num_workers=num_workers,
            pin_memory=pin_memory,
            device_resident=device_resident,
        )
        self.slope, self.intercept = slope, intercept

    def _fitted_state_in_use(self) -> None:
        super()._fitted_state_in_use()
        self.facts = dataclasses.replace(self.facts, true_line=(self.intercept, self.slope))  # for the fit's figure

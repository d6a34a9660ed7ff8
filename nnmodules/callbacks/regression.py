"""The fit of a regression and its residuals, for regressors."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from matplotlib.figure import Figure

from datamodules.contract import facts_of
from nnmodules.callbacks.figures import EpochFigures
from nnmodules.tasks import Regressor


class RegressionFigures(EpochFigures):
    """`regression/fit` and `regression/residuals`.

    `regression/fit`: with one input feature, the training and validation points, the model's curve and, when the data's
    facts know it (`true_line`), the true line; with more features, predicted against true values on the test split.
    `regression/residuals`: true minus predicted against predicted, on the test split. Needs a data module of
    datamodules (its splits' tables).

    Args:
        every_n_epochs: draw after every this many training epochs; 0: only at the end of fit.
    """

    module_type = Regressor
    needs_tables = True

    def figures(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Figure]:
        data = trainer.datamodule
        splits = {}  # split: (inputs, targets in their units, predictions)
        for split in ("train", "val", "test"):
            inputs, targets = data.table(split).tensors
            arrays = (inputs, module.in_target_units(targets), self._predict(module, inputs))
            splits[split] = tuple(array.numpy() for array in arrays)  # what matplotlib takes without warnings
        return {
            "regression/fit": self._fit(splits, data, module),
            "regression/residuals": self._residuals(*splits["test"][1:]),
        }

    @staticmethod
    def _predict(module: L.LightningModule, inputs: torch.Tensor) -> torch.Tensor:
        return module.predict_step(inputs.to(module.device), 0).cpu()

    def _fit(self, splits: dict, data: L.LightningDataModule, module: L.LightningModule) -> Figure:
        figure = Figure(figsize=(5, 4))
        axes = figure.subplots()
        train_x = splits["train"][0]
        if train_x.shape[1] != 1:  # several features: no curve to draw, compare instead
            _, test_y, test_predicted = splits["test"]
            axes.scatter(test_y, test_predicted, s=12)
            low, high = float(test_y.min()), float(test_y.max())
            axes.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = true")
            axes.set(xlabel="true", ylabel="predicted", title="test split")
        else:
            for split, label in (("train", "train"), ("val", "validation")):
                axes.scatter(splits[split][0][:, 0], splits[split][1], s=12, label=label)
            grid = torch.linspace(float(train_x.min()) - 0.5, float(train_x.max()) + 0.5, 200).unsqueeze(1)
            x = grid[:, 0].numpy()
            axes.plot(x, self._predict(module, grid).numpy(), color="red", label="model")
            line = facts_of(data).true_line
            if line is not None:
                intercept, slope = line
                axes.plot(x, intercept + slope * x, "k--", label="true line")
            axes.set(xlabel="x", ylabel="y")
        axes.legend()
        return figure

    @staticmethod
    def _residuals(test_y: np.ndarray, test_predicted: np.ndarray) -> Figure:
        figure = Figure(figsize=(5, 4))
        axes = figure.subplots()
        axes.scatter(test_predicted, test_y - test_predicted, s=12)
        axes.axhline(0, color="black", linewidth=1)
        axes.set(xlabel="predicted", ylabel="true - predicted", title="residuals on the test split")
        return figure

"""Regression figures in TensorBoard's Images tab: the fitted curve, and the residuals on the test split."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend

from nnmodules.heads import RegressorModule


class RegressionFigures(L.Callback):
    """Draws two figures at the end of fit, and every `every_n_epochs` epochs if that is above 0.

    `regression/fit`: with one input feature, the training and validation points, the
    model's curve and, when the data module knows it (`slope`, `intercept`), the true
    line; with more features, predicted against true values on the test split.
    `regression/residuals`: true minus predicted against predicted, on the test split.
    Needs a TensorBoard logger and a data module with `table(split)`; does nothing otherwise.

    Args:
        every_n_epochs: also draw after every this many training epochs (0: only at the end of fit).
    """

    def __init__(self, every_n_epochs: int = 0) -> None:
        if every_n_epochs < 0:
            raise ValueError(f"every_n_epochs must be 0 or more, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self._drawn_at_step = -1

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if not isinstance(module, RegressorModule):
            raise ValueError(f"RegressionFigures draws regressions; {type(module).__name__} is not a RegressorModule")

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.draw(trainer, module)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._drawn_at_step != trainer.global_step:  # not drawn already by the last epoch's end
            self.draw(trainer, module)

    @torch.no_grad()
    def draw(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        data = trainer.datamodule
        if not (isinstance(trainer.logger, TensorBoardLogger) and hasattr(data, "table") and trainer.is_global_zero):
            return
        was_training = module.training
        module.eval()
        splits = {}  # split: (inputs, targets in their units, predictions)
        for split in ("train", "val", "test"):
            inputs, targets = data.table(split).tensors
            splits[split] = (inputs, module.in_target_units(targets), self._predict(module, inputs))
        experiment, step = trainer.logger.experiment, trainer.global_step
        self._drawn_at_step = step
        experiment.add_figure("regression/fit", self._fit(splits, data, module), step)
        experiment.add_figure("regression/residuals", self._residuals(*splits["test"][1:]), step)
        module.train(was_training)

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
            axes.plot(grid[:, 0], self._predict(module, grid), color="red", label="model")
            if hasattr(data, "slope"):
                axes.plot(grid[:, 0], data.intercept + data.slope * grid[:, 0], "k--", label="true line")
            axes.set(xlabel="x", ylabel="y")
        axes.legend()
        return figure

    @staticmethod
    def _residuals(test_y: torch.Tensor, test_predicted: torch.Tensor) -> Figure:
        figure = Figure(figsize=(5, 4))
        axes = figure.subplots()
        axes.scatter(test_predicted, test_y - test_predicted, s=12)
        axes.axhline(0, color="black", linewidth=1)
        axes.set(xlabel="predicted", ylabel="true - predicted", title="residuals on the test split")
        return figure

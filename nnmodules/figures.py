"""Figures in TensorBoard's Images tab (PNG files with another logger), drawn every N epochs and at the end of fit.

`EpochFigures` is the one mechanism: when to draw, on which process, in eval
mode without gradients; each task's figures are a subclass. Figures use
matplotlib's object API (no pyplot, no GUI backend) and `add_figure`.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from matplotlib.figure import Figure
from torchmetrics.functional.classification import multiclass_confusion_matrix
from torchvision.utils import make_grid

from nnmodules._lightning import is_last_batch
from nnmodules.classifier import Classifier
from nnmodules.regressor import Regressor
from nnmodules.tasks import TaskModule


class EpochFigures(L.Callback):
    """Draws `figures()` after every `every_n_epochs` training epochs (0: never) and at the end of fit.

    With a TensorBoard logger, into its Images tab; with another logger, as PNG files in the run folder
    (`figures/<tag>-step<N>.png`); without a logger, not at all. Draws on rank 0 only.

    Args:
        every_n_epochs: draw after every this many training epochs; 0: only at the end of fit.
    """

    module_type: type[L.LightningModule] = TaskModule

    def __init__(self, every_n_epochs: int = 0) -> None:
        if every_n_epochs < 0:
            raise ValueError(f"every_n_epochs must be 0 or more, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self._drawn_at_step = -1

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if not isinstance(module, self.module_type):
            raise ValueError(
                f"{type(self).__name__} draws for a {self.module_type.__name__}; {type(module).__name__} is not one"
            )

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.draw(trainer, module)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._drawn_at_step != trainer.global_step:  # not drawn already by the last epoch's end
            self.draw(trainer, module)

    @torch.no_grad()
    def draw(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.logger is None or not trainer.is_global_zero:
            return
        was_training = module.training
        module.eval()
        self._drawn_at_step = trainer.global_step
        with torch.random.fork_rng(devices=[]):  # iterating a DataLoader draws a seed: leave training's RNG alone
            figures = self.figures(trainer, module)
        for tag, figure in figures.items():
            if isinstance(trainer.logger, TensorBoardLogger):
                trainer.logger.experiment.add_figure(tag, figure, trainer.global_step)
            else:  # a logger that shows no images: the run folder keeps them
                path = (
                    Path(trainer.log_dir or ".") / "figures" / f"{tag.replace('/', '_')}-step{trainer.global_step}.png"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                figure.savefig(path)
        module.train(was_training)

    def figures(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Figure]:
        raise NotImplementedError


class ParameterHistograms(L.Callback):
    """Histograms of every parameter and of its gradient in the epoch's last training step.

    As `parameters/<name>` and `gradients/<name>`, after every `every_n_epochs` epochs: TensorBoard's Histograms and
    Distributions tabs. Works for automatic and manual optimization alike (`on_after_backward` follows
    `manual_backward` too), on rank 0, with a TensorBoard logger.

    Args:
        every_n_epochs: log after every this many training epochs.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be 1 or more, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self._gradients: dict[str, torch.Tensor] = {}
        self._said = False  # that another logger shows no histograms

    def _logging_epoch(self, trainer: L.Trainer) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0 and trainer.is_global_zero

    def on_after_backward(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if is_last_batch(trainer) and self._logging_epoch(trainer):  # one copy an epoch, of the step that ends it
            self._gradients = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not isinstance(trainer.logger, TensorBoardLogger) and not self._said and trainer.logger is not None:
            rank_zero_info(
                f"ParameterHistograms: histograms need TensorBoardLogger, not {type(trainer.logger).__name__}"
            )
            self._said = True
        if not isinstance(trainer.logger, TensorBoardLogger) or not self._logging_epoch(trainer):
            return
        experiment = trainer.logger.experiment
        for name, parameter in module.named_parameters():
            experiment.add_histogram(f"parameters/{name}", parameter, trainer.current_epoch)
        for name, gradient in self._gradients.items():
            experiment.add_histogram(f"gradients/{name}", gradient, trainer.current_epoch)
        self._gradients = {}


class LearningCurves(EpochFigures):
    """`curves/learning`, at the end of fit: the tutorials' two plots in one figure.

    The training loss and the validation metric (accuracy, or MSE for regressors) per epoch.

    Args:
        every_n_epochs: also draw the curves so far after every this many epochs; 0: only at the end.
    """

    def __init__(self, every_n_epochs: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.epochs: list[int] = []
        self.train_loss: list[float] = []
        self.val_metric: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        name = "val/acc" if isinstance(module, Classifier) else "val/mse"
        if name in trainer.callback_metrics:  # the latest validation (some runs validate every N epochs)
            self.epochs.append(trainer.current_epoch)
            module.update_training_metrics()  # callbacks' epoch-end hooks run before the module's
            self.train_loss.append(float(module.train_loss.compute()))  # this epoch's: logged right after this hook
            self.val_metric.append(float(trainer.callback_metrics[name]))
        super().on_train_epoch_end(trainer, module)

    def figures(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Figure]:
        figure = Figure(figsize=(9, 3.5))
        loss, metric = figure.subplots(1, 2)
        loss.plot(self.epochs, self.train_loss, marker=".")
        loss.set(xlabel="epoch", ylabel="training loss")
        metric.plot(self.epochs, self.val_metric, marker=".", color="tab:orange")
        name = "accuracy" if isinstance(module, Classifier) else "MSE"
        metric.set(xlabel="epoch", ylabel=f"validation {name}")
        return {"curves/learning": figure}


class ClassificationFigures(EpochFigures):
    """`classification/confusion` and `classification/misclassified`, of the validation split.

    The confusion matrix; and, when the data module says its inputs are images (`image_shape`),
    `classification/misclassified`: a grid of misclassified validation examples titled with predicted and true labels.

    Args:
        every_n_epochs: draw after every this many training epochs; 0: only at the end of fit.
            The default, 2, keeps the figures' share of an MNIST MLP's epochs small (docs/results.md).
        misclassified: how many misclassified examples to show (0: no grid).
    """

    module_type = Classifier

    def __init__(self, every_n_epochs: int = 2, misclassified: int = 16) -> None:
        super().__init__(every_n_epochs)
        self.misclassified = misclassified

    def figures(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Figure]:
        predicted = []
        targets = []
        wrong_inputs = []
        batches = trainer.val_dataloaders
        data = trainer.datamodule
        if trainer.world_size > 1 and hasattr(data, "table"):  # under DDP rank 0's loader holds its share only
            table = data.table("val")
            batches = (table[rows] for rows in torch.arange(len(table), device=table.device).split(256))
        for inputs, labels in batches:
            guesses = module.predict_step((inputs.to(module.device), labels), 0).argmax(dim=1).cpu()
            predicted.append(guesses)
            targets.append(labels)
            if sum(len(x) for x, _, _ in wrong_inputs) < self.misclassified:
                wrong = guesses != labels
                wrong_inputs.append((inputs[wrong], guesses[wrong], labels[wrong]))
        predicted, targets = torch.cat(predicted), torch.cat(targets)
        names = getattr(trainer.datamodule, "class_names", None) or [str(c) for c in range(module.num_classes)]
        figures = {"classification/confusion": self._confusion(predicted, targets, names)}
        shape = getattr(trainer.datamodule, "image_shape", None)
        if shape and self.misclassified and any(len(x) for x, _, _ in wrong_inputs):
            figures["classification/misclassified"] = self._grid(wrong_inputs, shape, names)
        return figures

    @staticmethod
    def _confusion(predicted: torch.Tensor, targets: torch.Tensor, names: list[str]) -> Figure:
        counts = multiclass_confusion_matrix(predicted, targets, num_classes=len(names))
        figure = Figure(figsize=(1 + 0.5 * len(names), 1 + 0.5 * len(names)))
        axes = figure.subplots()
        axes.imshow(counts.numpy(), cmap="Blues")
        for true in range(len(names)):
            for guess in range(len(names)):
                axes.text(guess, true, str(int(counts[true, guess])), ha="center", va="center", fontsize=7)
        axes.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
        axes.set_xticklabels(names)
        axes.set_yticklabels(names)
        return figure

    def _grid(self, wrong_inputs: list, shape: tuple[int, ...], names: list[str]) -> Figure:
        inputs, guesses, labels = (torch.cat(part)[: self.misclassified] for part in zip(*wrong_inputs, strict=True))
        columns, gap = 4, 10  # the gap above each image holds its title
        grid = make_grid(inputs.reshape(-1, *shape), nrow=columns, padding=gap, normalize=True, pad_value=1.0)
        figure = Figure(figsize=(5, 0.8 + 1.2 * -(-len(inputs) // columns)))
        axes = figure.subplots()
        axes.imshow(grid.permute(1, 2, 0).numpy())  # one image: far cheaper to draw than a subplot per digit
        height, width = shape[-2] + gap, shape[-1] + gap
        for i, (guess, label) in enumerate(zip(guesses.tolist(), labels.tolist(), strict=True)):
            row, column = divmod(i, columns)
            axes.text(
                column * width + gap + shape[-1] / 2,
                row * height + gap - 1,
                f"{names[guess]} / {names[label]}",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axes.set_title("misclassified validation examples: predicted / true", fontsize=9)
        axes.axis("off")
        return figure


class RegressionFigures(EpochFigures):
    """`regression/fit` and `regression/residuals`.

    `regression/fit`: with one input feature, the training and validation points, the model's curve and, when the data
    module knows it (`slope`, `intercept`), the true line; with more features, predicted against true values on the
    test split. `regression/residuals`: true minus predicted against predicted, on the test split. Needs a data module
    with `table(split)`.

    Args:
        every_n_epochs: draw after every this many training epochs; 0: only at the end of fit.
    """

    module_type = Regressor

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
            if hasattr(data, "slope"):
                axes.plot(x, data.intercept + data.slope * x, "k--", label="true line")
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

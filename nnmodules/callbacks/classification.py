"""The validation split's confusion matrix, and a grid of misclassified images, for classifiers."""

from __future__ import annotations

import lightning as L
import torch
from matplotlib.figure import Figure
from torchmetrics.functional.classification import multiclass_confusion_matrix
from torchvision.utils import make_grid

from datamodules.batches import TensorDataModule
from datamodules.contract import facts_of
from nnmodules.callbacks.figures import EpochFigures
from nnmodules.tasks import Classifier


class ClassificationFigures(EpochFigures):
    """`classification/confusion` and `classification/misclassified`, of the validation split.

    The confusion matrix; and, when the data's facts say its inputs are images (`image_shape`),
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
        if trainer.world_size > 1 and isinstance(data, TensorDataModule):  # rank 0's loader holds its share only
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
        facts = facts_of(trainer.datamodule)
        names = list(facts.class_names) if facts else [str(c) for c in range(module.num_classes)]
        figures = {"classification/confusion": self._confusion(predicted, targets, names)}
        shape = facts.image_shape if facts else None
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

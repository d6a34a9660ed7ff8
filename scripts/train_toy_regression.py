"""The smallest regression as a plain script: noisy line -> ToyRegressor -> Trainer.fit -> Trainer.test.

    python scripts/train_toy_regression.py [--seed 42] [--max-epochs 100]

The same run as `litmodules fit --config toy_regression`: the
PyTorch introduction's 1-5-1 ReLU net fitting y = 1 + 2x + 0.3 N(0, 1), with the
fit and residual figures in TensorBoard. It prints what the net learnt of the
line: f(0) (the intercept) and (f(1) - f(-1)) / 2 (the slope).
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from datamodules import ToyRegressionDataModule
from nnmodules import ToyRegressor, make_trainer
from nnmodules.callbacks import RegressionFigures
from nnmodules.runs import CHECKPOINT_DEFAULTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-epochs", type=int, default=100)
    args = parser.parse_args()

    L.seed_everything(args.seed)
    data = ToyRegressionDataModule(n_samples=100, slope=2.0, intercept=1.0, noise=0.3, seed=args.seed)
    model = ToyRegressor(hidden_dims=[5], init="active", optimizer="lbfgs", lr=1.0)  # its input width: the data's
    # as the toy_regression recipe: the latest weights, a checkpoint and a validation every 10 epochs, figures every 50
    # (this ModelCheckpoint stands in for the project's, in the run's checkpoints/)
    checkpoint = ModelCheckpoint(**{**CHECKPOINT_DEFAULTS, "monitor": None, "every_n_epochs": 10})
    callbacks = [checkpoint, RegressionFigures(every_n_epochs=50)]
    trainer = make_trainer(
        "toy_regression_script",
        max_epochs=args.max_epochs,
        check_val_every_n_epoch=10,
        log_every_n_steps=10,
        callbacks=callbacks,
    )
    trainer.fit(model, datamodule=data)
    # the final weights: ten validation points are too few to pick a "best" epoch by
    test_mse = trainer.test(model, datamodule=data)[0]["test/mse"]

    model.eval()
    with torch.no_grad():
        at_minus_one, at_zero, at_one = model(torch.tensor([[-1.0], [0.0], [1.0]])).tolist()
    slope = (at_one - at_minus_one) / 2
    print(f"test MSE: {test_mse:.4f}  intercept f(0): {at_zero:.3f}  slope (f(1) - f(-1)) / 2: {slope:.3f}")


if __name__ == "__main__":
    main()

"""A table as a plain script: CSV -> TabularDataModule -> ScratchDeepNet -> Trainer.fit -> Trainer.test.

    python scripts/train_tabular.py [--csv CSV] [--target renewed] [--drop id] [--max-epochs 30]

The same run as `litmodules fit --config tabular_scratch`: the
"from scratch" tutorials' recipe (two hidden layers of 10, the tutorial's
initialisation, a sigmoid output, mean absolute error, the hand-written SGD
step). Copy it and change what you need.
"""

from __future__ import annotations

import argparse

import lightning as L

from datamodules import TabularDataModule
from nnmodules import ScratchDeepNet, make_trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default="nnmodules/cli/configs/examples/people.csv")
    parser.add_argument("--target", default="renewed")
    parser.add_argument("--drop", nargs="*", default=["id"], help="columns that are not features")
    parser.add_argument("--log1p", nargs="*", default=["income"], help="long-tailed numeric columns")
    parser.add_argument("--max-epochs", type=int, default=30)
    args = parser.parse_args()

    L.seed_everything(442)  # the tutorials' seed
    data = TabularDataModule(args.csv, target=args.target, drop=args.drop, log1p=args.log1p, batch_size=8)
    # its input width, classes and task (a sigmoid output for two classes) are the data's, once it is read
    model = ScratchDeepNet(hidden_dims=[10, 10], init="tutorial", loss="mae", lr=0.1)
    trainer = make_trainer("tabular_scratch_script", max_epochs=args.max_epochs)
    trainer.fit(model, datamodule=data)
    test_acc = trainer.test(ckpt_path="best", datamodule=data)[0]["test/acc"]
    print(f"test accuracy: {test_acc:.4f} (best checkpoint: {trainer.checkpoint_callback.best_model_path})")


if __name__ == "__main__":
    main()

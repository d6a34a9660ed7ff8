"""The main job as a plain script: MNIST -> MLPClassifier -> Trainer.fit -> Trainer.test.

    python scripts/train_mnist.py [--data-dir data] [--max-epochs 10]

The same run as `litmodules fit --config mnist_mlp`, for people
who prefer Python to YAML. Copy it and change what you need.
"""

from __future__ import annotations

import argparse

import lightning as L

from datamodules import MNISTDataModule
from nnmodules import SEED, MLPClassifier, make_trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data", help="folder holding (or receiving) MNIST/raw")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--min-test-acc", type=float, default=0.0, help="exit with an error below this test accuracy")
    args = parser.parse_args()

    L.seed_everything(SEED)
    data = MNISTDataModule(args.data_dir, batch_size=128)
    model = MLPClassifier(hidden_dims=(128, 128))  # input_dim and num_classes: the data's, when the Trainer sets it up
    trainer = make_trainer("mnist_mlp_script", max_epochs=args.max_epochs)
    trainer.fit(model, datamodule=data)
    test_acc = trainer.test(ckpt_path="best", datamodule=data)[0]["test/acc"]

    print(f"test accuracy: {test_acc:.4f} (best checkpoint: {trainer.checkpoint_callback.best_model_path})")
    if test_acc < args.min_test_acc:
        raise SystemExit(f"test accuracy {test_acc:.4f} is below --min-test-acc {args.min_test_acc}")


if __name__ == "__main__":
    main()

"""The smallest regression, end to end: the PyTorch introduction's 1-5-1 network, as a `Regressor` preset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from datamodules.contract import DataFacts
from nnmodules.nets import MLP, check_widths
from nnmodules.tasks import Regressor, Schedule

DEFAULTS = {"lbfgs": ("active", 1.0), "adam": ("pytorch", 0.1)}  # optimizer: (init, lr) when not given


class ToyRegressor(Regressor):
    """Linear layers with ReLU between them, ending in one number: a `Regressor` over `nets.MLP`.

    The defaults fit the introduction's noisy line y = 1 + 2x + 0.3 N(0, 1) best:
    a 1-5-1 net whose units all start active (the net starts as a straight line)
    and LBFGS steps, which reach the least-squares fit. The introduction's own
    recipe, PyTorch's initialisation and Adam at a constant 0.1, is
    `ToyRegressor(optimizer="adam")`. Any number of input features works: the data's, unless given.

    Args:
        input_dim: features per example; None: the data's.
        hidden_dims: width of each hidden layer.
        init: "active" or "pytorch" (see `nets.MLP`); None: "active" with LBFGS, "pytorch" with Adam.
        optimizer: "lbfgs" or "adam" (the introduction's), see `Regressor`.
        lr: step size of the optimizer; None: 1 for LBFGS, 0.1 for Adam (the introduction's). The hyperparameters
            keep the `init` and `lr` chosen.
        weight_decay: L2 penalty (Adam).
        lr_schedule: "constant" (the introduction's) or "one_cycle" (Adam).
        target_mean, target_std: how the data scaled the targets; None: the data's.
    """

    def __init__(
        self,
        input_dim: int | None = None,
        hidden_dims: Sequence[int] = (5,),
        init: Literal["pytorch", "active"] | None = None,
        optimizer: Literal["lbfgs", "adam"] = "lbfgs",
        lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: Schedule = "constant",
        target_mean: float | None = None,
        target_std: float | None = None,
    ) -> None:
        check_widths(hidden_dims=hidden_dims)  # its own settings: refused now
        default_init, default_lr = DEFAULTS.get(optimizer, ("pytorch", 0.1))
        init, lr = init or default_init, default_lr if lr is None else lr
        self.init_args.update(init=init, lr=lr)  # the hyperparameters say what was chosen
        self.net_settings = {"input_dim": input_dim, "hidden_dims": hidden_dims, "init": init}
        super().__init__(None, target_mean, target_std, optimizer, lr, weight_decay, lr_schedule)

    def can_build(self, facts: DataFacts | None) -> bool:
        return facts is not None or self.net_settings["input_dim"] is not None

    def make_network(self, facts: DataFacts | None) -> nn.Module:
        settings = self.net_settings
        input_dim = self.input_width(settings["input_dim"], facts)
        self.example_input_array = torch.zeros(1, input_dim)  # for TensorBoard's graph
        return MLP(input_dim, settings["hidden_dims"], 1, init=settings["init"])

"""What training reads and calls of a model, as protocols.

`NeuralNetwork` (`xconv.model`) is both; the step, the loop, the files and
`xconv.distributed` take a model typed by one of them, so each says which of its
public attributes and methods it uses, and none reaches for a private one.

- `StepModel`: the program (layers, their wiring, loss, metrics, optimizer) and
  where its arrays live (backend, dtype): what the training step reads at each call,
  and what data checks, replicas and file reads need.
- `TrainableModel`: with what a fit changes and calls besides (its batch order,
  `stop_training`, its generators, its step, its configuration): what the loop, the
  files and data-parallel training need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from xconv._typing import Namespace
from xconv.backends import Backend
from xconv.layers import Layer
from xconv.losses import Loss, Metric
from xconv.optimizers import Optimizer

if TYPE_CHECKING:
    from ._network import Network
    from ._step import TrainingStep

__all__ = ["StepModel", "TrainableModel"]


class StepModel(Protocol):
    """A model's program and where its arrays live, as the training step reads them."""

    @property
    def layers(self) -> Sequence[Layer]:
        """The layers, in the order they run (their params and buffers are the arrays)."""

    @property
    def network(self) -> Network:
        """The layers and their wiring (a stack or a graph)."""

    @property
    def loss_function(self) -> Loss: ...

    @property
    def metrics(self) -> Sequence[Metric]:
        """What a batch is scored by besides the loss."""

    @property
    def optimizer(self) -> Optimizer: ...

    @property
    def backend(self) -> Backend: ...

    @property
    def dtype(self) -> str:
        """The floating dtype of parameters and inputs, ``"float32"`` or ``"float64"``."""

    @property
    def xp(self) -> Namespace:
        """The array namespace of `backend`."""


class TrainableModel(StepModel, Protocol):
    """A model as a fit drives it: a `StepModel` with its state between batches."""

    #: set (by a callback) to end the fit after the current batch
    stop_training: bool
    #: orders the samples of each epoch; a checkpoint keeps and restores it
    batch_rng: np.random.Generator

    @property
    def seed(self) -> int: ...

    @property
    def validation_data(self) -> tuple[Any, Any] | None: ...

    @property
    def training_step(self) -> TrainingStep:
        """The model's step: what `fit` runs on each batch."""

    def batch_order(self, n_samples: int, shuffle: bool = True) -> np.ndarray:
        """The order of the samples in the next epoch."""

    def add(self, layer: Layer) -> None:
        """Append a layer to a stack (how a file's stack is built again)."""

    def get_config(self) -> dict[str, Any]:
        """The architecture and settings as JSON-able data."""

    def evaluate(
        self, X: Any, y: Any, batch_size: int = 256, *, return_dict: bool = False
    ) -> Any: ...

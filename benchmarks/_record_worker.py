"""One training of the accuracy record, in its own process; prints JSON.

``python -m benchmarks._record_worker lenet5 xconv|torch EPOCHS``: `xconv.models.lenet5`
(Adam, its default) on MNIST, batch 128, float32; the training loss of every batch and
the test accuracy after each epoch.

``python -m benchmarks._record_worker resnet20 xconv|torch BATCHES``:
`xconv.models.resnet20` (SGD 0.1, momentum 0.9, weight decay 1e-4, its default) on
CIFAR-10-shaped data, batch 128, float32; the training loss of each of the first
BATCHES batches of the first epoch.

``torch`` trains `benchmarks._torch_mirror.mirror` of the same xconv model (the same
initial weights, from seed 0) with PyTorch's optimizer of the same rule and settings;
both take the batches of `benchmarks._workloads.batch_order` (shuffled from the seed
and the epoch), in the same order.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from ._steps_worker import _limit_threads, _threads
from ._workloads import WORKLOADS, batch_order, build, load


class _Trainer:
    """One step and the test accuracy, on either library, from the same xconv model."""

    def __init__(
        self, workload: str, implementation: str, seed: int = 0, model: Any = None
    ) -> None:
        # `model`: an xconv model built from `seed`, instead of `workload`'s
        self.model = build(workload, seed=seed) if model is None else model
        self.torch: Any = None
        if implementation == "torch":
            import torch

            from ._torch_mirror import mirror, torch_loss, torch_optimizer

            torch.set_num_threads(_threads())
            torch.manual_seed(seed)
            self.torch = torch
            self.module = mirror(self.model)
            self.loss = torch_loss(self.model)
            self.optimizer = torch_optimizer(self.model.optimizer, self.module.parameters())

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        if self.torch is None:
            return float(self.model.train_on_batch(X, y)[0])
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.module(self.torch.from_numpy(X)), self.torch.from_numpy(y))
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        if self.torch is None:
            return float(self.model.evaluate(X, y)[1])
        self.module.eval()
        correct = 0
        with self.torch.no_grad():
            for start in range(0, len(X), 1000):
                logits = self.module(self.torch.from_numpy(X[start : start + 1000]))
                correct += int((logits.argmax(dim=1).numpy() == y[start : start + 1000]).sum())
        return correct / len(X)


def train_lenet5(implementation: str, epochs: int, seed: int = 0) -> dict[str, Any]:
    """LeNet-5 on MNIST: every batch's loss, and the test accuracy after each epoch."""
    data = load("lenet5", seed=seed, test=True)
    assert data.X_test is not None
    assert data.y_test is not None
    trainer = _Trainer("lenet5", implementation, seed)
    batch_size, _ = WORKLOADS["lenet5"]
    losses: list[float] = []
    accuracies: list[float] = []
    seconds: list[float] = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = batch_order(data.n_train, batch_size, epoch, seed)
        losses.extend(trainer.step(*data.batch(index)) for index in order)
        seconds.append(time.perf_counter() - start)
        accuracies.append(trainer.accuracy(data.X_test, data.y_test))
    return {
        "data": data.source,
        "threads": _threads(),
        "batch_size": batch_size,
        "batch_losses": losses,
        "test_accuracy": accuracies,
        "epoch_seconds": seconds,
    }


def train_resnet20(implementation: str, batches: int, seed: int = 0) -> dict[str, Any]:
    """ResNet-20: the loss of each of the first `batches` batches of the first epoch."""
    data = load("resnet20", seed=seed)
    trainer = _Trainer("resnet20", implementation, seed)
    batch_size, _ = WORKLOADS["resnet20"]
    order = batch_order(data.n_train, batch_size, 0, seed)[:batches]
    losses: list[float] = []
    seconds = 0.0
    for index in order:
        X, y = data.batch(index)  # made outside the timing (synthetic data is)
        start = time.perf_counter()
        losses.append(trainer.step(X, y))
        seconds += time.perf_counter() - start
    return {
        "data": data.source,
        "threads": _threads(),
        "batch_size": batch_size,
        "batches_per_epoch": -(-data.n_train // batch_size),
        "batch_losses": losses,
        "seconds": seconds,
    }


if __name__ == "__main__":
    limits = _limit_threads()
    workload, implementation, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runner = {"lenet5": train_lenet5, "resnet20": train_resnet20}[workload]
    print(json.dumps(runner(implementation, count)))

"""One training of MNIST's default recipe, in its own process; prints JSON.

``python -m benchmarks._recipe_worker xconv|torch SEED [EPOCHS]``: `xconv.models.mnist_bn`
built from SEED (float32), trained as `xconv.models.MNIST_RECIPE` says (batch 128,
AdamW, a `xconv.callbacks.OneCycle` rate set before every batch) on real MNIST, on
NumPy; or PyTorch training `benchmarks._torch_mirror.mirror` of that model (the same
initial weights) with ``torch.optim.AdamW`` of the same settings and the same rate at
every batch. Both take the batches of `benchmarks._workloads.batch_order` (shuffled
from the seed and the epoch), in the same order. Reports each epoch's mean training
loss, its seconds of training, and the test accuracy after it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from ._record_worker import _Trainer
from ._steps_worker import _limit_threads, _threads
from ._workloads import batch_order, load


class _RecipeTrainer(_Trainer):
    """`_Trainer` on `mnist_bn`, whose learning rate changes batch by batch."""

    def __init__(self, implementation: str, seed: int) -> None:
        from xconv.models import mnist_bn

        super().__init__("lenet5", implementation, seed, model=mnist_bn(seed=seed))

    def set_rate(self, rate: float) -> None:
        self.model.optimizer.learning_rate = rate
        if self.torch is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = rate


def train(implementation: str, seed: int, epochs: int | None = None) -> dict[str, Any]:
    """The recipe's epochs: mean training loss, seconds and test accuracy of each."""
    from xconv.callbacks import OneCycle
    from xconv.models import MNIST_RECIPE

    data = load("lenet5", seed=seed, test=True)  # MNIST, real where it is here
    assert data.X_test is not None
    assert data.y_test is not None
    epochs = epochs or int(MNIST_RECIPE["epochs"])
    batch_size = int(MNIST_RECIPE["batch_size"])
    per_epoch = -(-data.n_train // batch_size)
    schedule = OneCycle(
        MNIST_RECIPE["max_lr"],
        total_steps=epochs * per_epoch,
        pct_start=MNIST_RECIPE["pct_start"],
    )
    trainer = _RecipeTrainer(implementation, seed)
    losses: list[float] = []
    accuracies: list[float] = []
    seconds: list[float] = []
    for epoch in range(epochs):
        start = time.perf_counter()
        epoch_losses = []
        for batch, index in enumerate(batch_order(data.n_train, batch_size, epoch, seed)):
            trainer.set_rate(schedule.rate(epoch * per_epoch + batch))
            epoch_losses.append(trainer.step(*data.batch(index)))
        seconds.append(time.perf_counter() - start)
        losses.append(float(np.mean(epoch_losses)))
        accuracies.append(trainer.accuracy(data.X_test, data.y_test))
    return {
        "data": data.source,
        "seed": seed,
        "threads": _threads(),
        "batch_size": batch_size,
        "epoch_loss": losses,
        "test_accuracy": accuracies,
        "epoch_seconds": seconds,
    }


if __name__ == "__main__":
    limits = _limit_threads()
    implementation, seed = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(train(implementation, seed, count)))

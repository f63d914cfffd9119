"""One timed training run of the digits CNN, in its own process; prints JSON.

``python -m benchmarks._train_worker IMPLEMENTATION EPOCHS SEED``, IMPLEMENTATION one of
``xconv``, ``xconv-torch``, ``xconv-jax``, ``xconv-jax-eager`` and ``torch``.

``xconv`` trains on NumPy; ``xconv-torch`` on the torch backend (its ops delegated to
PyTorch's); ``xconv-jax`` on JAX with its training step compiled (`jax.jit`, the
default there), ``xconv-jax-eager`` on JAX without compiling it.
Besides the whole run's seconds, each reports ``epoch_seconds``: the median epoch after
the first (which, compiled, includes the compilation).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

from xconv.data import load_digits, train_test_split


def _data(seed: int) -> tuple[np.ndarray, ...]:
    X, y = load_digits()
    return train_test_split(X, y, test_size=0.4, seed=seed)


def run_xconv(epochs: int, seed: int, backend: str = "numpy", jit: bool = True) -> dict[str, Any]:
    from xconv.callbacks import LambdaCallback
    from xconv.models import digits_cnn as build_digits_cnn

    X_train, X_test, y_train, y_test = _data(seed)
    model = build_digits_cnn(seed=seed, backend=backend)
    model.training_step.compile = jit
    ends = []
    timer = LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    start = time.perf_counter()
    model.fit(X_train, y_train, epochs, 256, callbacks=[timer])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "epoch_seconds": statistics.median(b - a for a, b in itertools.pairwise(ends))
        if len(ends) > 1
        else seconds,
        "first_epoch_seconds": ends[0] - start,
        "accuracy": model.evaluate(X_test, y_test)[1],
    }


def torch_digits_cnn() -> Any:
    """The digits CNN in PyTorch, layer for layer as `xconv.models.digits_cnn`."""
    from torch import nn

    # BatchNorm momentum: PyTorch weighs the new batch by `momentum` (0.01 = xconv's 0.99)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Dropout(0.25),
        nn.BatchNorm2d(16, eps=0.01, momentum=0.01),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Dropout(0.25),
        nn.BatchNorm2d(32, eps=0.01, momentum=0.01),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 256), nn.ReLU(), nn.Dropout(0.4),
        nn.BatchNorm1d(256, eps=0.01, momentum=0.01),
        nn.Linear(256, 10),
    )  # fmt: skip


def run_torch(epochs: int, seed: int) -> dict[str, float]:
    """The same network in PyTorch: layers, initial weights, Adam, batch size, epochs, split.

    The batches are not xconv's: each library shuffles its own.
    """
    import torch
    from torch import nn

    from xconv.models import digits_cnn as build_digits_cnn

    from ._torch_mirror import mirror

    torch.manual_seed(seed)
    X_train, X_test, y_train, y_test = (torch.from_numpy(a) for a in _data(seed))
    # torch_digits_cnn()'s network, from xconv's initial weights
    model = mirror(build_digits_cnn(seed=seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_function = nn.CrossEntropyLoss()  # softmax folded into the loss
    generator = torch.Generator().manual_seed(seed)
    ends = []
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X_train), generator=generator)
        for batch in order.split(256):
            optimizer.zero_grad()
            loss = loss_function(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        ends.append(time.perf_counter())
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_test).argmax(dim=1) == y_test).double().mean().item()
    steady = [b - a for a, b in itertools.pairwise(ends)]
    return {
        "seconds": seconds,
        "epoch_seconds": statistics.median(steady) if steady else seconds,
        "first_epoch_seconds": ends[0] - start,
        "accuracy": accuracy,
    }


if __name__ == "__main__":
    implementation, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runners = {
        "xconv": run_xconv,
        "xconv-torch": lambda e, s: run_xconv(e, s, backend="torch"),
        "xconv-jax": lambda e, s: run_xconv(e, s, backend="jax"),
        "xconv-jax-eager": lambda e, s: run_xconv(e, s, backend="jax", jit=False),
        "torch": run_torch,
    }
    print(json.dumps(runners[implementation](epochs, seed)))

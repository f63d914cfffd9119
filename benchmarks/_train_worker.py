"""One timed training run of the digits CNN, in its own process; prints JSON.

``python -m benchmarks._train_worker xconv|torch EPOCHS SEED``
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from xconv.data import load_digits, train_test_split


def _data(seed: int) -> tuple[np.ndarray, ...]:
    X, y = load_digits()
    return train_test_split(X, y, test_size=0.4, seed=seed)


def run_xconv(epochs: int, seed: int) -> dict[str, float]:
    from xconv._cli import build_digits_cnn

    X_train, X_test, y_train, y_test = _data(seed)
    model = build_digits_cnn(seed=seed, backend="numpy")
    start = time.perf_counter()
    model.fit(X_train, y_train, epochs, 256)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "accuracy": model.evaluate(X_test, y_test)[1]}


def torch_digits_cnn() -> Any:
    """The digits CNN in PyTorch, layer for layer as `xconv._cli.build_digits_cnn`."""
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
    """The same network in PyTorch: layers, Adam, batch size, epochs and split."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    X_train, X_test, y_train, y_test = (torch.from_numpy(a) for a in _data(seed))
    model = torch_digits_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_function = nn.CrossEntropyLoss()  # softmax folded into the loss
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X_train), generator=generator)
        for batch in order.split(256):
            optimizer.zero_grad()
            loss = loss_function(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_test).argmax(dim=1) == y_test).double().mean().item()
    return {"seconds": seconds, "accuracy": accuracy}


if __name__ == "__main__":
    implementation, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runner = {"xconv": run_xconv, "torch": run_torch}[implementation]
    print(json.dumps(runner(epochs, seed)))

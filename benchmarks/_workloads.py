"""The networks and data of the whole-training benchmarks and the accuracy record.

Each workload is a network, its data and a batch size: ``mnist`` (issue 14's CNN on
MNIST), ``resnet20`` (on CIFAR-10-shaped images), ``digits`` (the ancestor's CNN on
the 8x8 digits) and ``lenet5`` (on MNIST, for the record). Data is real where it is on
this machine: MNIST from ``../shared/data/mnist`` (beside the repository), CIFAR-10
from a folder named by ``XCONV_BENCH_CIFAR10``; otherwise synthetic images of the same
shape, made batch by batch from the seed, which say so in `Data.source`.

Synthetic images are learnable: each class has a fixed random template, and an image
is its class's template plus twice as much noise, so a loss curve falls as it would on
real data, if faster.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MNIST_PATH", "WORKLOADS", "Data", "batch_order", "build", "load"]

#: the real MNIST of the shared measurement data, beside the repository
MNIST_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"

#: workload -> (batch size, samples in an epoch of the real data set)
WORKLOADS = {
    "mnist": (128, 60_000),
    "resnet20": (128, 50_000),
    "digits": (256, 1_078),
    "lenet5": (128, 60_000),
}


@dataclass
class Data:
    """A workload's training (and test) data, whole arrays or made batch by batch."""

    source: str  # what the data is, for the output
    n_train: int
    shape: tuple[int, ...]  # one image
    X_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    seed: int = 0

    def batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The samples at `index` (synthetic ones made from their indices)."""
        if self.X_train is not None and self.y_train is not None:
            return self.X_train[index], self.y_train[index]
        return _synthetic(self.shape, index, self.seed)


def _synthetic(
    shape: tuple[int, ...], index: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Samples `index` of a synthetic 10-class set: the class template plus noise."""
    templates = np.random.default_rng([seed, 0]).standard_normal((10, *shape), dtype=np.float32)
    X = np.empty((len(index), *shape), dtype=np.float32)
    labels = np.empty(len(index), dtype=np.int64)
    for row, i in enumerate(index):
        rng = np.random.default_rng([seed, 1, int(i)])
        labels[row] = rng.integers(0, 10)
        X[row] = templates[labels[row]] + 2 * rng.standard_normal(shape, dtype=np.float32)
    return X, labels


def load(workload: str, *, seed: int = 0, test: bool = False) -> Data:
    """The data of `workload`: real where present here, else synthetic of the same shape."""
    _, n_train = WORKLOADS[workload]
    if workload in ("mnist", "lenet5"):
        if (MNIST_PATH / "train-images-idx3-ubyte.gz").exists() or (
            MNIST_PATH / "train-images-idx3-ubyte"
        ).exists():
            from xconv.data import load_mnist

            (X, y), (X_test, y_test) = load_mnist(path=MNIST_PATH)
            return Data(f"real MNIST ({MNIST_PATH})", len(X), (1, 28, 28), X, y, X_test, y_test)
        return _synthetic_data("synthetic MNIST-shaped (no ../shared/data/mnist)", n_train,
                               (1, 28, 28), seed, test)  # fmt: skip
    if workload == "resnet20":
        folder = os.environ.get("XCONV_BENCH_CIFAR10")
        if folder:
            from xconv.data import load_cifar10

            (X, y), (X_test, y_test) = load_cifar10(path=folder)
            return Data(f"real CIFAR-10 ({folder})", len(X), (3, 32, 32), X, y, X_test, y_test)
        return _synthetic_data("synthetic CIFAR-10-shaped, 10 classes", n_train, (3, 32, 32),
                               seed, test)  # fmt: skip
    if workload == "digits":
        from xconv.data import load_digits, train_test_split

        X, y = load_digits()
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.4, seed=seed)
        return Data("scikit-learn's 8x8 digits, 60 % for training", len(X), (1, 8, 8), X, y,
                    X_test, y_test)  # fmt: skip
    raise ValueError(f"`workload` must be one of {sorted(WORKLOADS)}, got {workload!r}")


def _synthetic_data(
    source: str, n_train: int, shape: tuple[int, ...], seed: int, test: bool
) -> Data:
    data = Data(source, n_train, shape, seed=seed)
    if test:  # 10,000 test samples, indices past the training ones
        data.X_test, data.y_test = _synthetic(shape, np.arange(n_train, n_train + 10_000), seed)
    return data


def batch_order(n_samples: int, batch_size: int, epoch: int, seed: int = 0) -> list[np.ndarray]:
    """The batches of one epoch, shuffled from (seed, epoch): both libraries take these."""
    order = np.random.default_rng([seed, 100, epoch]).permutation(n_samples)
    return [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]


def steps_per_epoch(workload: str, n_train: int | None = None) -> int:
    """Batches in one epoch of `workload`'s training set."""
    batch_size, samples = WORKLOADS[workload]
    return math.ceil((samples if n_train is None else n_train) / batch_size)


def build(workload: str, *, seed: int = 0, backend: str = "numpy") -> Any:
    """The xconv network of `workload`, built (its parameters made from `seed`)."""
    from xconv import models

    if workload == "mnist":
        return mnist_cnn(seed=seed, backend=backend)
    if workload == "resnet20":
        return models.resnet20(seed=seed, backend=backend)
    if workload == "digits":
        return models.digits_cnn(seed=seed, backend=backend)
    if workload == "lenet5":
        return models.lenet5(seed=seed, backend=backend)
    raise ValueError(f"`workload` must be one of {sorted(WORKLOADS)}, got {workload!r}")


def mnist_cnn(*, seed: int = 0, backend: str = "numpy", dtype: str = "float32") -> Any:
    """Issue 14's MNIST CNN: conv 32 3x3, max pool 2, conv 64 3x3, max pool 2, dense 128,
    dense 10, ReLU after each hidden layer; 'valid' convolutions (28 -> 26 -> 13 -> 11 ->
    5), Adam, the cross-entropy of logits.
    """
    from xconv.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
    from xconv.losses import CrossEntropy
    from xconv.model import NeuralNetwork
    from xconv.optimizers import Adam

    model = NeuralNetwork(
        Adam(), CrossEntropy(from_logits=True), dtype=dtype, seed=seed, backend=backend
    )
    model.add(Conv2D(32, 3, input_shape=(1, 28, 28), padding="valid"))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Conv2D(64, 3, padding="valid"))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Flatten())
    model.add(Dense(128))
    model.add(Activation("relu"))
    model.add(Dense(10))
    return model

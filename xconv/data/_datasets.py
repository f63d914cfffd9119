"""Host-side helpers for datasets: one-hot labels, a train/test split, batches."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._digits import float_dtype, shown

__all__ = ["batch_iterator", "to_categorical", "train_test_split"]

#: the most classes `to_categorical` makes (a column each): the largest 32-bit signed int
MAX_CLASSES = 2**31 - 1


def _generator(seed: object, name: str) -> np.random.Generator:
    """A NumPy generator from a seed or a generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(
            f"`{name}` must be a non-negative integer or a numpy Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _samples(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """X and y as NumPy arrays with at least one axis and as many samples."""
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError(f"`X` must have a sample axis, got a 0-d array {X!r}")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"`y` must have a sample axis, got a 0-d array {y!r}")
    if len(X) != len(y):
        raise ValueError(f"`X` has {len(X)} samples but `y` has {len(y)}")
    return X, y


def to_categorical(y: Any, n_classes: int | None = None, *, dtype: Any = "float32") -> np.ndarray:
    """One-hot rows from integer class labels.

    Args:
        y: integer labels, each in [0, n_classes).
        n_classes: number of classes, at most 2**31 - 1 (default: the largest label
            + 1); the result holds ``N * n_classes`` values, so memory bounds it first.
        dtype: floating dtype of the result.

    Returns:
        A NumPy array with a 1 in column ``y[i]`` of row i and 0 elsewhere.

    Shape:
        y: (N,) -> (N, n_classes).

    Example:
        >>> to_categorical([0, 2, 1])
        array([[1., 0., 0.],
               [0., 0., 1.],
               [0., 1., 0.]], dtype=float32)
    """
    kind = float_dtype(dtype)
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"`y` must hold integer class labels, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"`y` must be a 1-D array of labels, got shape {labels.shape}")
    if n_classes is None:
        if labels.size == 0:
            raise ValueError("`n_classes` must be given when `y` is empty")
        n_classes = int(labels.max()) + 1
        if n_classes > MAX_CLASSES:
            raise ValueError(
                f"`y` holds the label {n_classes - 1}: more classes than the 2**31 - 1 "
                "that to_categorical makes"
            )
    elif isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise TypeError(f"`n_classes` must be a positive integer, got {n_classes!r}")
    elif n_classes < 1:
        raise ValueError(f"`n_classes` must be a positive integer, got {n_classes!r}")
    elif n_classes > MAX_CLASSES:
        raise ValueError(f"`n_classes` must be at most 2**31 - 1, got {shown(n_classes)}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise ValueError(
            f"`y` must hold labels in [0, {n_classes}) for `n_classes`={n_classes}, got {bad}"
        )
    # compare each label with every class
    onehot: np.ndarray = (labels[:, None] == np.arange(n_classes)).astype(kind)
    return onehot


def train_test_split(
    X: Any, y: Any, *, test_size: float = 0.4, shuffle: bool = True, seed: Any = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split samples into a training and a test part.

    Args:
        X, y: samples and their targets, as many of each (y is required: None is a
            TypeError).
        test_size: fraction of the samples for the test part, in (0, 1); the test
            part gets ``ceil(test_size * N)`` of them.
        shuffle: draw the parts at random (else the test part is the last samples).
        seed: an integer seed or a numpy Generator, for the shuffle.

    Returns:
        ``(X_train, X_test, y_train, y_test)``, NumPy arrays (the ancestor's order).

    Example:
        >>> X, y = np.arange(10).reshape(5, 2), np.arange(5)
        >>> X_train, X_test, y_train, y_test = train_test_split(X, y, shuffle=False)
        >>> y_train, y_test
        (array([0, 1, 2]), array([3, 4]))
    """
    X, labels = _samples(X, y)
    if labels is None:
        raise TypeError("`y` must be the targets of `X` (an array), got None")
    size: object = test_size
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise TypeError(f"`test_size` must be a number in (0, 1), got {test_size!r}")
    # compared as given, not as float(size): 10**400 is beyond float's range
    if size <= 0 or not size < 1:  # NaN too
        raise ValueError(f"`test_size` must be in (0, 1), got {shown(test_size)}")
    fraction = float(size)
    if not isinstance(shuffle, bool):
        raise TypeError(f"`shuffle` must be True or False, got {shuffle!r}")
    n = len(X)
    # a tolerance, so that 0.3 * 10 is 3 test samples and not 4
    n_test = math.ceil(fraction * n - 1e-9)
    if n_test < 1 or n_test >= n:
        raise ValueError(
            f"`test_size`={test_size!r} of {n} samples leaves {n - n_test} for training "
            f"and {n_test} for testing; both need at least one"
        )
    order = _generator(seed, "seed").permutation(n) if shuffle else np.arange(n)
    train, test = order[: n - n_test], order[n - n_test :]
    return X[train], X[test], labels[train], labels[test]


def batch_iterator(
    X: Any,
    y: Any = None,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    rng: Any = None,
) -> Iterator[Any]:
    """Consecutive batches of `X` (and `y`); the last batch may be shorter.

    Arguments are checked when it is called, not when the first batch is drawn.

    Args:
        X, y: samples and (optionally) their targets, as many of each.
        batch_size: samples per batch, >= 1.
        shuffle: visit the samples in a random order (new for every call).
        rng: an integer seed or a numpy Generator for the order (default: a fresh
            unseeded generator).

    Returns:
        An iterator over ``X_batch`` or, with `y`, ``(X_batch, y_batch)``.

    Example:
        >>> [b.tolist() for b in batch_iterator(np.arange(5), batch_size=2)]
        [[0, 1], [2, 3], [4]]
    """
    X, labels = _samples(X, y)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    if not isinstance(shuffle, bool):
        raise TypeError(f"`shuffle` must be True or False, got {shuffle!r}")
    generator = None if rng is None else _generator(rng, "rng")
    order = None
    if shuffle:
        order = (generator or np.random.default_rng()).permutation(len(X))
    return _batches(X, labels, int(batch_size), order)


def _batches(
    X: np.ndarray, y: np.ndarray | None, batch_size: int, order: np.ndarray | None
) -> Iterator[Any]:
    for start in range(0, len(X), batch_size):
        # the next batch_size samples, in order or through the permutation
        if order is None:
            index: Any = slice(start, start + batch_size)
        else:
            index = order[start : start + batch_size]
        yield X[index] if y is None else (X[index], y[index])

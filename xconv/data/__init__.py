"""Bundled data and host-side dataset helpers (NumPy arrays).

`load_digits` reads scikit-learn's 8x8 handwritten digits from a file shipped with
xconv, so examples run offline. `to_categorical`, `train_test_split` and
`batch_iterator` work on host arrays; move batches to a backend yourself (or let the
model do it).

>>> from xconv.data import load_digits, to_categorical, train_test_split
>>> X, y = load_digits()
>>> X_train, X_test, y_train, y_test = train_test_split(X, to_categorical(y))
>>> X_train.shape, y_test.shape
((1078, 1, 8, 8), (719, 10))
"""

from ._datasets import batch_iterator, to_categorical, train_test_split
from ._digits import DIGITS_SHA256, load_digits

__all__ = [
    "DIGITS_SHA256",
    "batch_iterator",
    "load_digits",
    "to_categorical",
    "train_test_split",
]

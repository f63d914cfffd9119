"""Bundled data, real datasets and host-side dataset helpers (NumPy arrays).

`load_digits` reads scikit-learn's 8x8 handwritten digits from a file shipped with
xconv, so examples run offline. `load_mnist`, `load_fashion_mnist` and `load_cifar10`
read the original files from a folder, or download, check and cache them (see
``xconv/data/README.md``). `to_categorical`, `train_test_split` and
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
from ._loaders import load_cifar10, load_fashion_mnist, load_mnist

__all__ = [
    "DIGITS_SHA256",
    "batch_iterator",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "to_categorical",
    "train_test_split",
]

"""The bundled handwritten digits: 1797 images of 8x8 pixels, read offline."""

from __future__ import annotations

import hashlib
import io
import warnings
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["DIGITS_SHA256", "load_digits"]


def shown(value: object) -> str:
    """`repr(value)`, shortened in the middle past 80 characters (10**400 has 401 digits).

    `xconv.data` imports no other part of xconv (docs/architecture.md), so it quotes
    values itself, as `xconv._validation` does.
    """
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:38]}...{text[-38:]} ({len(text)} characters)"


DIGITS_FILE = "digits.npz"
#: sha256 of the bundled ``digits.npz``; a file that differs is an error, not data
DIGITS_SHA256 = "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e"
N_DIGITS = 1797


def float_dtype(dtype: Any) -> np.dtype[Any]:
    """`dtype` as a NumPy floating dtype, or a TypeError naming it.

    Whatever `np.dtype` refuses is refused: its TypeError, its ValueError ('0:'), its
    SyntaxError ('01'), and a warning, raised as an error here (the alias 'a',
    deprecated in NumPy 2), so that no warning escapes.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result: np.dtype[Any] | None = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError, Warning):
        result = None
    if result is None or result.kind != "f":
        raise TypeError(
            f"`dtype` must be a floating dtype such as 'float32', got {shown(dtype)}"
        ) from None
    return result


def _read_bundled() -> bytes:
    """The bytes of the file shipped inside the package."""
    return resources.files(__package__).joinpath(DIGITS_FILE).read_bytes()


def load_digits(*, dtype: Any = "float32") -> tuple[np.ndarray, np.ndarray]:
    """The 1797 handwritten digits of scikit-learn, as NCHW images and labels.

    The images are the test set of the UCI "Optical Recognition of Handwritten
    Digits" data: each pixel counts the set pixels of a 4x4 block of a 32x32 bitmap,
    0 to 16. They ship with xconv (see ``xconv/data/README.md``), so nothing is
    downloaded; the file's sha256 is checked on every load.

    Args:
        dtype: floating dtype of the images (a NumPy dtype or its name); anything else
            is a TypeError.

    Returns:
        ``(X, y)``: host NumPy arrays; X holds pixel / 16, in [0, 1].

    Shape:
        X: (1797, 1, 8, 8); y: (1797,), int64 labels 0..9.

    Example:
        >>> X, y = load_digits()
        >>> X.shape, X.dtype, float(X.min()), float(X.max())
        ((1797, 1, 8, 8), dtype('float32'), 0.0, 1.0)
        >>> y[:10]
        array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """
    kind = float_dtype(dtype)
    raw = _read_bundled()
    # refuse a damaged file rather than train on it
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DIGITS_SHA256:
        raise ValueError(
            f"the bundled {DIGITS_FILE} is corrupted: its sha256 is {digest}, expected "
            f"{DIGITS_SHA256}; reinstall xconv"
        )
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    # pixels 0..16 to [0, 1], with a channel axis
    X = (images.astype(kind) / kind.type(16)).reshape(N_DIGITS, 1, 8, 8)
    y = labels.astype(np.int64)
    return X, y

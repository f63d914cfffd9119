"""Bundled digits, one-hot labels, splits and batches (host NumPy, no backend needed)."""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import numpy as np
import pytest

from xconv import data
from xconv.data import (
    DIGITS_SHA256,
    _digits,
    batch_iterator,
    load_digits,
    to_categorical,
    train_test_split,
)

# The first image of scikit-learn's digits (a 0), pixel values 0..16, row by row.
FIRST_DIGIT = [
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]


def test_digits_are_the_scikit_learn_digits():
    X, y = load_digits()
    assert X.shape == (1797, 1, 8, 8)
    assert X.dtype == np.float32
    assert y.shape == (1797,)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X[0, 0] * 16, FIRST_DIGIT)
    np.testing.assert_array_equal(y[:10], np.arange(10))
    # the class counts of the UCI test set, as its documentation lists them
    np.testing.assert_array_equal(
        np.bincount(y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    )
    assert X.min() == 0.0
    assert X.max() == 1.0
    # every value is a count out of 16
    np.testing.assert_array_equal(X * 16, np.round(X * 16))


def test_digits_dtype():
    X64, _ = load_digits(dtype="float64")
    assert X64.dtype == np.float64
    X32, _ = load_digits(dtype=np.float32)
    np.testing.assert_array_equal(X32, X64)  # pixel / 16 is exact in both
    with pytest.raises(TypeError, match="`dtype` must be a floating dtype such as 'float32'"):
        load_digits(dtype="int64")
    with pytest.raises(TypeError, match="`dtype` must be a floating dtype"):
        load_digits(dtype="no such dtype")


def test_bundled_file_is_checked_and_holds_no_pickles():
    raw = resources.files("xconv.data").joinpath("digits.npz").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == DIGITS_SHA256
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["images", "labels"]
        assert npz["images"].dtype == np.uint8
        assert npz["labels"].dtype == np.uint8
    assert len(raw) < 64_000  # compact: it ships in the wheel


def test_a_corrupted_file_is_a_clear_error(monkeypatch):
    raw = bytearray(resources.files("xconv.data").joinpath("digits.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    monkeypatch.setattr(_digits, "_read_bundled", lambda: bytes(raw))
    with pytest.raises(ValueError, match=r"the bundled digits\.npz is corrupted: its sha256 is"):
        load_digits()


def test_to_categorical():
    onehot = to_categorical(np.array([2, 0, 1, 2]))
    np.testing.assert_array_equal(onehot, np.eye(3)[[2, 0, 1, 2]])
    assert onehot.dtype == np.float32
    wide = to_categorical([1, 0], 4, dtype="float64")
    np.testing.assert_array_equal(wide, [[0, 1, 0, 0], [1, 0, 0, 0]])
    assert wide.dtype == np.float64
    assert to_categorical(np.array([], dtype=np.int64), 3).shape == (0, 3)
    _, y = load_digits()
    np.testing.assert_array_equal(to_categorical(y).argmax(axis=1), y)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([0, -1, 2],), {}, ValueError, r"`y` must hold labels in \[0, 3\).*got -1"),
        (([0, 3],), {"n_classes": 3}, ValueError, r"labels in \[0, 3\) for `n_classes`=3, got 3"),
        (([0.0, 1.0],), {}, TypeError, "`y` must hold integer class labels, got dtype float64"),
        (([[0, 1]],), {}, ValueError, r"`y` must be a 1-D array of labels, got shape \(1, 2\)"),
        (([0, 1],), {"n_classes": 0}, ValueError, "`n_classes` must be a positive integer"),
        (([0, 1],), {"n_classes": 2.0}, TypeError, "`n_classes` must be a positive integer"),
        (([],), {}, TypeError, "integer class labels"),  # [] is float64 to NumPy
        ((np.array([], dtype=int),), {}, ValueError, "`n_classes` must be given"),
        (([0, 1],), {"dtype": "int32"}, TypeError, "`dtype` must be a floating dtype"),
    ],
)
def test_to_categorical_checks(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        to_categorical(*args, **kwargs)


def test_train_test_split():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3)
    assert (len(X_train), len(X_test)) == (7, 3)  # 0.3 * 10 is 3, not 4
    # rows stay with their labels, every sample lands in exactly one part
    np.testing.assert_array_equal(X_train[:, 0], 2 * y_train)
    np.testing.assert_array_equal(X_test[:, 0], 2 * y_test)
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    assert y_test.tolist() != [7, 8, 9]  # shuffled by default
    # the same seed gives the same split; another seed another one
    again = train_test_split(X, y, test_size=0.3)
    np.testing.assert_array_equal(again[3], y_test)
    other = train_test_split(X, y, test_size=0.3, seed=1)
    assert other[3].tolist() != y_test.tolist()
    generator = train_test_split(X, y, test_size=0.3, seed=np.random.default_rng(0))
    np.testing.assert_array_equal(generator[3], y_test)
    # without shuffling, the test part is the end
    _, _, y_train, y_test = train_test_split(X, y, test_size=0.25, shuffle=False)
    assert y_train.tolist() == list(range(7))
    assert y_test.tolist() == [7, 8, 9]  # ceil(2.5)


def test_train_test_split_of_the_digits():
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, to_categorical(y))
    assert X_train.shape == (1078, 1, 8, 8)
    assert X_test.shape == (719, 1, 8, 8)
    assert y_train.shape == (1078, 10)
    assert y_test.shape == (719, 10)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"test_size": 0.0}, ValueError, r"`test_size` must be in \(0, 1\), got 0.0"),
        ({"test_size": 1}, ValueError, r"`test_size` must be in \(0, 1\), got 1"),
        ({"test_size": float("nan")}, ValueError, r"`test_size` must be in \(0, 1\)"),
        ({"test_size": "0.5"}, TypeError, "`test_size` must be a number"),
        ({"test_size": 0.01}, None, None),
        ({"test_size": 0.99}, ValueError, "leaves 0 for training and 4 for testing"),
        ({"shuffle": 1}, TypeError, "`shuffle` must be True or False"),
        ({"seed": -1}, TypeError, "`seed` must be a non-negative integer or a numpy Generator"),
        ({"seed": 1.5}, TypeError, "`seed` must be a non-negative integer"),
    ],
)
def test_train_test_split_checks(kwargs, error, match):
    X, y = np.zeros((4, 3)), np.arange(4)
    if error is None:
        assert len(train_test_split(X, y, **kwargs)[1]) == 1  # ceil(0.04) is one sample
        return
    with pytest.raises(error, match=match):
        train_test_split(X, y, **kwargs)


def test_train_test_split_needs_as_many_targets_as_samples():
    with pytest.raises(ValueError, match="`X` has 5 samples but `y` has 4"):
        train_test_split(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="both need at least one"):
        train_test_split(np.zeros((1, 2)), np.zeros(1))


def test_batch_iterator_in_order():
    X, y = np.arange(14).reshape(7, 2), np.arange(7)
    batches = list(batch_iterator(X, y, batch_size=3))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]  # last one short
    for X_batch, y_batch in batches:
        np.testing.assert_array_equal(X_batch[:, 0], 2 * y_batch)
    only_X = list(batch_iterator(X, batch_size=64))
    assert len(only_X) == 1
    np.testing.assert_array_equal(only_X[0], X)  # the default batch_size covers all 7
    assert list(batch_iterator(np.zeros((0, 2)), batch_size=2)) == []


def test_batch_iterator_shuffles_every_call():
    X = np.arange(50)
    first = np.concatenate(list(batch_iterator(X, batch_size=8, shuffle=True, rng=0)))
    assert sorted(first.tolist()) == list(range(50))  # a permutation
    assert first.tolist() != list(range(50))
    same = np.concatenate(list(batch_iterator(X, batch_size=8, shuffle=True, rng=0)))
    np.testing.assert_array_equal(same, first)  # the same seed, the same order
    # one generator for all epochs: a new order each time
    rng = np.random.default_rng(0)
    epoch1 = np.concatenate(list(batch_iterator(X, batch_size=8, shuffle=True, rng=rng)))
    epoch2 = np.concatenate(list(batch_iterator(X, batch_size=8, shuffle=True, rng=rng)))
    assert epoch1.tolist() != epoch2.tolist()
    # samples and targets are shuffled together
    for X_batch, y_batch in batch_iterator(X, -X, batch_size=8, shuffle=True, rng=1):
        np.testing.assert_array_equal(X_batch, -y_batch)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "`batch_size` must be a positive integer, got 0"),
        ({"batch_size": 2.0}, TypeError, "`batch_size` must be a positive integer, got 2.0"),
        ({"y": np.zeros(3)}, ValueError, "`X` has 4 samples but `y` has 3"),
        ({"shuffle": "yes"}, TypeError, "`shuffle` must be True or False"),
        ({"shuffle": True, "rng": "seed"}, TypeError, "`rng` must be a non-negative integer"),
    ],
)
def test_batch_iterator_checks_when_called(kwargs, error, match):
    with pytest.raises(error, match=match):
        batch_iterator(np.zeros((4, 2)), **kwargs)  # no next(): checked at the call


def test_public_names():
    assert data.__all__ == [
        "DIGITS_SHA256",
        "batch_iterator",
        "load_cifar10",
        "load_digits",
        "load_fashion_mnist",
        "load_mnist",
        "to_categorical",
        "train_test_split",
    ]

"""NumPy scalars are accepted, and bools refused, the same way at every public entry."""

from __future__ import annotations

import numpy as np
import pytest

from xconv import NeuralNetwork, callbacks
from xconv.layers import Conv2D, Dense, Dropout, MaxPooling2D
from xconv.losses import TopKAccuracy
from xconv.optimizers import SGD

# (what it builds, the argument's name) for one count-like and one real-valued argument
MAKERS = {
    "Dense(n_units)": (lambda v: Dense(v), "n_units"),
    "Conv2D(n_filters)": (lambda v: Conv2D(v, 3), "n_filters"),
    "MaxPooling2D(pool_shape)": (lambda v: MaxPooling2D(v), "pool_shape"),
    "EarlyStopping(patience)": (lambda v: callbacks.EarlyStopping(patience=v), "patience"),
    "StepDecay(every)": (lambda v: callbacks.StepDecay(0.1, every=v), "every"),
    "TopKAccuracy(k)": (lambda v: TopKAccuracy(k=v), "k"),
    "NeuralNetwork(seed)": (lambda v: NeuralNetwork("sgd", "mse", seed=v), "seed"),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_numpy_integers_count_as_integers(name):
    make, _ = MAKERS[name]
    assert make(np.int64(2)) is not None
    assert make(np.int32(2)) is not None


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_bools_are_not_integers(name):
    make, argument = MAKERS[name]
    with pytest.raises((TypeError, ValueError), match=f"`{argument}` must be"):
        make(True)


def test_numpy_reals_count_as_reals():
    assert Dropout(np.float32(0.5)).p == 0.5
    assert SGD(np.float64(0.1), momentum=np.float32(0.5)).momentum == 0.5
    assert callbacks.ReduceLROnPlateau(factor=np.float64(0.5)).factor == 0.5
    with pytest.raises(TypeError, match="`p` must be a real number, got True"):
        Dropout(True)


def test_fit_takes_numpy_integers():
    model = NeuralNetwork("sgd", "cross_entropy", seed=np.int64(0))
    model.add(Dense(2, input_shape=(3,)))
    X, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    history = model.fit(X, y, epochs=np.int64(2), batch_size=np.int32(2), verbose=0)
    assert len(history["loss"]) == 2

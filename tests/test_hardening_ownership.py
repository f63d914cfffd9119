"""A layer belongs to one model (issue #27): a second model never re-initialises it."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from xconv import NeuralNetwork, layers

X = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)


def _graph():
    x = layers.Input((4,))
    hidden = layers.Dense(8)(x)
    out = layers.Activation("softmax")(layers.Dense(2)(layers.Activation("relu")(hidden)))
    return x, out


def test_a_second_graph_model_from_the_same_tensors_is_refused():
    x, out = _graph()
    first = NeuralNetwork("adam", "cross_entropy", inputs=x, outputs=out, seed=0)
    first.fit(X, Y, 2, 8, verbose=0)
    before = first.predict(X)
    with pytest.raises(ValueError, match="belongs to another model already"):
        NeuralNetwork("adam", "cross_entropy", inputs=x, outputs=out, seed=1)
    np.testing.assert_array_equal(first.predict(X), before)


def test_adding_a_layer_of_another_model_is_refused():
    first = NeuralNetwork("adam", "cross_entropy", seed=0)
    dense = layers.Dense(2, input_shape=(4,))
    first.add(dense)
    first.add(layers.Activation("softmax"))
    first.fit(X, Y, 2, 8, verbose=0)
    before = first.predict(X)
    second = NeuralNetwork("adam", "cross_entropy", seed=1)
    with pytest.raises(ValueError, match="this Dense belongs to another model already"):
        second.add(dense)
    assert second.layers == []
    np.testing.assert_array_equal(first.predict(X), before)


def test_a_layer_refused_for_its_shape_stays_free():
    first = NeuralNetwork("sgd", "square_loss")
    first.add(layers.Dense(3, input_shape=(4,)))
    dense = layers.Dense(2, input_shape=(5,))
    with pytest.raises(ValueError, match="input_shape"):
        first.add(dense)
    other = NeuralNetwork("sgd", "square_loss")
    other.add(dense)  # never part of `first`
    assert other.layers == [dense]


def test_the_layers_of_a_model_that_is_gone_are_free():
    dense = layers.Dense(2, input_shape=(4,))
    first = NeuralNetwork("sgd", "square_loss")
    first.add(dense)
    del first
    gc.collect()
    second = NeuralNetwork("sgd", "square_loss")
    second.add(dense)
    assert second.layers == [dense]

"""Layer names in saved models (issue #27): a class never saves under another's name."""

from __future__ import annotations

import numpy as np
import pytest

from xconv import NeuralNetwork, callbacks, layers


def test_an_unregistered_subclass_named_like_a_built_in_does_not_save(tmp_path):
    class Dense(layers.Dense):  # its own forward pass, under the built-in's name
        def forward_pass(self, X, training=True):
            return 2 * super().forward_pass(X, training)

    model = NeuralNetwork("sgd", "square_loss")
    model.add(Dense(1, input_shape=(2,)))
    model.predict(np.ones((1, 2), dtype=np.float32))
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError, match=r"not registered, and its name 'Dense' belongs to"):
        model.save(path)
    assert not path.exists()


def test_a_built_in_keeps_its_one_name():
    with pytest.raises(ValueError, match=r"registered as 'Dense' already"):
        layers.register(name="MyDense")(layers.Dense)
    assert layers.registered_name(layers.Dense) == "Dense"
    assert layers.get_layer_class("Dense") is layers.Dense


def test_a_registered_subclass_saves_and_loads_under_its_own_name(tmp_path):
    @layers.register(name="HardeningDoubleDense")
    class Dense(layers.Dense):
        def forward_pass(self, X, training=True):
            return 2 * super().forward_pass(X, training)

    model = NeuralNetwork("sgd", "square_loss")
    model.add(Dense(1, input_shape=(2,)))
    X = np.ones((1, 2), dtype=np.float32)
    before = model.predict(X)
    model.save(tmp_path / "m.npz")
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert type(loaded.layers[0]) is Dense
    np.testing.assert_array_equal(loaded.predict(X), before)


def _shadowing_model():
    class Dense(layers.Dense):
        def forward_pass(self, X, training=True):
            return 2 * super().forward_pass(X, training)

    model = NeuralNetwork("sgd", "square_loss")
    model.add(Dense(1, input_shape=(2,)))
    return model


@pytest.mark.parametrize("how", ["checkpoint", "ModelCheckpoint"])
def test_a_model_that_cannot_be_saved_fails_before_its_first_epoch(how, tmp_path):
    model = _shadowing_model()
    options = (
        {"checkpoint": tmp_path / "run.ckpt"}
        if how == "checkpoint"
        else {"callbacks": [callbacks.ModelCheckpoint(tmp_path / "m.npz")]}
    )
    X, y = np.ones((4, 2), dtype=np.float32), np.ones((4, 1), dtype=np.float32)
    before = model.predict(X)
    with pytest.raises(ValueError, match="not registered"):
        model.fit(X, y, 2, 2, verbose=0, **options)
    np.testing.assert_array_equal(model.predict(X), before)  # no batch trained

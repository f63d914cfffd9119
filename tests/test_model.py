"""NeuralNetwork: building, training, cross-backend agreement, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import to_np, to_xp

import xconv
from xconv.data import load_digits, train_test_split
from xconv.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
)
from xconv.model import NeuralNetwork


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 6, 6))
    y = (X[:, 0, :3, :].sum(axis=(1, 2)) > X[:, 0, 3:, :].sum(axis=(1, 2))).astype(np.int64)
    return X, y


def _cnn(backend, *, dtype="float64", dropout=False, seed=3):
    model = NeuralNetwork("adam", "cross_entropy", dtype=dtype, seed=seed, backend=backend)
    model.add(Conv2D(4, 3, input_shape=(1, 6, 6), stride=1))
    model.add(Activation("relu"))
    model.add(MaxPooling2D((2, 2)))
    if dropout:
        model.add(Dropout(0.3))
    model.add(BatchNormalization(momentum=0.9))
    model.add(Flatten())
    model.add(Dense(8))
    model.add(Activation("tanh"))
    model.add(Dense(2))
    model.add(Activation("softmax"))
    return model


def test_training_learns_the_digits():
    X, y = load_digits(dtype="float64")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, seed=0)
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=0)
    model.add(Conv2D(8, 3, input_shape=(1, 8, 8)))
    model.add(Activation("relu"))
    model.add(MaxPooling2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(10))
    model.add(Activation("softmax"))
    history = model.fit(X_train, y_train, n_epochs=8, batch_size=32)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    _, accuracy = model.evaluate(X_test, y_test)
    assert accuracy >= 0.85


def test_same_seed_same_training_on_every_backend(backend):
    X, y = _data()
    reference = _cnn("numpy")
    model = _cnn(backend.name)
    for layer_a, layer_b in zip(reference.layers, model.layers, strict=True):
        for key in layer_a.params:
            np.testing.assert_array_equal(to_np(layer_b.params[key]), layer_a.params[key])
    reference.fit(X, y, n_epochs=3, batch_size=10)
    model.fit(X, y, n_epochs=3, batch_size=10)
    np.testing.assert_allclose(to_np(model.predict(X)), reference.predict(X), rtol=1e-6, atol=1e-6)


def test_same_seed_same_dropout_masks_on_every_backend(backend):
    X, y = _data(20)
    reference, model = _cnn("numpy", dropout=True), _cnn(backend.name, dropout=True)
    # the step's noise: the dropout layer's uniform numbers, bit for bit
    [ours] = [n for n in model.training_step.noise(20) if n is not None]
    [theirs] = [n for n in reference.training_step.noise(20) if n is not None]
    np.testing.assert_array_equal(to_np(ours["uniform"]), theirs["uniform"])
    # and the next draws, used by a step, give the same update
    reference.train_on_batch(X, y)
    model.train_on_batch(X, y)
    for layer_a, layer_b in zip(reference.layers, model.layers, strict=True):
        for key in layer_a.params:
            np.testing.assert_allclose(
                to_np(layer_b.params[key]), layer_a.params[key], rtol=1e-5, atol=1e-6
            )


def test_inputs_and_labels_in_any_form(xp, backend):
    X, y = _data(12)
    model = _cnn(backend.name)
    one_hot = np.eye(2)[y]
    by_index = model.test_on_batch(X, y)
    assert by_index == model.test_on_batch(to_xp(X, xp), to_xp(one_hot, xp))
    assert by_index == model.test_on_batch(X, one_hot)
    with pytest.raises(ValueError, match=r"`y` has 11 labels but X has 12 samples"):
        model.test_on_batch(X, y[:11])
    with pytest.raises(ValueError, match=r"must hold labels in \[0, 2\)"):
        model.test_on_batch(X, y + 2)
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 1, 6, 6\)"):
        model.predict(np.zeros((2, 1, 5, 5)))


def test_predict_right_after_adding_layers():
    model = _cnn("numpy", dtype="float32")
    out = model.predict(np.zeros((3, 1, 6, 6)))
    assert out.shape == (3, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def test_model_uses_the_current_backend(backend):
    with xconv.use_backend(backend.name):
        model = _cnn(None)
    assert model.backend is backend
    assert model.layers[0].backend is backend


def test_history_and_validation():
    X, y = _data(40)
    model = _cnn("numpy")
    model.validation_data = (X[:10], y[:10])
    seen = []
    history = model.fit(X, y, n_epochs=2, batch_size=16, callback=lambda e, logs: seen.append(e))
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == 2 for values in history.values())
    assert seen == [0, 1]
    assert (history["val_loss"][-1], history["val_accuracy"][-1]) == model.evaluate(X[:10], y[:10])


def test_batches_are_reshuffled_each_epoch_from_the_seed():
    orders = []
    for _ in range(2):
        model = _cnn("numpy")
        orders.append([model.batch_order(30).tolist(), model.batch_order(30).tolist()])
    assert orders[0] == orders[1]  # same seed, same order
    assert orders[0][0] != orders[0][1]  # a new order in the second epoch
    assert sorted(orders[0][0]) == list(range(30))  # a permutation
    assert _cnn("numpy").batch_order(5, shuffle=False).tolist() == [0, 1, 2, 3, 4]


def test_summary_lists_layers_and_parameters(capsys):
    model = _cnn("numpy")
    assert model.summary() is None  # printed once, not also returned (a REPL shows it once)
    text = capsys.readouterr().out
    assert "Conv2D" in text
    assert "Total Parameters: " + str(sum(layer.parameters() for layer in model.layers)) in text
    kept: list[str] = []
    model.summary(print_fn=kept.append)
    assert kept == [text.rstrip("\n")]
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="`print_fn` must be callable"):
        model.summary(print_fn="stdout")  # type: ignore[arg-type]


def test_building_errors():
    model = NeuralNetwork("sgd", "square_loss")
    with pytest.raises(ValueError, match=r"the first layer .* needs an input_shape"):
        model.add(Dense(3))
    with pytest.raises(TypeError, match="`layer` must be an xconv layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="no layers yet"):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="`dtype` must be 'float32' or 'float64'"):
        NeuralNetwork("sgd", "square_loss", dtype="int32")
    model.add(Dense(3, input_shape=(4,)))
    with pytest.raises(ValueError, match="`n_epochs` must be a positive integer, got 0"):
        model.fit(np.zeros((2, 4)), np.zeros(2, dtype=int), n_epochs=0, batch_size=2)


def test_save_on_numpy_load_on_any_backend(tmp_path, backend):
    X, y = _data(24)
    model = _cnn("numpy")
    model.fit(X, y, n_epochs=2, batch_size=8)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path, backend=backend.name)
    assert loaded.backend is backend
    assert [layer.layer_name() for layer in loaded.layers] == [
        layer.layer_name() for layer in model.layers
    ]
    for original, copy in zip(model.layers, loaded.layers, strict=True):
        for store in ("params", "buffers"):
            saved, restored = getattr(original, store), getattr(copy, store)
            assert set(saved) == set(restored)
            for key, value in saved.items():
                np.testing.assert_array_equal(to_np(restored[key]), value)  # exactly
    # the same numbers, computed by another library: equal to rounding
    np.testing.assert_allclose(to_np(loaded.predict(X)), model.predict(X), rtol=1e-12)


def test_to_moves_a_model(backend):
    X, y = _data(16)
    model = _cnn("numpy")
    model.fit(X, y, n_epochs=1, batch_size=8)
    expected = model.predict(X)
    model.to(backend.name)
    assert model.backend is backend
    np.testing.assert_allclose(to_np(model.predict(X)), expected, rtol=1e-12)
    model.fit(X, y, n_epochs=1, batch_size=8)  # optimizer state moved along


def test_save_is_atomic(tmp_path, monkeypatch):
    model = _cnn("numpy")
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_load_refuses_bad_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"garbage\.npz: not a readable xconv model file"):
        NeuralNetwork.load(garbage)
    no_config = tmp_path / "plain.npz"
    np.savez(no_config, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"plain\.npz: no valid xconv model configuration"):
        NeuralNetwork.load(no_config)

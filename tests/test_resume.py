"""Resumable training: an interrupted and resumed fit ends exactly like an uninterrupted one;
non-finite losses stop training (or skip the batch) and name where they happened."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import to_np

from xconv.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
)
from xconv.model import NeuralNetwork, NonFiniteLossError


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 6, 6))
    y = (X[:, 0, :3].sum(axis=(1, 2)) > X[:, 0, 3:].sum(axis=(1, 2))).astype(np.int64)
    return X, y


def _model(backend, *, optimizer="adam", seed=5):
    """Every kind of state: parameters, BatchNorm buffers, dropout masks, Adam moments."""
    model = NeuralNetwork(optimizer, "cross_entropy", dtype="float64", seed=seed, backend=backend)
    model.add(Conv2D(3, 3, input_shape=(1, 6, 6)))
    model.add(BatchNormalization(momentum=0.9))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Dropout(0.3))
    model.add(Flatten())
    model.add(Dense(2))
    model.add(Activation("softmax"))
    return model


def _state(model):
    return [
        {
            f"{store}/{k}": to_np(v)
            for store in ("params", "buffers")
            for k, v in getattr(layer, store).items()
        }
        for layer in model.layers
    ]


def _assert_identical(a, b):
    for layer_a, layer_b in zip(_state(a), _state(b), strict=True):
        assert layer_a.keys() == layer_b.keys()
        for key in layer_a:
            np.testing.assert_array_equal(layer_a[key], layer_b[key], err_msg=key)  # bitwise


class Interrupt(KeyboardInterrupt):
    pass


def _interrupt_at(epoch_to_stop):
    def callback(epoch, logs):
        if epoch == epoch_to_stop:
            raise Interrupt

    return callback


def test_interrupted_and_resumed_training_ends_identical(tmp_path, backend):
    # batches of 8 everywhere in this module: JAX compiles each new shape only once
    X, y = _data(16)
    validation = _data(8, seed=1)
    options = {"n_epochs": 3, "batch_size": 8}
    reference = _model(backend.name)
    reference.validation_data = validation
    expected = reference.fit(X, y, **options)

    path = tmp_path / "run.ckpt"
    interrupted = _model(backend.name)
    interrupted.validation_data = validation
    with pytest.raises(Interrupt):
        # a checkpoint after epoch 2; stopped during the third, whose work is lost
        interrupted.fit(
            X, y, **options, checkpoint=path, checkpoint_every=2, callback=_interrupt_at(2)
        )
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]

    # a fresh process would build the model anew: same architecture, any seed
    resumed = _model(backend.name, seed=99)
    resumed.validation_data = validation
    seen = []
    history = resumed.fit(X, y, **options, resume=path, callback=lambda e, logs: seen.append(e))
    assert seen == [2]
    _assert_identical(resumed, reference)
    assert history == expected
    X_val = validation[0]
    np.testing.assert_array_equal(to_np(resumed.predict(X_val)), to_np(reference.predict(X_val)))

    # the interrupted model itself can resume too: its later state is replaced
    interrupted.fit(X, y, **options, resume=path)
    _assert_identical(interrupted, reference)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adadelta"])
def test_every_optimizer_state_resumes(tmp_path, optimizer):
    X, y = _data(20)
    reference = _model("numpy", optimizer=optimizer)
    reference.fit(X, y, n_epochs=3, batch_size=7)
    path = tmp_path / "run.ckpt"
    with pytest.raises(Interrupt):
        _model("numpy", optimizer=optimizer).fit(
            X, y, n_epochs=3, batch_size=7, checkpoint=path, callback=_interrupt_at(1)
        )
    resumed = _model("numpy", optimizer=optimizer)
    resumed.fit(X, y, n_epochs=3, batch_size=7, resume=path)
    _assert_identical(resumed, reference)


def test_a_checkpoint_is_written_after_the_last_epoch_and_loads_as_a_model(tmp_path):
    X, y = _data(16)
    model = _model("numpy")
    path = tmp_path / "run.ckpt"
    model.fit(X, y, n_epochs=3, batch_size=8, checkpoint=path, checkpoint_every=2)
    loaded = NeuralNetwork.load(path)
    _assert_identical(loaded, model)
    # resuming a finished run trains no more and returns its history
    again = _model("numpy")
    history = again.fit(X, y, n_epochs=3, batch_size=8, resume=path)
    assert len(history["loss"]) == 3
    _assert_identical(again, model)
    with pytest.raises(ValueError, match=r"run\.ckpt: the checkpoint is after epoch 3, beyond"):
        again.fit(X, y, n_epochs=2, batch_size=8, resume=path)


def test_resume_refuses_other_runs_and_leaves_the_model_untouched(tmp_path):
    X, y = _data(16)
    path = tmp_path / "run.ckpt"
    _model("numpy").fit(X, y, n_epochs=1, batch_size=8, checkpoint=path)
    model = _model("numpy")
    before = _state(model)
    cases = [
        ({"batch_size": 4}, X, r"run\.ckpt: the checkpoint is of a run with .*batch_size"),
        ({"shuffle": False}, X, "resume with the same data"),
        ({}, X[:12], "'n_samples': 16"),
        ({"on_nonfinite": "skip"}, X, "do not fit this fit"),
    ]
    for changed, data, problem in cases:
        options = {"n_epochs": 2, "batch_size": 8} | changed
        with pytest.raises(ValueError, match=problem):
            model.fit(data, y[: len(data)], **options, resume=path)
    # another architecture or optimizer
    other = NeuralNetwork("adam", "cross_entropy", dtype="float64")
    other.add(Flatten(input_shape=(1, 6, 6)))
    other.add(Dense(2))
    other.add(Activation("softmax"))
    with pytest.raises(ValueError, match="the checkpoint's layers"):
        other.fit(X, y, n_epochs=2, batch_size=8, resume=path)
    with pytest.raises(ValueError, match="the checkpoint's optimizer"):
        _model("numpy", optimizer="sgd").fit(X, y, n_epochs=2, batch_size=8, resume=path)
    # a model file is not a checkpoint
    model_file = tmp_path / "model.npz"
    _model("numpy").save(model_file)
    with pytest.raises(ValueError, match=r"model\.npz: not a checkpoint"):
        model.fit(X, y, n_epochs=2, batch_size=8, resume=model_file)
    # a damaged checkpoint
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"damaged\.ckpt: not a readable"):
        model.fit(X, y, n_epochs=2, batch_size=8, resume=damaged)
    after = _state(model)
    for layer_a, layer_b in zip(before, after, strict=True):
        for key in layer_a:
            np.testing.assert_array_equal(layer_a[key], layer_b[key])


def test_learning_rate_changes_are_restored(tmp_path):
    X, y = _data(16)
    path = tmp_path / "run.ckpt"
    model = _model("numpy")

    def decay(epoch, logs):
        model.optimizer.learning_rate *= 0.5

    model.fit(X, y, n_epochs=2, batch_size=8, checkpoint=path, callback=decay)
    resumed = _model("numpy")
    resumed.fit(X, y, n_epochs=2, batch_size=8, resume=path)
    # checkpoints follow the callback, so they hold the decayed rate
    assert resumed.optimizer.learning_rate == model.optimizer.learning_rate == 0.001 * 0.25


def test_fit_checks_its_new_arguments():
    X, y = _data(8)
    model = _model("numpy")
    with pytest.raises(ValueError, match="`checkpoint_every` must be a positive integer, got 0"):
        model.fit(X, y, 1, 4, checkpoint="x.ckpt", checkpoint_every=0)
    with pytest.raises(ValueError, match="`on_nonfinite` must be 'raise' or 'skip', got 'ignore'"):
        model.fit(X, y, 1, 4, on_nonfinite="ignore")
    with pytest.raises(TypeError, match=r"`resume` must be a file path \(a str or path\), got 3"):
        model.fit(X, y, 1, 4, resume=3)
    with pytest.raises(ValueError, match=r"`checkpoint` '/no/such/folder/x\.ckpt' is in a folder"):
        model.fit(X, y, 1, 4, checkpoint="/no/such/folder/x.ckpt")


def _nan_data():
    X, y = _data(16)
    X[10, 0, 0, 0] = np.nan  # one sample poisons its batch
    return X, y


def test_non_finite_loss_stops_training_and_names_the_batch(backend):
    X, y = _nan_data()
    model = _model(backend.name)
    # the batch of epoch 0 that holds sample 10
    order = _model(backend.name).batch_order(16).tolist()
    batches = [order[:8], order[8:]]
    bad = next(b for b, index in enumerate(batches) if 10 in index)
    message = f"non-finite loss nan at epoch 0, batch {bad} "
    with pytest.raises(NonFiniteLossError, match=message) as info:
        model.fit(X, y, n_epochs=1, batch_size=8)
    assert isinstance(info.value, FloatingPointError)
    assert info.value.epoch == 0
    assert math.isnan(info.value.loss)
    # the model keeps its state from before the bad batch: no NaN got in
    for layer in _state(model):
        for key, value in layer.items():
            assert np.all(np.isfinite(value)), key


def test_non_finite_batches_can_be_skipped(backend):
    X, y = _nan_data()
    model = _model(backend.name)
    history = model.fit(X, y, n_epochs=2, batch_size=8, on_nonfinite="skip")
    assert history["skipped"] == [1.0, 1.0]
    assert all(math.isfinite(v) for v in history["loss"])
    for layer in _state(model):
        for key, value in layer.items():
            assert np.all(np.isfinite(value)), key

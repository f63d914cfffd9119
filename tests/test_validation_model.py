"""The model, the registry and the command line check their arguments before any work,
with a TypeError or ValueError naming the argument; valid edge cases work."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import to_np, to_xp

import xconv
from xconv._cli import main
from xconv.layers import (
    Activation,
    AveragePooling2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPooling2D,
)
from xconv.model import NeuralNetwork


def _dense(backend="numpy"):
    model = NeuralNetwork("sgd", "cross_entropy", dtype="float64", seed=0, backend=backend)
    model.add(Dense(3, input_shape=(4,)))
    model.add(Activation("softmax"))
    return model


X4, Y4 = np.zeros((5, 4)), np.array([0, 1, 2, 0, 1])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.fit(X4, Y4[:4], 1, 2), ValueError, r"`y` has 4 labels but X has 5 samples"),
        (lambda m: m.fit(X4, Y4 + 1, 1, 2), ValueError, r"`y` must hold labels in \[0, 3\)"),
        (lambda m: m.fit(X4, -Y4, 1, 2), ValueError, r"labels in \[0, 3\) .*got -1"),
        (lambda m: m.fit(X4, Y4 * 0.5, 1, 2), TypeError, "`y` must hold integer class labels"),
        (lambda m: m.fit(X4, 3, 1, 2), ValueError, "`y` must hold one label per sample, got 3"),
        (lambda m: m.fit(X4, np.zeros((5, 2)), 1, 2), ValueError, r"one-hot rows \(N, 3\)"),
        (lambda m: m.fit(np.zeros((5, 3)), Y4, 1, 2), ValueError, r"`X` must have shape \(N, 4\)"),
        (
            lambda m: m.predict(np.zeros(4)),
            ValueError,
            r"`X` must have shape \(N, 4\).*got \(4,\)",
        ),
        (lambda m: m.predict([[1.0, 2.0], [3.0]]), ValueError, "`X` must be a rectangular array"),
        (lambda m: m.predict(np.zeros((2, 4), complex)), TypeError, "`X` must hold real numbers"),
        (lambda m: m.predict(np.zeros((2, 4), bool)), TypeError, "`X` must hold real numbers"),
        (lambda m: m.predict("abcd"), TypeError, "`X` must hold real numbers"),
        (
            lambda m: m.fit(X4, Y4, 0, 2),
            ValueError,
            "`n_epochs` must be a positive integer, got 0",
        ),
        (lambda m: m.fit(X4, Y4, 1, -2), ValueError, "`batch_size` must be a positive integer"),
        (lambda m: m.fit(X4, Y4, 1.0, 2), ValueError, "`n_epochs` must be a positive integer"),
        (lambda m: m.fit(X4, Y4, True, 2), ValueError, "`n_epochs` must be a positive integer"),
        (lambda m: m.fit(X4, Y4, 1, 2, shuffle="yes"), TypeError, "`shuffle` must be True"),
        (lambda m: m.fit(X4, Y4, 1, 2, callback=3), TypeError, "`callback` must be callable"),
        (lambda m: m.evaluate(X4, Y4, batch_size=0), ValueError, "`batch_size` must be a posit"),
        (lambda m: m.fit(X4[:0], Y4[:0], 1, 2), ValueError, "`X` must hold at least one sample"),
        (lambda m: m.evaluate(X4[:0], Y4[:0]), ValueError, "`X` must hold at least one sample"),
    ],
)
def test_model_entries_check_their_arguments(call, error, message):
    model = _dense()
    before = [to_np(p) for layer in model.layers for p in layer.params.values()]
    with pytest.raises(error, match=message):
        call(model)
    after = [to_np(p) for layer in model.layers for p in layer.params.values()]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)  # nothing was trained


def test_labels_in_the_backends_arrays_are_checked_too(xp, backend):
    model = _dense(backend.name)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.fit(to_xp(X4, xp), to_xp(Y4 + 3, xp), 1, 2)
    with pytest.raises(ValueError, match=r"`y` has 4 labels but X has 5 samples"):
        model.fit(to_xp(X4, xp), to_xp(Y4[:4], xp), 1, 2)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: NeuralNetwork("nadam", "cross_entropy"), ValueError, "unknown optimizer 'nadam'"),
        (lambda: NeuralNetwork("adam", "hinge"), ValueError, "unknown loss 'hinge'"),
        (lambda: NeuralNetwork(3, "cross_entropy"), TypeError, "`optimizer` must be a name"),
        (lambda: Activation("swish"), ValueError, "`name` must be one of .* got 'swish'"),
        (
            lambda: NeuralNetwork("adam", "square_loss", backend="nope"),
            ValueError,
            "unknown backend",
        ),
        (
            lambda: NeuralNetwork("adam", "square_loss", dtype="int8"),
            ValueError,
            "`dtype` must be",
        ),
        (
            lambda: NeuralNetwork("adam", "square_loss", seed=-1),
            ValueError,
            "`seed` must be a non-neg",
        ),
    ],
)
def test_unknown_names_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_layers_must_fit_the_layer_before():
    model = NeuralNetwork("sgd", "square_loss")
    model.add(Conv2D(2, 3, input_shape=(1, 6, 6)))
    with pytest.raises(ValueError, match=r"Dense was given input_shape \(7,\), but the layer "):
        model.add(Dense(2, input_shape=(7,)))
    with pytest.raises(ValueError, match=r"`input_shape` of Dense must be \(n_inputs,\)"):
        model.add(Dense(2))
    with pytest.raises(ValueError, match="the kernel spans 7 pixels along the height"):
        model.add(MaxPooling2D(7))
    flatten = Flatten()
    model.add(flatten)
    with pytest.raises(ValueError, match="in the model already"):
        model.add(flatten)
    assert len(model.layers) == 2


def test_registry_names_are_checked():
    with pytest.raises(ValueError, match=r"unknown backend 'nope'; registered backends: numpy"):
        xconv.backends.get("nope")
    with pytest.raises(ValueError, match="unknown backend 'nope'"), xconv.use_backend("nope"):
        pass  # pragma: no cover - never entered
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        xconv.set_backend("nope")
    with pytest.raises(TypeError, match=r"`name` must be a backend name \(str\), got int"):
        xconv.backends.get(3)
    assert xconv.get_backend().name == "numpy"  # nothing changed


def test_a_bad_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("XCONV_BACKEND", "nope")
    with pytest.raises(ValueError, match=r"environment variable XCONV_BACKEND='nope': unknown"):
        xconv.get_backend()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--epochs", "-1"], "argument --epochs: `n_epochs` must be a positive integer"),
        (["train", "--epochs", "two"], "`n_epochs` must be a positive integer, got two"),
        (["train", "--batch-size", "0"], "`batch_size` must be a positive integer, got 0"),
        (["train", "--seed", "-3"], "`seed` must be a non-negative integer, got -3"),
        (["train", "--backend", "nope"], "argument --backend: unknown backend 'nope'"),
        (["train", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
        (["train", "--save", "/no/such/folder/m.npz"], "the folder '/no/such/folder' does not"),
        (["train", "--resume", "/no/such/file.ckpt"], "no such file '/no/such/file.ckpt'"),
        (["train", "--checkpoint-every", "0"], "`checkpoint_every` must be a positive integer"),
        (["fly"], "argument command: invalid choice: 'fly'"),
    ],
)
def test_cli_errors_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--quiet"] if argv[0] == "train" else argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_checkpoints_and_resumes(tmp_path, capsys):
    path = tmp_path / "run.ckpt"
    options = ["train", "--batch-size", "512", "--quiet", "--checkpoint", str(path)]
    assert main([*options, "--epochs", "1"]) == 0
    assert main([*options, "--epochs", "2", "--resume", str(path)]) == 0
    assert "after 2 epochs" in capsys.readouterr().out
    assert len(NeuralNetwork.load(path).layers) == 15


def test_edge_cases_that_work(xp, backend):
    model = NeuralNetwork("sgd", "cross_entropy", dtype="float64", backend=backend.name)
    model.add(Conv2D(2, 1, input_shape=(1, 1, 1)))  # 1x1 inputs and kernels
    model.add(AveragePooling2D(1))
    model.add(Flatten())
    model.add(Dense(2))
    model.add(Activation("softmax"))
    # an empty batch predicts nothing
    assert tuple(model.predict(np.zeros((0, 1, 1, 1))).shape) == (0, 2)
    # NaN goes through, it is not hidden
    out = to_np(model.predict(to_xp(np.full((2, 1, 1, 1), np.nan), xp)))
    assert np.isnan(out).all()
    # 'same' padding at odd sizes and strides keeps ceil(size / stride)
    same = NeuralNetwork("sgd", "square_loss", dtype="float64", backend=backend.name)
    same.add(Conv2D(1, (2, 4), input_shape=(1, 5, 7), stride=2, padding="same"))
    assert same.layers[0].output_shape() == (1, 3, 4)
    assert tuple(same.predict(np.ones((1, 1, 5, 7))).shape) == (1, 1, 3, 4)
    history = model.fit(np.ones((3, 1, 1, 1)), np.array([0, 1, 0]), 1, 8)
    assert math.isfinite(history["loss"][0])

"""The command line: train, save, info and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from xconv import NeuralNetwork
from xconv._cli import main
from xconv.data import load_digits


def test_train_saves_a_model_that_loads(tmp_path, capsys):
    path = tmp_path / "digits.npz"
    status = main(
        ["train", "--epochs", "2", "--batch-size", "128", "--quiet", "--save", str(path)]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert "on backend numpy (float32)" in out
    model = NeuralNetwork.load(path)
    X, _ = load_digits()
    probabilities = model.predict(X[:5])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_info_lists_the_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out
    assert "cupy" in out  # listed, with the reason when it cannot run here


def test_errors_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--backend", "no_such_backend", "--quiet"])
    assert info.value.code == 2
    assert "unknown backend 'no_such_backend'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "0", "--quiet"])
    assert info.value.code == 2
    assert "`n_epochs` must be a positive integer, got 0" in capsys.readouterr().err

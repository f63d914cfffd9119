"""The command line: train, save, info and its errors."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from xconv import NeuralNetwork, models
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
    assert "on backend numpy (float32; digits, ancestor)" in out
    model = NeuralNetwork.load(path)
    X, _ = load_digits()
    probabilities = model.predict(X[:5])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_info_lists_the_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out
    assert "cupy" in out  # listed, with the reason when it cannot run here


def test_info_reports_a_library_that_imports_but_cannot_start(capsys, monkeypatch):
    # JAX with a CUDA plugin and no free GPU raises from jax.devices(): a line, not a crash
    from xconv.backends._numpy import NumpyBackend

    def broken(self):
        raise RuntimeError("Unable to initialize backend 'cuda'")

    monkeypatch.setattr(NumpyBackend, "default_device", property(broken))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out
    assert "no usable device: RuntimeError: Unable to initialize backend 'cuda'" in out


def test_errors_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--backend", "no_such_backend", "--quiet"])
    assert info.value.code == 2
    assert "unknown backend 'no_such_backend'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "0", "--quiet"])
    assert info.value.code == 2
    assert "`n_epochs` must be a positive integer, got 0" in capsys.readouterr().err


MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (unsigned bytes), gzipped: the format of MNIST's original files."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def small_mnist(tmp_path):
    """A folder of MNIST-format files: 64 training and 16 test images of 28x28."""
    rng = np.random.default_rng(0)
    for name, n in (("train", 64), ("t10k", 16)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 50, (n, 28, 28)) + (labels * 20)[:, None, None]
        _write_idx(tmp_path / f"{name}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{name}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_train_lenet5_on_mnist_files_from_a_folder(small_mnist, tmp_path, capsys):
    status = main(
        ["train", "--dataset", "mnist", "--model", "lenet5", "--data-dir", str(small_mnist),
         "--epochs", "1", "--batch-size", "32", "--quiet", "--save", str(tmp_path / "lenet.npz")]
    )  # fmt: skip
    assert status == 0
    assert "(float32; mnist, lenet5)" in capsys.readouterr().out
    model = NeuralNetwork.load(tmp_path / "lenet.npz")
    assert model.layers[0].input_shape == (1, 28, 28)


def test_mnist_trains_its_recipe_by_default(small_mnist, capsys, monkeypatch):
    from xconv import callbacks

    rates = []
    monkeypatch.setattr(
        callbacks.OneCycle,
        "on_train_end",
        lambda self, logs=None: rates.extend(self.rates),
        raising=False,
    )
    status = main(["train", "--dataset", "mnist", "--data-dir", str(small_mnist), "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    assert "after 3 epochs" in out
    assert "(float32; mnist, mnist_bn)" in out
    # 64 samples, batch 128: one batch an epoch, three in all, along one cycle
    assert len(rates) == 3
    assert max(rates) <= models.MNIST_RECIPE["max_lr"]


def test_train_help_shows_mnists_recipe_and_its_time(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "MNIST's default recipe" in text
    assert "OneCycle" in text
    assert "s an epoch on NumPy on a 2-core CPU" in text
    assert "--model lenet5" in text


def test_train_prints_a_line_per_epoch_off_a_terminal(capsys):
    assert main(["train", "--epochs", "2", "--train-samples", "64"]) == 0
    captured = capsys.readouterr()
    assert "Model Summary" in captured.out
    epochs = [line for line in captured.err.splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert "val_accuracy" in epochs[-1]


@pytest.mark.skipif(not MNIST.is_dir(), reason="real MNIST is not at ../shared/data/mnist")
def test_train_on_real_mnist_from_the_shared_folder(capsys):
    status = main(
        ["train", "--dataset", "mnist", "--data-dir", str(MNIST), "--train-samples", "2048",
         "--batch-size", "64", "--epochs", "1", "--quiet"]
    )  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.5  # 2048 images, one epoch: far above chance (0.1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "mnist", "--model", "ancestor"], "--model ancestor is the 8x8 digits CNN"),
        (["--dataset", "cifar10", "--data-dir", "."], "cannot load cifar10"),
        (["--data-dir", "/no/such/folder"], "no such folder '/no/such/folder'"),
        (["--dataset", "svhn"], "invalid choice: 'svhn'"),
        (["--train-samples", "0"], "`train_samples` must be a positive integer, got 0"),
    ],
)
def test_train_refuses_bad_choices_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--quiet", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_plot_without_matplotlib_is_refused_before_training(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(SystemExit) as info:
        main(["train", "--quiet", "--plot", str(tmp_path / "curves.png")])
    assert info.value.code == 2
    assert "needs matplotlib" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

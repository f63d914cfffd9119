"""Hostile and careless inputs to the public entries: each is a TypeError or ValueError
before any work (the model unchanged), never an IndexError, AttributeError, a silent
float32 model or a half-restored checkpoint.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import requires_torch_reason, to_np, torch

import xconv._cli as cli
import xconv.distributed as xd
from xconv import NeuralNetwork
from xconv.backends import get
from xconv.layers import Activation, Conv2D, Dense, Dropout, Flatten


def _model(backend="numpy", loss="cross_entropy", seed=0):
    model = NeuralNetwork("adam", loss, dtype="float64", seed=seed, backend=backend)
    model.add(Flatten(input_shape=(1, 2, 2)))
    model.add(Dense(3))
    model.add(Dropout(0.25))
    model.add(Activation("softmax"))
    return model


def _data(n=12, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, 1, 2, 2))
    return X, np.arange(n) % 3


def _everything(model):
    """Parameters, buffers, optimizer state and every generator, as host data."""
    state = model.optimizer.state_dict(backend=model.backend)
    return {
        "params": [{k: to_np(v) for k, v in layer.params.items()} for layer in model.layers],
        "optimizer": {
            slot: {k: np.asarray(v) for k, v in arrays.items()} if slot != "step" else arrays
            for slot, arrays in state.items()
        },
        "batch_rng": model.batch_rng.bit_generator.state,
        "layer_rngs": [layer.random_state() for layer in model.layers],
    }


def _assert_same(a, b):
    for pa, pb in zip(a["params"], b["params"], strict=True):
        assert pa.keys() == pb.keys()
        for key in pa:
            np.testing.assert_array_equal(pa[key], pb[key])
    assert a["optimizer"].keys() == b["optimizer"].keys()
    assert a["optimizer"]["step"] == b["optimizer"]["step"]
    for slot in a["optimizer"]:
        if slot != "step":
            for key in a["optimizer"][slot]:
                np.testing.assert_array_equal(a["optimizer"][slot][key], b["optimizer"][slot][key])
    assert a["batch_rng"] == b["batch_rng"]
    assert a["layer_rngs"] == b["layer_rngs"]


def _edit_training(path, edit):
    """Rewrite the checkpoint's ``__training__`` JSON with `edit(training)`."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    training = json.loads(np.load(io.BytesIO(members["__training__.npy"])).tobytes())
    edit(training)
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(training).encode(), np.uint8))
    members["__training__.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


# -- transactional resume ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda t: t["layer_rngs"].__setitem__(2, {"bit_generator": "PCG64"}), "generator"),
        (lambda t: t["layer_rngs"].__setitem__(2, None), "generator"),
        (lambda t: t.__setitem__("batch_rng", {"bit_generator": "MT19937"}), "generator"),
        (lambda t: t["optimizer_steps"].__setitem__("1.weight", 0), "optimizer state"),
        (lambda t: t["history"].__setitem__("loss", ["x"]), "history"),
        (lambda t: t["history"].__setitem__("loss", [10**400]), "history"),
        (lambda t: t["layer_rngs"][2]["state"].__setitem__("state", -1), "generator"),
        (lambda t: t["batch_rng"]["state"].__setitem__("inc", 2**200), "generator"),
    ],
)
def test_a_bad_checkpoint_changes_nothing(tmp_path, damage, problem):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    _model().fit(X, y, epochs=1, batch_size=4, verbose=0, checkpoint=path)
    _edit_training(path, damage)
    model = _model(seed=1)
    model.fit(X, y, epochs=1, batch_size=4, verbose=0)  # its own optimizer state
    before = _everything(model)
    with pytest.raises(ValueError, match=rf"run\.ckpt: .*{problem}"):
        model.fit(X, y, epochs=2, batch_size=4, verbose=0, resume=path)
    _assert_same(before, _everything(model))


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), -1.0, 10**400, True])
def test_a_checkpoints_learning_rate_must_be_usable(tmp_path, rate):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    _model().fit(X, y, epochs=1, batch_size=4, verbose=0, checkpoint=path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(np.load(io.BytesIO(members["__config__.npy"])).tobytes())
    config["optimizer"]["learning_rate"] = rate
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(config).encode(), np.uint8))
    members["__config__.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    model = _model()
    before = _everything(model)
    with pytest.raises(ValueError, match=r"run\.ckpt: the checkpoint's (learning rate|optimizer)"):
        model.fit(X, y, epochs=2, batch_size=4, verbose=0, resume=path)
    _assert_same(before, _everything(model))


def test_a_checkpoint_of_other_data_of_the_same_size_is_refused(tmp_path):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    _model().fit(X, y, epochs=1, batch_size=4, verbose=0, checkpoint=path)
    other_X, _ = _data(seed=1)
    with pytest.raises(ValueError, match=r"run\.ckpt: .*other data"):
        _model().fit(other_X, y, epochs=2, batch_size=4, verbose=0, resume=path)
    with pytest.raises(ValueError, match=r"run\.ckpt: .*other data"):
        _model().fit(X, (y + 1) % 3, epochs=2, batch_size=4, verbose=0, resume=path)
    # the same data as indices or one-hot rows is the same run
    onehot = np.eye(3)[y]
    _model().fit(X, onehot, epochs=2, batch_size=4, verbose=0, resume=path)


def test_an_older_checkpoint_without_a_fingerprint_resumes_with_a_warning(tmp_path):
    X, y = _data()
    path = tmp_path / "run.ckpt"
    _model().fit(X, y, epochs=1, batch_size=4, verbose=0, checkpoint=path)
    _edit_training(path, lambda t: t["run"].pop("data_sha256"))
    with pytest.warns(UserWarning, match="no fingerprint of the training data"):
        history = _model().fit(X, y, epochs=2, batch_size=4, verbose=0, resume=path)
    assert len(history["loss"]) == 2


# -- labels and data --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (np.array([0, 1, 2, 3] * 3), ValueError, r"labels in \[0, 3\) .*got 3 \(3 labels outside"),
        (np.array([0.0, 1.0, 2.0] * 4), TypeError, "integer class labels"),
        (np.array([[1.0, 1.0, 0.0]] * 12), ValueError, "12 rows that are neither one-hot"),
        (np.array([[1.5, -0.5, 0.0]] * 12), ValueError, "neither one-hot nor probabilities"),
        (np.array([[np.nan, 1.0, 0.0]] * 12), ValueError, "holds 12 NaN or infinite"),
        (np.array(["a", "b", "c"] * 4), TypeError, "integer class labels"),
        (np.array([True, False] * 6), TypeError, "integer class labels"),
    ],
)
def test_bad_labels_are_refused_before_training(backend, labels, error, message):
    model = _model(backend.name)
    X, _ = _data()
    before = _everything(model)
    with pytest.raises(error, match=message):
        model.fit(X, labels, epochs=1, batch_size=4, verbose=0)
    with pytest.raises(error, match=message):
        model.evaluate(X, labels)
    _assert_same(before, _everything(model))


def test_soft_labels_and_regression_targets_are_accepted(backend):
    X, _ = _data()
    soft = np.tile([0.2, 0.5, 0.3], (12, 1))
    _model(backend.name).fit(X, soft, epochs=1, batch_size=4, verbose=0)
    targets = np.random.default_rng(0).normal(size=(12, 3)) * 5
    _model(backend.name, loss="square_loss").fit(X, targets, epochs=1, batch_size=4, verbose=0)


def test_float64_on_jax_without_x64_is_refused_at_construction():
    # the test plugin turns x64 on for the whole run: ask a fresh process
    pytest.importorskip("jax", reason="JAX is not installed")
    if get("jax").unavailable_reason() is not None:
        pytest.skip(f"the JAX backend is unavailable: {get('jax').unavailable_reason()}")
    code = (
        "from xconv import NeuralNetwork\n"
        "NeuralNetwork('sgd', 'cross_entropy', dtype='float32', backend='jax')\n"
        "try:\n"
        "    NeuralNetwork('sgd', 'cross_entropy', dtype='float64', backend='jax')\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env |= {"JAX_PLATFORMS": "cpu", "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "`dtype`='float64' is not available on backend 'jax'" in done.stdout
    assert "JAX_ENABLE_X64=1" in done.stdout


def test_numpy_integers_are_accepted_wherever_python_integers_are(tmp_path):
    X, y = _data()
    model = NeuralNetwork("sgd", "cross_entropy", seed=np.int64(3), backend="numpy")
    model.add(Flatten(input_shape=(1, 2, 2)))
    model.add(Dense(3))
    model.fit(X, y, epochs=np.int64(1), batch_size=np.int32(4), verbose=0)
    path = tmp_path / "run.ckpt"
    model.fit(
        X, y, epochs=2, batch_size=4, verbose=0, checkpoint=path, checkpoint_every=np.int64(2)
    )
    assert path.exists()
    assert json.loads(json.dumps(model.get_config()))["seed"] == 3


def test_fit_and_files_leave_global_random_state_alone(tmp_path):
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    X, y = _data()
    model = _model()
    model.fit(X, y, epochs=1, batch_size=4, verbose=0, checkpoint=tmp_path / "run.ckpt")
    model.save(tmp_path / "m.npz")
    NeuralNetwork.load(tmp_path / "m.npz", backend="numpy").predict(X)
    assert random.getstate() == py_state
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == np_state[0]
    assert np.array_equal(after[1], np_state[1])


# -- distributed: every check before the cluster is used -------------------------------


class _NoCluster:
    """A client that fails the test if the fit gets as far as using it."""

    def scheduler_info(self):
        raise AssertionError("the cluster was used before the data was checked")

    scatter = submit = scheduler_info


@pytest.mark.parametrize(
    ("X", "y", "error", "message"),
    [
        (_data()[0], np.arange(12) % 4, ValueError, r"labels in \[0, 3\)"),
        (_data()[0], np.arange(12) % 3 * 1.0, TypeError, "integer class labels"),
        (_data()[0], np.ones((12, 3)), ValueError, "neither one-hot"),
        (
            np.where(np.arange(48).reshape(12, 1, 2, 2) % 7, 1.0, np.nan),
            _data()[1],
            ValueError,
            "`X` holds 7 NaN or infinite values",
        ),
    ],
)
def test_distributed_fit_checks_the_data_before_any_work(X, y, error, message):
    model = _model()
    before = _everything(model)
    with pytest.raises(error, match=message):
        xd.fit(model, X, y, client=_NoCluster(), n_epochs=np.int64(1), batch_size=np.int64(4))
    _assert_same(before, _everything(model))


# -- gradients at padded borders --------------------------------------------------------


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.parametrize(("padding", "stride"), [(2, 2), (1, 3), ((0, 2), 1)])
def test_conv_gradients_at_padded_borders_match_pytorch(backend, padding, stride):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2, 5, 6))
    layer = Conv2D(3, 3, input_shape=(2, 5, 6), padding=padding, stride=stride)
    layer.initialize(seed=0, dtype="float64", backend=backend)
    out = layer.forward_pass(backend.asarray(x, dtype="float64"), training=True)
    upstream = rng.normal(size=tuple(out.shape))
    dx = to_np(layer.backward_pass(backend.asarray(upstream, dtype="float64")))
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(to_np(layer.params["weight"]), requires_grad=True)
    tb = torch.tensor(to_np(layer.params["bias"]), requires_grad=True)
    pads = (padding, padding) if isinstance(padding, int) else padding
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pads)
    np.testing.assert_allclose(to_np(out), ty.detach().numpy(), atol=1e-10)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(to_np(layer.grads["weight"]), tw.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(to_np(layer.grads["bias"]), tb.grad.numpy(), atol=1e-10)


# -- the command line -------------------------------------------------------------------


def _untrained(monkeypatch):
    def no_training(args):
        raise AssertionError("training started before the arguments were checked")

    monkeypatch.setattr(cli, "_train", no_training)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--save", "/sys/m.npz", "cannot write '/sys/m.npz'"),
        ("--checkpoint", "/proc/run.ckpt", "cannot write '/proc/run.ckpt'"),
        ("--save", "/tmp/" + "a" * 250 + ".npz", "File name too long"),
        ("--save", "/tmp/" + "a" * 5000 + "/m.npz", "File name too long"),
        ("--resume", "/tmp/" + "b" * 300, "cannot read"),
        ("--data-dir", "/tmp/" + "c" * 300, "cannot read"),
        ("--save", "/no/such/folder/m.npz", "does not exist"),
    ],
)
def test_the_command_line_refuses_unusable_paths_in_one_line(
    monkeypatch, capsys, option, value, message
):
    _untrained(monkeypatch)
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--quiet", option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root may write into any folder",
)
def test_the_command_line_refuses_a_read_only_folder(monkeypatch, capsys, tmp_path):
    _untrained(monkeypatch)
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--quiet", "--save", str(folder / "m.npz")])
    assert info.value.code == 2
    assert "Permission denied" in capsys.readouterr().err


def test_the_command_line_reports_a_bad_resume_file_in_one_line(capsys, tmp_path):
    damaged = tmp_path / "run.ckpt"
    damaged.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--quiet", "--epochs", "2", "--resume", str(damaged)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "run.ckpt: not a readable xconv model file" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err

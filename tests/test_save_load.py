"""Saving and loading: atomic, pickle-free, exact across backends, and every damaged or
mismatched file refused with a ValueError that names the file and the problem."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from helpers import to_np

from xconv.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten
from xconv.model import FORMAT_VERSION, NeuralNetwork


def _model(backend=None, seed=1):
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=seed, backend=backend)
    model.add(Conv2D(3, 3, input_shape=(1, 5, 5)))
    model.add(BatchNormalization())
    model.add(Activation("relu"))
    model.add(Flatten())
    model.add(Dense(2))
    model.add(Activation("softmax"))
    return model


def _trained(backend=None):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 1, 5, 5)), rng.integers(0, 2, 12)
    model = _model(backend)
    model.fit(X, y, n_epochs=1, batch_size=6)
    return model, X


def _arrays(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _rewrite(path, arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _config(arrays):
    return json.loads(arrays["__config__"].tobytes().decode())


def _with_config(arrays, config):
    return dict(arrays, __config__=np.frombuffer(json.dumps(config).encode(), dtype=np.uint8))


def _assert_same_model(a, b):
    for layer_a, layer_b in zip(a.layers, b.layers, strict=True):
        for store in ("params", "buffers"):
            saved, restored = getattr(layer_a, store), getattr(layer_b, store)
            assert set(saved) == set(restored)
            for key, value in saved.items():
                np.testing.assert_array_equal(to_np(restored[key]), to_np(value))


def test_saved_on_any_backend_loads_exactly_on_numpy(tmp_path, backend):
    model, X = _trained(backend.name)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path, backend="numpy")
    _assert_same_model(model, loaded)
    np.testing.assert_allclose(loaded.predict(X), to_np(model.predict(X)), rtol=1e-12)
    again = NeuralNetwork.load(path, backend=backend.name)
    _assert_same_model(model, again)


def test_the_file_holds_no_pickle_and_a_json_architecture(tmp_path):
    model, _ = _trained()
    path = tmp_path / "model.npz"
    model.save(path)
    arrays = _arrays(path)  # np.load refuses pickles by default
    assert all(a.dtype != object for a in arrays.values())
    config = _config(arrays)
    assert config["format_version"] == FORMAT_VERSION
    assert [spec["class"] for spec in config["layers"]][:2] == ["Conv2D", "BatchNormalization"]
    assert "1/buffers/running_mean" in arrays


def test_save_fsyncs_then_renames(tmp_path, monkeypatch):
    model, _ = _trained()
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    model.save(tmp_path / "model.npz")
    assert events[:2] == ["fsync", "replace"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_an_interrupted_save_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    model, _ = _trained()
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def _damaged(tmp_path, name, damage):
    model, _ = _trained()
    path = tmp_path / name
    model.save(path)
    damage(path)
    return path


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    # flip bytes in the middle of the largest array's numbers, past the zip and .npy headers
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    extra = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + len(info.filename) + extra + 128 + 8
    assert start + 8 < info.header_offset + info.compress_size
    for i in range(start, start + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_truncate, "not a readable xconv model file"),
        (_flip_bytes, "not a readable xconv model file"),
        (_empty, "not a readable xconv model file"),
    ],
)
def test_damaged_files_are_refused(tmp_path, damage, problem):
    path = _damaged(tmp_path, "model.npz", damage)
    with pytest.raises(ValueError, match=f"model.npz: {problem}"):
        NeuralNetwork.load(path)


def test_pickled_arrays_are_refused(tmp_path):
    path = _damaged(tmp_path, "pickled.npz", lambda p: None)
    arrays = _arrays(path)
    arrays["0/params/weight"] = np.array([{"evil": 1}, None], dtype=object)
    _rewrite(path, arrays)
    with pytest.raises(ValueError, match=r"pickled\.npz: .*(pickle|Object arrays)"):
        NeuralNetwork.load(path)
    whole = tmp_path / "whole.npz"
    whole.write_bytes(pickle.dumps({"model": 1}))
    with pytest.raises(ValueError, match=r"whole\.npz: not a readable xconv model file"):
        NeuralNetwork.load(whole)


def test_a_single_npy_array_is_refused(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match=r"array\.npy: .*not an \.npz archive"):
        NeuralNetwork.load(path)


def test_missing_extra_misshapen_and_mistyped_arrays_are_refused(tmp_path):
    path = _damaged(tmp_path, "model.npz", lambda p: None)
    arrays = _arrays(path)
    cases = [
        ({k: v for k, v in arrays.items() if k != "0/params/bias"}, r"bias' is missing"),
        (dict(arrays, extra=np.zeros(2)), r"unexpected arrays \['extra'\]"),
        (dict(arrays, **{"0/params/bias": np.zeros(4)}), r"has shape \(4,\), expected \(3,\)"),
        (
            dict(arrays, **{"0/params/bias": np.zeros(3, dtype=np.float32)}),
            r"bias' has dtype float32, expected float64",
        ),
        (
            dict(arrays, **{"1/buffers/running_var": np.zeros((3, 1))}),
            r"layer 1 \(BatchNormalization\) buffer 'running_var' has shape",
        ),
        ({k: v for k, v in arrays.items() if k != "__config__"}, "no valid xconv model config"),
        (dict(arrays, __config__=np.frombuffer(b"{not json", np.uint8)), "no valid xconv model"),
    ]
    for damaged, problem in cases:
        _rewrite(path, damaged)
        with pytest.raises(ValueError, match=r"model\.npz: .*" + problem):
            NeuralNetwork.load(path)


def test_wrong_versions_and_architectures_are_refused(tmp_path):
    path = _damaged(tmp_path, "model.npz", lambda p: None)
    arrays = _arrays(path)
    config = _config(arrays)
    cases = [
        (dict(config, format_version=FORMAT_VERSION + 1), "format version 2, but this xconv"),
        ({k: v for k, v in config.items() if k != "format_version"}, "format version None"),
        (dict(config, layers=[]), "lists no layers"),
        (dict(config, layers=[{"class": "Evil", "config": {}}]), "unknown layer class 'Evil'"),
        (dict(config, layers=[{"class": "os", "config": {}}]), "unknown layer class 'os'"),
        (dict(config, loss="no_such_loss"), "invalid architecture.*unknown loss"),
        (dict(config, dtype="int8"), "invalid architecture.*`dtype`"),
        ({k: v for k, v in config.items() if k != "seed"}, "invalid architecture.*'seed'"),
    ]
    for changed, problem in cases:
        _rewrite(path, _with_config(arrays, changed))
        with pytest.raises(ValueError, match=r"model\.npz: .*" + problem):
            NeuralNetwork.load(path)
    # a layer whose saved shape no longer fits the next one's
    layers = [dict(spec) for spec in config["layers"]]
    layers[0] = {"class": "Conv2D", "config": dict(layers[0]["config"], n_filters=4)}
    _rewrite(path, _with_config(arrays, dict(config, layers=layers)))
    with pytest.raises(ValueError, match=r"model\.npz: .*(shape|channels)"):
        NeuralNetwork.load(path)


def test_missing_files_stay_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        NeuralNetwork.load(tmp_path / "nothing.npz")


def test_a_failed_load_leaves_the_existing_file_and_model_untouched(tmp_path):
    model, X = _trained()
    expected = model.predict(X)
    path = tmp_path / "model.npz"
    model.save(path)
    _truncate(path)
    damaged = path.read_bytes()
    with pytest.raises(ValueError, match=r"model\.npz"):
        NeuralNetwork.load(path)
    assert path.read_bytes() == damaged
    np.testing.assert_array_equal(model.predict(X), expected)

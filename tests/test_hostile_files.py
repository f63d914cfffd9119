"""Hostile model files and checkpoints: every one is a ValueError naming the file,
raised before memory is spent on what the file only claims; saves leave no temporary
files and respect the umask; a bad checkpoint changes nothing in the model.

Host-side file handling, the same on every backend: these tests run on NumPy.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import xconv._limits as limits
from xconv import NeuralNetwork, models
from xconv.layers import Activation, Dense, Dropout, Flatten

#: the most a refused file may make the loader allocate (bytes, as tracemalloc counts)
SMALL = 8 * 2**20


def _model(**options):
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=0, backend="numpy")
    model.add(Flatten(input_shape=(1, 2, 2)))
    model.add(Dense(3, **options))
    model.add(Dropout(0.25))
    model.add(Activation("softmax"))
    return model


def _saved(tmp_path, name="model.npz"):
    path = tmp_path / name
    _model().save(path)
    return path


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy_header(shape, dtype="<f8"):
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _config(path):
    return json.loads(np.load(io.BytesIO(_members(path)["__config__.npy"])).tobytes())


def _with_config(path, config):
    members = _members(path)
    members["__config__.npy"] = _npy(np.frombuffer(json.dumps(config).encode(), np.uint8))
    _write(path, members)


def _refused(path, match):
    """Load `path`: a ValueError naming it and matching `match`, within `SMALL` bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"{path.name}: .*{match}"):
            NeuralNetwork.load(path, backend="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SMALL, f"refusing {path.name} took {peak} bytes"


# -- the archive ------------------------------------------------------------------------


def test_a_member_that_is_not_npy_is_refused(tmp_path):
    path = _saved(tmp_path)
    _write(path, _members(path) | {"notes.txt": b"hello"})
    _refused(path, r"'notes\.txt' is not an \.npy array")


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    path = _saved(tmp_path)
    members = _members(path)
    # 128 MiB of zeros, declared as the Dense layer's bias: about 130 KB compressed
    bomb = _npy_header((2**24,)) + bytes(2**27)
    members["1/params/bias.npy"] = bomb
    _write(path, members, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    _refused(path, r"bias' has shape \(16777216,\), expected \(3,\)")


def test_a_member_whose_zip_size_differs_from_its_header_is_refused(tmp_path):
    path = _saved(tmp_path)
    members = _members(path)
    members["1/params/bias.npy"] = _npy_header((3,)) + bytes(10_000)
    _write(path, members, zipfile.ZIP_DEFLATED)
    _refused(path, r"declares 24 bytes of data but its zip entry holds 10000")


def test_the_total_declared_size_is_capped(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 64)
    _refused(path, "more than MAX_FILE_BYTES=64 bytes")


def test_non_finite_parameters_are_refused(tmp_path):
    path = _saved(tmp_path)
    _write(path, _members(path) | {"1/params/bias.npy": _npy(np.array([0.0, np.nan, np.inf]))})
    _refused(path, r"layer 1 \(Dense\) param 'bias' holds 2 NaN or infinite values")


def test_records_and_duplicate_members_are_refused(tmp_path):
    path = _saved(tmp_path)
    record = np.zeros(3, dtype=[("a", "<f8")])
    _write(path, _members(path) | {"1/params/bias.npy": _npy(record)})
    _refused(path, "not a number type")
    path = _saved(tmp_path)
    members = list(_members(path).items())
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate"):
            archive.writestr(*members[-1])
    _refused(path, "is stored twice")


# -- the architecture -------------------------------------------------------------------


@pytest.mark.parametrize("units", [25_000_000, 10**12, -(10**12)])
def test_huge_layers_are_refused_before_any_allocation(tmp_path, units):
    path = _saved(tmp_path)
    config = _config(path)
    config["layers"][1]["config"]["n_units"] = units
    _with_config(path, config)
    _refused(path, f"layer 1 has the size {units}, over MAX_LAYER_SIZE=65536")


def test_layers_that_would_create_too_many_parameters_are_refused(tmp_path):
    path = _saved(tmp_path)
    config = _config(path)
    # each number under the cap, but Dense(60000) on 90 000 inputs is 5.4e9 weights
    config["layers"][0]["config"]["input_shape"] = [1, 300, 300]
    config["layers"][1]["config"]["n_units"] = 60_000
    _with_config(path, config)
    _refused(path, r"layer 1 \(Dense\) could hold .* over MAX_PARAMETERS")


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path, depth):
    path = _saved(tmp_path)
    text = json.dumps(_config(path))
    deep = text[:-1] + ', "extra": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    members = _members(path)
    members["__config__.npy"] = _npy(np.frombuffer(deep.encode(), np.uint8))
    _write(path, members)
    _refused(path, "nested deeper than MAX_JSON_DEPTH=64")


def test_json_depth_counts_containers_not_brackets_in_strings():
    assert limits.json_depth({"a": "[[[[[[[[", "b": [1, {"c": []}]}) == 4
    assert limits.json_depth(3) == 0


@pytest.mark.parametrize(
    "field",
    [
        ("layers", 1, "n_units", "three"),
        ("layers", 1, "n_units", None),
        ("layers", 1, "n_units", [3, 3]),
        ("layers", 1, "n_units", 3.5),
        ("layers", 1, "activation", {"class": "os.system"}),
        ("layers", 0, "input_shape", [1, -2, 2]),
        ("layers", 0, "input_shape", "abc"),
        ("layers", 2, "rate", 7),
        ("optimizer", None, "class", "Evil"),
        ("optimizer", None, "learning_rate", "fast"),
        ("loss", None, "class", 3),
        ("metrics", None, None, [{"class": "Nope"}]),
        ("metrics", None, None, "accuracy"),
        ("graph", None, None, {"input_shape": [1, 2, 2], "inputs": [[5]], "output": 9}),
        ("graph", None, None, [1, 2]),
        ("seed", None, None, -1),
        ("layers", None, None, [{"class": "Dense"}]),
        ("layers", None, None, [[]]),
    ],
)
def test_edited_fields_are_a_value_error(tmp_path, field):
    path = _saved(tmp_path)
    config = _config(path)
    key, index, option, value = field
    if index is not None:
        config[key][index]["config"][option] = value
    elif option is not None:
        config[key][option] = value
    else:
        config[key] = value
    _with_config(path, config)
    _refused(path, "")


# -- writing files ----------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_saved_files_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        path = _saved(tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_crashed_saves_temporary_file_is_cleaned_up_by_the_next_save(tmp_path):
    path = _saved(tmp_path)
    stale = tmp_path / ".model.npz.abcd_123.tmp"
    fresh = tmp_path / ".model.npz.zyxw_987.tmp"  # another save, still running
    others = [
        tmp_path / ".other.npz.abcd_123.tmp",  # another file's
        tmp_path / ".model.npz.notes.tmp",  # not the pattern
        tmp_path / "model.npz.abcd_123.tmp",
    ]
    for file in [stale, fresh, *others]:
        file.write_bytes(b"partial")
    long_ago = time.time() - 3600
    for file in [stale, *others]:
        os.utime(file, (long_ago, long_ago))
    _model().save(path)
    assert not stale.exists()
    assert fresh.exists()
    assert all(file.exists() for file in others)


def test_saves_and_checkpoints_leave_no_temporary_files(tmp_path):
    X = np.random.default_rng(0).normal(size=(8, 1, 2, 2))
    y = np.arange(8) % 3
    model = _model()
    model.fit(X, y, epochs=2, batch_size=4, verbose=0, checkpoint=tmp_path / "run.ckpt")
    model.save(tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "run.ckpt"]


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        _model().save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# -- options survive a file -------------------------------------------------------------


def test_options_survive_save_and_load(tmp_path):
    model = NeuralNetwork(
        "adam",
        "cross_entropy",
        dtype="float64",
        seed=np.int64(5),
        backend="numpy",
        metrics=["accuracy", "top_k_accuracy"],
    )
    model.add(Flatten(input_shape=(1, 2, 2)))
    model.add(Dense(3, kernel_initializer="he_normal"))
    model.add(Dropout(0.4))
    model.add(Activation("softmax"))
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path, backend="numpy")
    assert loaded.get_config() == model.get_config()
    assert [m.name for m in loaded.metrics] == [m.name for m in model.metrics]


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.resnet20(input_shape=(3, 32, 32), backend="numpy"),
        lambda: models.lenet5(input_shape=(1, 28, 28), backend="numpy"),
    ],
    ids=["resnet20", "lenet5"],
)
def test_the_caps_leave_the_built_in_models_loadable(tmp_path, build):
    model = build()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path, backend="numpy")
    assert loaded.get_config() == model.get_config()


def test_concurrent_saves_of_one_path_leave_one_whole_file(tmp_path):
    path = tmp_path / "model.npz"
    built = [_model() for _ in range(4)]
    errors = []

    def save_often(model):
        try:
            for _ in range(5):
                model.save(path)
        except Exception as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=save_often, args=(model,)) for model in built]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    NeuralNetwork.load(path, backend="numpy")

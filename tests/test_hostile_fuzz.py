"""Fuzzing `NeuralNetwork.load` and ``fit(resume=)`` with mutated files (Hypothesis):
flipped bytes, truncations, swapped, dropped and renamed members, edited JSON fields.
Only ValueError (or a successful load) may come out; a refused checkpoint leaves the
model as it was.

CI draws `EXAMPLES` reproducible examples per test; ``nox -s fuzz`` draws many more
(see tests/_hypothesis.py). Host-side file handling: NumPy only.
"""

from __future__ import annotations

import functools
import io
import json
import warnings
import zipfile

import numpy as np
from _hypothesis import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from xconv import NeuralNetwork, NonFiniteLossError
from xconv.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten

X = np.random.default_rng(0).normal(size=(8, 1, 4, 4))
Y = np.arange(8) % 3


def _model():
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=0, backend="numpy")
    model.add(Conv2D(2, 3, input_shape=(1, 4, 4)))
    model.add(BatchNormalization())
    model.add(Activation("relu"))
    model.add(Dropout(0.2))
    model.add(Flatten())
    model.add(Dense(3))
    model.add(Activation("softmax"))
    return model


@functools.cache
def _original(tmp_factory_path: str) -> bytes:
    """A checkpoint after one epoch (a model file with a training state), as bytes."""
    from pathlib import Path

    path = Path(tmp_factory_path) / "run.ckpt"
    _model().fit(X, Y, epochs=1, batch_size=4, verbose=0, checkpoint=path)
    return path.read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _json_member(value) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(value).encode(), np.uint8))
    return buffer.getvalue()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutations(draw):
    """A function from the original file's bytes to a mutated file's bytes."""
    kind = draw(st.sampled_from(["flip", "truncate", "swap", "drop", "rename", "edit"]))
    if kind == "flip":
        flips = draw(
            st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8)
        )

        def flip(data: bytes) -> bytes:
            out = bytearray(data)
            for position, bits in flips:
                out[position % len(out)] ^= bits
            return bytes(out)

        return flip
    if kind == "truncate":
        fraction = draw(st.floats(0, 1, exclude_max=True))
        return lambda data: data[: int(len(data) * fraction)]
    picks = draw(st.lists(st.integers(0, 10**6), min_size=2, max_size=2))
    if kind in ("swap", "drop", "rename"):
        new_name = draw(st.sampled_from(["0/params/bias.npy", "x.npy", "__config__.npy", "a/b"]))

        def change_members(data: bytes) -> bytes:
            members = _members(data)
            names = sorted(members)
            a, b = names[picks[0] % len(names)], names[picks[1] % len(names)]
            if kind == "swap":
                members[a], members[b] = members[b], members[a]
            elif kind == "drop":
                del members[a]
            else:
                members[new_name] = members.pop(a)
            return _zip(members)

        return change_members
    value = draw(json_values)
    target = draw(st.sampled_from(["__config__.npy", "__training__.npy"]))

    def edit(data: bytes) -> bytes:
        members = _members(data)
        document = json.loads(np.load(io.BytesIO(members[target])).tobytes())
        # walk to a random container in the document, then replace one of its entries
        node = document
        for pick in picks:
            keys = list(node) if isinstance(node, dict) else range(len(node))
            if not keys:
                break
            key = list(keys)[pick % len(keys)]
            if isinstance(node[key], dict | list) and node[key] and pick % 3:
                node = node[key]
                continue
            node[key] = value
            break
        members[target] = _json_member(document)
        return _zip(members)

    return edit


def _state(model):
    return [{k: np.array(v) for k, v in layer.params.items()} for layer in model.layers]


@given(mutation=mutations())
@fuzz_settings()
def test_loading_mutated_files_raises_only_value_errors(tmp_path_factory, mutation):
    folder = tmp_path_factory.getbasetemp()
    path = folder / "mutated.npz"
    path.write_bytes(mutation(_original(str(folder))))
    try:
        NeuralNetwork.load(path, backend="numpy")
    except ValueError as exc:
        assert "mutated.npz" in str(exc)  # noqa: PT017 (a load may also succeed)


@given(mutation=mutations())
@fuzz_settings()
def test_resuming_from_mutated_checkpoints_raises_only_value_errors(tmp_path_factory, mutation):
    folder = tmp_path_factory.getbasetemp()
    path = folder / "mutated.ckpt"
    path.write_bytes(mutation(_original(str(folder))))
    model = _model()
    before = _state(model)
    try:
        with warnings.catch_warnings():  # an edit may drop the data's fingerprint
            warnings.filterwarnings("ignore", ".*no fingerprint", UserWarning)
            # a state of the right form but wrong values (two moments swapped: a negative
            # second moment) trains to NaN, which the loop then refuses
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            model.fit(X, Y, epochs=2, batch_size=4, verbose=0, resume=path)
    except NonFiniteLossError:
        pass  # an edited learning rate may be huge: documented, and the model is safe
    except ValueError as exc:
        assert "mutated.ckpt" in str(exc)  # noqa: PT017 (a resume may also succeed)
        for old, new in zip(before, _state(model), strict=True):
            for key in old:
                np.testing.assert_array_equal(old[key], new[key])

"""RandomFlip and RandomCrop: seeded, the identity in inference, exact adjoints, and
computed from their noise alone (so a jitted step can pass it in)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import layer_gradient_errors, to_np, to_xp

from xconv.layers import Dense, Flatten, RandomCrop, RandomFlip
from xconv.model import NeuralNetwork

SHAPE = (5, 2, 4, 6)  # N, C, H, W: not square, so a wrong axis shows


def _images(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _layer(kind, backend, seed=3):
    layer = RandomCrop(padding=2) if kind == "crop" else RandomFlip("horizontal_and_vertical")
    layer.initialize(seed=seed, dtype="float32", backend=backend)
    return layer


# -- explicit NumPy references ----------------------------------------------------------


def _crop_reference(X, dy, dx, pad):
    padded = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    H, W = X.shape[2:]
    return np.stack([padded[n, :, dy[n] : dy[n] + H, dx[n] : dx[n] + W] for n in range(len(X))])


def _crop_adjoint_reference(G, dy, dx, pad):
    """Each output gradient added onto the padded input's pixel it came from, then unpadded."""
    N, C, H, W = G.shape
    padded = np.zeros((N, C, H + 2 * pad, W + 2 * pad), G.dtype)
    for n in range(N):
        padded[n, :, dy[n] : dy[n] + H, dx[n] : dx[n] + W] += G[n]
    return padded[:, :, pad : pad + H, pad : pad + W]


def _flip_reference(X, horizontal, vertical):
    out = X.copy()
    out[horizontal] = out[horizontal][..., ::-1]
    out[vertical] = out[vertical][..., ::-1, :]
    return out


# -- every backend ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["crop", "flip"])
def test_same_seed_same_result_on_every_backend(backend, kind):
    X = _images()
    reference = _layer(kind, "numpy")
    layer = _layer(kind, backend)
    for _ in range(2):  # two batches: the generator moves on alike
        expected = reference.forward_pass(X)
        out = layer.forward_pass(to_xp(X, backend.namespace))
        np.testing.assert_array_equal(to_np(out), expected)
    # and the augmentation did something
    assert not np.array_equal(expected, X)


@pytest.mark.parametrize("kind", ["crop", "flip"])
def test_identity_in_inference(backend, kind):
    layer = _layer(kind, backend)
    X = to_xp(_images(), backend.namespace)
    out = layer.forward_pass(X, training=False)
    np.testing.assert_array_equal(to_np(out), _images())
    G = _images(seed=1)
    np.testing.assert_array_equal(to_np(layer.backward_pass(to_xp(G, backend.namespace))), G)
    # inference draws nothing: the next training batch is the one a fresh layer draws
    fresh = _layer(kind, "numpy")
    np.testing.assert_array_equal(to_np(layer.forward_pass(X)), fresh.forward_pass(_images()))


def test_crop_of_a_known_image_at_known_offsets(backend):
    xp = backend.namespace
    layer = RandomCrop(padding=1)
    layer.initialize(seed=0, backend=backend)
    image = np.arange(1.0, 13.0, dtype=np.float32).reshape(1, 1, 3, 4)
    X = to_xp(np.concatenate([image] * 3), xp)
    # offsets in [0, 2]: (1, 1) is the image itself; (0, 0) shifts it down and right,
    # (2, 1) up by one row
    noise = {"dy": to_xp([1, 0, 2], xp, "int32"), "dx": to_xp([1, 0, 1], xp, "int32")}
    out = to_np(layer.forward_pass(X, noise=noise))[:, 0]
    expected = [
        [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]],
        [[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7]],
        [[5, 6, 7, 8], [9, 10, 11, 12], [0, 0, 0, 0]],
    ]
    np.testing.assert_array_equal(out, np.asarray(expected, dtype=np.float32))


def test_crop_forward_and_backward_match_the_references(backend):
    xp = backend.namespace
    layer = RandomCrop(padding=2)
    layer.initialize(seed=5, backend=backend)
    X, G = _images(), _images(seed=1)
    noise = layer.sample_noise(len(X))
    dy, dx = to_np(noise["dy"]), to_np(noise["dx"])
    assert set(dy.tolist()) | set(dx.tolist()) <= {0, 1, 2, 3, 4}
    out = layer.forward_pass(to_xp(X, xp), noise=noise)
    np.testing.assert_array_equal(to_np(out), _crop_reference(X, dy, dx, 2))
    grad = to_np(layer.backward_pass(to_xp(G, xp)))
    np.testing.assert_allclose(grad, _crop_adjoint_reference(G, dy, dx, 2), rtol=0, atol=1e-6)
    # the adjoint identity <crop(X), G> == <X, crop^T(G)>
    np.testing.assert_allclose(np.sum(to_np(out) * G), np.sum(X * grad), rtol=1e-5)


def test_flip_forward_and_backward_match_the_references(backend):
    xp = backend.namespace
    layer = _layer("flip", backend)
    X, G = _images(), _images(seed=1)
    noise = layer.sample_noise(len(X))
    horizontal, vertical = to_np(noise["horizontal"]), to_np(noise["vertical"])
    out = layer.forward_pass(to_xp(X, xp), noise=noise)
    np.testing.assert_array_equal(to_np(out), _flip_reference(X, horizontal, vertical))
    grad = to_np(layer.backward_pass(to_xp(G, xp)))
    # a flip is a permutation: its adjoint is its inverse, which is itself
    np.testing.assert_array_equal(grad, _flip_reference(G, horizontal, vertical))


@pytest.mark.parametrize("kind", ["crop", "flip"])
def test_gradient_by_finite_differences(backend, kind):
    layer = RandomCrop(padding=1) if kind == "crop" else RandomFlip("horizontal_and_vertical")
    layer.initialize(seed=2, dtype="float64", backend=backend)
    X = np.random.default_rng(0).standard_normal((4, 2, 3, 4))
    # the helper restores the generator before each forward pass: the same noise each time
    errors = layer_gradient_errors(layer, X, backend.namespace)
    assert set(errors) == {"X"}
    assert errors["X"] < 1e-8


def test_flips_are_about_half(backend):
    layer = RandomFlip()
    layer.initialize(seed=0, backend=backend)
    flips = to_np(layer.sample_noise(4000)["horizontal"])
    assert flips.dtype == np.bool_
    # seeded: the same 4000 coins every run, so this cannot flake
    assert 0.47 < flips.mean() < 0.53
    # and per sample, not per batch
    X = to_xp(np.broadcast_to(np.arange(4.0, dtype=np.float32), (400, 1, 1, 4)), backend.namespace)
    out = to_np(layer.forward_pass(X))[:, 0, 0]
    flipped = out[:, 0] == 3
    assert np.all(out[flipped] == [3, 2, 1, 0])
    assert np.all(out[~flipped] == [0, 1, 2, 3])
    assert 0.4 < flipped.mean() < 0.6


def test_jax_jit_with_the_noise_passed_in(backend):
    if backend.name != "jax":
        pytest.skip("jax.jit applies to the jax backend only")
    import jax

    X = to_xp(_images(), backend.namespace)
    for kind in ("crop", "flip"):
        layer = _layer(kind, backend)
        step = jax.jit(lambda X, noise, layer=layer: layer.forward_pass(X, noise=noise))
        noise = layer.sample_noise(SHAPE[0])
        traced = step(X, noise)
        np.testing.assert_array_equal(to_np(traced), to_np(layer.forward_pass(X, noise=noise)))
        # new noise, same compiled function: the noise is an argument, not a constant
        other = layer.sample_noise(SHAPE[0])
        np.testing.assert_array_equal(
            to_np(step(X, other)), to_np(layer.forward_pass(X, noise=other))
        )


def test_random_state_round_trip(backend):
    layer = _layer("crop", backend)
    state = layer.random_state()
    first = to_np(layer.sample_noise(8)["dy"])
    layer.set_random_state(json.loads(json.dumps(state)))
    np.testing.assert_array_equal(to_np(layer.sample_noise(8)["dy"]), first)


# -- host-only behaviour ----------------------------------------------------------------


def test_get_config_round_trip():
    for layer in (
        RandomFlip("vertical", input_shape=(3, 8, 8)),
        RandomCrop(padding=(2, 3), input_shape=(1, 4, 4)),
        RandomCrop(),
    ):
        config = json.loads(json.dumps(layer.get_config()))
        rebuilt = type(layer)(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        )
        assert rebuilt.get_config() == config
    assert RandomCrop().get_config() == {"padding": 4, "input_shape": None}
    assert RandomFlip().get_config() == {"mode": "horizontal", "input_shape": None}


def test_saved_with_the_model_and_used_in_fit(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((16, 1, 6, 6)), rng.integers(0, 2, 16)
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=0)
    model.add(RandomFlip(input_shape=(1, 6, 6)))
    model.add(RandomCrop(padding=1))
    model.add(Flatten())
    model.add(Dense(2))
    history = model.fit(X, y, n_epochs=2, batch_size=8)
    assert np.all(np.isfinite(history["loss"]))
    model.save(tmp_path / "model.npz")
    loaded = NeuralNetwork.load(tmp_path / "model.npz")
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[1].get_config() == {"padding": 1, "input_shape": [1, 6, 6]}
    # inference is the identity, so the loaded model predicts what the trained one does
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_stochastic_protocol():
    assert RandomFlip.stochastic is True
    assert RandomCrop.stochastic is True
    assert RandomCrop().parameters() == 0


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: RandomFlip("diagonal"), ValueError, "`mode` must be one of"),
        (lambda: RandomFlip(None), ValueError, "`mode` must be one of"),
        (lambda: RandomCrop(-1), ValueError, "`padding` must be a non-negative"),
        (lambda: RandomCrop(1.5), TypeError, "`padding` must be a non-negative"),
        (lambda: RandomCrop(True), TypeError, "`padding` must be a non-negative"),
        (lambda: RandomCrop(input_shape=(4, 4)), ValueError, "`input_shape` must be 3"),
    ],
)
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_noise_and_order():
    layer = RandomCrop(padding=1)
    with pytest.raises(RuntimeError, match="before initialize"):
        layer.sample_noise(2)
    with pytest.raises(RuntimeError, match="needs a forward_pass"):
        layer.backward_pass(np.zeros((2, 1, 3, 3)))
    X = np.zeros((2, 1, 3, 3))
    with pytest.raises(ValueError, match="'dx'"):
        layer.forward_pass(X, noise={"dy": np.zeros(2, np.int32)})
    with pytest.raises(ValueError, match=r"shape \(2,\), one per sample"):
        layer.forward_pass(X, noise={"dy": np.zeros(3, np.int32), "dx": np.zeros(3, np.int32)})
    with pytest.raises(ValueError, match="4-D"):
        RandomFlip().forward_pass(np.zeros((2, 3, 3)))

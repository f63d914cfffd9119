"""`linear`, `gelu`, `silu`, `hardtanh` and `relu6` of issue #25 against PyTorch in
float64 (values and every gradient) and finite differences, on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _torch_reference import close, on, torch_run
from helpers import F, gradient_errors, requires_torch_reason, to_np, to_xp, torch

import xconv.functional as xf
from xconv.functional._pointwise import erf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
rng = np.random.default_rng(0)

LINEAR_SHAPES = [((5,), 3), ((4, 5), 3), ((2, 3, 5), 1), ((0, 5), 2)]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize(("shape", "out_features"), LINEAR_SHAPES)
def test_linear_matches_torch(xp, shape, out_features, with_bias, contiguous):
    x = rng.standard_normal(shape)
    w = rng.standard_normal((out_features, shape[-1]))
    b = rng.standard_normal(out_features) if with_bias else None
    out, grads, probe = torch_run(F.linear, [x, w, b], [True, True, True])
    X, W, B = on(xp, [x, w, b], contiguous=contiguous)
    close(xf.linear(X, W, B), out)
    gx, gw, gb = xf.linear_backward(to_xp(probe, xp), X, W, bias=with_bias)
    close(gx, grads[0])
    close(gw, grads[1])
    if with_bias:
        close(gb, grads[2])
    else:
        assert gb is None


def test_linear_gradients_match_finite_differences(xp):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    probe = rng.standard_normal((3, 2))

    def loss(a):
        out = xf.linear(to_xp(a["x"], xp), to_xp(a["w"], xp), to_xp(a["b"], xp))
        return float(np.sum(to_np(out) * probe))

    gx, gw, gb = xf.linear_backward(to_xp(probe, xp), to_xp(x, xp), to_xp(w, xp))
    errors = gradient_errors(loss, {"x": x, "w": w, "b": b}, {"x": gx, "w": gw, "b": gb})
    assert max(errors.values()) < 1e-8


def test_linear_checks_shapes(xp):
    x, w = to_xp(np.zeros((2, 3)), xp), to_xp(np.zeros((4, 2)), xp)
    with pytest.raises(ValueError, match="in_features"):
        xf.linear(x, w)
    with pytest.raises(ValueError, match="bias"):
        xf.linear(x, to_xp(np.zeros((4, 3)), xp), to_xp(np.zeros(3), xp))


POINTWISE = {
    "gelu": (xf.gelu, xf.gelu_backward, {}, lambda t: F.gelu(t)),
    "gelu-tanh": (
        xf.gelu,
        xf.gelu_backward,
        {"approximate": "tanh"},
        lambda t: F.gelu(t, approximate="tanh"),
    ),
    "silu": (xf.silu, xf.silu_backward, {}, lambda t: F.silu(t)),
    "hardtanh": (xf.hardtanh, xf.hardtanh_backward, {}, lambda t: F.hardtanh(t)),
    "hardtanh-bounds": (
        xf.hardtanh,
        xf.hardtanh_backward,
        {"min_val": -0.5, "max_val": 2.0},
        lambda t: F.hardtanh(t, min_val=-0.5, max_val=2.0),
    ),
    "relu6": (xf.relu6, xf.relu6_backward, {}, lambda t: F.relu6(t)),
}


def _points() -> np.ndarray:
    """Ordinary values, the kinks and bounds exactly, and large magnitudes."""
    x = rng.standard_normal((4, 7)) * 3
    x[0] = [-1.0, 1.0, 0.0, 6.0, -0.5, 2.0, 1e-3]
    x[1] = [-40.0, 40.0, -1000.0, 1000.0, 2.0 * math.sqrt(2), -2.0 * math.sqrt(2), 5.5]
    return x


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_match_torch(xp, name, contiguous):
    forward, backward, options, reference = POINTWISE[name]
    x = _points()
    out, grads, probe = torch_run(reference, [x], [True])
    (X,) = on(xp, [x], contiguous=contiguous)
    # atol: where 1 + tanh(u) or 1 + erf(u) cancels, PyTorch itself is off by ~1e-16
    # of the (O(1)) gradient's scale
    np.testing.assert_allclose(to_np(forward(X, **options)), out, rtol=1e-13, atol=1e-15)
    got = to_np(backward(to_xp(probe, xp), X, **options))
    np.testing.assert_allclose(got, grads[0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_match_finite_differences(xp, name):
    forward, backward, options, _ = POINTWISE[name]
    x = rng.standard_normal((3, 4)) * 2
    x = np.where(np.abs(np.abs(x) - 1.0) < 1e-3, 0.3, x)  # off hardtanh's kinks
    x = np.where(np.abs(x) < 1e-3, 0.3, x)
    probe = rng.standard_normal(x.shape)

    def loss(a):
        return float(np.sum(to_np(forward(to_xp(a["x"], xp), **options)) * probe))

    grad = backward(to_xp(probe, xp), to_xp(x, xp), **options)
    # along random directions: GELU's erf is ~200 array operations, slow on lazy Dask
    assert gradient_errors(loss, {"x": x}, {"x": grad}, directions=4)["x"] < 1e-8


def test_erf_matches_math_erf(xp):
    x = np.concatenate([np.linspace(-7.0, 7.0, 281), [-30.0, 1e-8, 30.0, 1.999, 2.001]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(to_np(erf(to_xp(x, xp), xp)), expected, rtol=2e-15, atol=2e-15)


@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_keep_float32_and_stay_finite(xp, name):
    forward, backward, options, _ = POINTWISE[name]
    X = to_xp(np.array([-1e30, -100.0, 0.0, 100.0, 1e30]), xp, "float32")
    out = forward(X, **options)
    grad = backward(to_xp(np.ones(5), xp, "float32"), X, **options)
    assert out.dtype == X.dtype
    assert grad.dtype == X.dtype
    assert np.isfinite(to_np(grad)).all()


def test_pointwise_options_are_checked(xp):
    x = to_xp(np.zeros(3), xp)
    with pytest.raises(ValueError, match="approximate"):
        xf.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="min_val"):
        xf.hardtanh(x, min_val=2.0, max_val=1.0)

"""`pad` and `interpolate` of issue #25 against PyTorch in float64 (values and input
gradients, contiguous and strided, odd sizes) and finite differences, every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _torch_reference import close, on, torch_run
from helpers import F, gradient_errors, requires_torch_reason, to_np, to_xp, torch

import xconv.functional as xf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
rng = np.random.default_rng(0)

# (input shape, pad, options)
PADS: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((2, 3, 4, 5), (1, 2), {}),
    ((2, 3, 4, 5), (1, 2, 0, 3), {"value": 1.5}),
    ((2, 3, 4, 5), (-1, 2, 1, -2), {}),
    ((2, 3, 4, 5), (1, 1, 1, 0, 0, 2), {}),
    ((2, 3, 4, 5), (1, 2, 3, 0), {"mode": "reflect"}),
    ((2, 3, 5), (3, 2), {"mode": "reflect"}),
    ((3, 4, 5), (1, 1, 2, 3), {"mode": "reflect"}),
    ((2, 1, 3, 3), (2, 1, 3, 3), {"mode": "replicate"}),
    ((1, 2, 3, 1, 2), (1, 2, 0, 1, 2, 0), {"mode": "replicate"}),
    ((2, 3, 1, 4), (1, 1, 2, 0), {"mode": "replicate"}),
    ((2, 2, 3, 4), (1, 2, 3, 1), {"mode": "circular"}),
]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "amounts", "options"), PADS)
def test_pad_matches_torch(xp, shape, amounts, options, contiguous):
    x = rng.standard_normal(shape)
    out, grads, probe = torch_run(lambda t: F.pad(t, amounts, **options), [x], [True])
    (X,) = on(xp, [x], contiguous=contiguous)
    close(xf.pad(X, amounts, **options), out)
    close(xf.pad_backward(to_xp(probe, xp), X, amounts, **options), grads[0])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_backward_matches_finite_differences(xp, mode):
    x = rng.standard_normal((1, 2, 3, 4))
    amounts = (2, 1, 1, 2)
    probe = rng.standard_normal((1, 2, 6, 7))

    def loss(a):
        return float(np.sum(to_np(xf.pad(to_xp(a["x"], xp), amounts, mode)) * probe))

    grad = xf.pad_backward(to_xp(probe, xp), to_xp(x, xp), amounts, mode)
    assert gradient_errors(loss, {"x": x}, {"x": grad}, directions=6)["x"] < 1e-8


def test_pad_refuses_what_torch_refuses(xp):
    x = to_xp(np.zeros((1, 1, 3, 3)), xp)
    with pytest.raises(ValueError, match="reflect"):
        xf.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="mode"):
        xf.pad(x, (1, 1), mode="edge")
    with pytest.raises(TypeError, match="pad"):
        xf.pad(x, (1,))
    with pytest.raises(ValueError, match="negative"):
        xf.pad(x, (-1, 1), mode="replicate")


# (input shape, options)
INTERPOLATIONS: list[tuple[tuple[int, ...], dict[str, Any]]] = [
    ((2, 3, 4, 5), {"size": (5, 7)}),
    ((2, 3, 4, 5), {"scale_factor": 2}),
    ((1, 2, 5, 7), {"scale_factor": 1.5}),
    ((1, 2, 5, 7), {"scale_factor": (0.6, 1.3)}),
    ((1, 2, 5, 7), {"size": (3, 11), "mode": "nearest-exact"}),
    ((1, 2, 5, 7), {"scale_factor": 1.7, "recompute_scale_factor": True}),
    ((2, 3, 4, 5), {"size": (7, 9), "mode": "bilinear"}),
    ((2, 3, 4, 5), {"size": (7, 9), "mode": "bilinear", "align_corners": True}),
    ((1, 2, 5, 3), {"scale_factor": 2.5, "mode": "bilinear"}),
    ((1, 2, 6, 7), {"scale_factor": 0.5, "mode": "bilinear"}),
    ((1, 2, 5, 7), {"scale_factor": 1.7, "mode": "bilinear", "recompute_scale_factor": True}),
    ((1, 2, 3, 4), {"size": (1, 5), "mode": "bilinear", "align_corners": True}),
    ((2, 3, 5), {"size": 9, "mode": "linear"}),
    ((2, 3, 5), {"scale_factor": 3, "mode": "linear", "align_corners": True}),
    ((2, 3, 5), {"size": 8}),
    # PyTorch's 2-D nearest copies an axis that keeps its size (1.1 on 5 pixels) and
    # halves one that doubles (2.1 on 5), whatever the factor; its 1-D nearest does not
    ((1, 2, 5, 5), {"scale_factor": 1.1}),
    ((1, 2, 5, 6), {"scale_factor": (2.1, 1.1)}),
    ((1, 2, 5, 6), {"scale_factor": (2.1, 1.1), "mode": "nearest-exact"}),
    ((1, 2, 1, 7), {"scale_factor": (1.0, 1.1), "mode": "nearest-exact"}),  # no copy
    # and its linear modes copy an axis that keeps its size, whatever the factor
    ((1, 2, 3, 4), {"scale_factor": (1.1, 1.5), "mode": "bilinear"}),
    ((1, 2, 3, 4), {"scale_factor": (1.1, 1.0), "mode": "bilinear", "align_corners": True}),
    ((2, 3, 5), {"scale_factor": 1.1, "mode": "linear"}),
]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "options"), INTERPOLATIONS)
def test_interpolate_matches_torch(xp, shape, options, contiguous):
    x = rng.standard_normal(shape)
    out, grads, probe = torch_run(lambda t: F.interpolate(t, **options), [x], [True])
    (X,) = on(xp, [x], contiguous=contiguous)
    close(xf.interpolate(X, **options), out)
    close(xf.interpolate_backward(to_xp(probe, xp), X, **options), grads[0])


@requires_torch
@pytest.mark.parametrize("factor", [1.1, 2.1])
def test_1d_nearest_by_a_factor_keeping_or_doubling_the_axis(xp, factor):
    """The forward is PyTorch's; the gradient is the forward's, where PyTorch's is not.

    On 5 pixels by 1.1, PyTorch's 1-D nearest reads sources 0, 0, 1, 2, 3 but its
    backward sends the output's gradient to 0, 1, 2, 3, 4 (its 2-D rule, copy or
    halve): not the adjoint of its forward. xconv's backward is (finite differences).
    """
    x = rng.standard_normal((2, 3, 5))
    out, grads, probe = torch_run(lambda t: F.interpolate(t, scale_factor=factor), [x], [True])
    (X,) = on(xp, [x], contiguous=True)
    close(xf.interpolate(X, scale_factor=factor), out)
    grad = to_np(xf.interpolate_backward(to_xp(probe, xp), X, scale_factor=factor))
    assert not np.allclose(grad, to_np(grads[0]))  # PyTorch's inconsistency, still there

    def loss(a):
        return float(np.sum(to_np(xf.interpolate(to_xp(a["x"], xp), scale_factor=factor)) * probe))

    errors = gradient_errors(loss, {"x": x}, {"x": grad})
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_backward_matches_finite_differences(xp, mode):
    x = rng.standard_normal((1, 2, 3, 4))
    probe = rng.standard_normal((1, 2, 5, 7))

    def loss(a):
        out = xf.interpolate(to_xp(a["x"], xp), size=(5, 7), mode=mode)
        return float(np.sum(to_np(out) * probe))

    grad = xf.interpolate_backward(to_xp(probe, xp), to_xp(x, xp), size=(5, 7), mode=mode)
    assert gradient_errors(loss, {"x": x}, {"x": grad}, directions=6)["x"] < 1e-8


def test_interpolate_keeps_float32(xp):
    X = to_xp(rng.standard_normal((1, 1, 3, 3)), xp, "float32")
    assert xf.interpolate(X, scale_factor=2, mode="bilinear").dtype == X.dtype


def test_interpolate_refuses_what_torch_refuses(xp):
    x = to_xp(np.zeros((1, 1, 3, 3)), xp)
    with pytest.raises(ValueError, match="exactly one"):
        xf.interpolate(x)
    with pytest.raises(ValueError, match="align_corners"):
        xf.interpolate(x, size=4, align_corners=True)
    with pytest.raises(ValueError, match="mode"):
        xf.interpolate(x, size=4, mode="linear")
    with pytest.raises(ValueError, match="antialias"):
        xf.interpolate(x, size=4, mode="bilinear", antialias=True)

"""`layer_norm` and `group_norm` of issue #25 against PyTorch in float64 (values and
every gradient: input, weight, bias; strided inputs) and finite differences, every
backend."""

from __future__ import annotations

import numpy as np
import pytest
from _torch_reference import close, on, torch_run
from helpers import F, gradient_errors, requires_torch_reason, to_np, to_xp, torch

import xconv.functional as xf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
rng = np.random.default_rng(0)

LAYER_CASES = [
    ((4, 6), 6, True, True, 1e-5),
    ((2, 3, 5), (3, 5), True, False, 1e-5),
    ((2, 3, 4, 5), (4, 5), False, False, 1e-3),
    ((7,), 7, True, True, 0.1),
    ((2, 3, 4, 5), [3, 4, 5], False, True, 1e-5),
]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "normalized", "with_weight", "with_bias", "eps"), LAYER_CASES)
def test_layer_norm_matches_torch(xp, shape, normalized, with_weight, with_bias, eps, contiguous):
    x = rng.standard_normal(shape) * 3 + 1
    nshape = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    w = rng.standard_normal(nshape) if with_weight else None
    b = rng.standard_normal(nshape) if with_bias else None
    out, grads, probe = torch_run(
        lambda t, tw, tb: F.layer_norm(t, nshape, tw, tb, eps), [x, w, b], [True, True, True]
    )
    X, W, B = on(xp, [x, w, b], contiguous=contiguous)
    close(xf.layer_norm(X, normalized, W, B, eps), out)
    gx, gw, gb = xf.layer_norm_backward(
        to_xp(probe, xp), X, normalized, W, bias=with_bias, eps=eps
    )
    close(gx, grads[0])
    for got, expected in ((gw, grads[1]), (gb, grads[2])):
        if expected is None:
            assert got is None
        else:
            close(got, expected)


GROUP_CASES = [
    ((2, 6, 3, 4), 3, True, True, 1e-5),
    ((2, 6, 3, 4), 1, False, True, 1e-5),
    ((3, 4, 5), 4, True, False, 1e-3),
    ((2, 4), 2, True, True, 1e-5),
    ((1, 6, 5, 3), 6, False, False, 1e-5),
]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "groups", "with_weight", "with_bias", "eps"), GROUP_CASES)
def test_group_norm_matches_torch(xp, shape, groups, with_weight, with_bias, eps, contiguous):
    x = rng.standard_normal(shape) * 2 - 1
    channels = shape[1]
    w = rng.standard_normal(channels) if with_weight else None
    b = rng.standard_normal(channels) if with_bias else None

    def reference(t, tw, tb):
        if tw is None and tb is not None:  # PyTorch 2.13's backward fails on (None, bias)
            tw = torch.ones(channels, dtype=t.dtype)
        return F.group_norm(t, groups, tw, tb, eps)

    out, grads, probe = torch_run(reference, [x, w, b], [True, True, True])
    X, W, B = on(xp, [x, w, b], contiguous=contiguous)
    close(xf.group_norm(X, groups, W, B, eps), out)
    gx, gw, gb = xf.group_norm_backward(to_xp(probe, xp), X, groups, W, bias=with_bias, eps=eps)
    close(gx, grads[0])
    for got, expected in ((gw, grads[1]), (gb, grads[2])):
        if expected is None:
            assert got is None
        else:
            close(got, expected)


@pytest.mark.parametrize("op", ["layer", "group"])
def test_norms_match_finite_differences(xp, op):
    x = rng.standard_normal((2, 4, 3))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    probe = rng.standard_normal(x.shape)
    if op == "layer":
        w, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def forward(a):
        X, W, B = (to_xp(a[k], xp) for k in ("x", "w", "b"))
        if op == "layer":
            return xf.layer_norm(X, (4, 3), W, B)
        return xf.group_norm(X, 2, W, B)

    def loss(a):
        return float(np.sum(to_np(forward(a)) * probe))

    backward = xf.layer_norm_backward if op == "layer" else xf.group_norm_backward
    option = (4, 3) if op == "layer" else 2
    gx, gw, gb = backward(to_xp(probe, xp), to_xp(x, xp), option, to_xp(w, xp), bias=True)
    errors = gradient_errors(
        loss, {"x": x, "w": w, "b": b}, {"x": gx, "w": gw, "b": gb}, directions=6
    )
    assert max(errors.values()) < 1e-7


def test_norms_check_their_arguments(xp):
    x = to_xp(np.zeros((2, 6, 3)), xp)
    with pytest.raises(ValueError, match="normalized_shape"):
        xf.layer_norm(x, (6,))
    with pytest.raises(ValueError, match="num_groups"):
        xf.group_norm(x, 4)
    with pytest.raises(ValueError, match="weight"):
        xf.group_norm(x, 3, to_xp(np.ones(3), xp))
    with pytest.raises(ValueError, match="eps"):
        xf.layer_norm(x, 3, eps=-1.0)

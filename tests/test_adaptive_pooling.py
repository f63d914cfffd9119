"""Adaptive average and max pooling of issue #25 against PyTorch in float64 (values,
indices and input gradients; odd, overlapping and growing windows; unbatched and
strided inputs) and finite differences, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from _torch_reference import close, on, torch_run
from helpers import F, gradient_errors, requires_torch_reason, to_np, to_xp, torch

import xconv.functional as xf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
rng = np.random.default_rng(0)

CASES = [
    ((2, 3, 7, 5), (3, 2)),
    ((2, 3, 6, 6), 1),
    ((1, 2, 5, 7), (5, 7)),
    ((1, 2, 3, 4), (5, 6)),  # more outputs than inputs: windows repeat pixels
    ((1, 2, 10, 3), (4, None)),
    ((3, 7, 9), (2, 4)),  # unbatched
]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "output_size"), CASES)
def test_adaptive_avg_pool2d_matches_torch(xp, shape, output_size, contiguous):
    x = rng.standard_normal(shape)
    out, grads, probe = torch_run(lambda t: F.adaptive_avg_pool2d(t, output_size), [x], [True])
    (X,) = on(xp, [x], contiguous=contiguous)
    close(xf.adaptive_avg_pool2d(X, output_size), out)
    close(xf.adaptive_avg_pool2d_backward(to_xp(probe, xp), X, output_size), grads[0])


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "output_size"), CASES)
def test_adaptive_max_pool2d_matches_torch(xp, shape, output_size, contiguous):
    # a few ties, so that the first maximum's rule counts
    x = np.round(rng.standard_normal(shape) * 2) / 2
    out, grads, probe = torch_run(lambda t: F.adaptive_max_pool2d(t, output_size), [x], [True])
    _, expected_index = F.adaptive_max_pool2d(torch.tensor(x), output_size, return_indices=True)
    (X,) = on(xp, [x], contiguous=contiguous)
    close(xf.adaptive_max_pool2d(X, output_size), out)
    values, index = xf.adaptive_max_pool2d(X, output_size, return_indices=True)
    close(values, out)
    np.testing.assert_array_equal(to_np(index), expected_index.numpy())
    close(xf.adaptive_max_pool2d_backward(to_xp(probe, xp), X, output_size), grads[0])


@pytest.mark.parametrize(
    "pool",
    [
        (xf.adaptive_avg_pool2d, xf.adaptive_avg_pool2d_backward),
        (xf.adaptive_max_pool2d, xf.adaptive_max_pool2d_backward),
    ],
    ids=["avg", "max"],
)
def test_adaptive_pooling_matches_finite_differences(xp, pool):
    forward, backward = pool
    x = rng.permutation(30).reshape(1, 2, 3, 5) / 7.0  # distinct values: no ties
    probe = rng.standard_normal((1, 2, 2, 3))

    def loss(a):
        return float(np.sum(to_np(forward(to_xp(a["x"], xp), (2, 3))) * probe))

    grad = backward(to_xp(probe, xp), to_xp(x, xp), (2, 3))
    assert gradient_errors(loss, {"x": x}, {"x": grad}, directions=6)["x"] < 1e-8


def test_adaptive_pooling_checks_its_arguments(xp):
    x = to_xp(np.zeros((1, 1, 3, 3)), xp)
    with pytest.raises(ValueError, match="output_size"):
        xf.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="output_size"):
        xf.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match="4-D"):
        xf.adaptive_avg_pool2d(to_xp(np.zeros((3, 3)), xp), 1)

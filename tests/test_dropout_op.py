"""`dropout` of issue #25: PyTorch's semantics for a given mask (values and the autograd
gradient in float64), its own draws, and finite differences, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from _torch_reference import close, on
from helpers import F, gradient_errors, requires_torch_reason, to_np, to_xp, torch

import xconv.functional as xf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
rng = np.random.default_rng(0)


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_matches_torch_for_torch_mask(xp, p, contiguous):
    x = rng.standard_normal((3, 4, 5)) + 10.0  # no zeros: PyTorch's mask is out != 0
    tx = torch.tensor(x, requires_grad=True)
    torch.manual_seed(1)
    expected = F.dropout(tx, p)
    probe = rng.standard_normal(x.shape)
    expected.backward(torch.tensor(probe))
    kept = (expected != 0).numpy()
    uniform = np.where(kept, 0.999, 0.0)  # kept exactly where PyTorch kept
    X, U = on(xp, [x, uniform], contiguous=contiguous)
    close(xf.dropout(X, p, uniform=U), expected.detach().numpy(), rtol=1e-15)
    close(xf.dropout_backward(to_xp(probe, xp), U, p), tx.grad.numpy(), rtol=1e-15)


def test_dropout_draws_one_mask_per_seed_on_every_backend(xp):
    x = to_xp(np.ones((50, 40)), xp)
    first = to_np(xf.dropout(x, 0.3, rng=5))
    np.testing.assert_array_equal(first, to_np(xf.dropout(x, 0.3, rng=5)))
    uniform = np.random.default_rng(5).uniform(size=(50, 40))
    np.testing.assert_array_equal(first, np.where(uniform >= 0.3, 1 / 0.7, 0.0))
    assert 0.6 < np.mean(first != 0) < 0.8


def test_dropout_edges(xp):
    x = to_xp(rng.standard_normal((2, 3)), xp)
    assert xf.dropout(x, 0.5, training=False) is x
    assert xf.dropout(x, 0.0) is x
    np.testing.assert_array_equal(to_np(xf.dropout(x, 1.0, rng=0)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="p"):
        xf.dropout(x, 1.5)
    with pytest.raises(ValueError, match="inplace"):
        xf.dropout(x, 0.5, inplace=True)
    with pytest.raises(ValueError, match="uniform"):
        xf.dropout(x, 0.5, uniform=to_xp(np.zeros(3), xp))


def test_dropout_backward_matches_finite_differences(xp):
    x, uniform = rng.standard_normal((3, 4)), rng.random((3, 4))
    probe = rng.standard_normal((3, 4))
    U = to_xp(uniform, xp)

    def loss(a):
        return float(np.sum(to_np(xf.dropout(to_xp(a["x"], xp), 0.4, uniform=U)) * probe))

    grad = xf.dropout_backward(to_xp(probe, xp), U, 0.4)
    assert gradient_errors(loss, {"x": x}, {"x": grad})["x"] < 1e-8

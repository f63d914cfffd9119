"""`logsumexp` on every backend under test, against PyTorch and finite differences."""

import numpy as np
import pytest
from stablemath import logsumexp, logsumexp_backward

from xconv.testing import assert_close, check_gradient, from_numpy, reference_torch


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_matches_pytorch(xp, axis):
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    expected = reference_torch("logsumexp", x, dim=axis)  # float64, on the CPU
    assert_close(logsumexp(from_numpy(x, xp, dtype="float64"), axis=axis), expected)
    # float32 keeps its dtype and is held to float32's tolerances
    result = logsumexp(from_numpy(x, xp, dtype="float32"), axis=axis)
    assert result.dtype == xp.float32
    assert_close(result, expected)


def test_large_and_infinite_inputs(xp):
    x = from_numpy([[1000.0, 1000.0], [-1000.0, -1000.0], [-np.inf, -np.inf]], xp)
    assert_close(logsumexp(x), [1000 + np.log(2), -1000 + np.log(2), -np.inf])


def test_gradient(xp):
    rng = np.random.default_rng(1)
    x = from_numpy(rng.standard_normal((4, 6)), xp, dtype="float64")
    probe = from_numpy(rng.standard_normal(4), xp, dtype="float64")

    def loss(x):
        return xp.sum(logsumexp(x, axis=1) * probe)

    check_gradient(loss, x, logsumexp_backward(probe, x, axis=1))


def test_gradient_of_a_large_input_along_random_directions(xp):
    x = from_numpy(np.random.default_rng(2).standard_normal((50, 20)), xp, dtype="float64")
    probe = from_numpy(np.ones(20), xp, dtype="float64")
    check_gradient(
        lambda x: xp.sum(logsumexp(x, axis=0) * probe), x, logsumexp_backward(probe, x, axis=0)
    )

"""im2col and col2im against torch unfold/fold, by hand, and as each other's adjoint."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    explicit_pads,
    pair,
    relative_error,
    requires_torch_reason,
    to_np,
    to_xp,
    torch,
)

from xconv.functional import col2im, im2col

# (x shape, kernel, options)
CASES = [
    ((2, 3, 6, 6), 3, {}),
    ((2, 3, 6, 7), (2, 3), {"stride": 2, "padding": 1}),
    ((1, 2, 9, 8), 3, {"stride": (3, 2), "padding": (2, 0), "dilation": (1, 2)}),
    ((2, 1, 7, 7), (3, 1), {"dilation": 3}),
    ((1, 4, 5, 5), 1, {"stride": 2}),
    ((1, 2, 4, 4), 4, {}),
]
IDS = [f"{x}-k{k}-{o}" for x, k, o in CASES]


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.parametrize(("shape", "kernel", "options"), CASES, ids=IDS)
def test_im2col_matches_torch_unfold(xp, shape, kernel, options):
    x = np.random.default_rng(0).standard_normal(shape)
    cols = im2col(to_xp(x, xp), kernel, **options)
    expected = torch.nn.functional.unfold(torch.tensor(x), kernel, **options).numpy()
    assert relative_error(to_np(cols), expected) == 0.0


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.parametrize(("shape", "kernel", "options"), CASES, ids=IDS)
def test_col2im_matches_torch_fold(xp, shape, kernel, options):
    x = torch.zeros(shape, dtype=torch.float64)
    n_cols = torch.nn.functional.unfold(x, kernel, **options).shape
    cols = np.random.default_rng(1).standard_normal(tuple(n_cols))
    image = col2im(to_xp(cols, xp), shape[2:], kernel, **options)
    expected = torch.nn.functional.fold(torch.tensor(cols), shape[2:], kernel, **options)
    assert relative_error(to_np(image), expected.numpy()) <= 1e-12


@pytest.mark.parametrize(
    "padding", [0, 1, (1, 2), ((0, 2), (1, 0)), "same", "valid"], ids=lambda p: repr(p)
)
@pytest.mark.parametrize("stride", [1, 2, (3, 1)], ids=lambda s: f"stride{s}")
def test_col2im_is_the_adjoint_of_im2col(xp, padding, stride):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: the identity backprop relies on
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = to_np(im2col(to_xp(x, xp), (3, 2), stride=stride, padding=padding, dilation=(1, 2)))
    c = rng.standard_normal(cols.shape)
    back = to_np(
        col2im(to_xp(c, xp), (7, 6), (3, 2), stride=stride, padding=padding, dilation=(1, 2))
    )
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


def test_im2col_by_hand(xp):
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    cols = to_np(im2col(to_xp(x, xp), 2, padding=((0, 1), (0, 0)), stride=(2, 1)))
    # padded rows: [1 2 3] [4 5 6] [7 8 9] [0 0 0]; windows start at rows 0 and 2
    expected = np.array([[1, 2, 7, 8], [2, 3, 8, 9], [4, 5, 0, 0], [5, 6, 0, 0]], float)
    np.testing.assert_array_equal(cols[0], expected)


def test_col2im_counts_overlaps(xp):
    ones = np.ones((1, 9, 9))  # 3x3 kernel over a 5x5 image, stride 1, valid: 9 windows
    counts = to_np(col2im(to_xp(ones, xp), 5, 3))[0, 0]
    expected = np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]).astype(float)
    np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_puts_the_odd_pixel_last(xp, stride):
    x = np.random.default_rng(3).standard_normal((1, 1, 8, 7))
    cols = to_np(im2col(to_xp(x, xp), 4, stride=stride, padding="same"))
    left, right, top, bottom = explicit_pads("same", (8, 7), (4, 4), pair(stride), (1, 1))
    assert bottom - top in (0, 1)
    assert right - left in (0, 1)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    expected = to_np(im2col(to_xp(padded, xp), 4, stride=stride))
    np.testing.assert_array_equal(cols, expected)
    assert cols.shape[2] == -(-8 // stride) * -(-7 // stride)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept(xp, dtype):
    x = to_xp(np.ones((1, 2, 4, 4)), xp, dtype)
    cols = im2col(x, 2, padding=1)
    assert cols.dtype == x.dtype
    assert col2im(cols, 4, 2, padding=1).dtype == x.dtype

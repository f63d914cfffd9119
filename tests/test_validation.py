"""Bad arrays get a TypeError or ValueError that names them, before any work."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import to_xp

from xconv.functional import col2im, conv2d, conv2d_backward, im2col


def _arrays(xp, x_shape=(2, 4, 6, 6), w_shape=(6, 4, 3, 3), dtype="float64"):
    return to_xp(np.ones(x_shape), xp, dtype), to_xp(np.ones(w_shape), xp, dtype)


def test_non_arrays_are_named(xp):
    x, w = _arrays(xp)
    with pytest.raises(TypeError, match=r"`x` must be an array, got builtins\.list"):
        conv2d([[1.0]], w)
    with pytest.raises(TypeError, match=r"`weight` must be an array, got builtins\.float"):
        conv2d(x, 1.0)
    with pytest.raises(TypeError, match="`cols` must be an array"):
        col2im("cols", 4, 2)


def test_rank_is_checked(xp):
    x, w = _arrays(xp)
    # (unbatched (C, H, W) is taken, as PyTorch takes it; 2-D is not)
    with pytest.raises(
        ValueError, match=r"`x` must be a 4-D array \(N, C, H, W\) or an unbatched 3-D one"
    ):
        conv2d(x[0, 0, ...], w)
    with pytest.raises(ValueError, match=r"`weight` must be a 4-D array"):
        conv2d(x, w[0, ...])
    with pytest.raises(ValueError, match=r"`x` must be a 4-D array"):
        im2col(x[0, ...], 3)


def test_channel_mismatch_and_groups(xp):
    x, w = _arrays(xp, w_shape=(6, 3, 3, 3))
    with pytest.raises(ValueError, match=r"expects 3 input channels .* has 4"):
        conv2d(x, w)
    x, w = _arrays(xp, w_shape=(6, 2, 3, 3))
    with pytest.raises(ValueError, match=r"`x` has 4 channels, not divisible by `groups` \(=3\)"):
        conv2d(x, w, groups=3)
    x, w = _arrays(xp, w_shape=(5, 2, 3, 3))
    with pytest.raises(
        ValueError, match=r"`weight` has 5 filters, not divisible by `groups` \(=2\)"
    ):
        conv2d(x, w, groups=2)
    with pytest.raises(ValueError, match="`groups` must be a positive integer, got 0"):
        conv2d(x, w, groups=0)


def test_bias_shape(xp):
    x, w = _arrays(xp)
    with pytest.raises(
        ValueError, match=r"`bias` must have shape \(6,\) \(one value per filter\), got \(5,\)"
    ):
        conv2d(x, w, to_xp(np.ones(5), xp))


def test_dtypes(xp):
    _, w = _arrays(xp)
    with pytest.raises(TypeError, match=r"`x` must have a real floating dtype, got .*int"):
        conv2d(to_xp(np.ones((1, 4, 6, 6), dtype=np.int64), xp), w)
    x32, _ = _arrays(xp, dtype="float32")
    with pytest.raises(
        TypeError, match=r"arrays of different dtypes: `x` is .*float32.*`weight` is .*float64"
    ):
        conv2d(x32, w)


def test_mixed_libraries_are_refused(xp):
    x, _ = _arrays(xp)
    other = np.ones((6, 4, 3, 3)) if "numpy" not in xp.__name__ else None
    if other is None:
        pytest.importorskip("array_api_strict", reason="needs a second array library")
        import array_api_strict

        other = array_api_strict.ones((6, 4, 3, 3), dtype=array_api_strict.float64)
    with pytest.raises(
        TypeError, match=r"arrays from different libraries: `x` is .*, `weight` is"
    ):
        conv2d(x, other)


def test_options_are_named(xp):
    x, w = _arrays(xp)
    with pytest.raises(
        ValueError, match="`stride` must be a positive integer or pair of them, got 0"
    ):
        conv2d(x, w, stride=0)
    with pytest.raises(
        ValueError, match=r"`dilation` must be a positive integer or pair of them, got \(1, 0\)"
    ):
        conv2d(x, w, dilation=(1, 0))
    with pytest.raises(ValueError, match=r"`padding` must be .*, got 'full'"):
        conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="kernel spans 9 pixels along the height"):
        conv2d(x, w, dilation=4)


def test_backward_checks_grad_output(xp):
    x, w = _arrays(xp)
    go = to_xp(np.ones((2, 6, 4, 4)), xp)
    with pytest.raises(ValueError, match=r"`grad_output` must have shape \(2, 6, 6, 6\)"):
        conv2d_backward(go, x, w, padding=1)
    with pytest.raises(TypeError, match="`bias` must be True or False"):
        conv2d_backward(go, x, w, bias=None)


def test_col2im_checks_the_number_of_columns(xp):
    cols = to_xp(np.ones((1, 8, 9)), xp)
    with pytest.raises(ValueError, match="`cols` must have C \\* kh \\* kw rows, a multiple of 9"):
        col2im(cols, 5, 3)
    with pytest.raises(ValueError, match=r"`cols` must have 4 \* 4 = 16 columns"):
        col2im(to_xp(np.ones((1, 4, 9)), xp), 5, 2)


def test_devices_must_agree():
    torch = pytest.importorskip("torch", reason="torch gives a second device (meta) on a CPU")
    x = torch.ones((1, 2, 4, 4), dtype=torch.float64)
    w = torch.ones((3, 2, 3, 3), dtype=torch.float64, device="meta")
    with pytest.raises(
        ValueError,
        match=r"arrays on different devices: `x` is on device\(type='cpu'\), "
        r"`weight` on device\(type='meta'\)",
    ):
        conv2d(x, w)

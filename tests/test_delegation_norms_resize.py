"""Delegation of layer/group norm, adaptive pooling and interpolation (issue 25, item 2).

Each op and its backward runs both ways, delegated (the default) and with
``xconv.config.delegate`` off (xconv's generic code), over several geometries (odd
sizes, non-contiguous inputs), and the two must agree: values and every gradient, to
rounding in float64 (`assert_close`'s float64 tolerances), within ``FLOAT32`` in
float32. On torch the delegation is proved by counting the ATen ops PyTorch's kernels
are (``torch.ops.aten.native_layer_norm``, ``upsample_bilinear2d``, ...): each must run
once per delegated call and never with the switch off. JAX has no kernel of its own
for these ops, and every other backend none at all: there both runs are the same code
and must agree exactly, with no torch op counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
import pytest
from _torch_reference import spy_aten, strided
from helpers import to_xp

import xconv
import xconv.functional as xf
from xconv.testing import assert_close, to_numpy

FLOAT32 = {"rtol": 1e-4, "atol": 1e-5}
DTYPES = ["float64", "float32"]

# every ATen op the delegated kernels call
NORM_OPS = (
    "native_layer_norm",
    "native_layer_norm_backward",
    "native_group_norm",
    "native_group_norm_backward",
)
ADAPTIVE_OPS = (
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
)
_RESIZE = (
    "upsample_nearest1d",
    "upsample_nearest2d",
    "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d",
    "upsample_linear1d",
    "upsample_bilinear2d",
)
RESIZE_OPS = _RESIZE + tuple(f"{name}_backward" for name in _RESIZE)

# (x shape, normalized_shape, weight, bias, eps)
LAYER_CASES = [
    ((4, 6), 6, True, True, 1e-5),
    ((2, 3, 5), (3, 5), True, False, 1e-5),
    ((3, 5, 7), 7, False, True, 1e-3),
    ((7,), 7, True, True, 0.1),
    ((2, 3, 4, 5), [3, 4, 5], False, False, 1e-5),
]
# (x shape, num_groups, weight, bias, eps)
GROUP_CASES = [
    ((2, 6, 5, 3), 3, True, True, 1e-5),
    ((3, 4, 7), 2, False, True, 1e-5),
    ((4, 6), 3, True, False, 1e-3),
    ((2, 4, 3, 5, 3), 1, False, False, 1e-5),
    ((1, 9, 3, 3), 9, True, True, 0.1),
]
# (x shape, output_size)
ADAPTIVE_CASES = [
    ((2, 3, 7, 5), (3, 2)),
    ((3, 9, 4), (4, None)),  # unbatched; None keeps W
    ((1, 2, 5, 5), 1),
    ((2, 2, 6, 7), (4, 5)),  # overlapping windows
    ((2, 1, 3, 4), (5, 6)),  # larger than the input
]
# (x shape, interpolate's keyword arguments, whether torch's kernel takes it)
RESIZE_CASES = [
    ((2, 3, 5, 6), {"size": (7, 4)}, True),
    ((2, 3, 5, 7), {"scale_factor": 1.7}, True),
    ((1, 2, 5, 6), {"scale_factor": (2.5, 0.5), "mode": "nearest-exact"}, True),
    ((2, 2, 5, 6), {"size": (9, 4), "mode": "bilinear", "align_corners": True}, True),
    ((2, 2, 5, 6), {"scale_factor": 1.5, "mode": "bilinear"}, True),
    (
        (1, 3, 7, 5),
        {"scale_factor": 0.6, "mode": "bilinear", "recompute_scale_factor": True},
        True,
    ),
    ((2, 3, 7, 5), {"size": (1, 3), "mode": "bilinear", "align_corners": True}, True),
    ((2, 3, 7), {"size": 11, "mode": "linear"}, True),
    ((2, 3, 7), {"scale_factor": 2.5, "mode": "linear", "align_corners": True}, True),
    ((2, 3, 7), {"scale_factor": 2.5}, True),
    ((2, 3, 7), {"size": 3, "mode": "nearest-exact"}, True),
    # "nearest" by a factor that keeps (1.1) or doubles (2.1) an axis: PyTorch's 2-D
    # kernel copies or halves there, and so does xconv's code
    ((2, 3, 5, 5), {"scale_factor": 1.1}, True),
    ((2, 3, 5, 6), {"scale_factor": (2.1, 1.5)}, True),
]


def _is_torch(xp: Any) -> bool:
    return array_api_compat.is_torch_namespace(xp)


def _both(xp: Any, calls: list[str], run: Callable[[], Any]) -> tuple[Any, Any, list[str]]:
    """`run`'s results delegated and generic, and the ATen ops the delegated run called;
    none may run with the switch off."""
    delegated = run()
    seen = list(calls)
    with xconv.config.using(delegate=False):
        generic = run()
    assert calls == seen, "a torch kernel ran with xconv.config.delegate off"
    return delegated, generic, seen


def _agree(xp: Any, delegated: Any, generic: Any, dtype: str) -> None:
    pairs = zip(delegated, generic, strict=True) if isinstance(generic, tuple) else []
    for d, g in pairs or [(delegated, generic)]:
        if g is None:
            assert d is None
            continue
        assert d.dtype == g.dtype
        assert tuple(d.shape) == tuple(g.shape)
        assert array_api_compat.device(d) == array_api_compat.device(g)
        if _is_torch(xp) and xp.isdtype(g.dtype, "real floating"):
            assert_close(d, g, **(FLOAT32 if dtype == "float32" else {}))
        else:  # indices, or the same code both ways
            np.testing.assert_array_equal(to_numpy(d), to_numpy(g))


def _array(xp: Any, shape: tuple[int, ...], dtype: str, seed: int, *, contiguous: bool) -> Any:
    a = np.random.default_rng(seed).standard_normal(shape) * 2 + 0.5
    return to_xp(a, xp, dtype) if contiguous else strided(a.astype(dtype), xp)


def _expect(xp: Any, seen: list[str], expected: list[str]) -> None:
    assert seen == (expected if _is_torch(xp) else [])


# -- layer and group norm -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "normalized", "with_weight", "with_bias", "eps"), LAYER_CASES)
def test_layer_norm_delegated_agrees(
    xp, shape, normalized, with_weight, with_bias, eps, contiguous, dtype, monkeypatch
):
    nshape = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    x = _array(xp, shape, dtype, 0, contiguous=contiguous)
    w = _array(xp, nshape, dtype, 1, contiguous=contiguous) if with_weight else None
    b = _array(xp, nshape, dtype, 2, contiguous=contiguous) if with_bias else None
    g = _array(xp, shape, dtype, 3, contiguous=contiguous)
    calls = spy_aten(xp, monkeypatch, NORM_OPS)

    delegated, generic, seen = _both(xp, calls, lambda: xf.layer_norm(x, normalized, w, b, eps))
    _expect(xp, seen, ["native_layer_norm"])
    _agree(xp, delegated, generic, dtype)

    calls.clear()
    delegated, generic, seen = _both(
        xp,
        calls,
        lambda: xf.layer_norm_backward(g, x, normalized, w, bias=with_bias, eps=eps),
    )
    _expect(xp, seen, ["native_layer_norm", "native_layer_norm_backward"])
    _agree(xp, delegated, generic, dtype)
    assert (delegated[1] is None) == (not with_weight)
    assert (delegated[2] is None) == (not with_bias)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "groups", "with_weight", "with_bias", "eps"), GROUP_CASES)
def test_group_norm_delegated_agrees(
    xp, shape, groups, with_weight, with_bias, eps, contiguous, dtype, monkeypatch
):
    channels = (shape[1],)
    x = _array(xp, shape, dtype, 0, contiguous=contiguous)
    w = _array(xp, channels, dtype, 1, contiguous=contiguous) if with_weight else None
    b = _array(xp, channels, dtype, 2, contiguous=contiguous) if with_bias else None
    g = _array(xp, shape, dtype, 3, contiguous=contiguous)
    calls = spy_aten(xp, monkeypatch, NORM_OPS)

    delegated, generic, seen = _both(xp, calls, lambda: xf.group_norm(x, groups, w, b, eps))
    _expect(xp, seen, ["native_group_norm"])
    _agree(xp, delegated, generic, dtype)

    calls.clear()
    delegated, generic, seen = _both(
        xp, calls, lambda: xf.group_norm_backward(g, x, groups, w, bias=with_bias, eps=eps)
    )
    _expect(xp, seen, ["native_group_norm", "native_group_norm_backward"])
    _agree(xp, delegated, generic, dtype)
    assert (delegated[1] is None) == (not with_weight)
    assert (delegated[2] is None) == (not with_bias)


def test_norms_of_mixed_dtypes_fail_as_in_the_generic_code(xp, monkeypatch):
    """A float32 weight or gradient with a float64 input: the same error both ways,
    raised before any kernel."""
    x = _array(xp, (2, 4, 3), "float64", 0, contiguous=True)
    w = _array(xp, (3,), "float32", 1, contiguous=True)
    wc = _array(xp, (4,), "float32", 1, contiguous=True)
    g = _array(xp, (2, 4, 3), "float32", 2, contiguous=True)
    calls = spy_aten(xp, monkeypatch, NORM_OPS)
    for run in (
        lambda: xf.layer_norm(x, 3, w, None),
        lambda: xf.layer_norm_backward(g, x, 3, None, bias=True),
        lambda: xf.group_norm(x, 2, wc, wc),
        lambda: xf.group_norm_backward(g, x, 2, None),
    ):
        errors = []
        for delegate in (True, False):
            with xconv.config.using(delegate=delegate), pytest.raises(TypeError) as error:
                run()
            errors.append(str(error.value))
        assert errors[0] == errors[1]
    assert calls == []


def test_groups_of_one_value_run_the_generic_code(xp, monkeypatch):
    """Variance 0: xconv's code gives exactly the bias, torch's (float32) a few ulps
    times 1 / sqrt(eps) off it."""
    x = _array(xp, (4, 6, 1), "float32", 0, contiguous=True)
    b = _array(xp, (6,), "float32", 1, contiguous=True)
    g = _array(xp, (4, 6, 1), "float32", 2, contiguous=True)
    calls = spy_aten(xp, monkeypatch, NORM_OPS)
    for run in (
        lambda: xf.group_norm(x, 6, None, b, 1e-3),
        lambda: xf.group_norm_backward(g, x, 6, b, bias=True),
        lambda: xf.layer_norm(x, 1, None, b[:1]),
        lambda: xf.layer_norm_backward(g, x, 1, b[:1], bias=True),
    ):
        delegated, generic, seen = _both(xp, calls, run)
        assert seen == []
        _agree(xp, delegated, generic, "float32")


def test_argument_errors_come_before_any_kernel(xp, monkeypatch):
    x = _array(xp, (2, 6, 3), "float64", 0, contiguous=True)
    calls = spy_aten(xp, monkeypatch, NORM_OPS + ADAPTIVE_OPS + RESIZE_OPS)
    for delegate in (True, False):
        with xconv.config.using(delegate=delegate):
            with pytest.raises(ValueError, match="divisible"):
                xf.group_norm(x, 4)
            with pytest.raises(ValueError, match="normalized_shape"):
                xf.layer_norm(x, 4)
            with pytest.raises(ValueError, match=r"eps|negative"):
                xf.layer_norm(x, 3, eps=-1.0)
            with pytest.raises(ValueError, match="grad_output"):
                xf.interpolate_backward(x, x, size=5)
            with pytest.raises(ValueError, match="align_corners"):
                xf.interpolate(x, size=5, align_corners=True)
    assert calls == []


# -- adaptive pooling -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "output_size"), ADAPTIVE_CASES)
def test_adaptive_avg_pool_delegated_agrees(
    xp, shape, output_size, contiguous, dtype, monkeypatch
):
    x = _array(xp, shape, dtype, 0, contiguous=contiguous)
    out_shape = tuple(xf.adaptive_avg_pool2d(x, output_size).shape)
    g = _array(xp, out_shape, dtype, 1, contiguous=contiguous)
    calls = spy_aten(xp, monkeypatch, ADAPTIVE_OPS)

    delegated, generic, seen = _both(xp, calls, lambda: xf.adaptive_avg_pool2d(x, output_size))
    _expect(xp, seen, ["_adaptive_avg_pool2d"])
    _agree(xp, delegated, generic, dtype)

    calls.clear()
    delegated, generic, seen = _both(
        xp, calls, lambda: xf.adaptive_avg_pool2d_backward(g, x, output_size)
    )
    _expect(xp, seen, ["_adaptive_avg_pool2d_backward"])
    _agree(xp, delegated, generic, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "output_size"), ADAPTIVE_CASES)
def test_adaptive_max_pool_delegated_agrees(
    xp, shape, output_size, contiguous, dtype, monkeypatch
):
    x = _array(xp, shape, dtype, 0, contiguous=contiguous)
    out_shape = tuple(xf.adaptive_max_pool2d(x, output_size).shape)
    g = _array(xp, out_shape, dtype, 1, contiguous=contiguous)
    calls = spy_aten(xp, monkeypatch, ADAPTIVE_OPS)

    for indices in (False, True):
        calls.clear()
        delegated, generic, seen = _both(
            xp, calls, lambda i=indices: xf.adaptive_max_pool2d(x, output_size, return_indices=i)
        )
        _expect(xp, seen, ["adaptive_max_pool2d"])
        _agree(xp, delegated, generic, dtype)

    calls.clear()
    delegated, generic, seen = _both(
        xp, calls, lambda: xf.adaptive_max_pool2d_backward(g, x, output_size)
    )
    _expect(xp, seen, ["adaptive_max_pool2d", "adaptive_max_pool2d_backward"])
    _agree(xp, delegated, generic, dtype)


def test_adaptive_max_pool_ties_keep_the_first_maximum(xp, monkeypatch):
    """Equal values in overlapping windows: both ways the first in row-major order."""
    x = to_xp(np.tile(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), (1, 1, 5, 1)), xp, "float64")
    g = to_xp(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), xp, "float64")
    calls = spy_aten(xp, monkeypatch, ADAPTIVE_OPS)
    delegated, generic, _ = _both(xp, calls, lambda: xf.adaptive_max_pool2d(x, 3, True))
    _agree(xp, delegated, generic, "float64")
    delegated, generic, _ = _both(xp, calls, lambda: xf.adaptive_max_pool2d_backward(g, x, 3))
    np.testing.assert_array_equal(to_numpy(delegated), to_numpy(generic))


# -- interpolate ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("shape", "options", "taken"), RESIZE_CASES)
def test_interpolate_delegated_agrees(xp, shape, options, taken, contiguous, dtype, monkeypatch):
    x = _array(xp, shape, dtype, 0, contiguous=contiguous)
    out_shape = tuple(xf.interpolate(x, **options).shape)
    g = _array(xp, out_shape, dtype, 1, contiguous=contiguous)
    calls = spy_aten(xp, monkeypatch, RESIZE_OPS)

    delegated, generic, seen = _both(xp, calls, lambda: xf.interpolate(x, **options))
    assert len(seen) == (1 if taken and _is_torch(xp) else 0)
    assert not any(name.endswith("_backward") for name in seen)
    _agree(xp, delegated, generic, dtype)
    if not taken:  # xconv's code both ways
        np.testing.assert_array_equal(to_numpy(delegated), to_numpy(generic))

    calls.clear()
    delegated, generic, seen = _both(xp, calls, lambda: xf.interpolate_backward(g, x, **options))
    assert len(seen) == (1 if taken and _is_torch(xp) else 0)
    assert all(name.endswith("_backward") for name in seen)
    _agree(xp, delegated, generic, dtype)


@pytest.mark.parametrize("factor", [1.1, 2.1])
def test_1d_nearest_gradient_by_a_factor_keeping_or_doubling_the_axis_is_xconvs(
    xp, factor, monkeypatch
):
    # torch's 1-D nearest backward is not the gradient of its forward there (see
    # tests/test_resize.py): the forward is delegated, the backward runs xconv's code
    x = _array(xp, (2, 3, 5), "float64", 0, contiguous=True)
    out_shape = tuple(xf.interpolate(x, scale_factor=factor).shape)
    g = _array(xp, out_shape, "float64", 1, contiguous=True)
    calls = spy_aten(xp, monkeypatch, RESIZE_OPS)
    delegated, generic, seen = _both(xp, calls, lambda: xf.interpolate(x, scale_factor=factor))
    _expect(xp, seen, ["upsample_nearest1d"])
    _agree(xp, delegated, generic, "float64")
    calls.clear()
    delegated, generic, seen = _both(
        xp, calls, lambda: xf.interpolate_backward(g, x, scale_factor=factor)
    )
    assert seen == []
    np.testing.assert_array_equal(to_numpy(delegated), to_numpy(generic))


def _every_second(a: np.ndarray, xp: Any) -> Any:
    """A 1-D view of every second element of a wider array (`strided` keeps 1-D
    arrays contiguous)."""
    wide = np.zeros(2 * a.shape[0])
    wide[::2] = a
    return to_xp(wide, xp)[::2]


@pytest.mark.parametrize("op", ["layer_norm", "group_norm"])
def test_a_strided_weight_and_bias_reach_torch_dense(xp, op):
    # torch's native kernels read a strided weight or bias as if it were dense: the
    # delegated group norm gave another element's values before they were made dense
    rng = np.random.default_rng(0)
    x = to_xp(2 * rng.standard_normal((3, 4, 5)) + 0.5, xp)
    g = to_xp(rng.standard_normal((3, 4, 5)), xp)
    size = 5 if op == "layer_norm" else 4
    w, b = (_every_second(rng.standard_normal(size), xp) for _ in range(2))
    arg = 5 if op == "layer_norm" else 2
    forward, backward = getattr(xf, op), getattr(xf, f"{op}_backward")
    delegated = forward(x, arg, w, b)
    grads = backward(g, x, arg, w, bias=True)
    with xconv.config.using(delegate=False):
        generic = forward(x, arg, w, b)
        generic_grads = backward(g, x, arg, w, bias=True)
    _agree(xp, delegated, generic, "float64")
    _agree(xp, grads, generic_grads, "float64")

"""Fuzzing with Hypothesis: random valid inputs match a reference (PyTorch float64 or
direct loops), in float32 and float64, empty batches included; random invalid inputs
raise only TypeError or ValueError, never IndexError, a reshape error or a crash.

CI draws `EXAMPLES` reproducible examples per test; ``nox -s fuzz`` draws many more
(see tests/_hypothesis.py).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _hypothesis import fuzz_settings
from helpers import explicit_pads, pair, requires_torch_reason, to_np, to_xp, torch
from hypothesis import given
from hypothesis import strategies as st

import xconv.functional as xf

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)

TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
small = st.integers(1, 3)
dtypes = st.sampled_from(["float32", "float64"])


def _close(actual, expected, dtype):
    """Agreement to the dtype's precision, relative to the largest expected value."""
    actual = to_np(actual)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert str(actual.dtype) == dtype
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale)


def _cast(a, xp, dtype):
    return to_xp(a.astype(dtype), xp)


# -- valid inputs against references ------------------------------------------------------


@st.composite
def convolutions(draw):
    """A valid conv2d: any padding form, groups, dilation, stride, an empty batch sometimes."""
    groups = draw(st.sampled_from([1, 1, 2]))
    cg, fg = draw(small), draw(st.integers(1, 2))
    kh, kw = draw(small), draw(small)
    stride = (draw(small), draw(small))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(
            st.sampled_from(["same", "valid"]),
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.tuples(
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
                st.tuples(st.integers(0, 2), st.integers(0, 2)),
            ),
        )
    )
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    h, w = draw(st.integers(span_h, span_h + 4)), draw(st.integers(span_w, span_w + 4))
    return {
        "x": (draw(st.integers(0, 2)), cg * groups, h, w),
        "weight": (fg * groups, cg, kh, kw),
        "bias": draw(st.booleans()),
        "options": {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups},
        "dtype": draw(dtypes),
        "seed": draw(st.integers(0, 2**16)),
    }


def test_conv2d_and_its_gradients_match_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=convolutions())
    def check(case):
        rng, dtype, options = np.random.default_rng(case["seed"]), case["dtype"], case["options"]
        x, w = rng.standard_normal(case["x"]), rng.standard_normal(case["weight"])
        b = rng.standard_normal(case["weight"][0]) if case["bias"] else None
        # the reference sees the same (rounded) numbers, in float64
        x, w = x.astype(dtype).astype(np.float64), w.astype(dtype).astype(np.float64)
        b = None if b is None else b.astype(dtype).astype(np.float64)
        s, d = pair(options["stride"]), pair(options["dilation"])
        pads = explicit_pads(options["padding"], x.shape[2:], w.shape[2:], s, d)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = None if b is None else torch.tensor(b, requires_grad=True)
        expected = torch.nn.functional.conv2d(
            torch.nn.functional.pad(tx, pads),
            tw,
            tb,
            stride=s,
            dilation=d,
            groups=options["groups"],
        )
        grad_output = rng.standard_normal(tuple(expected.shape)).astype(dtype).astype(np.float64)
        expected.backward(torch.tensor(grad_output))

        out = xf.conv2d(
            _cast(x, xp, dtype),
            _cast(w, xp, dtype),
            None if b is None else _cast(b, xp, dtype),
            **options,
        )
        _close(out, expected.detach().numpy(), dtype)
        gx, gw, gb = xf.conv2d_backward(
            _cast(grad_output, xp, dtype),
            _cast(x, xp, dtype),
            _cast(w, xp, dtype),
            bias=b is not None,
            **options,
        )
        _close(gx, tx.grad.numpy(), dtype)
        _close(gw, tw.grad.numpy(), dtype)
        if b is None:
            assert gb is None
        else:
            _close(gb, tb.grad.numpy(), dtype)

    check()


@st.composite
def transposed(draw):
    """A valid conv_transpose2d with symmetric padding (PyTorch's only kind)."""
    groups = draw(st.sampled_from([1, 1, 2]))
    cg, fg = draw(small), draw(st.integers(1, 2))
    kh, kw = draw(small), draw(small)
    stride = (draw(small), draw(small))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # below the stride (PyTorch also allows below the dilation: see the xfail test below)
    output_padding = (draw(st.integers(0, stride[0] - 1)), draw(st.integers(0, stride[1] - 1)))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    # padding may remove at most what the transposed convolution adds
    limits = [
        ((size - 1) * s + d * (k - 1) + op) // 2
        for size, s, d, k, op in zip(
            (h, w), stride, dilation, (kh, kw), output_padding, strict=True
        )
    ]
    padding = (draw(st.integers(0, min(2, limits[0]))), draw(st.integers(0, min(2, limits[1]))))
    return {
        "x": (draw(st.integers(0, 2)), cg * groups, h, w),
        "weight": (cg * groups, fg, kh, kw),
        "bias": draw(st.booleans()),
        "options": {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "dilation": dilation,
            "groups": groups,
        },
        "dtype": draw(dtypes),
        "seed": draw(st.integers(0, 2**16)),
    }


def test_conv_transpose2d_and_its_gradients_match_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=transposed())
    def check(case):
        rng, dtype, options = np.random.default_rng(case["seed"]), case["dtype"], case["options"]
        x = rng.standard_normal(case["x"]).astype(dtype).astype(np.float64)
        w = rng.standard_normal(case["weight"]).astype(dtype).astype(np.float64)
        n_out = case["weight"][1] * options["groups"]
        b = rng.standard_normal(n_out).astype(dtype).astype(np.float64) if case["bias"] else None
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = None if b is None else torch.tensor(b, requires_grad=True)
        expected = torch.nn.functional.conv_transpose2d(tx, tw, tb, **options)
        grad_output = rng.standard_normal(tuple(expected.shape)).astype(dtype).astype(np.float64)
        expected.backward(torch.tensor(grad_output))

        bias = None if b is None else _cast(b, xp, dtype)
        out = xf.conv_transpose2d(_cast(x, xp, dtype), _cast(w, xp, dtype), bias, **options)
        _close(out, expected.detach().numpy(), dtype)
        gx, gw, gb = xf.conv_transpose2d_backward(
            _cast(grad_output, xp, dtype),
            _cast(x, xp, dtype),
            _cast(w, xp, dtype),
            bias=b is not None,
            **options,
        )
        _close(gx, tx.grad.numpy(), dtype)
        _close(gw, tw.grad.numpy(), dtype)
        if b is not None:
            _close(gb, tb.grad.numpy(), dtype)

    check()


@pytest.mark.parametrize(
    "options",
    [
        {"output_padding": (0, 1), "dilation": (1, 2)},
        {"output_padding": (2, 1), "dilation": (3, 2), "stride": (2, 1), "padding": (1, 1)},
    ],
)
def test_output_padding_below_the_dilation_but_not_the_stride(xp, options):
    # found by the fuzzing: PyTorch allows output_padding >= stride while < dilation
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 2, 3, 2)), rng.standard_normal((2, 3, 2, 3))
    grad = rng.standard_normal(
        torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), **options).shape
    )
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    expected = torch.nn.functional.conv_transpose2d(tx, tw, **options)
    expected.backward(torch.tensor(grad))
    out = xf.conv_transpose2d(to_xp(x, xp), to_xp(w, xp), **options)
    gx, gw, _ = xf.conv_transpose2d_backward(
        to_xp(grad, xp), to_xp(x, xp), to_xp(w, xp), **options
    )
    _close(out, expected.detach().numpy(), "float64")
    _close(gx, tx.grad.numpy(), "float64")
    _close(gw, tw.grad.numpy(), "float64")


def loop_pool(x, grad_output, kind, kernel, stride, pads):
    """Pooling and its gradient by definition, one window at a time; `pads` as
    (left, right, top, bottom). Padding never counts: max ignores it, avg divides by
    the real pixels of each window."""
    (kh, kw), (sh, sw) = kernel, stride
    left, right, top, bottom = pads
    n, c, h, w = x.shape
    oh, ow = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    out, grad = np.zeros((n, c, oh, ow)), np.zeros_like(x)
    for ni, ci, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        rows = range(max(i * sh - top, 0), min(i * sh - top + kh, h))
        cols = range(max(j * sw - left, 0), min(j * sw - left + kw, w))
        window = [(r, q) for r in rows for q in cols]
        g = 0.0 if grad_output is None else grad_output[ni, ci, i, j]
        if kind == "max":
            r, q = max(window, key=lambda p: x[ni, ci, p[0], p[1]])
            out[ni, ci, i, j] = x[ni, ci, r, q]
            grad[ni, ci, r, q] += g
        else:
            out[ni, ci, i, j] = np.mean([x[ni, ci, r, q] for r, q in window])
            for r, q in window:
                grad[ni, ci, r, q] += g / len(window)
    return out, grad


@st.composite
def poolings(draw):
    """A valid pooling: every window keeps a real pixel (padding < kernel on each side)."""
    kernel = (draw(small), draw(small))
    stride = draw(st.one_of(st.none(), st.tuples(small, small)))
    padding = draw(
        st.one_of(
            st.sampled_from(["same", "valid"]),
            st.tuples(
                st.tuples(st.integers(0, kernel[0] - 1), st.integers(0, kernel[0] - 1)),
                st.tuples(st.integers(0, kernel[1] - 1), st.integers(0, kernel[1] - 1)),
            ),
        )
    )
    h, w = draw(st.integers(kernel[0], kernel[0] + 4)), draw(st.integers(kernel[1], kernel[1] + 4))
    return {
        "x": (draw(st.integers(0, 2)), draw(small), h, w),
        "kind": draw(st.sampled_from(["max", "avg"])),
        "options": {"kernel_size": kernel, "stride": stride, "padding": padding},
        "dtype": draw(dtypes),
        "seed": draw(st.integers(0, 2**16)),
    }


def test_pooling_and_its_gradient_match_loops(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=poolings())
    def check(case):
        rng, dtype, options = np.random.default_rng(case["seed"]), case["dtype"], case["options"]
        # distinct values (a permutation): max pooling has no ties to break
        x = rng.permutation(int(np.prod(case["x"]))).reshape(case["x"]).astype(np.float64)
        kernel = options["kernel_size"]
        stride = options["stride"] or kernel
        pads = explicit_pads(options["padding"], case["x"][2:], kernel, stride, (1, 1))
        expected, _ = loop_pool(x, None, case["kind"], kernel, stride, pads)
        grad_output = rng.standard_normal(expected.shape).astype(dtype).astype(np.float64)
        _, expected_grad = loop_pool(x, grad_output, case["kind"], kernel, stride, pads)

        forward = getattr(xf, f"{case['kind']}_pool2d")
        backward = getattr(xf, f"{case['kind']}_pool2d_backward")
        # (the loops average real pixels only: count_include_pad=False)
        options = {**options, **({"count_include_pad": False} if case["kind"] == "avg" else {})}
        _close(forward(_cast(x, xp, dtype), **options), expected, dtype)
        grad = backward(_cast(grad_output, xp, dtype), _cast(x, xp, dtype), **options)
        _close(grad, expected_grad, dtype)

    check()


def test_im2col_and_col2im_match_unfold_and_fold(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=convolutions(), padding=st.tuples(st.integers(0, 2), st.integers(0, 2)))
    def check(case, padding):
        dtype = case["dtype"]
        options = {"stride": case["options"]["stride"], "dilation": case["options"]["dilation"]}
        options["padding"] = padding  # unfold's only kind
        kernel = case["weight"][2:]
        x = np.random.default_rng(case["seed"]).standard_normal(case["x"]).astype(dtype)
        cols = xf.im2col(to_xp(x, xp), kernel, **options)
        expected = torch.nn.functional.unfold(
            torch.tensor(x, dtype=torch.float64), kernel, **options
        )
        _close(cols, expected.numpy(), dtype)
        c = (
            np.random.default_rng(case["seed"] + 1)
            .standard_normal(tuple(expected.shape))
            .astype(dtype)
        )
        image = xf.col2im(to_xp(c, xp), case["x"][2:], kernel, **options)
        folded = torch.nn.functional.fold(
            torch.tensor(c, dtype=torch.float64), case["x"][2:], kernel, **options
        )
        _close(image, folded.numpy(), dtype)

    check()


# -- any input: only TypeError or ValueError --------------------------------------------

dims = st.integers(0, 4)
shapes = st.lists(dims, min_size=0, max_size=5).map(tuple)
numbers = st.one_of(st.integers(-2, 4), st.floats(-1, 3), st.just(True), st.none())
int_or_pair = st.one_of(
    numbers,
    st.tuples(numbers, numbers),
    st.lists(st.integers(-1, 3), min_size=0, max_size=3),
    st.text(max_size=3),
)
paddings = st.one_of(
    int_or_pair,
    st.sampled_from(["same", "valid", "full", "SAME"]),
    st.tuples(st.tuples(numbers, numbers), st.tuples(numbers, numbers)),
    st.tuples(st.tuples(numbers, numbers), numbers),
)
any_dtypes = st.sampled_from(["float32", "float64", "float64", "int32", "bool"])


def _array(xp, shape, dtype, seed=0):
    return to_xp(np.random.default_rng(seed).standard_normal(shape).astype(dtype), xp)


@st.composite
def anything(draw):
    """Arrays of random rank, size and dtype, sometimes not arrays, with random options."""
    return {
        "x": draw(st.one_of(shapes, st.tuples(small, small, dims, dims))),
        "w": draw(st.one_of(shapes, st.tuples(small, small, small, small))),
        "grad": draw(shapes),
        "bias": draw(st.one_of(st.none(), shapes)),
        "dtypes": (draw(any_dtypes), draw(any_dtypes), draw(any_dtypes)),
        "not_array": draw(st.sampled_from([None, "x", "w"])),
        "op": draw(
            st.sampled_from(
                [
                    "conv2d",
                    "conv2d_backward",
                    "conv_transpose2d",
                    "conv_transpose2d_backward",
                    "max_pool2d",
                    "avg_pool2d",
                    "max_pool2d_backward",
                    "avg_pool2d_backward",
                    "im2col",
                    "col2im",
                ]
            )
        ),
        "stride": draw(int_or_pair),
        "padding": draw(paddings),
        "dilation": draw(int_or_pair),
        "output_padding": draw(int_or_pair),
        "groups": draw(numbers),
        "kernel": draw(int_or_pair),
        "size": draw(int_or_pair),
    }


def _call(xp, case):
    x_dtype, w_dtype, g_dtype = case["dtypes"]
    x = _array(xp, case["x"], x_dtype)
    w = _array(xp, case["w"], w_dtype, 1)
    grad = _array(xp, case["grad"], g_dtype, 2)
    bias = None if case["bias"] is None else _array(xp, case["bias"], w_dtype, 3)
    if case["not_array"] == "x":
        x = np.asarray(x).tolist() if case["op"] != "col2im" else "cols"
    elif case["not_array"] == "w":
        w = 1.0
    conv = {k: case[k] for k in ("stride", "padding", "dilation")}
    op = case["op"]
    if op == "conv2d":
        return xf.conv2d(x, w, bias, groups=case["groups"], **conv)
    if op == "conv2d_backward":
        return xf.conv2d_backward(grad, x, w, groups=case["groups"], **conv)
    transposed = dict(conv, output_padding=case["output_padding"], groups=case["groups"])
    if op == "conv_transpose2d":
        return xf.conv_transpose2d(x, w, bias, **transposed)
    if op == "conv_transpose2d_backward":
        return xf.conv_transpose2d_backward(grad, x, w, **transposed)
    pool = {"stride": case["stride"], "padding": case["padding"]}
    if op in ("max_pool2d", "avg_pool2d"):
        return getattr(xf, op)(x, case["kernel"], **pool)
    if op.endswith("_backward"):
        return getattr(xf, op)(grad, x, case["kernel"], **pool)
    if op == "im2col":
        return xf.im2col(x, case["kernel"], **conv)
    return xf.col2im(x, case["size"], case["kernel"], **conv)


def test_any_input_gives_a_result_or_a_type_or_value_error(xp):
    @fuzz_settings()  # most inputs fail fast: the full count on every backend
    @given(case=anything())
    def check(case):
        try:
            result = _call(xp, case)
        except (TypeError, ValueError) as exc:
            message = str(exc)
        else:
            message = None
        if message is not None:
            assert message, "errors must say what is wrong"
            return
        # accepted: then the result is arrays of the input's library
        for array in result if isinstance(result, tuple) else (result,):
            assert array is None or to_np(array).ndim in (3, 4)

    check()

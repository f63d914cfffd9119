"""Fuzzing against PyTorch float64 autograd (issue 25, item 4): poolings with every
option (ceil_mode windows that start in the padding included), pointwise activations,
the regression and classification losses (class indices and probabilities, weights,
ignore_index, label smoothing), layer and group norm, adaptive pooling, interpolation and pad;
forward values and every gradient, on contiguous and (on NumPy and PyTorch)
non-contiguous inputs, unbatched and empty batches.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from _hypothesis import fuzz_settings
from helpers import requires_torch_reason, to_np, to_xp, torch
from hypothesis import given, reject
from hypothesis import strategies as st

import xconv.functional as xf

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)

TOLERANCE = 1e-10


def _close(actual, expected):
    actual = to_np(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert str(actual.dtype) == "float64"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE * scale)


def _views(xp):
    return array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_torch_namespace(xp)


def _array(a, xp, strided):
    """`a` in `xp`; a non-contiguous view (every second element of a wider array)."""
    if not strided or not a.ndim:
        return to_xp(a, xp)
    wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]))
    wide[..., ::2] = a
    view = to_xp(wide, xp)[..., ::2]
    return view


def _grad(fn, inputs, upstream):
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    out = fn(*tensors)
    grads = torch.autograd.grad(out, tensors, torch.tensor(upstream), allow_unused=True)
    return out, grads


def _case(draw, **fields):
    """A drawn case: `fields`, whether its arrays are non-contiguous views, and a seed."""
    return {**fields, "strided": draw(st.booleans()), "seed": draw(st.integers(0, 2**16))}


@st.composite
def poolings(draw):
    kind = draw(st.sampled_from(["max", "avg"]))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if kind == "max" else (1, 1)
    options = {"stride": stride, "padding": padding, "ceil_mode": draw(st.booleans())}
    if kind == "max":
        options["dilation"] = dilation
    else:
        options["count_include_pad"] = draw(st.booleans())
        options["divisor_override"] = draw(st.sampled_from([None, None, 1, 3]))
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    lead = draw(st.sampled_from([(2,), (0, 2), (1, 1), (2, 3)]))  # (2,): unbatched
    return _case(draw, kind=kind, kernel=kernel, options=options, x=lead + shape)


def test_pooling_matches_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=poolings())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        n = int(np.prod(case["x"]))
        x = rng.permutation(n).reshape(case["x"]).astype(np.float64)
        kernel, options = case["kernel"], case["options"]
        fn = getattr(torch.nn.functional, f"{case['kind']}_pool2d")
        dilation = options.get("dilation", (1, 1))
        for size, k, p, d in zip(x.shape[-2:], kernel, options["padding"], dilation, strict=True):
            # excluded: PyTorch's ceil_mode accepts a kernel wider than the padded input
            # (out 1) where xconv raises ValueError ("the kernel spans ... pixels"); see
            # the report of issue 25 item 4 (e.g. avg_pool2d, x (1, 1, 1, 2), kernel
            # (1, 3), stride 2, ceil_mode=True: torch gives shape (1, 1, 1, 1))
            if size + 2 * p < d * (k - 1) + 1:
                reject()
        try:
            expected = fn(torch.tensor(x), kernel, **options)
        except RuntimeError:
            reject()
        if expected.numel() == 0 and x.size != 0:
            reject()
        forward = getattr(xf, f"{case['kind']}_pool2d")
        backward = getattr(xf, f"{case['kind']}_pool2d_backward")
        xx = _array(x, xp, strided)
        try:
            result = forward(xx, kernel, **options)
        except ValueError as exc:
            # excluded: with dilation, a window may hold only padding; PyTorch gives
            # -inf (max) there, xconv refuses such a geometry by design. Rejected before
            # PyTorch's backward runs: on such a window its max_pool2d returns indices
            # past the plane, and its backward writes there (torch 2.13 on the CPU:
            # "double free or corruption", the interpreter aborted, often later)
            if "no input pixel" not in str(exc):
                raise
            reject()
        upstream = rng.standard_normal(tuple(expected.shape))
        out, (gx,) = _grad(lambda t: fn(t, kernel, **options), [x], upstream)
        _close(result, out.detach().numpy())
        _close(backward(_array(upstream, xp, strided), xx, kernel, **options), gx.numpy())
        if case["kind"] == "max":
            _, t_index = torch.nn.functional.max_pool2d(
                torch.tensor(x), kernel, return_indices=True, **options
            )
            _, index = xf.max_pool2d(xx, kernel, return_indices=True, **options)
            np.testing.assert_array_equal(to_np(index), t_index.numpy())

    check()


def test_ceil_mode_drops_a_window_starting_in_the_right_padding(xp):
    # H=W=5, kernel 2, stride 2, padding 1: ceil mode gives windows starting at
    # -1, 1, 3, 5; the last starts in the right padding, PyTorch drops it (out 3x3)
    x = np.arange(2 * 25, dtype=np.float64).reshape(1, 2, 5, 5)
    upstream = np.random.default_rng(0).standard_normal((1, 2, 3, 3))
    for kind in ("max", "avg"):
        fn = getattr(torch.nn.functional, f"{kind}_pool2d")
        opts = {"stride": 2, "padding": 1, "ceil_mode": True}
        out, (gx,) = _grad(lambda t, fn=fn, opts=opts: fn(t, 2, **opts), [x], upstream)
        assert tuple(out.shape) == (1, 2, 3, 3)
        _close(getattr(xf, f"{kind}_pool2d")(to_xp(x, xp), 2, **opts), out.detach().numpy())
        grad = getattr(xf, f"{kind}_pool2d_backward")(to_xp(upstream, xp), to_xp(x, xp), 2, **opts)
        _close(grad, gx.numpy())


@st.composite
def pointwise(draw):
    op = draw(st.sampled_from(["gelu", "silu", "relu6", "hardtanh", "softplus"]))
    if op == "gelu":
        options = {"approximate": draw(st.sampled_from(["none", "tanh"]))}
    elif op == "hardtanh":
        low = draw(st.floats(-3, 1, allow_nan=False))
        options = {"min_val": low, "max_val": low + draw(st.floats(0.1, 3))}
    elif op == "softplus":
        options = {
            "beta": draw(st.sampled_from([0.5, 1.0, 2.0])),
            "threshold": draw(st.sampled_from([1.0, 5.0, 20.0])),
        }
    else:
        options = {}
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=4)))
    return _case(draw, op=op, options=options, x=shape)


def test_pointwise_matches_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=pointwise())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        x = 3 * rng.standard_normal(case["x"])
        upstream = rng.standard_normal(case["x"])
        fn = getattr(torch.nn.functional, case["op"])
        out, (gx,) = _grad(lambda t: fn(t, **case["options"]), [x], upstream)
        xx = _array(x, xp, strided)
        _close(getattr(xf, case["op"])(xx, **case["options"]), out.detach().numpy())
        backward = getattr(xf, f"{case['op']}_backward")
        _close(backward(_array(upstream, xp, strided), xx, **case["options"]), gx.numpy())

    check()


@st.composite
def regressions(draw):
    op = draw(st.sampled_from(["mse_loss", "l1_loss", "smooth_l1_loss"]))
    options = {"reduction": draw(st.sampled_from(["none", "mean", "sum"]))}
    if op == "smooth_l1_loss":
        options["beta"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    weighted = op != "smooth_l1_loss" and draw(st.booleans())  # PyTorch 2.6's `weight`
    return _case(draw, op=op, options=options, x=shape, weighted=weighted)


def test_regression_losses_match_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=regressions())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        a, b = rng.standard_normal(case["x"]), rng.standard_normal(case["x"])
        options = dict(case["options"])
        weight = rng.uniform(0.0, 2.0, size=case["x"]) if case["weighted"] else None
        fn = getattr(torch.nn.functional, case["op"])
        t_options = {**options, **({"weight": torch.tensor(weight)} if case["weighted"] else {})}
        expected = fn(torch.tensor(a), torch.tensor(b), **t_options)
        upstream = rng.standard_normal(tuple(expected.shape))
        out, (ga, gb) = _grad(lambda s, t: fn(s, t, **t_options), [a, b], upstream)
        xa, xb = _array(a, xp, strided), _array(b, xp, strided)
        if case["weighted"]:
            options["weight"] = _array(weight, xp, strided)
        _close(getattr(xf, case["op"])(xa, xb, **options), out.detach().numpy())
        ra, rb = getattr(xf, f"{case['op']}_backward")(
            _array(upstream, xp, strided), xa, xb, **options
        )
        _close(ra, ga.numpy())
        _close(rb, gb.numpy())

    check()


@st.composite
def norms(draw):
    op = draw(st.sampled_from(["layer_norm", "group_norm"]))
    affine = draw(st.booleans())
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    n = draw(st.integers(1, 3))
    if op == "group_norm":
        groups = draw(st.integers(1, 3))
        channels = groups * draw(st.integers(1, 3))
        spatial = tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
        shape, options = (n, channels, *spatial), {"num_groups": groups}
        weight_shape: tuple[int, ...] = (channels,)
    else:
        shape = (n, *draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
        normalized = shape[len(shape) - draw(st.integers(1, len(shape) - 1)) :]
        options, weight_shape = {"normalized_shape": normalized}, normalized
    # a group or row of one value has variance 0: PyTorch's float64 and xconv agree
    return _case(draw, op=op, affine=affine, eps=eps, options=options, x=shape, w=weight_shape)


def test_norms_match_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=norms())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        x = 2 * rng.standard_normal(case["x"]) + 0.5
        upstream = rng.standard_normal(case["x"])
        op, options, eps = case["op"], case["options"], case["eps"]
        inputs = [x]
        if case["affine"]:
            inputs += [rng.standard_normal(case["w"]), rng.standard_normal(case["w"])]
        key = "normalized_shape" if op == "layer_norm" else "num_groups"
        fn = getattr(torch.nn.functional, op)
        try:
            out, grads = _grad(
                lambda *t: fn(t[0], options[key], *t[1:], eps=eps), inputs, upstream
            )
        except ValueError:
            # PyTorch's group_norm refuses N * H * W == 1 ("more than 1 value per channel
            # when training"), which xconv normalises (to the bias)
            reject()
        arrays = [_array(a, xp, strided) for a in inputs]
        _close(getattr(xf, op)(arrays[0], options[key], *arrays[1:], eps=eps), out.detach())
        backward = getattr(xf, f"{op}_backward")
        weight = arrays[1] if case["affine"] else None
        gx, gw, gb = backward(
            _array(upstream, xp, strided),
            arrays[0],
            options[key],
            weight,
            bias=case["affine"],
            eps=eps,
        )
        _close(gx, grads[0].numpy())
        if case["affine"]:
            _close(gw, grads[1].numpy())
            _close(gb, grads[2].numpy())
        else:
            assert gw is None
            assert gb is None

    check()


@st.composite
def adaptive_poolings(draw):
    kind = draw(st.sampled_from(["avg", "max"]))
    shape = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    size = tuple(draw(st.one_of(st.none(), st.integers(1, 9))) for _ in range(2))
    lead = draw(st.sampled_from([(2,), (0, 2), (1, 1), (2, 3)]))  # (2,): unbatched
    return _case(draw, kind=kind, size=size, x=lead + shape)


def test_adaptive_pooling_matches_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=adaptive_poolings())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        n = int(np.prod(case["x"]))
        x = rng.permutation(n).reshape(case["x"]).astype(np.float64)  # no ties
        size, kind = case["size"], case["kind"]
        fn = getattr(torch.nn.functional, f"adaptive_{kind}_pool2d")
        expected = fn(torch.tensor(x), size)
        upstream = rng.standard_normal(tuple(expected.shape))
        out, (gx,) = _grad(lambda t: fn(t, size), [x], upstream)
        xx = _array(x, xp, strided)
        _close(getattr(xf, f"adaptive_{kind}_pool2d")(xx, size), out.detach())
        backward = getattr(xf, f"adaptive_{kind}_pool2d_backward")
        _close(backward(_array(upstream, xp, strided), xx, size), gx.numpy())
        if kind == "max":
            _, t_index = torch.nn.functional.adaptive_max_pool2d(
                torch.tensor(x), size, return_indices=True
            )
            _, index = xf.adaptive_max_pool2d(xx, size, return_indices=True)
            np.testing.assert_array_equal(to_np(index), t_index.numpy())

    check()


@st.composite
def interpolations(draw):
    dims = draw(st.sampled_from([1, 2]))
    mode = draw(
        st.sampled_from(["nearest", "nearest-exact", "linear" if dims == 1 else "bilinear"])
    )
    inputs = tuple(draw(st.integers(1, 7)) for _ in range(dims))
    options: dict = {"mode": mode}
    if draw(st.booleans()):
        options["size"] = tuple(draw(st.integers(1, 12)) for _ in range(dims))
    else:
        factors = tuple(
            draw(st.sampled_from([0.5, 0.7, 1.0, 1.1, 1.5, 2.0, 2.1, 3.0])) for _ in inputs
        )
        if any(int(i * f) < 1 for i, f in zip(inputs, factors, strict=True)):
            factors = tuple(max(f, 1.0) for f in factors)
        options["scale_factor"] = factors
        options["recompute_scale_factor"] = draw(st.sampled_from([None, True]))
    if mode in ("linear", "bilinear"):
        options["align_corners"] = draw(st.sampled_from([None, False, True]))
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return _case(draw, options=options, x=lead + inputs)


def _nearest_1d_backward_differs(x_shape, options):
    """PyTorch's 1-D nearest backward by a factor that keeps or doubles the axis is not
    the gradient of its forward (tests/test_resize.py): its gradient is not compared."""
    factor = options.get("scale_factor")
    if len(x_shape) != 3 or options["mode"] != "nearest" or factor is None:
        return False
    if options.get("recompute_scale_factor"):
        return False
    n_in = x_shape[-1]
    return int(n_in * factor[0]) in (n_in, 2 * n_in)


def test_interpolate_matches_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=interpolations())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        x = rng.standard_normal(case["x"])
        options = case["options"]
        fn = torch.nn.functional.interpolate
        expected = fn(torch.tensor(x), **options)
        upstream = rng.standard_normal(tuple(expected.shape))
        out, (gx,) = _grad(lambda t: fn(t, **options), [x], upstream)
        xx = _array(x, xp, strided)
        _close(xf.interpolate(xx, **options), out.detach())
        if not _nearest_1d_backward_differs(case["x"], options):
            _close(xf.interpolate_backward(_array(upstream, xp, strided), xx, **options), gx)

    check()


@st.composite
def paddings(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    dims = draw(st.integers(1, 2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    spatial = tuple(draw(st.integers(1, 5)) for _ in range(dims))
    low = -1 if mode == "constant" else 0
    amounts: list[int] = []
    for size in reversed(spatial):  # the last axis first, as PyTorch reads them
        top = size - 1 if mode == "reflect" else size
        amounts += [draw(st.integers(low, top)), draw(st.integers(low, top))]
    options: dict = {"mode": mode}
    if mode == "constant":
        options["value"] = draw(st.sampled_from([None, 0.0, -1.5]))
    return _case(draw, options=options, pad=tuple(amounts), x=shape + spatial)


def test_pad_matches_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=paddings())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        x = rng.standard_normal(case["x"])
        options, amounts = case["options"], case["pad"]
        fn = torch.nn.functional.pad
        try:
            expected = fn(torch.tensor(x), amounts, **options)
        except RuntimeError:
            reject()  # an amount PyTorch refuses for this mode and size
        if expected.numel() == 0:
            reject()
        upstream = rng.standard_normal(tuple(expected.shape))
        out, (gx,) = _grad(lambda t: fn(t, amounts, **options), [x], upstream)
        xx = _array(x, xp, strided)
        _close(xf.pad(xx, amounts, **options), out.detach())
        _close(xf.pad_backward(_array(upstream, xp, strided), xx, amounts, **options), gx)

    check()


@st.composite
def classifications(draw):
    op = draw(st.sampled_from(["cross_entropy", "nll_loss"]))
    classes = draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(), (3,), (2, 2), (2, 1, 3)]))  # (): one unbatched sample
    probabilities = op == "cross_entropy" and draw(st.booleans())
    options: dict = {"reduction": draw(st.sampled_from(["none", "mean", "sum"]))}
    if not probabilities:
        options["ignore_index"] = draw(st.sampled_from([-100, 0, 1]))
    if op == "cross_entropy":
        options["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    weighted = draw(st.booleans())
    return _case(
        draw,
        op=op,
        classes=classes,
        shape=shape,
        probabilities=probabilities,
        weighted=weighted,
        options=options,
    )


def test_classification_losses_match_torch(xp, backend):
    @fuzz_settings(backend.name)
    @given(case=classifications())
    def check(case):
        rng = np.random.default_rng(case["seed"])
        strided = case["strided"] and _views(xp)
        c, shape, options = case["classes"], case["shape"], case["options"]
        # (C,) unbatched, else (N, C, d1, ...)
        input_shape = (c,) if not shape else (shape[0], c, *shape[1:])
        logits = 2 * rng.standard_normal(input_shape)
        if case["op"] == "nll_loss":
            logits = logits - np.log(
                np.sum(np.exp(logits), axis=0 if not shape else 1, keepdims=True)
            )
        if case["probabilities"]:
            target = rng.dirichlet(np.ones(c), size=int(np.prod(shape)) or 1)
            target = np.moveaxis(target.reshape(*(shape or ()), c), -1, 0 if not shape else 1)
            target = target.reshape(input_shape)
        else:
            target = rng.integers(0, c, size=shape)
        weight = rng.uniform(0.5, 2.0, size=c) if case["weighted"] else None
        fn = getattr(torch.nn.functional, case["op"])
        t_weight = None if weight is None else torch.tensor(weight)
        tensors = [torch.tensor(logits, requires_grad=True)]
        if case["probabilities"]:
            tensors.append(torch.tensor(target, requires_grad=True))
        t_target = tensors[1] if case["probabilities"] else torch.tensor(target)
        expected = fn(tensors[0], t_target, t_weight, **options)
        if not torch.isfinite(expected).all():
            reject()  # every target ignored: PyTorch's mean is 0 / 0
        upstream = rng.standard_normal(tuple(expected.shape))
        grads = torch.autograd.grad(expected, tensors, torch.tensor(upstream))
        x = _array(logits, xp, strided)
        y = _array(target, xp, strided) if case["probabilities"] else to_xp(target, xp)
        w = None if weight is None else _array(weight, xp, strided)
        result = getattr(xf, case["op"])(x, y, w, **options)
        _close(result, expected.detach().numpy())
        backward = getattr(xf, f"{case['op']}_backward")
        got = backward(_array(upstream, xp, strided), x, y, w, **options)
        if case["op"] == "nll_loss":
            _close(got, grads[0].numpy())
        else:
            _close(got[0], grads[0].numpy())
            if case["probabilities"]:
                _close(got[1], grads[1].numpy())
            else:
                assert got[1] is None

    check()

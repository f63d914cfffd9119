"""NumPy's fast path agrees with the generic code; chunking changes nothing.

`xconv.config.workspace_bytes` bounds each call's column matrix: bigger batches go
through in chunks. These tests check that chunked and unchunked runs give the same
numbers on every backend, that the bound holds, and that the threaded in-place NumPy
kernels equal the standard-only ones on every geometry.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading

import array_api_compat.numpy as np_xp
import numpy as np
import pytest
from helpers import to_np, to_xp

import xconv
from xconv.backends import _numpy as numpy_backend
from xconv.functional import (
    ConvGeometry,
    _im2col,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
)
from xconv.functional._chunks import batch_chunks
from xconv.functional._dispatch import kernels_for
from xconv.functional._im2col import fold_generic, unfold_generic
from xconv.functional._kernels._numpy import _columns
from xconv.functional._kernels._numpy import _rows as _numpy_conv
from xconv.functional._kernels._numpy import _threads as _numpy_kernels
from xconv.layers import Conv2D

GEOMETRIES = [
    {"size": size, "kernel": kernel, "stride": stride, "dilation": dilation, "padding": padding}
    for size, kernel, stride, dilation, padding in itertools.product(
        [(1, 1), (5, 4), (8, 7)],
        [(1, 1), (2, 3), (3, 3)],
        [1, 2, (3, 1)],
        [1, 2],
        [0, 1, "same", ((0, 2), (3, 1))],
    )
]


def _geometry(case: dict) -> ConvGeometry | None:
    try:
        return ConvGeometry.build(
            case["size"],
            case["kernel"],
            stride=case["stride"],
            padding=case["padding"],
            dilation=case["dilation"],
        )
    except ValueError:  # kernel larger than the padded input: not a geometry
        return None


def test_numpy_kernels_equal_the_generic_code():
    rng = np.random.default_rng(0)
    checked = 0
    for case in GEOMETRIES:
        geometry = _geometry(case)
        if geometry is None:
            continue
        for n, c in [(3, 4), (1, 1), (0, 2), (2, 0)]:
            x = rng.standard_normal((n, c, *case["size"]))
            expected = unfold_generic(x, geometry, np_xp)
            np.testing.assert_array_equal(_numpy_kernels.unfold(x, geometry), expected)
            np.testing.assert_array_equal(
                _numpy_kernels.unfold(x, geometry, scratch=True), expected
            )
            # the row layout: (N * L, kh * kw * C), taps (i, j) then channel c
            rows = _numpy_conv.unfold_rows(x, geometry)
            kh, kw = geometry.kernel_size
            as_columns = rows.reshape(expected.shape[1], kh, kw, c).transpose(3, 1, 2, 0)
            np.testing.assert_array_equal(as_columns.reshape(expected.shape), expected)
            cols = rng.standard_normal(expected.shape)
            np.testing.assert_allclose(
                _numpy_kernels.fold(cols, geometry),
                fold_generic(cols, geometry, np_xp),
                rtol=1e-13,
                atol=1e-13,
            )
            checked += 1
    assert checked > 400  # the geometries are not all invalid


@pytest.fixture(params=["rows", "columns"])
def layout(request, monkeypatch):
    """NumPy's convolutions in one layout: one row per window (`_numpy_conv`, chosen
    for groups == 1 where kw * C >= `_columns.ROW_RUN`), or one column per window."""
    monkeypatch.setattr(_columns, "ROW_RUN", 1 if request.param == "rows" else 10**9)
    return request.param


@pytest.fixture
def unfolded(monkeypatch):
    """Every im2col matrix NumPy's fast path makes (column or row layout), as
    (layout, bytes, thread name, channels of the array unfolded), in order."""
    made = []
    for module, name, layout in [
        (_numpy_kernels, "unfold", "columns"),
        (_numpy_conv, "unfold_rows", "rows"),
    ]:
        real = getattr(module, name)

        def spy(x, geometry, *, _real=real, _layout=layout, **options):
            matrix = _real(x, geometry, **options)
            made.append((_layout, matrix.nbytes, threading.current_thread().name, x.shape[1]))
            return matrix

        monkeypatch.setattr(module, name, spy)
    return made


def test_numpy_arrays_take_the_fast_path_unless_told_not_to(unfolded):
    x = np.ones((2, 8, 4, 4))
    conv2d(x, np.ones((1, 8, 3, 3)))  # one row per window: runs of 3 * 8 values
    conv2d(x, np.ones((2, 4, 3, 3)), groups=2)  # grouped: one column per window
    conv2d(x[:, :2], np.ones((1, 2, 3, 3)))  # runs of 3 * 2 values: columns
    assert [made[0] for made in unfolded] == ["rows", "columns", "columns"]
    with xconv.config.using(fast_kernels=False):
        conv2d(x, np.ones((1, 8, 3, 3)))
        conv2d(x, np.ones((2, 4, 3, 3)), groups=2)
    assert len(unfolded) == 3


def test_kept_rows_are_not_mistaken_for_columns(layout):
    """A layer's forward pass keeps its matrices in the layout the backward pass then
    finds switched (`fast_kernels` changed in between): they are recomputed, not misread."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 2, 5, 5))
    layer = Conv2D(4, 3, input_shape=(2, 5, 5), padding=1)
    layer.initialize(seed=1, dtype="float64", backend="numpy")
    out = layer.forward_pass(x)
    assert layer._cols is not None
    assert layer._cols.rows == (layout == "rows")
    with xconv.config.using(fast_kernels=False):
        grad_input = layer.backward_pass(np.ones_like(out))
        expected = conv2d_backward(np.ones_like(out), x, layer.params["weight"], padding=1)
    np.testing.assert_allclose(grad_input, expected[0], rtol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], expected[1], rtol=1e-12)


def _conv_case(rng: np.random.Generator, groups: int = 1) -> tuple[np.ndarray, ...]:
    x = rng.standard_normal((7, 4, 9, 8))
    weight = rng.standard_normal((6, 4 // groups, 3, 2))
    bias = rng.standard_normal(6)
    grad = rng.standard_normal((7, 6, 4, 4))  # the output with the options below
    return x, weight, bias, grad


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_is_the_same_with_and_without_fast_kernels(groups, layout):
    x, weight, bias, grad = _conv_case(np.random.default_rng(1), groups)
    options = {"stride": (2, 2), "padding": ((1, 0), (0, 1)), "dilation": (1, 2), "groups": groups}
    fast = [conv2d(x, weight, bias, **options), *conv2d_backward(grad, x, weight, **options)]
    with xconv.config.using(fast_kernels=False):
        generic = [
            conv2d(x, weight, bias, **options),
            *conv2d_backward(grad, x, weight, **options),
        ]
    for a, b in zip(fast, generic, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# (N, C, H, W), filters, kernel, padding, dilation, groups: stride 1 and F <= C, where
# the input gradient runs as a forward convolution of the output gradient
AS_CONVOLUTION = [
    ((3, 4, 7, 6), 4, 3, "same", 1, 1),
    ((2, 6, 5, 8), 3, (3, 2), ((2, 0), (1, 0)), 1, 1),  # asymmetric, even kernel
    ((2, 4, 9, 9), 4, 3, "same", 2, 2),  # dilated, grouped
    ((2, 6, 6, 6), 6, 3, 1, 1, 6),  # depthwise
    ((2, 8, 6, 7), 4, 5, ((4, 0), (0, 4)), 1, 2),  # padding the whole kernel wide
]


@pytest.mark.parametrize(
    ("shape", "filters", "kernel", "padding", "dilation", "groups"), AS_CONVOLUTION
)
def test_input_gradient_as_a_convolution_equals_the_generic_code(
    monkeypatch, shape, filters, kernel, padding, dilation, groups, layout
):
    taken = []
    real = _columns.as_convolution
    monkeypatch.setattr(
        _columns, "as_convolution", lambda *a, **k: taken.append(real(*a, **k)) or taken[-1]
    )
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((filters, shape[1] // groups, *np.broadcast_to(kernel, 2)))
    options = {"padding": padding, "dilation": dilation, "groups": groups}
    grad = rng.standard_normal(conv2d(x, weight, **options).shape)
    fast = conv2d_backward(grad, x, weight, **options)
    assert taken, "the input gradient never considered running as a convolution"
    assert taken[-1] is not None, "the input gradient did not run as a convolution"
    with xconv.config.using(fast_kernels=False):
        generic = conv2d_backward(grad, x, weight, **options)
    for a, b in zip(fast, generic, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "filters", "stride", "padding"),
    [
        ((2, 3, 8, 8), 8, 1, 1),  # more filters than channels: col2im is cheaper
        ((2, 4, 8, 8), 4, 2, 1),  # stride 2
        ((2, 4, 5, 5), 4, 3, 3),  # padding wider than the kernel reaches
    ],
)
def test_input_gradient_stays_a_col2im_where_that_is_cheaper(shape, filters, stride, padding):
    weight = np.ones((filters, shape[1], 3, 3))
    geometry = ConvGeometry.build(shape[2:], 3, stride=stride, padding=padding)
    assert _columns.as_convolution(weight, geometry, 1) is None


def test_rows_flip_the_input_gradient_with_up_to_twice_the_filters(monkeypatch):
    """The row layout's im2col is cheap enough that a convolution with twice as many
    filters as channels still takes its input gradient as a flipped convolution; with
    nearly three times as many (the MNIST network's second layer), it folds rows back."""
    taken = []
    real = _columns.as_convolution
    monkeypatch.setattr(
        _columns, "as_convolution", lambda *a, **k: taken.append(real(*a, **k)) or taken[-1]
    )
    rng = np.random.default_rng(3)
    for channels, filters, padding, flipped in [(8, 16, 1, True), (8, 24, 0, False)]:
        x = rng.standard_normal((2, channels, 9, 9))
        weight = rng.standard_normal((filters, channels, 3, 3))
        grad = rng.standard_normal(conv2d(x, weight, padding=padding).shape)
        fast = conv2d_backward(grad, x, weight, padding=padding)
        assert (taken[-1] is not None) is flipped
        with xconv.config.using(fast_kernels=False):
            generic = conv2d_backward(grad, x, weight, padding=padding)
        for a, b in zip(fast, generic, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _sample_bytes(x, kernel_size, out_size) -> int:
    return x.shape[1] * kernel_size[0] * kernel_size[1] * out_size[0] * out_size[1] * 8


def test_batch_chunks_respect_the_workspace(xp, backend):
    x = to_xp(np.zeros((10, 2, 6, 6)), xp)
    geometry = ConvGeometry.build((6, 6), (3, 3), padding=1)
    per_sample = _sample_bytes(x, (3, 3), (6, 6))
    with xconv.config.using(workspace_bytes=3 * per_sample + 1):
        spans = batch_chunks(x, geometry, kernels_for(xp)).spans
    if backend.lazy:  # a lazy backend's own chunks bound its memory; slicing would rechunk
        assert spans == [(0, 10)]
    else:
        assert spans == [(0, 3), (3, 6), (6, 9), (9, 10)]
    with xconv.config.using(workspace_bytes=1):  # one sample is the floor
        assert len(batch_chunks(x, geometry, kernels_for(xp)).spans) == (1 if backend.lazy else 10)


@pytest.mark.parametrize("groups", [1, 2])
def test_chunking_changes_no_result(xp, groups, layout):
    x, weight, bias, grad = (to_xp(a, xp) for a in _conv_case(np.random.default_rng(2), groups))
    options = {"stride": (2, 2), "padding": ((1, 0), (0, 1)), "dilation": (1, 2), "groups": groups}

    def run() -> list:
        out = conv2d(x, weight, bias, **options)
        return [out, *conv2d_backward(grad, x, weight, **options)]

    whole = run()
    per_sample = _sample_bytes(x, (3, 2), (4, 4))
    with xconv.config.using(workspace_bytes=2 * per_sample):  # chunks of 2 samples
        chunked = run()
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-12, atol=1e-12)


def test_chunked_transposed_convolution_is_unchanged(xp, layout):
    rng = np.random.default_rng(3)
    x = to_xp(rng.standard_normal((5, 4, 4, 3)), xp)
    weight = to_xp(rng.standard_normal((4, 3, 3, 3)), xp)
    grad = to_xp(rng.standard_normal((5, 3, 9, 7)), xp)
    options = {"stride": 2, "padding": 0}
    whole = [
        conv_transpose2d(x, weight, **options),
        *conv_transpose2d_backward(grad, x, weight, **options),
    ]
    with xconv.config.using(workspace_bytes=1):
        chunked = [
            conv_transpose2d(x, weight, **options),
            *conv_transpose2d_backward(grad, x, weight, **options),
        ]
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-12, atol=1e-12)


def test_conv2d_layer_is_unchanged_when_its_columns_do_not_fit(xp, backend, layout):
    x = to_xp(np.random.default_rng(4).standard_normal((6, 2, 7, 7)), xp)
    grads = []
    for workspace in (2**30, 1):
        layer = Conv2D(3, (3, 3), input_shape=(2, 7, 7), padding="same", stride=2)
        layer.initialize(seed=5, dtype="float64", backend=backend)
        with xconv.config.using(workspace_bytes=workspace, delegate=False):
            out = layer.forward_pass(x)
            kept = layer._cols is not None
            grad_input = layer.backward_pass(xp.ones_like(out))
        grads.append([out, grad_input, layer.grads["weight"], layer.grads["bias"]])
        # columns are kept for backward only when they fit (lazy backends never chunk)
        assert kept == (workspace > 1 or backend.lazy)
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", [1, 2])
def test_no_column_matrix_exceeds_the_workspace(unfolded, groups, layout):
    x, weight, bias, _ = _conv_case(np.random.default_rng(6), groups)
    per_sample = _sample_bytes(x, (3, 2), (7, 7))
    with xconv.config.using(workspace_bytes=3 * per_sample):
        conv2d(x, weight, bias, groups=groups)
        conv2d_backward(np.ones((7, 6, 7, 7)), x, weight, groups=groups)
    assert {made[0] for made in unfolded} == {layout if groups == 1 else "columns"}
    assert max(made[1] for made in unfolded) <= 3 * per_sample
    # 7 samples in chunks of 3: forward, then weight gradient (and the input gradient's,
    # of the 6-channel output gradient, where it runs as a flipped convolution)
    assert len([made for made in unfolded if made[3] == x.shape[1]]) == 2 * 3


def test_config_is_checked(monkeypatch):
    message = r"`xconv.config.workspace_bytes` must be a positive integer or None, got 0"
    with pytest.raises(ValueError, match=message), xconv.config.using(workspace_bytes=0):
        pass
    monkeypatch.setattr(xconv.config, "workspace_bytes", 0)  # set directly: checked on use
    with pytest.raises(ValueError, match=message):
        conv2d(np.ones((2, 1, 3, 3)), np.ones((1, 1, 2, 2)))
    with (
        pytest.raises(TypeError, match=r"unknown settings \['workspace'\]"),
        xconv.config.using(workspace=1),
    ):
        pass


def test_the_default_workspace_is_the_backends(xp, backend, monkeypatch):
    monkeypatch.setattr(xconv.config, "workspace_bytes", None)
    x = to_xp(np.zeros((40, 2, 6, 6)), xp)
    on_gpu = backend.name == "cupy"  # a GPU's default: 1 GiB; a CPU's: 16 MiB
    assert backend.workspace_for(x) == (2**30 if on_gpu else 16 * 2**20)
    geometry = ConvGeometry.build((6, 6), (3, 3), padding=1)
    per_sample = _sample_bytes(x, (3, 3), (6, 6))
    monkeypatch.setattr(backend, "workspace_bytes", 7 * per_sample)
    expected = [(0, 40)] if backend.lazy else [(s, min(s + 7, 40)) for s in range(0, 40, 7)]
    assert batch_chunks(x, geometry, kernels_for(xp)).spans == expected


def test_using_restores_the_settings():
    before = (xconv.config.workspace_bytes, xconv.config.fast_kernels)
    inside = []

    def fail_inside() -> None:
        with xconv.config.using(workspace_bytes=64, fast_kernels=False):
            inside.append((xconv.config.workspace_bytes, xconv.config.fast_kernels))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside()
    assert inside == [(64, False)]
    assert (xconv.config.workspace_bytes, xconv.config.fast_kernels) == before


@pytest.mark.parametrize("groups", [1, 3])
def test_pointwise_convolution_is_a_matrix_product(xp, groups):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6, 3, 5))
    weight = rng.standard_normal((9, 6 // groups, 1, 1))
    grad = rng.standard_normal((4, 9, 3, 5))
    # by hand: a block-diagonal (F, C) matrix, each group's filters see its channels
    fg, cg = 9 // groups, 6 // groups
    w_full = np.zeros((9, 6))
    for g in range(groups):
        w_full[g * fg : (g + 1) * fg, g * cg : (g + 1) * cg] = weight[
            g * fg : (g + 1) * fg, :, 0, 0
        ]
    out = conv2d(to_xp(x, xp), to_xp(weight, xp), groups=groups)
    gx, gw, _ = conv2d_backward(to_xp(grad, xp), to_xp(x, xp), to_xp(weight, xp), groups=groups)
    np.testing.assert_allclose(to_np(out), np.einsum("fc,nchw->nfhw", w_full, x), rtol=1e-12)
    np.testing.assert_allclose(to_np(gx), np.einsum("fc,nfhw->nchw", w_full, grad), rtol=1e-12)
    gw_full = np.einsum("nfhw,nchw->fc", grad, x)
    for g in range(groups):
        np.testing.assert_allclose(
            to_np(gw)[g * fg : (g + 1) * fg, :, 0, 0],
            gw_full[g * fg : (g + 1) * fg, g * cg : (g + 1) * cg],
            rtol=1e-12,
        )


def test_parallel_chunks_share_the_workspace_and_change_nothing(monkeypatch, unfolded, layout):
    """Large convolutions run batch chunks on threads (NumPy): same numbers, same bound."""
    x, weight, bias, grad = _conv_case(np.random.default_rng(8))
    options = {"stride": (2, 2), "padding": ((1, 0), (0, 1)), "dilation": (1, 2)}
    serial = [conv2d(x, weight, bias, **options), *conv2d_backward(grad, x, weight, **options)]
    monkeypatch.setattr(_numpy_kernels, "PARALLEL_FLOPS", 0)  # even this one, then
    monkeypatch.setattr(_numpy_kernels, "_threads", lambda: 3)
    unfolded.clear()  # (the serial run's)
    per_sample = _sample_bytes(x, (3, 2), (4, 4))
    with xconv.config.using(workspace_bytes=6 * per_sample):
        geometry = ConvGeometry.build((9, 8), (3, 2), **options)
        chunks = batch_chunks(x, geometry, kernels_for(np_xp), filters=6)
        parallel = [
            conv2d(x, weight, bias, **options),
            *conv2d_backward(grad, x, weight, **options),
        ]
    assert chunks.parallel
    assert chunks.spans == [(0, 2), (2, 4), (4, 6), (6, 7)]  # 6 samples' bound over 3 threads
    assert max(made[1] for made in unfolded) <= 2 * per_sample
    assert all(made[2].startswith("xconv-numpy") for made in unfolded)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_generic_path_runs_chunks_in_turn(monkeypatch):
    monkeypatch.setattr(_numpy_kernels, "PARALLEL_FLOPS", 0)
    x = np.zeros((8, 2, 6, 6))
    geometry = ConvGeometry.build((6, 6), (3, 3), padding=1)
    assert batch_chunks(x, geometry, kernels_for(np_xp), filters=4).parallel == (
        _numpy_kernels._threads() > 1
    )
    with xconv.config.using(fast_kernels=False):
        assert not batch_chunks(x, geometry, kernels_for(np_xp), filters=4).parallel


def test_retaining_freed_memory_follows_the_setting(monkeypatch):
    calls = []
    monkeypatch.setattr(numpy_backend, "retain_freed_memory", lambda: calls.append(1))
    x, weight = np.ones((2, 1, 4, 4)), np.ones((1, 1, 3, 3))
    conv2d(x, weight)  # by default xconv leaves the process's allocator alone
    assert xconv.config.retain_freed_memory is False
    assert calls == []
    with xconv.config.using(retain_freed_memory=True):
        conv2d(x, weight)
        with xconv.config.using(fast_kernels=False, workspace_bytes=2**20):  # either way
            conv2d(x, weight)
    assert calls == [1, 1]


def test_retain_freed_memory_is_harmless_to_repeat():
    first = numpy_backend.retain_freed_memory()
    assert numpy_backend.retain_freed_memory() is first  # asked once, then remembered
    assert first == (sys.platform.startswith("linux") and _glibc())


def _glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"


def test_buffer_cache_is_bounded_and_keeps_only_its_own_arrays():
    big = (256, 256)  # 512 KiB of float64: worth caching
    cache = _numpy_kernels.BufferCache(limit_bytes=3 * 8 * 256 * 256)
    a, b = cache.take(big, np.float64), cache.take(big, np.float64)
    assert a is not b
    cache.give(np.empty(big))  # not from this cache: ignored
    assert cache.nbytes == 0
    cache.give(a)
    cache.give(a)  # twice: kept once
    assert cache.nbytes == a.nbytes
    assert cache.take(big, np.float32) is not a  # another dtype
    assert cache.take(big, np.float64) is a
    for _ in range(5):
        cache.give(cache.take(big, np.float64))
        cache.give(b)
        b = cache.take((128, 512), np.float64)
    assert cache.nbytes <= cache.limit_bytes
    small = cache.take((4, 4), np.float64)  # too small to bother: not tracked
    cache.give(small)
    assert all(kept is not small for kept in cache.kept())


def test_buffer_cache_evicts_past_a_shape_taken_back_out():
    """Taking back out the last kept array of the oldest shape, then giving arrays that
    need room, evicts the others (it once picked that shape's emptied list and failed)."""
    shapes = [(256, 256), (128, 512), (512, 128), (64, 1024)]  # 512 KiB each
    cache = _numpy_kernels.BufferCache(limit_bytes=2 * 8 * 256 * 256)
    a, b, c, d = (cache.take(shape, np.float64) for shape in shapes)
    cache.give(a)
    cache.give(b)
    assert cache.take(shapes[0], np.float64) is a  # the oldest shape has nothing kept now
    cache.give(c)
    cache.give(d)  # over the bound: the oldest kept array (b) goes
    assert cache.nbytes <= cache.limit_bytes
    assert {id(kept) for kept in cache.kept()} == {id(c), id(d)}


def test_results_never_share_memory_with_cached_buffers(monkeypatch):
    """Scratch columns go back to the cache; outputs and kept columns never do."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((16, 8, 32, 32))  # columns large enough for the cache
    weight, bias = rng.standard_normal((6, 8, 3, 3)), rng.standard_normal(6)
    grad = rng.standard_normal((16, 6, 30, 30))
    _numpy_kernels.BUFFERS.clear()
    out = conv2d(x, weight)  # no bias: the output is the matrix product's memory
    gx, gw, _ = conv2d_backward(grad, x, weight)
    kept = [a.copy() for a in (out, gx, gw)]
    assert _numpy_kernels.BUFFERS.nbytes > 0  # some columns were kept for reuse
    for _ in range(3):  # calls that reuse the buffers must not change earlier results
        conv2d(rng.standard_normal(x.shape), weight, bias)
        conv2d_backward(grad, x, rng.standard_normal(weight.shape))
    for a, b in zip((out, gx, gw), kept, strict=True):
        np.testing.assert_array_equal(a, b)
        for buffer in _numpy_kernels.BUFFERS.kept():
            assert not np.shares_memory(a, buffer)


def test_public_im2col_is_the_internal_layout_transposed():
    x = np.random.default_rng(10).standard_normal((3, 2, 5, 4))
    geometry = ConvGeometry.build((5, 4), (2, 3), stride=(2, 1), padding=1)
    internal = _im2col.unfold(x, geometry, np_xp, kernels_for(np_xp))  # (C * kh * kw, N * L)
    public = xconv.functional.im2col(x, (2, 3), stride=(2, 1), padding=1)
    np.testing.assert_array_equal(public, internal.reshape(12, 3, -1).transpose(1, 0, 2))


def test_result_pool_reuses_only_what_every_caller_let_go():
    big = (256, 256)
    pool = _numpy_kernels.ResultPool(limit_bytes=10 * 8 * 256 * 256)
    a = pool.take(big, np.float64)
    view = a[1:]
    del a
    b = pool.take(big, np.float64)  # a view still holds the first: a new one
    assert not np.shares_memory(b, view)
    del view, b
    pool.clear()


def test_results_held_as_views_are_not_overwritten():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((16, 8, 32, 32))  # a result large enough for the pool
    weight, bias = rng.standard_normal((8, 8, 3, 3)), rng.standard_normal(8)
    first = conv2d(x, weight, bias)[0]  # only a view of the result survives
    expected = first.copy()
    for _ in range(3):
        later = conv2d(rng.standard_normal(x.shape), weight, bias)
        assert not np.shares_memory(later, first)
    np.testing.assert_array_equal(first, expected)


def _blas_threads() -> int:
    import threadpoolctl

    return max(
        lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
    )


@pytest.mark.skipif(_numpy_kernels._threads() < 2, reason="one CPU: no threads to hold BLAS to")
def test_kernel_threads_hold_blas_to_one_thread_and_give_its_count_back():
    from xconv.functional import kernel_threads

    before = _blas_threads()
    with kernel_threads(np):
        assert _blas_threads() == 1
        with kernel_threads(np):  # nested: still held, and still after the inner one
            pass
        assert _blas_threads() == 1
    assert _blas_threads() == before
    with xconv.config.using(fast_kernels=False), kernel_threads(np):
        assert _blas_threads() == before  # the generic code asked for: nothing held


def test_kernel_threads_leave_other_namespaces_alone():
    from xconv.functional import kernel_threads

    strict = pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    before = _blas_threads()
    with kernel_threads(strict):
        assert _blas_threads() == before


@pytest.mark.skipif(_numpy_kernels._threads() < 2, reason="one CPU: no threads to split over")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_split_over_threads_equals_the_plain_product(monkeypatch, dtype):
    from xconv.functional import kernel_threads, matmul

    rng = np.random.default_rng(10)
    a, b = (rng.standard_normal(shape).astype(dtype) for shape in [(37, 20), (20, 9)])
    calls = []
    real = _numpy_kernels.map_threads
    monkeypatch.setattr(
        _numpy_kernels, "map_threads", lambda fn, spans: calls.append(spans) or real(fn, spans)
    )
    assert matmul(a, b).dtype == dtype
    assert not calls  # outside kernel_threads, BLAS has its threads: one plain product
    monkeypatch.setattr(_numpy_kernels, "PARALLEL_MATMUL_FLOPS", 0)
    with kernel_threads(np):
        split = matmul(a, b)
        transposed = matmul(a.T, rng.standard_normal((37, 4)).astype(dtype))
        one_row = matmul(a[:1], b)  # (a single row is not split)
    assert len(calls) == 2
    spans = calls[0]
    assert len(spans) > 1
    assert [spans[0][0], spans[-1][1]] == [0, 37]  # every row, in pieces that follow on
    assert all(a_span[1] == b_span[0] for a_span, b_span in itertools.pairwise(spans))
    # (OpenBLAS blocks a product by its shape: the pieces may round differently)
    tolerance = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(split, a @ b, rtol=tolerance, atol=tolerance)
    assert transposed.shape == (20, 4)
    np.testing.assert_array_equal(one_row, a[:1] @ b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_equals_the_sum_it_replaces(dtype):
    from xconv.functional._conv import bias_gradient

    rng = np.random.default_rng(11)
    grad = rng.standard_normal((5, 3, 7, 6)).astype(dtype)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    from xconv.functional import kernel_threads

    for case in [grad, grad[:, :, ::2], grad[:0], np.asfortranarray(grad)]:
        for held in (False, True):  # (the product with ones only where BLAS is held)
            with kernel_threads(np) if held else contextlib.nullcontext():
                got = bias_gradient(case, np_xp, kernels_for(np_xp))
            assert got.dtype == dtype
            assert got.shape == (3,)
            expected = case.sum(axis=(0, 2, 3))
            np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.skipif(_numpy_kernels._threads() < 2, reason="one CPU: no threads to run chunks on")
def test_held_blas_runs_smaller_convolutions_on_threads():
    """While BLAS is held to one thread, a convolution in one piece would run on one
    core: from `PARALLEL_FLOPS_HELD` on, its chunks run on threads."""
    from xconv.functional import kernel_threads

    x = np.zeros((128, 1, 28, 28), dtype=np.float32)  # the MNIST network's first layer
    geometry = ConvGeometry.build((28, 28), 3)
    flops = 2 * 128 * 26 * 26 * 9 * 32
    assert _numpy_kernels.PARALLEL_FLOPS_HELD <= flops < _numpy_kernels.PARALLEL_FLOPS
    assert not batch_chunks(x, geometry, kernels_for(np_xp), filters=32).parallel
    with kernel_threads(np):
        assert batch_chunks(x, geometry, kernels_for(np_xp), filters=32).parallel


@pytest.mark.skipif(_numpy_kernels._threads() < 2, reason="one CPU: no threads to hold BLAS to")
def test_holds_from_two_threads_give_the_count_back_when_the_last_leaves():
    """BLAS's thread count is the process's: a block that leaves while another thread's
    is still open must neither lift the other's hold nor leave BLAS on one thread."""
    from xconv.functional import kernel_threads

    before = _blas_threads()
    entered, first_left = threading.Event(), threading.Event()
    seen = []

    def second() -> None:
        with kernel_threads(np):
            entered.set()
            first_left.wait(timeout=10)
            seen.append(_blas_threads())  # the first block has left; this one holds

    with kernel_threads(np):
        worker = threading.Thread(target=second)
        worker.start()
        assert entered.wait(timeout=10)
    first_left.set()  # (the first block left before the second)
    worker.join(timeout=10)
    assert seen == [1]
    assert _blas_threads() == before

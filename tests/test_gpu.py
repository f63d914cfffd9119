"""CuPy and CUDA torch: what a CPU can check, then what needs a GPU.

On a CPU: the CuPy kernels' index formulas (evaluated on NumPy) against the generic
im2col/col2im, the kernel source, the backends' device arguments and their errors
without a GPU, the torch backend's device path on the CPU, and the GPU benchmark's
soft failure and dry run. On a GPU: the CuPy kernels and conv2d against the generic
code and NumPy, devices, DLPack exchange with torch, training.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

import numpy as np
import pytest
from helpers import relative_error, requires_torch_reason, torch

import xconv
import xconv.backends as backends
from xconv.backends._cupy import CupyBackend
from xconv.backends._torch import TorchBackend
from xconv.functional import (
    ConvGeometry,
    _im2col,
    col2im,
    conv2d,
    conv2d_backward,
    im2col,
)
from xconv.functional._kernels import _cupy as _cupy_kernels

NEEDS_GPU = "needs CuPy and a CUDA device"
HAS_CUPY = CupyBackend().unavailable_reason() is None
HAS_TORCH_CUDA = torch is not None and torch.cuda.is_available()
requires_gpu = pytest.mark.skipif(not HAS_CUPY, reason=NEEDS_GPU)
OPS = sorted(_cupy_kernels.STEPS)  # "fold", "unfold"
KERNELS = {"unfold": _cupy_kernels.unfold, "fold": _cupy_kernels.fold}
np_xp = backends.get("numpy").namespace


def _geometries(count: int, seed: int = 0) -> list[tuple[tuple[int, int, int, int], dict]]:
    """Random valid (x shape, im2col options): strides, dilations, every padding form."""
    rng = np.random.default_rng(seed)
    found: list[tuple[tuple[int, int, int, int], dict]] = []
    while len(found) < count:
        shape = (int(rng.integers(0, 3)), int(rng.integers(0, 4)), *rng.integers(1, 10, 2))
        forms = [
            int(rng.integers(0, 3)),
            (int(rng.integers(0, 3)), int(rng.integers(0, 2))),
            ((int(rng.integers(0, 3)), int(rng.integers(0, 3))), (0, int(rng.integers(0, 4)))),
            "same",
            "valid",
        ]
        options = {
            "kernel_size": (int(rng.integers(1, 5)), int(rng.integers(1, 5))),
            "stride": (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            "dilation": (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
            "padding": forms[int(rng.integers(0, len(forms)))],
        }
        try:
            ConvGeometry.build(shape[2:], **options)
        except ValueError:
            continue  # the kernel does not fit: generic code refuses it too
        found.append(((shape[0], shape[1], int(shape[2]), int(shape[3])), options))
    return found


GEOMETRIES = _geometries(60)
IDS = [
    f"{s}-{o['kernel_size']}-{o['stride']}-{o['dilation']}-{o['padding']}" for s, o in GEOMETRIES
]


def _build(shape: tuple[int, ...], options: dict) -> ConvGeometry:
    return ConvGeometry.build(shape[2:], **options)


# -- the kernels' index math, on NumPy -----------------------------------------------------


def _generic(op: str):
    """The generic array-API implementation of kernel op `op`."""
    return getattr(_im2col, f"{op}_generic")


def _input(op: str, shape: tuple[int, ...], geometry: ConvGeometry, dtype: str, seed: int):
    """A random input of kernel op `op` for images of `shape`."""
    (kh, kw), (oh, ow) = geometry.kernel_size, geometry.out_size
    n, c = shape[0], shape[1]
    sizes = {"unfold": shape, "fold": (c * kh * kw, n * oh * ow)}
    return np.random.default_rng(seed).standard_normal(sizes[op]).astype(dtype)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(("shape", "options"), GEOMETRIES, ids=IDS)
def test_kernel_index_math_matches_the_generic_code(op, shape, options):
    generic = _generic(op)
    geometry = _build(shape, options)
    a = _input(op, shape, geometry, "float32", seed=1)
    result = _cupy_kernels.reference(op, a, geometry)
    assert result.dtype == np.float32
    # col2im: the same additions in the same order, so equal to the last bit
    np.testing.assert_array_equal(result, generic(a, geometry, np_xp))


def test_kernel_index_math_matches_the_public_ops():
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    options = {"stride": (2, 1), "padding": ((1, 0), (2, 1)), "dilation": (1, 2)}
    geometry = ConvGeometry.build((7, 6), (3, 2), **options)
    cols = _cupy_kernels.reference("unfold", x, geometry)  # (C * kh * kw, N * L)
    public = cols.reshape(cols.shape[0], 2, -1).transpose(1, 0, 2)
    np.testing.assert_array_equal(public, im2col(x, (3, 2), **options))
    image = _cupy_kernels.reference("fold", cols, geometry)
    np.testing.assert_array_equal(image, col2im(public, (7, 6), (3, 2), **options))


@pytest.mark.parametrize("wide", [False, True])
def test_kernel_source_is_built_from_the_tested_formulas(wide):
    index = "long long" if wide else "int"
    for op, steps in _cupy_kernels.STEPS.items():
        source = _cupy_kernels.kernel_source(op, wide=wide)
        assert source.startswith(f"typedef {index} IDX;\n")
        for name, expr in (step for part in steps for step in part):
            assert f"const IDX {name} = {expr};" in source
    assert "cols = inside ? image[source] : (T)0;" in _cupy_kernels.kernel_source("unfold")
    assert "total += cols[source]" in _cupy_kernels.kernel_source("fold")
    with pytest.raises(ValueError, match=r"`op` must be one of .*, got 'pool'"):
        _cupy_kernels.kernel_source("pool")


# -- the backends' devices and errors, on a CPU ------------------------------------------


def test_cupy_backend_with_device():
    other = CupyBackend().with_device(np.int64(1))
    assert other.device == 1
    assert repr(other) == "<xconv backend 'cupy' on cuda:1>"
    with pytest.raises(TypeError, match="`device` must be a CUDA device number or None"):
        CupyBackend(device=True)


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [("cuda", TypeError, "a CUDA device number or None, got 'cuda'"),
     (True, TypeError, "got True"), (-1, ValueError, "number >= 0, got -1")],
)  # fmt: skip
def test_cupy_device_argument_is_checked(device, error, message):
    with pytest.raises(error, match=message):
        CupyBackend(device=device)


def _fake_cupy(monkeypatch, count=None, error=None) -> None:
    """Install a stand-in ``cupy`` whose CUDA runtime reports `count` or raises `error`.

    The registry is narrowed to NumPy meanwhile, so that no registered backend (the
    real CuPy one on a GPU machine) imports, and keeps, the stand-in.
    """
    from xconv.backends import _registry

    monkeypatch.setattr(_registry, "_backends", {"numpy": _registry._backends["numpy"]})

    def get_device_count() -> int:
        if error is not None:
            raise error
        return count

    fake = types.ModuleType("cupy")
    fake.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    monkeypatch.setitem(sys.modules, "cupy", fake)


@pytest.mark.parametrize(
    ("count", "error", "device", "reason"),
    [(None, RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"), None,
      "cupy cannot reach a CUDA device (RuntimeError: cudaErrorNoDevice: no CUDA-capable"),
     (0, None, None, "cupy is installed but no CUDA device is present"),
     (1, None, 2, "CUDA device 2 was asked for but cupy sees 1 device(s)")],
)  # fmt: skip
def test_cupy_without_a_usable_gpu_says_why(monkeypatch, count, error, device, reason):
    _fake_cupy(monkeypatch, count, error)
    backend = CupyBackend(device=device)
    assert backend.unavailable_reason().startswith(reason)
    with pytest.raises(backends.BackendUnavailableError) as info:
        backends.get(backend)
    assert str(info.value) == (
        f"backend 'cupy' is not available here: {backend.unavailable_reason()}; "
        "available backends: numpy"
    )


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed here")
def test_cupy_not_installed_is_a_clear_error():
    with pytest.raises(backends.BackendUnavailableError) as info:
        backends.get("cupy")
    assert "cupy is not installed (pip install 'xconv[cupy]')" in str(info.value)


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
def test_torch_device_argument_is_checked():
    with pytest.raises(TypeError, match="`device` must be None, a device string"):
        TorchBackend(device=1.5)
    assert (
        TorchBackend(device="gpu:x")
        .unavailable_reason()
        .startswith("torch does not know the device 'gpu:x'")
    )
    assert TorchBackend(device=torch.device("cpu")).unavailable_reason() is None


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.skipif(HAS_TORCH_CUDA, reason="torch has a CUDA device here")
def test_torch_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(backends.BackendUnavailableError, match="torch sees no CUDA device"):
        backends.get(TorchBackend(device="cuda"))


class _HostDLPack:
    """A host array seen only through the DLPack protocol, like another library's."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
def test_torch_backend_with_a_device_copies_tensors_and_dlpack_arrays():
    backend = TorchBackend(device="cpu")
    assert backend.default_device == torch.device("cpu")
    tensor = torch.zeros(3)
    copy = backend.asarray(tensor, dtype="float64")
    same_dtype = backend.asarray(tensor)
    assert copy.dtype == torch.float64
    assert same_dtype.data_ptr() != tensor.data_ptr()
    host = np.arange(4.0)
    from_dlpack = backend.asarray(_HostDLPack(host))
    host[0] = 9.0
    assert from_dlpack.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
def test_torch_backend_on_an_explicit_device_trains_like_the_default_one():
    from xconv._cli import build_digits_cnn
    from xconv.data import load_digits

    X, y = load_digits()
    losses = []
    for backend in (backends.get("torch"), TorchBackend(device="cpu")):
        model = build_digits_cnn(seed=3, backend=backend, dtype="float64")
        losses.append([model.train_on_batch(X[:32], y[:32])[0] for _ in range(2)])
        assert model.layers[0].params["weight"].device == torch.device("cpu")
    assert losses[0] == losses[1]


# -- the GPU benchmark, on a CPU -------------------------------------------------------------


@pytest.fixture
def gpu_bench(benchmarks_module):
    return benchmarks_module("_gpu")


@pytest.mark.skipif(HAS_CUPY, reason="CuPy has a GPU here: the benchmark would run")
def test_gpu_benchmark_without_a_gpu_fails_soft(gpu_bench, capsys):
    args = argparse.Namespace(suite="all", gpu=True, quick=True, repeats=None, out=None)
    result = gpu_bench.run(args)
    assert result["benchmark"] == "gpu"
    assert result["status"] == "skipped"
    assert result["reason"] == CupyBackend().unavailable_reason()
    assert "python" in result["environment"]
    assert "GPU benchmark skipped: xconv's CuPy backend cannot run here" in capsys.readouterr().out


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
def test_gpu_benchmark_dry_run_on_the_cpu(gpu_bench):
    shape = gpu_bench.cases(dry=True)[0]
    rows = gpu_bench.conv_table(device="cpu", repeats=1, shapes=[shape])
    assert [r["pass"] for r in rows] == ["fwd", "fwd+bwd"]
    assert all(r["xconv_ms"] > 0 and r["torch_ms"] > 0 for r in rows)
    train = gpu_bench.train_table(device="cpu", epochs={"cifar": 1}, n_images=8)
    assert train[0]["xconv"]["images_per_s"] > 0
    assert train[0]["torch"]["images_per_s"] > 0
    rows = [dict(r, shape=[256, *r["shape"][1:]], ratio=2.0) for r in rows]
    result = {"date": "today", "conv": {"rows": rows}, "train": {"rows": train}}
    result["summary"] = summary = gpu_bench.summary(result)
    assert summary["geomean_fwd_bwd_batch256"] == pytest.approx(2.0)
    assert summary["goal_fwd_bwd_batch256_at_most_1_5"] is False
    big = ", ".join(map(str, rows[1]["shape"]))
    assert f"| {big} | fwd+bwd | {rows[1]['xconv_ms']:.3f} |" in gpu_bench.report(result)
    assert len(gpu_bench.cases()) == 14


def test_gpu_benchmark_keeps_the_rows_of_a_worker_that_ran_out_of_time(gpu_bench, monkeypatch):
    import json
    import subprocess

    row = {"shape": [1] * 8, "pass": "fwd", "xconv_ms": 1.0, "torch_ms": 2.0, "ratio": 0.5}

    def timed_out(command, **kwargs):
        assert command[-3:] == ["conv", "--device", "cuda"]
        assert kwargs["env"]["CUPY_TF32"] == "0"
        assert kwargs["env"]["NVIDIA_TF32_OVERRIDE"] == "0"
        # one whole row, then one cut off when the worker was killed
        printed = json.dumps({"row": row}) + '\n{"row": {"shape'
        raise subprocess.TimeoutExpired(command, kwargs["timeout"], output=printed.encode())

    monkeypatch.setattr(gpu_bench.subprocess, "run", timed_out)
    result = gpu_bench._run_worker(
        "conv", argparse.Namespace(quick=False, repeats=None), 3.0, "cuda"
    )
    assert result == {"part": "conv", "rows": [row], "error": "timed out after 3 s"}


# -- on a GPU ----------------------------------------------------------------------------------


@pytest.fixture
def cupy_backend():
    if not HAS_CUPY:
        pytest.skip(NEEDS_GPU)
    return backends.get("cupy")


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(("shape", "options"), GEOMETRIES[:25], ids=IDS[:25])
def test_cupy_kernels_match_the_generic_code(cupy_backend, dtype, op, shape, options):
    generic = _generic(op)
    geometry = _build(shape, options)
    a = cupy_backend.asarray(_input(op, shape, geometry, dtype, seed=4))
    result = KERNELS[op](a, geometry)
    assert result.dtype == a.dtype
    assert result.device == a.device
    # col2im: the same additions in the same order, so equal to the last bit
    expected = generic(a, geometry, cupy_backend.namespace)
    np.testing.assert_array_equal(result.get(), expected.get())


@requires_gpu
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(("shape", "options"), GEOMETRIES[:5], ids=IDS[:5])
def test_cupy_kernels_with_64_bit_indices(cupy_backend, monkeypatch, op, shape, options):
    monkeypatch.setattr(_cupy_kernels, "_INT32_LIMIT", -1)  # the path for huge arrays
    geometry = _build(shape, options)
    a = cupy_backend.asarray(_input(op, shape, geometry, "float32", seed=5))
    expected = _generic(op)(a, geometry, cupy_backend.namespace)
    np.testing.assert_array_equal(KERNELS[op](a, geometry).get(), expected.get())


@requires_gpu
def test_cupy_kernels_leave_other_dtypes_to_the_generic_code(cupy_backend):
    assert _cupy_kernels.supports(np.dtype("float32"))
    assert not _cupy_kernels.supports(np.dtype("float16"))
    x = cupy_backend.asarray(np.arange(32.0).reshape(1, 2, 4, 4), dtype="float16")
    cols = im2col(x, 3, padding=1)  # the generic path
    assert cols.dtype == x.dtype
    np.testing.assert_array_equal(cols.get(), im2col(x.get(), 3, padding=1))
    with pytest.raises(TypeError, match="float32 or float64"):
        _cupy_kernels.unfold(x, ConvGeometry.build((4, 4), 3, padding=1))


CONV_CASES = [
    ((2, 4, 9, 9), (6, 4, 3, 3), {"stride": 1, "padding": 1}),
    ((3, 4, 10, 8), (4, 2, 3, 2), {"stride": (2, 1), "padding": "same", "groups": 2}),
    ((2, 3, 11, 11), (5, 3, 3, 3), {"stride": 2, "padding": ((1, 2), (0, 1)), "dilation": 2}),
]


@requires_gpu
@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize(("x_shape", "w_shape", "options"), CONV_CASES)
def test_cupy_conv2d_and_backward_match_numpy(
    cupy_backend, dtype, tolerance, x_shape, w_shape, options
):
    numpy_backend = backends.get("numpy")
    rng = np.random.default_rng(5)
    host = [rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, (w_shape[0],))]
    results = []
    for backend in (cupy_backend, numpy_backend):
        x, w, b = (backend.asarray(a) for a in host)
        out = conv2d(x, w, b, **options)
        grad = backend.asarray(np.ones(out.shape, dtype=dtype))
        grads = conv2d_backward(grad, x, w, **options)
        results.append([backend.to_numpy(a) for a in (out, *grads)])
        if backend is cupy_backend:
            assert all(a.device == x.device for a in (out, *grads))
    for ours, reference in zip(*results, strict=True):
        assert relative_error(ours, reference) < tolerance


@requires_gpu
def test_cupy_random_numbers_device_and_synchronize(cupy_backend):
    import cupy

    numbers = cupy_backend.random_normal((3, 4), rng=np.random.default_rng(6), dtype="float64")
    expected = backends.get("numpy").random_normal(
        (3, 4), rng=np.random.default_rng(6), dtype="float64"
    )
    np.testing.assert_array_equal(cupy_backend.to_numpy(numbers), expected)
    assert numbers.device == cupy.cuda.Device()
    cupy_backend.synchronize()
    cupy_backend.synchronize(numbers)
    # the last device (the only one on a one-GPU machine); CuPy computes on the
    # current device, so work on another one runs inside its `with` block
    last = cupy_backend.with_device(cupy.cuda.runtime.getDeviceCount() - 1)
    x, w = last.asarray(np.ones((1, 1, 1, 2))), last.asarray(np.ones((1, 1, 1, 1)))
    with last.default_device:
        out = conv2d(x, w)
    assert x.device == w.device == out.device == last.default_device


@requires_gpu
@pytest.mark.skipif(not HAS_TORCH_CUDA, reason="needs PyTorch with CUDA")
def test_torch_cuda_and_cupy_agree_on_one_card_and_share_by_dlpack(cupy_backend):
    torch_cuda = backends.get(TorchBackend(device="cuda"))
    rng = np.random.default_rng(7)
    host = [rng.standard_normal(s) for s in ((2, 3, 8, 8), (4, 3, 3, 3), (4,))]
    results = []
    for backend in (cupy_backend, torch_cuda):
        x, w, b = (backend.asarray(a) for a in host)
        out = conv2d(x, w, b, padding=1)
        grads = conv2d_backward(backend.asarray(np.ones((2, 4, 8, 8))), x, w, padding=1)
        results.append([backend.to_numpy(a) for a in (out, *grads)])
        if backend is torch_cuda:
            assert all(a.device.type == "cuda" for a in (out, *grads))
            # a CUDA tensor read by the CuPy backend, and back, without the host
            assert (
                relative_error(cupy_backend.to_numpy(cupy_backend.asarray(out)), results[-1][0])
                == 0.0
            )
            back = torch_cuda.asarray(cupy_backend.asarray(out))
            assert back.device.type == "cuda"
            assert torch.equal(back, out)
    for ours, theirs in zip(*results, strict=True):
        assert relative_error(ours, theirs) < 1e-12


@requires_gpu
def test_cupy_model_trains_like_numpy(cupy_backend):
    from xconv._cli import build_digits_cnn
    from xconv.data import load_digits

    X, y = load_digits()
    losses = []
    for backend in ("cupy", "numpy"):
        model = build_digits_cnn(seed=1, backend=backend, dtype="float64")
        losses.append([model.train_on_batch(X[:64], y[:64])[0] for _ in range(3)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-7)


# -- delegation on a GPU (issue 18): torch CUDA tensors to cuDNN, JAX arrays to XLA ------


def _jax_gpu() -> Any:
    """JAX's first GPU device, or None (no JAX, or JAX without a GPU)."""
    try:
        import jax

        return jax.devices("gpu")[0]
    except Exception:  # no JAX, or a JAX without a GPU backend
        return None


def _host(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _conv_case(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(s) for s in ((4, 6, 11, 9), (8, 3, 3, 3), (8,), (4, 8, 6, 5))]


def _conv_both_ways(to_array: Any, host: list[np.ndarray]) -> list[list[np.ndarray]]:
    """conv2d and its three gradients (stride 2, 'same', groups 2), delegated and not."""
    x, w, b, g = (to_array(a) for a in host)
    results = []
    for delegate in (True, False):
        with xconv.config.using(delegate=delegate):
            out = conv2d(x, w, b, stride=2, padding="same", groups=2)
            grads = conv2d_backward(g, x, w, stride=2, padding="same", groups=2)
        results.append([_host(a) for a in (out, *grads)])
    return results


@pytest.mark.skipif(not HAS_TORCH_CUDA, reason="needs PyTorch with CUDA")
def test_torch_cuda_convolutions_run_in_torch_and_agree_with_xconvs_own(monkeypatch):
    import torch.nn.functional as F

    calls = []
    native = F.conv2d

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].device.type)
        return native(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counted)
    host = _conv_case(np.random.default_rng(3))
    delegated, generic = _conv_both_ways(lambda a: torch.from_numpy(a).to("cuda"), host)
    assert calls, "the delegated conv2d never called torch.nn.functional.conv2d"
    assert set(calls) == {"cuda"}  # the forward ran in cuDNN, on the card
    for ours, theirs in zip(delegated, generic, strict=True):
        assert relative_error(ours, theirs) < 1e-12


@pytest.mark.skipif(not HAS_TORCH_CUDA, reason="needs PyTorch with CUDA")
def test_torch_cuda_model_trains_like_numpy():
    from xconv._cli import build_digits_cnn
    from xconv.data import load_digits

    X, y = load_digits()
    losses = []
    for backend in (TorchBackend(device="cuda"), "numpy"):
        model = build_digits_cnn(seed=1, backend=backend, dtype="float64")
        losses.append([model.train_on_batch(X[:64], y[:64])[0] for _ in range(3)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-7)


@pytest.mark.skipif(_jax_gpu() is None, reason="needs JAX with a GPU")
def test_jax_gpu_convolutions_agree_with_xconvs_own_under_jit():
    import jax

    device = _jax_gpu()
    host = [a.astype(np.float32) for a in _conv_case(np.random.default_rng(4))]
    # JAX's default float32 precision on a GPU is TF32 (10-bit mantissas) in both paths,
    # each rounding in its own order; "highest" compares the float32 arithmetic itself
    with jax.default_matmul_precision("highest"):
        delegated, generic = _conv_both_ways(lambda a: jax.device_put(a, device), host)
        x, w, b = (jax.device_put(a, device) for a in host[:3])
        jitted = jax.jit(lambda x, w, b: conv2d(x, w, b, stride=2, padding="same", groups=2))
        out = jitted(x, w, b)
    assert out.devices() == {device}
    assert relative_error(np.asarray(out), generic[0]) < 1e-5
    for ours, theirs in zip(delegated, generic, strict=True):
        assert relative_error(ours, theirs) < 1e-5  # float32: XLA sums in its own order

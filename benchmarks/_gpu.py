"""``python -m benchmarks --gpu``: xconv on CuPy against PyTorch on CUDA (cuDNN).

conv: `conv2d` forward and forward+backward (`conv2d_backward`: input, weight and bias
gradients; autograd of the same three in PyTorch) on the seven anchor shapes and their
batch-256 versions, float32 with TF32 off on both sides (``CUPY_TF32=0``,
``NVIDIA_TF32_OVERRIDE=0``, ``torch.backends.{cuda.matmul,cudnn}.allow_tf32 = False``),
``cudnn.benchmark`` on. GPU time per call by CUDA events after warm-up, the median of
repeats. Then the batch-256 shapes forward+backward with TF32 allowed on both sides.
train: images per second of the digits CNN and of a CIFAR-sized CNN on synthetic
3x32x32 data (Adam, batch 256), xconv on CuPy against the same networks in PyTorch.

Each part runs in a worker process, ``python -m benchmarks._gpu conv|conv-tf32|train``
(CuPy reads ``CUPY_TF32`` when it is imported). Without CuPy and a CUDA device `run`
prints why and returns a result that says so. ``--device cpu`` runs a worker on NumPy
and PyTorch's CPU with small sizes and wall-clock timers: a dry run of the code paths.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import geomean
from ._conv_worker import SHAPES
from ._environment import child_environment, describe
from ._train_worker import torch_digits_cnn

# (N, C, H, W, F, k, stride, pad): the CPU suite's anchor shapes
ANCHORS = tuple(SHAPES)
BATCH = 256
#: xconv.config.workspace_bytes for the workers: the largest batch-256 shape's columns
#: (256 * 56 * 56 by 64 * 3 * 3 float32, 1.85 GB) fit in one piece
GPU_WORKSPACE_BYTES = 4 * 2**30
PASSES = ("fwd", "fwd+bwd")


def cases(*, dry: bool = False) -> list[tuple[int, ...]]:
    """The anchors, then their batch-256 versions (small stand-ins for a dry run)."""
    if dry:
        return [
            (2, c, min(h, 12), min(w, 12), min(f, 16), k, s, p)
            for (_, c, h, w, f, k, s, p) in ANCHORS[:3]
        ]
    return [*ANCHORS, *((BATCH, *shape[1:]) for shape in ANCHORS)]


# -- timing ---------------------------------------------------------------------------------


class Clock:
    """Milliseconds per call of a function: CUDA events on a GPU, the wall clock on a CPU.

    `kind` is ``"cupy"``, ``"torch"`` (CUDA events of that library, recorded on its
    current stream) or ``"host"``.
    """

    def __init__(self, kind: str, *, repeats: int, target_ms: float = 10.0) -> None:
        self.kind = kind
        self.repeats = repeats
        self.target_ms = target_ms

    def _elapsed_ms(self, fn: Callable[[], Any], calls: int) -> float:
        if self.kind == "cupy":
            import cupy

            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            return float(cupy.cuda.get_elapsed_time(start, end))
        if self.kind == "torch":
            import torch

            begin = torch.cuda.Event(enable_timing=True)
            finish = torch.cuda.Event(enable_timing=True)
            begin.record()
            for _ in range(calls):
                fn()
            finish.record()
            finish.synchronize()
            return float(begin.elapsed_time(finish))
        wall = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - wall) * 1e3

    def median_ms(self, fn: Callable[[], Any]) -> float:
        """Warm up, size the calls per repeat to about `target_ms`, then time repeats."""
        for _ in range(2):  # kernel compilation, cuDNN algorithm search, memory pools
            fn()
        once = max(self._elapsed_ms(fn, 1), 1e-3)
        calls = max(1, min(50, math.ceil(self.target_ms / once)))
        return statistics.median(self._elapsed_ms(fn, calls) / calls for _ in range(self.repeats))


# -- conv2d ---------------------------------------------------------------------------------


def _xconv_calls(shape: tuple[int, ...], backend: Any, rng: np.random.Generator) -> dict[str, Any]:
    from xconv.functional import conv2d, conv2d_backward

    n, c, h, w, f, k, stride, pad = shape
    x = backend.random_normal((n, c, h, w), rng=rng)
    weight = backend.random_normal((f, c, k, k), rng=rng, std=0.1)
    bias = backend.random_normal((f,), rng=rng)
    out = conv2d(x, weight, bias, stride=stride, padding=pad)
    grad = backend.random_normal(tuple(out.shape), rng=rng)

    def forward() -> Any:
        return conv2d(x, weight, bias, stride=stride, padding=pad)

    def forward_backward() -> Any:
        conv2d(x, weight, bias, stride=stride, padding=pad)
        return conv2d_backward(grad, x, weight, stride=stride, padding=pad)

    return {"fwd": forward, "fwd+bwd": forward_backward}


def _torch_calls(shape: tuple[int, ...], device: str, rng: np.random.Generator) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    n, c, h, w, f, k, stride, pad = shape

    def tensor(size: tuple[int, ...], std: float = 1.0) -> Any:
        host = rng.normal(0.0, std, size=size).astype(np.float32)
        return torch.from_numpy(host).to(device).requires_grad_()

    x, weight, bias = tensor((n, c, h, w)), tensor((f, c, k, k), 0.1), tensor((f,))
    with torch.no_grad():
        out_shape = F.conv2d(x, weight, bias, stride=stride, padding=pad).shape
    grad = tensor(tuple(out_shape)).detach()

    def forward() -> Any:
        with torch.no_grad():
            return F.conv2d(x, weight, bias, stride=stride, padding=pad)

    def forward_backward() -> Any:
        out = F.conv2d(x, weight, bias, stride=stride, padding=pad)
        return torch.autograd.grad(out, (x, weight, bias), grad)

    return {"fwd": forward, "fwd+bwd": forward_backward}


def conv_table(
    *,
    device: str,
    repeats: int,
    shapes: list[tuple[int, ...]],
    passes: tuple[str, ...] = PASSES,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_torch: bool = False,
) -> list[dict[str, Any]]:
    """Rows (shape, pass, xconv_ms, torch_ms, ratio) for xconv and PyTorch on `device`.

    On ``"cuda"`` xconv runs on CuPy and PyTorch on CUDA (None where PyTorch has no
    CUDA); on ``"cpu"`` xconv runs on NumPy and PyTorch on the CPU. With `on_torch`
    xconv runs on torch tensors of that device instead: its delegation to PyTorch.
    """
    import xconv.backends as backends
    from xconv.backends._torch import TorchBackend

    gpu = device == "cuda"
    if on_torch:
        backend = backends.get(TorchBackend(device=device))
    else:
        backend = backends.get("cupy" if gpu else "numpy")
    torch_device = device if not gpu or _torch_cuda_reason() is None else None
    xconv_clock = Clock(("torch" if on_torch else "cupy") if gpu else "host", repeats=repeats)
    torch_clock = Clock("torch" if gpu else "host", repeats=repeats)
    rows = []
    for shape in shapes:
        rng = np.random.default_rng(0)
        ours = _xconv_calls(shape, backend, rng)
        theirs = _torch_calls(shape, torch_device, rng) if torch_device else None
        for name in passes:
            xconv_ms = xconv_clock.median_ms(ours[name])
            torch_ms = torch_clock.median_ms(theirs[name]) if theirs else None
            rows.append(
                {
                    "shape": list(shape),
                    "pass": name,
                    "xconv_ms": xconv_ms,
                    "torch_ms": torch_ms,
                    "ratio": xconv_ms / torch_ms if torch_ms else None,
                }
            )
            if on_row is not None:
                on_row(rows[-1])
        del ours, theirs
        _free_memory(gpu)
    return rows


def jax_table(
    *, repeats: int, shapes: list[tuple[int, ...]], on_row: Callable[[dict[str, Any]], None] | None
) -> list[dict[str, Any]]:
    """Rows for xconv on JAX arrays (jitted, delegated to XLA) against `lax.conv`, fwd+bwd.

    On JAX's default device (its GPU where it has one); wall clock around
    `block_until_ready`.
    """
    from ._delegation import _jax_steps

    clock = Clock("host", repeats=repeats)
    rows = []
    for shape in shapes:
        _, native = _jax_steps("jax", shape)
        _, ours = _jax_steps("xconv-jax", shape)
        xconv_ms, native_ms = clock.median_ms(ours), clock.median_ms(native)
        rows.append(
            {
                "shape": list(shape),
                "pass": "fwd+bwd",
                "xconv_ms": xconv_ms,
                "torch_ms": native_ms,
                "ratio": xconv_ms / native_ms,
            }
        )
        if on_row is not None:
            on_row(rows[-1])
    return rows


def _jax_device() -> str:
    try:
        import jax

        return str(jax.devices()[0])
    except Exception as exc:  # JAX missing or broken: say so in the table
        return f"unavailable ({exc})"


def _free_memory(gpu: bool) -> None:
    """Give cached GPU memory back between shapes, so the two libraries share the card."""
    if not gpu:
        return
    import cupy

    cupy.get_default_memory_pool().free_all_blocks()
    if _torch_cuda_reason() is None:
        import torch

        torch.cuda.empty_cache()


def _torch_cuda_reason() -> str | None:
    from xconv.backends._torch import TorchBackend

    return TorchBackend(device="cuda").unavailable_reason()


# -- training ---------------------------------------------------------------------------


def _xconv_cifar_cnn(backend: str) -> Any:
    from xconv.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
    from xconv.model import NeuralNetwork
    from xconv.optimizers import Adam

    model = NeuralNetwork(Adam(), "cross_entropy", seed=0, backend=backend)
    model.add(Conv2D(32, (3, 3), input_shape=(3, 32, 32), padding="same"))
    for n_filters in (64, 128):
        model.add(Activation("relu"))
        model.add(MaxPooling2D((2, 2)))
        model.add(Conv2D(n_filters, (3, 3), padding="same"))
    model.add(Activation("relu"))
    model.add(MaxPooling2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(256))
    model.add(Activation("relu"))
    model.add(Dense(10))
    model.add(Activation("softmax"))
    return model


def _torch_model(name: str) -> Any:
    """The digits CNN (as benchmarks._train_worker builds it) or the CIFAR-sized CNN."""
    from torch import nn

    if name == "digits":
        return torch_digits_cnn()
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 10),
    )  # fmt: skip


def _data(name: str, n_images: int) -> tuple[np.ndarray, ...]:
    """(X_train, X_test, y_train, y_test): the digits split, or synthetic CIFAR-sized data."""
    if name == "digits":
        from xconv.data import load_digits, train_test_split

        X, y = load_digits()
        return tuple(train_test_split(X, y, test_size=0.4, seed=0))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_images, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=n_images)
    return X, X[:BATCH], y, y[:BATCH]


def _train_xconv(name: str, device: str, epochs: int, n_images: int) -> dict[str, float]:
    import xconv.backends as backends
    from xconv.models import digits_cnn as build_digits_cnn

    backend = "cupy" if device == "cuda" else "numpy"
    X_train, X_test, y_train, y_test = _data(name, n_images)
    model = (
        build_digits_cnn(seed=0, backend=backend)
        if name == "digits"
        else _xconv_cifar_cnn(backend)
    )
    model.fit(X_train, y_train, 1, BATCH)  # warm-up: kernel compilation, memory pools
    synchronize = backends.get(backend).synchronize
    synchronize()
    start = time.perf_counter()
    model.fit(X_train, y_train, epochs, BATCH)
    synchronize()
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(X_test, y_test)[1]
    return {
        "images_per_s": epochs * len(X_train) / seconds,
        "seconds": seconds,
        "accuracy": accuracy,
    }


def _train_torch(name: str, device: str, epochs: int, n_images: int) -> dict[str, float]:
    import torch

    torch.manual_seed(0)
    X_train, X_test, y_train, y_test = (
        torch.from_numpy(a).to(device) for a in _data(name, n_images)
    )
    model = _torch_model(name).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_function = torch.nn.CrossEntropyLoss()  # softmax folded into the loss

    def epoch() -> None:
        model.train()
        for batch in torch.randperm(len(X_train), device=device).split(BATCH):
            optimizer.zero_grad()
            loss = loss_function(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            loss.item()  # xconv reads every batch's loss too

    epoch()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_test).argmax(dim=1) == y_test).double().mean().item()
    return {
        "images_per_s": epochs * len(X_train) / seconds,
        "seconds": seconds,
        "accuracy": accuracy,
    }


def train_table(
    *,
    device: str,
    epochs: dict[str, int],
    n_images: int,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Images per second training each network with xconv and with PyTorch on `device`."""
    with_torch = device == "cpu" or _torch_cuda_reason() is None
    rows = []
    for name, n_epochs in epochs.items():
        ours = _train_xconv(name, device, n_epochs, n_images)
        theirs = _train_torch(name, device, n_epochs, n_images) if with_torch else None
        rows.append(
            {
                "model": name,
                "epochs": n_epochs,
                "xconv": ours,
                "torch": theirs,
                "throughput_ratio": ours["images_per_s"] / theirs["images_per_s"]
                if theirs
                else None,
            }
        )
        if on_row is not None:
            on_row(rows[-1])
    return rows


# -- worker processes -------------------------------------------------------------------


def _gpu_description() -> dict[str, Any]:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    info: dict[str, Any] = {
        "gpu": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        "cupy": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
        "CUPY_TF32": os.environ.get("CUPY_TF32"),
        "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE"),
    }
    if _torch_cuda_reason() is None:
        import torch

        info["torch"] = torch.__version__
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def _configure_torch(device: str, tf32: bool) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True  # cuDNN's fastest algorithm per shape
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)


def worker(
    part: str,
    *,
    device: str,
    quick: bool,
    repeats: int | None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One part (``conv``, ``conv-tf32`` or ``train``) of the benchmark, in this process.

    `on_row` sees every row as soon as it is measured.
    """
    dry = device == "cpu"
    _configure_torch(device, tf32=part == "conv-tf32")
    result: dict[str, Any] = {"part": part, "device": device, "environment": describe()}
    if not dry:
        result["gpu"] = _gpu_description()
    repeats = repeats or (3 if quick or dry else 5)
    shapes = cases(dry=dry)
    if part == "conv":
        result["rows"] = conv_table(device=device, repeats=repeats, shapes=shapes, on_row=on_row)
    elif part == "conv-tf32":
        big = [s for s in shapes if s[0] == BATCH] or shapes
        result["rows"] = conv_table(
            device=device, repeats=repeats, shapes=big, passes=("fwd+bwd",), on_row=on_row
        )
    elif part == "delegation":
        if _torch_cuda_reason() is None or dry:
            result["rows"] = conv_table(
                device=device, repeats=repeats, shapes=shapes, on_row=on_row, on_torch=True
            )
        result["jax_device"] = _jax_device()
        if not result["jax_device"].startswith("unavailable"):
            result["jax_rows"] = jax_table(
                repeats=repeats, shapes=list(ANCHORS[:3] if dry else ANCHORS), on_row=on_row
            )
    elif part == "train":
        epochs = {
            "digits": 1 if dry else (5 if quick else 20),
            "cifar": 1 if dry else (2 if quick else 4),
        }
        n_images = 2 * BATCH if dry else 40 * BATCH
        result["rows"] = train_table(
            device=device, epochs=epochs, n_images=n_images, on_row=on_row
        )
    else:
        raise ValueError(
            f"`part` must be 'conv', 'conv-tf32', 'delegation' or 'train', got {part!r}"
        )
    return result


def _worker_environment(part: str) -> dict[str, str]:
    env = child_environment()
    # the largest shape in one matrix product (the GPU default, 1 GiB, would make two)
    env.setdefault("XCONV_WORKSPACE_BYTES", str(GPU_WORKSPACE_BYTES))
    if part == "conv-tf32":
        env["CUPY_TF32"] = "1"
        env.pop("NVIDIA_TF32_OVERRIDE", None)
    else:
        env["CUPY_TF32"] = "0"
        env["NVIDIA_TF32_OVERRIDE"] = "0"  # cuBLAS and cuDNN: no TF32, whatever asks
    return env


def _run_worker(
    part: str, args: argparse.Namespace, timeout: float, device: str
) -> dict[str, Any]:
    """Run one part in a worker; on a timeout or a crash, keep the rows it printed."""
    command = [sys.executable, "-m", "benchmarks._gpu", part, "--device", device]
    if args.quick:
        command.append("--quick")
    if args.repeats:
        command += ["--repeats", str(args.repeats)]
    error = None
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=_worker_environment(part),
            timeout=timeout, check=False,
        )  # fmt: skip
        stdout, stderr = done.stdout, done.stderr
        if done.returncode != 0:
            error = f"exit status {done.returncode}: {stderr.strip()[-2000:]}"
    except subprocess.TimeoutExpired as exc:
        stdout, stderr = _text(exc.stdout), _text(exc.stderr)
        error = f"timed out after {timeout:.0f} s"
    rows, final = [], None
    for line in stdout.splitlines():
        try:
            record = json.loads(line) if line.startswith("{") else {}
        except json.JSONDecodeError:
            continue  # a line cut off when the worker was stopped
        if "row" in record:
            rows.append(record["row"])
        elif "result" in record:
            final = record["result"]
    result: dict[str, Any] = final if final is not None else {"part": part, "rows": rows}
    if error is not None:
        result["error"] = error
    return result


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


# -- the parent: python -m benchmarks --gpu ------------------------------------------------

#: seconds each worker may take at most (the device script gives the benchmark 150 s)
TIME_LIMITS = {"conv": 60.0, "train": 55.0, "delegation": 60.0, "conv-tf32": 25.0}


def _describe() -> dict[str, Any]:
    """`describe()` as a worker process sees it."""
    code = (
        "import json; from benchmarks._environment import describe; print(json.dumps(describe()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env=child_environment(), check=True,
    )  # fmt: skip
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def unavailable_reason() -> str | None:
    """Why the GPU benchmark cannot run here (no CuPy, no CUDA device), or None."""
    from xconv.backends._cupy import CupyBackend

    return CupyBackend().unavailable_reason()


def run(args: argparse.Namespace, *, device: str = "cuda") -> dict[str, Any]:
    """Run the GPU benchmark (see the module docstring); print tables, return the result.

    ``device="cpu"`` runs the same workers as a dry run on NumPy and PyTorch's CPU.
    """
    result: dict[str, Any] = {"benchmark": "gpu", "date": time.strftime("%Y-%m-%d")}
    reason = unavailable_reason() if device == "cuda" else None
    if reason is not None:
        print(
            f"GPU benchmark skipped: xconv's CuPy backend cannot run here ({reason}). "
            "It needs CuPy and a CUDA device (benchmarks/gpu-check.sh runs it on one)."
        )
        result.update(status="skipped", reason=reason, environment=_describe())
        return result
    deadline = time.monotonic() + sum(TIME_LIMITS.values())
    parts = ("conv", "train") if args.quick else ("conv", "train", "delegation", "conv-tf32")
    for part in parts:
        left = min(TIME_LIMITS[part], deadline - time.monotonic())
        result[part] = (
            _run_worker(part, args, left, device) if left > 5 else {"error": "no time left"}
        )
    conv = result["conv"]
    result["environment"] = conv.get("environment") or _describe()
    result["gpu"] = conv.get("gpu")
    result["status"] = "ok" if not any("error" in result[p] for p in parts) else "partial"
    result["summary"] = summary(result)
    print(report(result))
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Geometric means of the xconv / PyTorch ratios, and the issue's goals."""
    rows = result.get("conv", {}).get("rows", [])

    def ratios(batch: int | None, name: str) -> list[float]:
        return [
            r["ratio"]
            for r in rows
            if r["ratio"] and r["pass"] == name and (batch is None or r["shape"][0] == batch)
        ]

    big = geomean(ratios(BATCH, "fwd+bwd"))
    delegation = result.get("delegation", {})
    on_torch = [r["ratio"] for r in delegation.get("rows", []) if r["pass"] == "fwd+bwd"]
    on_jax = [r["ratio"] for r in delegation.get("jax_rows", [])]
    training = [r["throughput_ratio"] for r in result.get("train", {}).get("rows", [])]
    known = [t for t in training if t is not None]
    return {
        "geomean_fwd_bwd_batch256": big,
        "geomean_fwd_bwd_all": geomean(ratios(None, "fwd+bwd")),
        "geomean_fwd_all": geomean(ratios(None, "fwd")),
        "goal_fwd_bwd_batch256_at_most_1_5": None if big is None else big <= 1.5,
        "delegation_torch_cuda_geomean_fwd_bwd": geomean(on_torch) if on_torch else None,
        "delegation_jax_geomean_fwd_bwd": geomean(on_jax) if on_jax else None,
        "goal_training_at_least_half_of_torch": min(known) >= 0.5 if known else None,
    }


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(result: dict[str, Any]) -> str:
    """The result as markdown tables."""
    gpu = result.get("gpu") or {}
    card = f"GPU: {gpu.get('gpu', '?')}, cupy {gpu.get('cupy', '?')}"
    lines = [f"{card}, torch {gpu.get('torch', '?')}, cuDNN {gpu.get('cudnn', '?')}", ""]
    for part, title in (("conv", "float32, TF32 off"), ("conv-tf32", "TF32 allowed")):
        if part not in result:
            continue
        lines += [f"conv2d, {title}: ms per call (CUDA events, median)", ""]
        lines += ["| N, C, H, W, F, k, stride, pad | pass | xconv CuPy | PyTorch cuDNN | ratio |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for r in result[part].get("rows", []):
            shape = ", ".join(map(str, r["shape"]))
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            times = f"{_ms(r['xconv_ms'])} | {_ms(r['torch_ms'])}"
            lines.append(f"| {shape} | {r['pass']} | {times} | {ratio} |")
        if "error" in result[part]:
            lines.append(f"\n{part} stopped: {_last_line(result[part]['error'])}")
        lines.append("")
    if "delegation" in result:
        part = result["delegation"]
        lines += [
            "xconv delegated to the library's own convolution on the GPU, fwd+bwd "
            f"(JAX on {part.get('jax_device', '?')}): ms per call, median",
            "",
            "| N, C, H, W, F, k, stride, pad | library | pass | xconv on its arrays | native "
            "| ratio |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for library, key in (("torch CUDA", "rows"), ("JAX (jit)", "jax_rows")):
            for r in part.get(key, []):
                shape = ", ".join(map(str, r["shape"]))
                ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
                times = f"{_ms(r['xconv_ms'])} | {_ms(r['torch_ms'])}"
                lines.append(f"| {shape} | {library} | {r['pass']} | {times} | {ratio} |")
        if "error" in part:
            lines.append(f"\ndelegation stopped: {_last_line(part['error'])}")
        lines.append("")
    if "train" in result:
        lines += ["training, images per second (batch 256, Adam, after a warm-up epoch)", ""]
        lines += ["| model | epochs | xconv CuPy | PyTorch | ratio | accuracy xconv / torch |"]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        for r in result["train"].get("rows", []):
            theirs = r["torch"] or {}
            ratio = "-" if r["throughput_ratio"] is None else f"{r['throughput_ratio']:.2f}"
            lines.append(
                f"| {r['model']} | {r['epochs']} | {r['xconv']['images_per_s']:.0f} | "
                f"{theirs.get('images_per_s', 0):.0f} | {ratio} | "
                f"{r['xconv']['accuracy']:.3f} / {theirs.get('accuracy', float('nan')):.3f} |"
            )
        if "error" in result["train"]:
            lines.append(f"\ntrain stopped: {_last_line(result['train']['error'])}")
        lines.append("")
    for key, value in result.get("summary", {}).items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"- {key}: {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._gpu", description=__doc__)
    parser.add_argument("part", choices=["conv", "conv-tf32", "delegation", "train"])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args(argv)

    def emit(row: dict[str, Any]) -> None:
        print(json.dumps({"row": row}), flush=True)

    result = worker(
        args.part, device=args.device, quick=args.quick, repeats=args.repeats, on_row=emit
    )
    print(json.dumps({"result": result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sphinx extension: the benchmarks page's tables and plots, made from the result files.

At each build it reads ``benchmarks/results/*.json`` and writes
``docs/_generated/benchmarks.md`` (tables, included by ``benchmarks.md``) and one PNG
per plot beside it. Nothing is typed by hand, so the page and the results agree.

It also reads xconv's docstrings as they are written (plain text with backticks, not
strict reST): a lone ``*`` (``(N, *shape)``, ``**options``) is literal, a parameter
list wrapped over two lines is one entry, and a constant shows no docstring of its
type (``dict``'s).
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _conv_section(name: str, run: dict[str, Any], out: Path) -> str:
    implementations = [key for key in run["shapes"][0] if isinstance(run["shapes"][0][key], dict)]
    rows = []
    for entry in run["shapes"]:
        torch_time = entry["torch"]["forward_backward_s"]
        for impl in implementations:
            timing = entry[impl]
            rows.append(
                [
                    f"`{tuple(entry['shape'])}`",
                    impl,
                    f"{1000 * timing['forward_s']:.2f}",
                    f"{1000 * timing['forward_backward_s']:.2f}",
                    f"{timing['forward_backward_s'] / torch_time:.2f}",
                ]
            )
    text = f"## conv2d, {run.get('date', '')} (`{name}`)\n\n"
    text += _machine(run.get("environment", {})) + _load_line(run)
    text += _table(
        ["shape (N,C,H,W,F,k,s,p)", "implementation", "fwd ms", "fwd+bwd ms", "/ torch"],
        rows,
        right_from=2,
    )
    geomean = run["geomean_ratio_to_torch"]
    image = _plot_ratios(f"conv-{name.removesuffix('.json')}", geomean, out)
    text += (
        "\nGeometric mean over the shapes of the time relative to PyTorch "
        "(lower is faster):\n\n"
        f"```{{image}} {image}\n:alt: conv2d time relative to PyTorch\n:width: 560px\n```\n\n"
    )
    return text


def _plot_ratios(stem: str, geomean: dict[str, dict[str, float]], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(geomean)
    figure, axis = plt.subplots(figsize=(7, 3.2))
    width = 0.38
    for offset, key in ((-width / 2, "forward"), (width / 2, "forward_backward")):
        axis.bar(
            [i + offset for i in range(len(names))],
            [geomean[name][key] for name in names],
            width,
            label=key.replace("_", " + "),
        )
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(names)), names)
    axis.set_ylabel("time / PyTorch's")
    axis.legend()
    figure.tight_layout()
    path = out / f"{stem}.png"
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return f"/_generated/{path.name}"


def _train_section(runs: list[tuple[str, dict[str, Any]]]) -> str:
    """One table for every recording of the digits CNN's training, a row per file."""
    rows = []
    for name, run in runs:
        seconds = run["median_seconds"]
        rows.append(
            [
                f"`{name}`",
                run.get("date", ""),
                str(run["epochs"]),
                f"{seconds['xconv']:.1f}",
                f"{seconds['torch']:.1f}",
                f"{run['ratio_xconv_to_torch']:.2f}",
            ]
        )
    return (
        "## Training the digits CNN\n\n"
        "Each row is a separate recording (median seconds of the repeated runs); the "
        "Markdown file beside each result says what the code was at the time.\n\n"
        + _table(
            ["result file", "date", "epochs", "xconv s", "PyTorch s", "xconv / PyTorch"],
            rows,
            right_from=2,
        )
        + "\n"
    )


def _record_section(name: str, run: dict[str, Any]) -> str:
    text = f"## Accuracy record, {run['date']} (`{name}`)\n\n"
    text += _machine(run.get("environment", {}))
    lenet = run["lenet5"]
    rows = []
    for impl in ("xconv", "torch"):
        entry = lenet[impl]
        for epoch, (accuracy, seconds) in enumerate(
            zip(entry["test_accuracy"], entry["epoch_seconds"], strict=True), start=1
        ):
            rows.append([impl, str(epoch), f"{accuracy:.4f}", f"{seconds:.1f}"])
    text += f"LeNet-5 on {lenet['xconv']['data']}:\n\n"
    text += _table(["implementation", "epoch", "test accuracy", "epoch seconds"], rows)
    resnet = run["resnet20"]
    rows = [
        [impl, str(resnet[impl]["batches_per_epoch"]), f"{resnet[impl]['seconds']:.0f}"]
        for impl in ("xconv", "torch")
    ]
    text += f"\nResNet-20, one epoch on {resnet['xconv']['data']}:\n\n"
    text += _table(["implementation", "batches", "seconds"], rows)
    return text + "\n"


def _machine(env: dict[str, Any], gpu: dict[str, Any] | None = None) -> str:
    """One line naming the machine a result was measured on."""
    versions = env.get("versions") or {}
    blas = env.get("blas") or []
    blas_text = ", ".join(
        f"{b.get('internal_api', '?')} {b.get('version', '')}".strip() for b in blas
    )
    text = (
        f"Machine: {env.get('processor', '?')}, {env.get('cpus', '?')} CPUs; "
        f"Python {env.get('python', '?')}, NumPy {env.get('numpy', versions.get('numpy', '?'))}"
    )
    if versions.get("torch"):
        text += f", PyTorch {versions['torch']}"
    if versions.get("jax"):
        text += f", JAX {versions['jax']}"
    if blas_text:
        text += f"; BLAS {blas_text}"
    if gpu:
        text += (
            f". GPU: {gpu.get('gpu', '?')}, CuPy {gpu.get('cupy', '?')}, "
            f"PyTorch {gpu.get('torch', '?')} (cuDNN {gpu.get('cudnn', '?')})"
        )
    return text + ".\n\n"


def _load_line(run: dict[str, Any]) -> str:
    note = run.get("load_note")
    return f"{note}\n\n" if note else ""


def _bars(
    stem: str, groups: dict[str, dict[str, float]], ylabel: str, out: Path, *, tilt: bool = False
) -> str:
    """A grouped bar chart: one group per key of `groups`, one bar per inner key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups)
    series = list(dict.fromkeys(key for inner in groups.values() for key in inner))
    figure, axis = plt.subplots(figsize=(7, 4.2 if tilt else 3.2))
    width = 0.8 / max(len(series), 1)
    for i, key in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        axis.bar(
            [j + offset for j in range(len(names))],
            [groups[name].get(key, 0.0) for name in names],
            width,
            label=key,
        )
    axis.axhline(1.0, color="black", linewidth=0.8)
    if tilt:  # long labels, slanted
        axis.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize="small")
    else:
        axis.set_xticks(range(len(names)), names)
    axis.set_ylabel(ylabel)
    axis.legend(fontsize="small")
    figure.tight_layout()
    path = out / f"{stem}.png"
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return f"/_generated/{path.name}"


def _image(path: str, alt: str) -> str:
    return f"```{{image}} {path}\n:alt: {alt}\n:width: 560px\n```\n\n"


def _steps_section(name: str, run: dict[str, Any], out: Path) -> str:
    """Training speed per backend: each network's step time relative to PyTorch's."""
    rows = []
    ratios: dict[str, dict[str, float]] = {}
    for network, entry in run["steps"].items():
        timed = entry["runs"]  # per implementation, one entry per fresh process
        for impl, processes in timed.items():
            mean_ms = 1000 * statistics.median(p["mean_step_seconds"] for p in processes)
            paired = [
                a["mean_step_seconds"] / b["mean_step_seconds"]
                for a, b in zip(processes, timed["torch"], strict=True)
            ]
            ratio = statistics.median(paired)
            span = f"{ratio:.2f} ({min(paired):.2f}-{max(paired):.2f})"
            rows.append([network, impl, f"{mean_ms:.1f}", span])
            if impl != "torch":
                ratios.setdefault(network, {})[impl] = ratio
    text = f"## Training speed per backend, {run.get('date', '')} (`{name}`)\n\n"
    text += (
        "One training step (forward, loss, backward, update) of each network, from the "
        "same weights on the same batches: xconv on NumPy (`xconv`), on torch tensors "
        "(`xconv-torch`, its convolutions delegated to PyTorch) and on JAX (`xconv-jax`, "
        "jitted), and PyTorch itself; each timed in fresh processes, the ratios pairing "
        "the k-th xconv process with the k-th PyTorch one.\n\n"
    )
    text += _machine(run.get("environment", {})) + _load_line(run)
    text += _table(
        ["network", "implementation", "step ms (median)", "/ torch: median (range)"], rows, 2
    )
    image = _bars(f"steps-{name.removesuffix('.json')}", ratios, "step time / PyTorch's", out)
    return text + "\n" + _image(image, "training step time relative to PyTorch")


def _delegation_section(name: str, data: dict[str, Any], out: Path) -> str:
    """xconv on torch tensors and JAX arrays against the library's own convolution."""
    runs = data["runs"]
    rows = []
    for i, run in enumerate(runs, start=1):
        for impl, ratio in run["geomean_ratio_to_native"].items():
            rows.append(
                [str(i), impl, f"{ratio['forward_s']:.2f}", f"{ratio['forward_backward_s']:.2f}"]
            )
    mean = {
        impl: {
            key.removesuffix("_s").replace("_", " + "): sum(
                r["geomean_ratio_to_native"][impl][key] for r in runs
            )
            / len(runs)
            for key in ("forward_s", "forward_backward_s")
        }
        for impl in runs[0]["geomean_ratio_to_native"]
    }
    text = f"## Delegation, {runs[0].get('date', '')} (`{name}`)\n\n"
    text += (
        "xconv's `conv2d` on torch tensors and on JAX arrays, where it hands the "
        "convolution to the library's own kernel, against that library called directly: "
        "the geometric mean over the shapes of the time ratio, per run.\n\n"
    )
    text += _machine(runs[0].get("environment", {})) + _load_line(runs[0])
    text += _table(["run", "implementation", "forward / native", "fwd+bwd / native"], rows, 2)
    image = _bars(f"delegation-{name.removesuffix('.json')}", mean, "time / native", out)
    return text + "\n" + _image(image, "delegated conv2d time relative to the library's own")


def _gpu_section(name: str, run: dict[str, Any], out: Path) -> str:
    """The GPU run: CuPy against PyTorch CUDA, convolutions and training."""
    text = f"## On a GPU, {run.get('date', '')} (`{name}`)\n\n"
    text += _machine(run.get("environment", {}), run.get("gpu"))
    by_shape: dict[str, dict[str, float]] = {}
    for row in run["conv"]["rows"]:
        n, c, h, w, f, k, stride, _ = row["shape"]
        label = f"{n}x{c}x{h}x{w}, {f}@{k}x{k}" + (f" /{stride}" if stride != 1 else "")
        by_shape.setdefault(label, {})[row["pass"]] = row["ratio"]
    rows = [
        [f"`{tuple(row['shape'])}`", row["pass"], f"{row['xconv_ms']:.3f}",
         f"{row['torch_ms']:.3f}", f"{row['ratio']:.2f}"]
        for row in run["conv"]["rows"]
    ]  # fmt: skip
    text += "conv2d on CuPy against PyTorch CUDA (cuDNN), TF32 off:\n\n"
    text += _table(["shape (N,C,H,W,F,k,s,p)", "pass", "xconv ms", "torch ms", "/ torch"], rows, 2)
    train_rows = [
        [row["model"], str(row["epochs"]), f"{row['xconv']['images_per_s']:.0f}",
         f"{row['torch']['images_per_s']:.0f}", f"{row['throughput_ratio']:.2f}"]
        for row in run["train"]["rows"]
    ]  # fmt: skip
    text += "\nTraining throughput (images per second):\n\n"
    text += _table(["model", "epochs", "xconv", "torch", "xconv / torch"], train_rows, 1)
    image = _bars(
        f"gpu-{name.removesuffix('.json')}", by_shape, "time / PyTorch's", out, tilt=True
    )
    return text + "\n" + _image(image, "conv2d on the GPU relative to PyTorch")


def _recipe_section(name: str, run: dict[str, Any], out: Path) -> str:
    """MNIST's default recipe, xconv next to PyTorch, per seed and epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for entry in run["runs"]:
        for impl, style in (("xconv", "-o"), ("torch", "--x")):
            accuracies = entry[impl]["test_accuracy"]
            epochs = range(1, len(accuracies) + 1)
            axis.plot(epochs, accuracies, style, label=f"{impl}, seed {entry['seed']}")
        for epoch, (a, b) in enumerate(
            zip(entry["xconv"]["test_accuracy"], entry["torch"]["test_accuracy"], strict=True),
            start=1,
        ):
            rows.append(
                [str(entry["seed"]), str(epoch), f"{a:.4f}", f"{b:.4f}",
                 f"{entry['xconv']['epoch_seconds'][epoch - 1]:.1f}",
                 f"{entry['torch']['epoch_seconds'][epoch - 1]:.1f}"]
            )  # fmt: skip
    axis.axhline(run.get("goal", 0.992), color="black", linewidth=0.8)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy")
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    path = out / f"recipe-{name.removesuffix('.json')}.png"
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    text = f"## MNIST's default recipe, {run.get('date', '')} (`{name}`)\n\n"
    text += (
        "`xconv train --dataset mnist`'s recipe (`models.mnist_bn`, AdamW under "
        "`callbacks.OneCycle`, 3 epochs, batch 128), xconv on NumPy and PyTorch from the "
        "same weights, batches and learning rates, per seed; the line is the goal "
        f"({run.get('goal', 0.992)}).\n\n"
    )
    text += _machine(run.get("environment", {}))
    text += _table(
        ["seed", "epoch", "xconv test acc", "torch test acc", "xconv s", "torch s"], rows, 2
    )
    return text + "\n" + _image(f"/_generated/{path.name}", "test accuracy per epoch")


def render(results: Path, out: Path) -> str:
    """The generated page's text; plots written into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    train_runs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        runs = data if data.get("benchmark") is None else {"": data}
        for key, run in runs.items():
            if not isinstance(run, dict) or key.endswith("earlier_run"):
                continue
            kind = run.get("benchmark")
            if kind == "conv":
                sections.append(_conv_section(path.name, run, out))
            elif kind == "train" and "median_seconds" in run:
                train_runs.append((path.name, run))
            elif kind == "train" and "steps" in run:
                sections.append(_steps_section(path.name, run, out))
            elif kind == "record":
                sections.append(_record_section(path.name, run))
            elif kind == "delegation-runs":
                sections.append(_delegation_section(path.name, run, out))
            elif kind == "gpu":
                sections.append(_gpu_section(path.name, run, out))
            elif kind == "mnist-recipe":
                sections.append(_recipe_section(path.name, run, out))
    if train_runs:
        sections.append(_train_section(train_runs))
    if not sections:
        raise RuntimeError(f"no benchmark results in {results}")
    return "\n".join(sections)


_CODE = re.compile(r"(``.*?``|`[^`]*`)")
_EMPHASIS = re.compile(r"\*\*\S(.*?\S)?\*\*|\*\S(.*?\S)?\*")


def _literal_stars(line: str) -> str:
    """`line` with its asterisks escaped, outside code, unless it holds real emphasis."""
    if line.lstrip().startswith((">>>", "...")):
        return line  # an example's Python
    parts = _CODE.split(line)
    for i in range(0, len(parts), 2):  # the even parts are outside backticks
        if "*" in parts[i] and not _EMPHASIS.search(parts[i]):
            parts[i] = parts[i].replace("*", "\\*")
    return "".join(parts)


def _docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what == "data" and lines and (type(obj).__doc__ or "").startswith(lines[0].strip()):
        lines[:] = []  # the docstring of the value's type, not of the constant
        return
    joined: list[str] = []
    for line in lines:
        previous = joined[-1] if joined else ""
        if (
            previous.rstrip().endswith(",")
            and ":" not in previous
            and len(line) - len(line.lstrip()) > len(previous) - len(previous.lstrip())
        ):
            joined[-1] = f"{previous.rstrip()} {line.strip()}"  # one wrapped entry
        else:
            joined.append(line)
    lines[:] = [_literal_stars(line) for line in joined]


def _generate(app: Any) -> None:
    out = Path(app.srcdir) / "_generated"
    (out / "benchmarks.md").write_text(render(RESULTS, out))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _generate)
    # before napoleon (priority 500) turns the sections into reST
    app.connect("autodoc-process-docstring", _docstring, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}

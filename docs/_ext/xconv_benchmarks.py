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
            elif kind == "record":
                sections.append(_record_section(path.name, run))
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

"""The README's examples run as written, and its figures are those of benchmarks/results."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text()


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    namespaces = []
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    functional, training, *_ = namespaces  # later examples assert their own results
    assert functional["y"].shape == (8, 16, 16, 16)
    assert functional["grad_x"].shape == (8, 3, 32, 32)
    assert len(training["history"]["loss"]) == 5
    assert training["accuracy"] > 0.8


def _offline_commands() -> list[str]:
    """The shell examples that need no network, no GPU and under a minute."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", TEXT, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  #")[0].strip()
            quick = "info" in command or "--version" in command or "--epochs 1 " in command
            if command.startswith("python -m xconv ") and quick and "--dataset" not in command:
                commands.append(command)
    return commands


def test_the_offline_shell_examples_are_found():
    commands = _offline_commands()
    assert "python -m xconv --version" in commands
    assert "python -m xconv info | head -1" in commands
    assert any(command.startswith("python -m xconv train --epochs 1") for command in commands)


@pytest.mark.parametrize("command", _offline_commands())
def test_shell_example_runs(command, tmp_path):
    # `python` is this interpreter; a pipe runs as the README shows it, through a shell
    line = command.replace("python -m xconv", f"{shlex.quote(sys.executable)} -m xconv", 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        ["bash", "-c", line],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(("xconv ", "test accuracy"))


def test_dask_example_runs_as_a_script(tmp_path):
    pytest.importorskip("distributed", reason="the Dask example needs xconv[dask]")
    found = re.search(r"```py\n(# dask_digits\.py.*?)```", TEXT, flags=re.DOTALL)
    assert found, "the README lost its Dask script"
    script = tmp_path / "dask_digits.py"
    script.write_text(found.group(1))
    assert 'if __name__ == "__main__":' in script.read_text()
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"test accuracy 0\.\d{3} after 2 epochs", result.stdout)


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def test_speed_figures_are_those_of_the_result_files():
    results = ROOT / "benchmarks" / "results"
    for name in ("conv", "train", "delegation"):
        assert f"benchmarks/results/{name}-cpu-2026-11-30.md" in TEXT
    runs = json.loads((results / "conv-cpu-2026-11-30-runs.json").read_text())["runs"]
    rows = {
        "xconv on NumPy (`conv2d`, `conv2d_backward`)": "xconv",
        "xconv `Conv2D` layer on NumPy (reuses its columns)": "xconv-layer",
        "generic array-API code (`fast_kernels=False`)": "xconv-generic",
        "ancestor-style (fancy-index im2col, `np.add.at`)": "ancestor",
    }
    for label, key in rows.items():
        ratios = [run["geomean_ratio_to_torch"][key] for run in runs]
        both = _span([r["forward_backward"] for r in ratios])
        assert f"| {label} | {both} | {_span([r['forward'] for r in ratios])} |" in TEXT
    delegation = json.loads((results / "delegation-cpu-2026-11-30.json").read_text())["runs"]
    for label, key in (("torch tensors (delegated to PyTorch)", "xconv-torch"),
                       ("JAX arrays, jitted (delegated to XLA)", "xconv-jax")):  # fmt: skip
        ratios = [run["geomean_ratio_to_native"][key] for run in delegation]
        both = _span([r["forward_backward_s"] for r in ratios])
        assert f"| xconv on {label} | {both} | {_span([r['forward_s'] for r in ratios])} |" in TEXT
    steps = json.loads((results / "train-cpu-2026-11-30.json").read_text())["steps"]
    for label, key in (("MNIST CNN, batch 128", "mnist"), ("ResNet-20, batch 128", "resnet20"),
                       ("digits CNN, batch 256", "digits")):  # fmt: skip
        timed = steps[key]["runs"]
        cells = [
            _span(
                [
                    a["mean_step_seconds"] / b["mean_step_seconds"]
                    for a, b in zip(timed[name], timed["torch"], strict=True)
                ]
            )
            for name in ("xconv", "xconv-torch", "xconv-jax")
        ]
        assert f"| {label} | {' | '.join(cells)} |" in TEXT
    record = json.loads((results / "conv-cpu-2026-11-30.json").read_text())
    shape = next(s for s in record["shapes"] if s["shape"][:5] == [16, 64, 56, 56, 64])
    memory = f"{shape['xconv']['peak_extra_mib']:.0f} MiB against PyTorch's "
    assert memory + f"{shape['torch']['peak_extra_mib']:.0f}" in TEXT
    assert f"code: {shape['ancestor']['peak_extra_mib']:.0f})" in TEXT


def test_no_timing_figure_is_quoted_twice():
    seconds = re.findall(r"\b\d+\.\d+ s\b", TEXT)
    assert len(seconds) == len(set(seconds)), seconds

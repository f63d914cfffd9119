"""What every suite needs: worker processes and the environment they report."""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from ._environment import child_environment


def run_worker(command: list[str]) -> Any:
    """Run ``python -m COMMAND...`` in a fresh process; return the JSON on its last line."""
    done = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        env=child_environment(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_environment() -> dict[str, Any]:
    """`describe()` as a worker process sees it (OpenBLAS variables unset)."""
    info: dict[str, Any] = run_worker(["benchmarks._environment"])
    return info


def geomean(values: list[float]) -> float | None:
    """Geometric mean, None for no values."""
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else None


def machine_load() -> dict[str, Any]:
    """Now, the load averages (1, 5, 15 min) and `uptime`'s line, for a result's record."""
    uptime = shutil.which("uptime")
    line = (
        subprocess.run([uptime], capture_output=True, text=True, check=False).stdout.strip()
        if uptime
        else ""
    )
    return {
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_average": list(os.getloadavg()),
        "uptime": line,
    }


def load_note(before: dict[str, Any], after: dict[str, Any], cpus: int | None) -> str:
    """A sentence on the machine's load during a run, saying plainly if it was loaded."""
    peak = max(before["load_average"][0], after["load_average"][0])
    text = (
        f"Load average (1 min) {before['load_average'][0]:.2f} before, "
        f"{after['load_average'][0]:.2f} after, on {cpus} CPUs"
    )
    if cpus and peak > 0.5:
        return text + ": **measured under load** (other processes shared the CPUs)."
    return text + "."

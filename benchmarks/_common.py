"""What every suite needs: worker processes and the environment they report."""

from __future__ import annotations

import json
import math
import os
import resource
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


def record(
    benchmark: str, before: dict[str, Any], after: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A suite's result: its fields, the machine's load around the run (and what it
    says), the workers' environment and the date."""
    environment = worker_environment()
    return {
        "benchmark": benchmark,
        **fields,
        "load": {"before": before, "after": after},
        "load_note": load_note(before, after, environment.get("cpus")),
        "environment": environment,
        "date": time.strftime("%Y-%m-%d"),
    }


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
    own = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "monotonic_s": time.monotonic(),
        "load_average": list(os.getloadavg()),
        "uptime": line,
        # CPU seconds the whole machine has been busy, and this benchmark (with the
        # workers it waited for) has used: their difference over a run is everyone else
        "machine_busy_s": _machine_busy_seconds(),
        "own_cpu_s": sum(r.ru_utime + r.ru_stime for r in own),
    }


def _machine_busy_seconds() -> float | None:
    """CPU seconds spent outside idle and iowait since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_note(before: dict[str, Any], after: dict[str, Any], cpus: int | None) -> str:
    """A sentence on the machine's load during a run, saying plainly if it was loaded.

    Judged by the CPU time that other processes took during the run (the machine's busy
    time less this benchmark's own, its workers included), where the records hold it;
    else by the 1-minute load average as the run began. (The average after a run counts
    the benchmark's own workers, which keep the cores busy by design.)
    """
    text = (
        f"Load average (1 min) {before['load_average'][0]:.2f} as the run began, "
        f"{after['load_average'][0]:.2f} after it, on {cpus} CPUs"
    )
    keys = ("machine_busy_s", "own_cpu_s", "monotonic_s")
    if cpus and all(before.get(k) is not None and after.get(k) is not None for k in keys):
        others = (after["machine_busy_s"] - before["machine_busy_s"]) - (
            after["own_cpu_s"] - before["own_cpu_s"]
        )
        share = max(0.0, others) / max(1e-9, (after["monotonic_s"] - before["monotonic_s"]) * cpus)
        text += f"; other processes took {share:.0%} of the CPUs' time during the run"
        loaded = share > 0.05
    else:
        loaded = bool(cpus) and before["load_average"][0] > 0.5
    if loaded:
        return text + ": **measured under load**."
    return text + "."

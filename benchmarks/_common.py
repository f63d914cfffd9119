"""What every suite needs: worker processes and the environment they report."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
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

"""What a benchmark result needs to say about where it ran."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

# These slow a current NumPy on this machine; benchmarks unset both together (tests and
# CI keep them as they are).
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def child_environment() -> dict[str, str]:
    """The environment for a benchmark's worker process."""
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env


def describe() -> dict[str, Any]:
    """Versions, machine and the BLAS kernel in use (via threadpoolctl, if installed)."""
    import numpy as np

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor() or platform.machine(),
        "node": platform.node(),
        "cpus": os.cpu_count(),
        "openblas_variables_set": [v for v in OPENBLAS_VARIABLES if v in os.environ],
        "versions": _versions("xconv", "numpy", "torch", "jax", "jaxlib", "threadpoolctl"),
    }
    try:
        import threadpoolctl
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    else:
        info["blas"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpoolctl.threadpool_info()
            if pool.get("user_api") == "blas"
        ]
    return info


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else None."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _versions(*packages: str) -> dict[str, str | None]:
    """Installed versions (None where absent), read without importing the packages."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    if versions.get("xconv") is None:  # run from a checkout, not installed
        import xconv

        versions["xconv"] = getattr(xconv, "__version__", None)
    return versions


if __name__ == "__main__":
    import json

    print(json.dumps(describe()))

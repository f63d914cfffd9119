"""Development sessions: `nox -s tests` (one per backend), `example` (the cross-backend
example project on numpy and array_api_strict), `lint`, `typecheck`, `cuda_sources`
(the CUDA kernels compiled by NVRTC, without a GPU); on demand `fuzz`
(many more Hypothesis examples), `demo` and `bench`.

`nox -l` lists them. Each session builds its own virtual environment and installs
xconv with the extra that its backend needs.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "example", "lint", "typecheck", "cuda_sources"]

BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "dask", "cupy"]
# extra installed for each backend's session; the test extra always brings torch 2.13.0,
# the reference implementation (its CPU wheel lies on the development machines' disk)
EXTRAS = {
    "numpy": "test",
    "array_api_strict": "test,array-api-strict",
    "torch": "test,torch",
    "jax": "test,jax",
    "dask": "test,dask",
    "cupy": "test,cupy",
}


def _has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Run the test suite on one backend (the CuPy session needs an NVIDIA GPU)."""
    if backend == "cupy" and not _has_nvidia_gpu():
        session.skip("no NVIDIA GPU here: the CuPy backend needs one")
    session.install("-e", f".[{EXTRAS[backend]}]")
    env = {"XCONV_TEST_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # float64 references need float64 JAX arrays
    session.run("pytest", *session.posargs, env=env)


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict"])
def example(session: nox.Session, backend: str) -> None:
    """Run examples/cross-backend's tests (xconv.testing's plugin) with xconv from here."""
    session.install(f".[{EXTRAS[backend]}]")
    session.install("-e", "./examples/cross-backend")
    session.chdir("examples/cross-backend")
    session.run("pytest", *session.posargs, env={"XCONV_TEST_BACKENDS": backend})


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict", "torch"])
def fuzz(session: nox.Session, backend: str) -> None:
    """Fuzz the functional ops and loading mutated files (XCONV_FUZZ_EXAMPLES, default 2000)."""
    session.install("-e", f".[{EXTRAS[backend]}]")
    env = {
        "XCONV_TEST_BACKENDS": backend,
        "XCONV_FUZZ_EXAMPLES": os.environ.get("XCONV_FUZZ_EXAMPLES", "2000"),
    }
    session.run(
        "pytest", "tests/test_fuzz.py", "tests/test_hostile_fuzz.py", *session.posargs, env=env
    )


@nox.session
def cuda_sources(session: nox.Session) -> None:
    """Compile every CUDA kernel with NVRTC for sm_80 and sm_90 (no GPU needed)."""
    # CuPy's wheel brings the NVRTC binding, the NVRTC wheel its library: ~230 MB together
    session.install("-e", ".", "pytest", "hypothesis", "cupy-cuda12x", "nvidia-cuda-nvrtc-cu12")
    session.run("pytest", "tests/test_cuda_sources.py", "-ra", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Train the ancestor's CNN on the bundled digits and print its test accuracy."""
    session.install("-e", ".[cli]")
    session.run("python", "-m", "xconv", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Time xconv against PyTorch on the CPU (python -m benchmarks; never in CI)."""
    session.install("-e", ".[torch]", "threadpoolctl")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy (strict)."""
    # xconv.testing is typed against pytest and nox: mypy needs them to check it
    session.install("-e", ".", "mypy>=1.11", "pytest>=8", "nox>=2024.3.2")
    session.run("mypy")

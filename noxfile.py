"""Development sessions: `nox -s tests` (one per backend), `example` (the cross-backend
example project's own noxfile, on numpy and array_api_strict, with xconv from here),
`lint`, `typecheck`, `cuda_sources` (the CUDA kernels compiled by NVRTC, without a
GPU), `build` (sdist and wheel, checked and installed in a fresh environment) and `docs`
(the Sphinx site, warnings as errors, and its code examples); on demand `fuzz` (many
more Hypothesis examples), `demo` and `bench`.

`nox -l` lists them. Each session builds its own virtual environment and installs
xconv with the extra that its backend needs. Every install goes through `_install`,
which applies the development pins of constraints/dev.txt (torch 2.13.0 exactly: its
CPU wheel lies on the development machines' disk; pyproject.toml keeps ranges).
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.sessions = [
    "tests",
    "example",
    "lint",
    "typecheck",
    "cuda_sources",
    "build",
    "docs",
]

BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "dask", "cupy"]
# extras installed for each backend's session: the test extra, torch (2.13.0 under
# constraints/dev.txt: the reference implementation, its own extra) and the backend's
EXTRAS = {
    "numpy": "test,torch",
    "array_api_strict": "test,torch,array-api-strict",
    "torch": "test,torch",
    "jax": "test,torch,jax",
    "dask": "test,torch,dask",
    "cupy": "test,torch,cupy",
}

#: backends whose sessions run K evenly spread cases of each parametrized test (the
#: suite's --grid-sample=K, tests/conftest.py) rather than all of them: their per-call
#: overhead (JAX's dispatch and compilation, Dask's graphs) makes the full grid cost
#: 15-22 minutes each on CI's two cores, against CI's 30. XCONV_TESTS_FULL=1 runs all.
SAMPLED = {"jax": 3, "dask": 3}

ROOT = Path(__file__).resolve().parent
#: the development pins, applied to every install of every session
CONSTRAINTS = ROOT / "constraints" / "dev.txt"


def _install(session: nox.Session, *args: str) -> None:
    """`pip install args` in the session's environment under the development pins."""
    session.install("--constraint", str(CONSTRAINTS), *args)


def _has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Run the test suite on one backend (the CuPy session needs an NVIDIA GPU).

    On XCONV_TEST_WORKERS pytest-xdist workers (default 2, CI's cores); on JAX and Dask
    a sample of each parameter grid unless XCONV_TESTS_FULL=1 (see SAMPLED).
    """
    if backend == "cupy" and not _has_nvidia_gpu():
        session.skip("no NVIDIA GPU here: the CuPy backend needs one")
    _install(session, "-e", f".[{EXTRAS[backend]}]", "pytest-xdist>=3")
    env = {"XCONV_TEST_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # float64 references need float64 JAX arrays
    args = ["-n", os.environ.get("XCONV_TEST_WORKERS", "2")]
    if backend in SAMPLED and os.environ.get("XCONV_TESTS_FULL") != "1":
        args.append(f"--grid-sample={SAMPLED[backend]}")
    session.run("pytest", *args, *session.posargs, env=env)


#: the example project, run by its own noxfile as a user runs it (docs/testing.md)
EXAMPLE = ROOT / "examples" / "cross-backend"


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict"])
def example(session: nox.Session, backend: str) -> None:
    """Run examples/cross-backend's own noxfile on one backend, with xconv from this clone."""
    _install(session, "nox>=2024.3.2")
    # as docs/testing.md says: `XCONV=<the clone> nox` in the project's folder; the
    # example's constraints.txt pins torch 2.13.0, as constraints/dev.txt does
    session.chdir(EXAMPLE)
    session.run(
        "nox",
        "--no-color",
        "-s",
        f"tests(backend='{backend}')",
        *(["--", *session.posargs] if session.posargs else []),
        env={"XCONV": str(ROOT)},
    )


@nox.session
@nox.parametrize("backend", ["numpy", "array_api_strict", "torch"])
def fuzz(session: nox.Session, backend: str) -> None:
    """Fuzz the functional ops, hostile public arguments and loading mutated files
    (XCONV_FUZZ_EXAMPLES, default 2000)."""
    _install(session, "-e", f".[{EXTRAS[backend]}]")
    env = {
        "XCONV_TEST_BACKENDS": backend,
        "XCONV_FUZZ_EXAMPLES": os.environ.get("XCONV_FUZZ_EXAMPLES", "2000"),
    }
    session.run(
        "pytest",
        "tests/test_fuzz.py",
        "tests/test_fuzz_ops.py",
        "tests/test_hostile_fuzz.py",
        "tests/test_hostile_arguments.py",
        *session.posargs,
        env=env,
    )


@nox.session
def cuda_sources(session: nox.Session) -> None:
    """Compile every CUDA kernel with NVRTC for sm_80 and sm_90 (no GPU needed)."""
    # CuPy's wheel brings the NVRTC binding, the NVRTC wheel its library: ~230 MB together
    _install(session, "-e", ".", "pytest", "hypothesis", "cupy-cuda12x", "nvidia-cuda-nvrtc-cu12")
    session.run("pytest", "tests/test_cuda_sources.py", "-ra", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Train the ancestor's CNN on the bundled digits and print its test accuracy."""
    _install(session, "-e", ".[cli]")
    session.run("python", "-m", "xconv", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Time xconv against PyTorch on the CPU (python -m benchmarks; never in CI)."""
    _install(session, "-e", ".[torch]", "threadpoolctl")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    _install(session, "ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy (strict)."""
    # xconv.testing is typed against pytest and nox: mypy needs them to check it
    _install(session, "-e", ".", "mypy>=1.11", "pytest>=8", "nox>=2024.3.2")
    session.run("mypy")


def _minimum_build_requirements() -> list[str]:
    """pyproject.toml's build requirements with each lower bound made exact (`>=` to `==`)."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        requires = tomllib.load(file)["build-system"]["requires"]
    return [re.sub(r">=", "==", requirement) for requirement in requires]


# the wheel's metadata names the license (PEP 639) and carries the LICENSE file
_CHECK_LICENSE = """
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
text = zipfile.ZipFile(sys.argv[1]).read(metadata).decode()
assert "License-Expression: MIT" in text, "no License-Expression: MIT in the METADATA"
assert "License-File: LICENSE" in text, "no License-File: LICENSE in the METADATA"
assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
print("LICENSE in the wheel's metadata:", metadata)
"""


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel with the minimum build requirements, check and run them."""
    _install(session, "build", "twine", "check-wheel-contents", *_minimum_build_requirements())
    dist = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # --no-isolation: build with the declared minimum (setuptools 77), not the newest
    session.run("python", "-m", "build", "--no-isolation", "--outdir", str(dist))
    wheels = sorted(str(path) for path in dist.glob("*.whl"))
    sdists = sorted(str(path) for path in dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"expected one wheel and one sdist in {dist}, got {wheels + sdists}")
    session.run("twine", "check", "--strict", *wheels, *sdists)
    session.run("check-wheel-contents", *wheels)
    session.run("python", "-c", _CHECK_LICENSE, wheels[0])
    # a fresh environment with the wheel alone (no clone on sys.path: run from elsewhere)
    fresh = dist.parent / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    session.run("python", "-m", "venv", str(fresh))
    bin_dir = fresh / ("Scripts" if os.name == "nt" else "bin")
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    session.run(*pip, "--constraint", str(CONSTRAINTS), wheels[0], external=True)
    xconv = str(bin_dir / "xconv")
    with session.chdir(dist):  # away from the clone, whose xconv/ would shadow the wheel's
        session.run(xconv, "--version", external=True)
        session.run(xconv, "info", external=True)
        session.run(xconv, "demo", "--epochs", "1", "--quiet", external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (warnings as errors) and run its code examples."""
    _install(session, "-e", ".[docs]")
    out = Path(session.create_tmp()) / "docs"
    common = ["-W", "--keep-going", "docs", *session.posargs]
    session.run("sphinx-build", "-b", "html", *common, str(out / "html"))
    session.run("sphinx-build", "-b", "doctest", *common, str(out / "doctest"))

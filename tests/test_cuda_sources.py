"""Every CUDA kernel of `xconv.functional._kernels._cupy` compiled by NVRTC, no GPU needed.

Each kernel (`INSTANTIATIONS`), for each dtype it is instantiated for (`DTYPES`), is
compiled for sm_80 and sm_90 through CuPy's NVRTC binding
(``cupy_backends.cuda.libs.nvrtc``), which loads on a machine without a GPU when the
wheels ``cupy-cuda12x`` and ``nvidia-cuda-nvrtc-cu12`` are installed (``nox -s
cuda_sources``). A syntax or type error in a kernel then fails CI, not a user's GPU.
Where NVRTC cannot be loaded, the tests skip and say why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xconv.functional._kernels import _cupy as _cupy_kernels

ARCHITECTURES = ("sm_80", "sm_90")
ROOT = Path(__file__).resolve().parents[1]


def _load_nvrtc() -> tuple[Any, str | None]:
    """CuPy's NVRTC module and None, or None and why it cannot be used here."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except Exception as exc:  # ImportError, or a wheel without its libraries
        return None, f"cupy_backends.cuda.libs.nvrtc cannot be imported ({exc!r})"
    try:
        nvrtc.getVersion()
    except Exception as exc:  # the binding is there, libnvrtc is not
        return None, f"NVRTC cannot be loaded ({exc!r}); install nvidia-cuda-nvrtc-cu12"
    return nvrtc, None


NVRTC, NVRTC_MISSING = _load_nvrtc()
needs_nvrtc = pytest.mark.skipif(NVRTC is None, reason=str(NVRTC_MISSING))


def compile_cuda(source: str, name: str, arch: str) -> bytes:
    """`source` compiled by NVRTC to a cubin for `arch`; a failure is an AssertionError
    that quotes NVRTC's log."""
    program = NVRTC.createProgram(source, f"{name}.cu", [], [])
    try:
        try:
            NVRTC.compileProgram(program, [f"--gpu-architecture={arch}", "--std=c++14"])
        except NVRTC.NVRTCError as exc:
            log = NVRTC.getProgramLog(program)
            raise AssertionError(
                f"NVRTC could not compile {name} for {arch}: {exc}\n{log}"
            ) from None
        return bytes(NVRTC.getCUBIN(program))
    finally:
        NVRTC.destroyProgram(program)


KERNELS = [
    pytest.param(op, wide, dtype, id=f"{op}-{'int64' if wide else 'int32'}-{dtype}")
    for op, wide in _cupy_kernels.INSTANTIATIONS
    for dtype in _cupy_kernels.DTYPES
]


def test_instantiations_cover_every_kernel():
    """Every op and both index widths that the CuPy path can build are listed."""
    assert {op for op, _ in _cupy_kernels.INSTANTIATIONS} == set(_cupy_kernels.STEPS)
    assert {wide for _, wide in _cupy_kernels.INSTANTIATIONS} == {False, True}
    assert set(_cupy_kernels.C_TYPES) == set(_cupy_kernels.DTYPES)


def test_sources_need_no_cupy():
    """The sources are plain strings: building them all imports no CuPy."""
    code = (
        "import sys\n"
        "from xconv.functional._kernels import _cupy as k\n"
        "for op, wide in k.INSTANTIATIONS:\n"
        "    for dtype in k.DTYPES:\n"
        "        k.cuda_source(op, dtype, wide=wide)\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    source = _cupy_kernels.cuda_source("unfold", "float32")
    assert 'extern "C" __global__ void xconv_unfold_int32(' in source
    assert _cupy_kernels.kernel_source("unfold") in source.replace("\n    ", "\n")


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        _cupy_kernels.cuda_source("unfold", "float16")


@needs_nvrtc
@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize(("op", "wide", "dtype"), KERNELS)
def test_kernel_compiles(op, wide, dtype, arch):
    source = _cupy_kernels.cuda_source(op, dtype, wide=wide)
    cubin = compile_cuda(source, f"xconv_{op}", arch)
    assert cubin[:4] == b"\x7fELF"  # a real device binary, not an empty result


BREAKAGES = {
    # an undeclared name, a missing semicolon, a pointer assigned to a value
    "undeclared": ("cols = inside ? image[source] : (T)0;", "cols = inside ? img[source] : 0;"),
    "syntax": ("cols = inside ? image[source] : (T)0;", "cols = inside ? image[source] : (T)0"),
    "type": ("cols = inside ? image[source] : (T)0;", "cols = image;"),
}


@needs_nvrtc
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_kernel_fails(breakage):
    """The check catches errors: a deliberately broken copy of unfold does not compile."""
    good, bad = BREAKAGES[breakage]
    source = _cupy_kernels.cuda_source("unfold", "float32")
    assert good in source
    with pytest.raises(AssertionError, match="NVRTC could not compile"):
        compile_cuda(source.replace(good, bad), "xconv_unfold_broken", "sm_80")

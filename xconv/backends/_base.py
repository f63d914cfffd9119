"""The `Backend` base class: what xconv needs to know about one array library.

The array API standard covers the arithmetic. A backend covers the rest: where the
library's namespace comes from, which device is the default, how to move data to and
from NumPy, how to draw random numbers (the standard has no random module), how to
wait for queued work, and a few facts about the library (is it lazy, how much scratch
memory suits a convolution). It runs no op: fast kernels live beside the ops they
speed up, in `xconv.functional`.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np

from xconv._typing import Array, Namespace

__all__ = ["Backend", "BackendUnavailableError"]


class BackendUnavailableError(ValueError):
    """A backend was asked for by name but cannot be used on this machine."""


class Backend:
    """One array library as xconv sees it.

    Subclasses set `name` (what users type), `module` (what Python imports) and
    `array_api_name` (the name `array_api_compat` gives its namespace check,
    ``is_<name>_namespace``), and override what differs from the defaults here.
    Nothing is imported until the backend is used: creating one is free.

    Parameters are created on the host from a NumPy `Generator` and moved over with
    `asarray`, so one seed gives the same numbers on every backend.
    """

    name: str = ""
    module: str = ""
    array_api_name: str = ""
    #: pip extra that installs the library, for error messages
    extra: str | None = None

    def __repr__(self) -> str:
        return f"<xconv backend {self.name!r}>"

    # -- availability -----------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot be used here, or None if it can.

        The default checks that `module` can be imported, without importing it.
        """
        try:
            found = importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return None
        hint = f" (pip install 'xconv[{self.extra}]')" if self.extra else ""
        return f"{self.module} is not installed{hint}"

    def is_available(self) -> bool:
        """Whether this backend can be used on this machine."""
        return self.unavailable_reason() is None

    # -- the library --------------------------------------------------------------------

    @cached_property
    def library(self) -> ModuleType:
        """The library's own module (``numpy``, ``torch``, ...), imported on first use."""
        return importlib.import_module(self.module)

    @cached_property
    def namespace(self) -> Namespace:
        """The array API namespace that xconv's generic code uses for this library."""
        import array_api_compat

        zeros = self.library.zeros((0,))
        return array_api_compat.array_namespace(zeros)

    def owns_namespace(self, xp: Namespace) -> bool:
        """Whether `xp` is this library's namespace (no import is triggered)."""
        import array_api_compat

        check = getattr(array_api_compat, f"is_{self.array_api_name}_namespace", None)
        return bool(check is not None and check(xp))

    @property
    def default_device(self) -> Any:
        """The device new arrays go to unless told otherwise."""
        return self.namespace.__array_namespace_info__().default_device()

    # -- data in and out ----------------------------------------------------------------

    def asarray(self, a: Any, /, *, dtype: Any = None, device: Any = None) -> Array:
        """A copy of host data `a` (a NumPy array or nested sequence) on this backend.

        `dtype` may be a dtype of this library or a name such as ``"float32"``.
        """
        xp = self.namespace
        if isinstance(dtype, str):
            dtype = getattr(xp, dtype)
        host = np.asarray(a)
        return xp.asarray(host, dtype=dtype, device=device, copy=True)

    def to_numpy(self, x: Array, /) -> np.ndarray:
        """`x` as a NumPy array on the host (it may share memory with `x`)."""
        return np.from_dlpack(x)

    #: whether arrays are lazy graphs (Dask) that `persist` should cut now and then
    lazy: bool = False

    #: default bound on one convolution call's column matrix (`xconv.config`): on a CPU,
    #: chunks this small keep the GEMMs efficient and peak memory near PyTorch's
    workspace_bytes: int = 16 * 2**20

    def workspace_for(self, x: Array, /) -> int:
        """The column-matrix bound for a convolution of `x` (GPUs return more)."""
        return self.workspace_bytes

    def prepare_workspace(self) -> None:
        """Called before each convolution makes its scratch arrays; by default nothing
        (NumPy's sets up the allocator once where ``xconv.config`` asks it to)."""

    def persist(self, *arrays: Array) -> tuple[Array, ...]:
        """Compute lazy arrays and keep the results, so later work starts from them.

        Eager libraries return the arrays as they are. Training calls this after every
        step; without it a lazy backend would recompute every earlier step each time.
        """
        return arrays

    def synchronize(self, *arrays: Array) -> None:
        """Wait until queued work is done, for honest timing.

        Libraries that compute eagerly on the CPU need nothing; asynchronous ones wait
        for the device, or for the given arrays.
        """

    # -- random numbers -----------------------------------------------------------------

    def random_uniform(
        self,
        shape: tuple[int, ...],
        *,
        rng: np.random.Generator,
        low: float = 0.0,
        high: float = 1.0,
        dtype: Any = "float32",
        device: Any = None,
    ) -> Array:
        """Uniform samples in [low, high) drawn from the host generator `rng`.

        Drawn in float64 on the host, then rounded to `dtype`, so the same generator
        state gives the same numbers on every backend.
        """
        return self.asarray(rng.uniform(low, high, size=shape), dtype=dtype, device=device)

    def random_normal(
        self,
        shape: tuple[int, ...],
        *,
        rng: np.random.Generator,
        mean: float = 0.0,
        std: float = 1.0,
        dtype: Any = "float32",
        device: Any = None,
    ) -> Array:
        """Normal samples drawn from the host generator `rng` (see `random_uniform`)."""
        return self.asarray(rng.normal(mean, std, size=shape), dtype=dtype, device=device)

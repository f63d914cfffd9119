"""The registry: backend names to `Backend` objects, and the current choice.

Lookups never import an array library that is not already imported: a backend's
module is imported when the backend is first used, not when it is registered.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.metadata
import os
import threading
import types
import warnings
from collections.abc import Iterator

from xconv._typing import Namespace

from ._array_api_strict import ArrayApiStrictBackend
from ._base import Backend, BackendUnavailableError
from ._cupy import CupyBackend
from ._dask import DaskBackend
from ._jax import JaxBackend
from ._numpy import NumpyBackend
from ._torch import TorchBackend

__all__ = [
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "XconvPluginWarning",
    "available",
    "backend_for",
    "get",
    "get_backend",
    "register",
    "registered",
    "set_backend",
    "use_backend",
]

DEFAULT_BACKEND = "numpy"
ENV_VAR = "XCONV_BACKEND"
ENTRY_POINT_GROUP = "xconv.backends"

_BUILTIN: tuple[type[Backend], ...] = (
    NumpyBackend,
    CupyBackend,
    TorchBackend,
    JaxBackend,
    DaskBackend,
    ArrayApiStrictBackend,
)

_lock = threading.RLock()
_backends: dict[str, Backend] = {cls.name: cls() for cls in _BUILTIN}
_plugins_loaded = False

# The process-wide choice (`set_backend`) and the context-local one (`use_backend`).
_global_choice: str | None = None
_context_choice: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "xconv_backend", default=None
)


class XconvPluginWarning(UserWarning):
    """A third-party backend advertised through entry points could not be loaded."""


def register(backend: Backend, /, *, replace: bool = False) -> Backend:
    """Add `backend` to the registry under ``backend.name`` and return it.

    Registering a second backend under a taken name is an error unless `replace`.
    Third-party packages can instead advertise a `Backend` subclass or instance in
    the ``xconv.backends`` entry-point group; it is registered on first lookup.
    """
    if not isinstance(backend, Backend):
        raise TypeError(f"`backend` must be an xconv.backends.Backend, got {backend!r}")
    if not isinstance(backend.name, str) or not backend.name.isidentifier():
        raise ValueError(f"`backend.name` must be an identifier, got {backend.name!r}")
    if not backend.module:
        raise ValueError(
            f"`backend.module` must name the library to import, got {backend.module!r}"
        )
    with _lock:
        if backend.name in _backends and not replace:
            raise ValueError(
                f"a backend named {backend.name!r} is already registered "
                "(pass replace=True to override it)"
            )
        _backends[backend.name] = backend
        _namespace_cache.clear()
    return backend


def _load_plugins() -> None:
    """Register the backends that installed packages advertise, once."""
    global _plugins_loaded
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = entry.load()
                backend = obj() if isinstance(obj, type) else obj
                register(backend)
            except Exception as exc:
                warnings.warn(
                    f"could not load the xconv backend {entry.name!r} ({entry.value}): "
                    f"{type(exc).__name__}: {exc}",
                    XconvPluginWarning,
                    stacklevel=3,
                )


def registered() -> tuple[str, ...]:
    """Names of all registered backends, usable here or not."""
    _load_plugins()
    return tuple(_backends)


def available() -> tuple[str, ...]:
    """Names of the backends usable on this machine (CuPy only with a CUDA device)."""
    _load_plugins()
    return tuple(name for name, backend in _backends.items() if backend.is_available())


def get(name: str | Backend, /) -> Backend:
    """The backend called `name`, checked to be usable here.

    Raises `ValueError` for a name nobody registered and `BackendUnavailableError` (a
    `ValueError`) for one that cannot run here, saying why and listing what can.
    """
    _load_plugins()
    if isinstance(name, Backend):
        backend: Backend | None = name
    elif isinstance(name, str):
        backend = _backends.get(name)
    else:
        raise TypeError(f"`name` must be a backend name (str), got {type(name).__name__}")
    if backend is None:
        raise ValueError(f"unknown backend {name!r}; registered backends: {', '.join(_backends)}")
    reason = backend.unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(
            f"backend {backend.name!r} is not available here: {reason}; "
            f"available backends: {', '.join(available())}"
        )
    return backend


def backend_for(xp: Namespace, /) -> Backend | None:
    """The registered backend whose namespace is `xp`, or None.

    Used to learn facts about the library of arrays that arrive at a functional op
    (whether it is lazy, its workspace size) and to convert them.
    Only backends whose library is already imported can match, so nothing is imported.
    """
    return _backend_for_namespace(xp)


_namespace_cache: dict[int, Backend | None] = {}


def _backend_for_namespace(xp: Namespace) -> Backend | None:
    if not isinstance(xp, types.ModuleType):
        return None  # array namespaces are modules
    key = id(xp)
    try:
        return _namespace_cache[key]
    except KeyError:
        pass
    _load_plugins()
    found = next((b for b in _backends.values() if b.owns_namespace(xp)), None)
    # Namespaces are modules, alive for the whole process, so their ids are stable.
    _namespace_cache[key] = found
    return found


# -- the current backend ------------------------------------------------------------


def get_backend() -> Backend:
    """The backend that layers and models use to create arrays.

    In order: the innermost ``with use_backend(...)`` of this context, else the last
    `set_backend`, else the ``XCONV_BACKEND`` environment variable, else NumPy.
    Functional ops ignore it: they follow their inputs.
    """
    name = _context_choice.get() or _global_choice
    if name is not None:
        return get(name)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        try:
            return get(from_env)
        except ValueError as exc:
            raise ValueError(f"environment variable {ENV_VAR}={from_env!r}: {exc}") from None
    return get(DEFAULT_BACKEND)


def set_backend(name: str | Backend, /) -> Backend:
    """Make `name` the process-wide default backend and return it.

    It applies to every thread, except inside a ``with use_backend(...)`` block, which
    wins in its own context.
    """
    global _global_choice
    backend = get(name)
    _check_registered(backend)
    _global_choice = backend.name
    return backend


@contextlib.contextmanager
def use_backend(name: str | Backend, /) -> Iterator[Backend]:
    """Use backend `name` inside a ``with`` block, in this context only.

    The choice lives in a `contextvars.ContextVar`: other threads and asyncio tasks
    keep their own, and it is restored on leaving the block, also on error.

    >>> import xconv
    >>> with xconv.use_backend("numpy") as backend:
    ...     print(backend.name)
    numpy
    """
    backend = get(name)
    _check_registered(backend)
    token = _context_choice.set(backend.name)
    try:
        yield backend
    finally:
        _context_choice.reset(token)


def _check_registered(backend: Backend) -> None:
    if _backends.get(backend.name) is not backend:
        raise ValueError(
            f"backend {backend!r} is not registered; call xconv.backends.register() first"
        )

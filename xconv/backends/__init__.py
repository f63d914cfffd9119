"""Backend registry: which array library layers and models create their arrays with.

>>> import xconv.backends as backends
>>> "numpy" in backends.available()
True
>>> backends.get("numpy").name
'numpy'

Functional ops (`xconv.functional`) need no backend: they follow their inputs. A
backend matters where xconv creates arrays itself (layer parameters, random numbers),
moves or converts them, and waits for them.
"""

from ._base import Backend, BackendUnavailableError
from ._registry import (
    DEFAULT_BACKEND,
    ENTRY_POINT_GROUP,
    ENV_VAR,
    XconvPluginWarning,
    available,
    backend_for,
    get,
    get_backend,
    register,
    registered,
    set_backend,
    use_backend,
)

__all__ = [
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "Backend",
    "BackendUnavailableError",
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

"""Collection for the whole repository (pytest reads `xconv/` too, for its doctests).

The kernel modules of one array library import it at their top, as they are imported
only when that library's arrays arrive: leave them out of the doctest collection where
the library is not installed (each nox session installs one backend's extra).
"""

from __future__ import annotations

import importlib.util

#: Kernel module (or package) -> the library it imports at its top.
KERNELS_NEEDING = {
    "xconv/functional/_kernels/_jax.py": "jax",
    "xconv/functional/_kernels/_torch": "torch",
}

collect_ignore = [
    path for path, library in KERNELS_NEEDING.items() if importlib.util.find_spec(library) is None
]

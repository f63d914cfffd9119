"""The types xconv's signatures share: arrays, namespaces and convolution geometry.

A leaf: it imports nothing of xconv's, so every part may use it. Arrays and
namespaces come from any array-API library, which xconv does not import to type
them: both are `Any` to a type checker, and the names say what is meant.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

__all__ = ["Array", "IntOrPair", "Namespace", "Padding", "PairOfPairs"]

#: an array of any array-API library (NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict)
Array: TypeAlias = Any

#: an array-API namespace, as `array_api_compat.array_namespace` returns it
Namespace: TypeAlias = Any

#: an int for both spatial axes, or (for height, for width)
IntOrPair: TypeAlias = int | tuple[int, int]

#: ((top, bottom), (left, right))
PairOfPairs: TypeAlias = tuple[tuple[int, int], tuple[int, int]]

#: every form of padding a convolution or pooling takes
Padding: TypeAlias = int | tuple[int, int] | PairOfPairs | Literal["valid", "same"]

"""Helpers of the tests of the ops issue #25 added: PyTorch float64 forward and
autograd gradients, compared with an xconv op and its backward on any backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np
from helpers import to_np, to_xp, torch


def torch_run(
    fn: Callable[..., Any],
    arrays: Sequence[np.ndarray | None],
    differentiable: Sequence[bool],
    grad_output: np.ndarray | None = None,
) -> tuple[np.ndarray, list[np.ndarray | None], np.ndarray]:
    """`fn(*tensors)` in float64 on the CPU, and the gradient of ``sum(out * probe)``
    with respect to each differentiable array (None for the others)."""
    tensors = []
    for a, grad in zip(arrays, differentiable, strict=True):
        if a is None:
            tensors.append(None)
        else:
            t = torch.tensor(a)
            tensors.append(t.requires_grad_(True) if grad else t)
    out = fn(*tensors)
    if grad_output is None:
        grad_output = np.random.default_rng(7).standard_normal(tuple(out.shape))
    if any(t is not None and t.requires_grad for t in tensors):
        out.backward(torch.tensor(grad_output, dtype=out.dtype))
    grads = [None if t is None or t.grad is None else t.grad.numpy() for t in tensors]
    return out.detach().numpy(), grads, np.asarray(grad_output)


def strided(a: np.ndarray | None, xp: Any) -> Any:
    """`a` on backend `xp` as a non-contiguous array where the library has strides: the
    reversed-axes copy of `a`, with its axes permuted back."""
    if a is None:
        return None
    if a.ndim < 2:
        return to_xp(a, xp)
    order = tuple(reversed(range(a.ndim)))
    return xp.permute_dims(to_xp(np.ascontiguousarray(a.transpose(order)), xp), order)


def on(xp: Any, arrays: Sequence[np.ndarray | None], *, contiguous: bool = True) -> list[Any]:
    """The host arrays on backend `xp` (None stays None)."""
    if not contiguous:
        return [strided(a, xp) for a in arrays]
    return [None if a is None else to_xp(a, xp) for a in arrays]


def close(actual: Any, expected: np.ndarray | None, *, rtol: float = 1e-11) -> None:
    """Agreement in float64, relative to the largest expected value."""
    assert expected is not None
    got = to_np(actual)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


def spy_aten(xp: Any, monkeypatch: Any, names: Sequence[str]) -> list[str]:
    """Record each call of torch's ATen ops `names` (by name, in order) for the rest of
    the test; an empty list that stays empty on other backends."""
    calls: list[str] = []
    if torch is None or not array_api_compat.is_torch_namespace(xp):
        return calls
    for name in names:
        original = getattr(torch.ops.aten, name)

        def counted(*args: Any, _name: str = name, _op: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _op(*args, **kw)

        monkeypatch.setattr(torch.ops.aten, name, counted)
    return calls

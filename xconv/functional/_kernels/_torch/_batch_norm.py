"""Batch normalization on PyTorch tensors by PyTorch's own batch-norm kernels.

Imported only when `batch_norm` meets torch tensors with ``xconv.config.delegate`` and
``fast_kernels`` on, never at ``import xconv``. The op's semantics stay xconv's:

- statistics: ``aten.native_batch_norm`` in training mode gives the batch mean and
  ``1 / sqrt(var + eps)``. The biased variance the layer's running estimate takes is
  not recovered from that (``1 / inv_std**2 - eps`` cancels when var << eps): the call
  gets two fresh zero tensors of our own as running buffers with momentum 1, which
  torch overwrites with the batch mean and its *unbiased* variance, from which
  ``var * (count - 1) / count`` is the biased one. No tensor the caller holds is
  written to; the running estimates are updated by `batch_norm`'s own rule.
- inference: the same op in evaluation mode on the layer's running estimates (torch
  reads them, writes nothing).
- gradients: ``aten.native_batch_norm_backward`` from the input, the batch mean and
  inverse deviation, as autograd runs it for ``batch_norm``: input, gamma and beta in
  one call.

Only float32 and float64 batches of more than one value per channel are taken, with
every other tensor (gamma, beta, the running estimates) of the batch's dtype and on its
device; anything else runs the layer's generic code.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ._tensors import same_float_tensors

__all__ = ["TorchSaved", "backward", "inference", "takes", "training"]


def takes(x: Any, *others: Any) -> bool:
    """Whether the batch `x` and the per-channel tensors `others` can go to torch's
    kernels: float32/float64, more than one value per channel, one dtype and device."""
    if not same_float_tensors(x, *others) or x.ndim < 2:
        return False
    return bool(x.numel() > x.shape[1])  # not an empty batch, nor one value per channel


class TorchSaved(NamedTuple):
    """What PyTorch's backward kernel needs: the input as given, the batch mean and
    ``1 / sqrt(var + eps)`` per channel, and eps."""

    x: Any
    mean: Any
    inv_std: Any
    eps: float

    def unfused(self) -> tuple[Any, Any]:
        """The generic code's ``(x_hat, inv_std)``, shaped for broadcasting."""
        broadcast = (1, self.x.shape[1]) + (1,) * (self.x.ndim - 2)
        inv_std = torch.reshape(self.inv_std, broadcast)
        return (self.x - torch.reshape(self.mean, broadcast)) * inv_std, inv_std


def training(x: Any, gamma: Any, beta: Any, eps: float) -> tuple[Any, Any, Any, TorchSaved]:
    """The normalised, scaled and shifted batch; per channel its mean and biased
    variance; what `backward` needs."""
    channels = x.shape[1]
    count = x.numel() // channels
    scratch_mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
    scratch_var = torch.zeros(channels, dtype=x.dtype, device=x.device)
    out, mean, inv_std = torch.ops.aten.native_batch_norm(
        x, gamma, beta, scratch_mean, scratch_var, True, 1.0, eps
    )
    # momentum 1: torch's scratch_var = 1 * unbiased variance + 0 * 0
    var = scratch_var * ((count - 1) / count)
    return out, mean, var, TorchSaved(x, mean, inv_std, eps)


def inference(
    x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any, eps: float
) -> Any:
    """The batch normalised by the running estimates, scaled and shifted."""
    out, _, _ = torch.ops.aten.native_batch_norm(
        x, gamma, beta, running_mean, running_var, False, 0.0, eps
    )
    return out


def backward(grad_output: Any, saved: TorchSaved, gamma: Any) -> tuple[Any, Any, Any]:
    """The gradients of `training`'s output for input, gamma and beta."""
    x, mean, inv_std, eps = saved
    grad_input, grad_gamma, grad_beta = torch.ops.aten.native_batch_norm_backward(
        grad_output, x, gamma, None, None, mean, inv_std, True, eps, [True, True, True]
    )
    return grad_input, grad_gamma, grad_beta

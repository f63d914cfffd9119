"""Data augmentation as layers: random flips and random crops of padded images.

They run inside `fit` on the model's backend and are saved with the model. In
training each draws, for every sample, what to do from a host NumPy generator seeded
by `initialize` (so one seed gives the same augmented batches on every backend); in
inference they pass the batch through unchanged.

Training-time randomness follows one protocol (Dropout's too): a layer with
``stochastic = True`` draws everything one forward pass needs with
``sample_noise(n_samples)``, and ``forward_pass(X, training, noise=...)`` computes its
output from those arrays with array operations only: no Python branch on their values
and no copy to the host, so a jitted training step can take the noise as an argument.
"""

from __future__ import annotations

from typing import Literal

import array_api_compat
import numpy as np

from xconv._typing import Array, Namespace
from xconv._validation import check_shape, int_or_pair, namespace_of
from xconv.backends import Backend

from ._base import StochasticLayer
from ._reshape import ParameterFreeLayer

__all__ = ["RandomCrop", "RandomFlip"]

#: the largest `RandomCrop` padding (its offsets and row indices are int32)
MAX_PADDING = 1 << 16

FlipMode = Literal["horizontal", "vertical", "horizontal_and_vertical"]
_FLIP_AXES: dict[str, tuple[str, ...]] = {
    "horizontal": ("horizontal",),
    "vertical": ("vertical",),
    "horizontal_and_vertical": ("horizontal", "vertical"),
}


class _RandomLayer(StochasticLayer, ParameterFreeLayer):
    """A parameter-free (N, C, H, W) layer that draws from a host generator in training.

    Subclasses implement `sample_noise`, `_apply` (the forward pass given the noise,
    returning what backward needs) and `_adjoint` (the input gradient).
    """

    sample_axes = "CHW"

    def _generator(self) -> tuple[np.random.Generator, Backend]:
        if self._rng is None or self.backend is None:
            raise RuntimeError(f"{self.layer_name()} draws no noise before initialize()")
        return self._rng, self.backend

    def sample_noise(self, n_samples: int) -> dict[str, Array]:
        """Everything one training forward pass on `n_samples` samples draws, as
        arrays of the layer's backend."""
        raise NotImplementedError

    def forward_pass(
        self, X: Array, training: bool = True, *, noise: dict[str, Array] | None = None
    ) -> Array:
        # the namespace, the axes (`sample_axes`) and the input shape, checked at once
        self.ensure_initialized(X)
        xp = self.check_input(X)
        if not training:
            # inference: the identity, and backward then passes gradients through
            self._saved = {}
            return X
        if noise is None:
            noise = self.sample_noise(int(X.shape[0]))
        out, saved = self._apply(X, noise, xp)
        self._saved = {"X": X, **saved}
        return out

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._saved is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X) first")
        saved, self._saved = self._saved, None
        if not saved:
            return accum_grad
        X = saved["X"]
        xp = namespace_of(accum_grad=accum_grad, X=X)
        check_shape(accum_grad, "accum_grad", tuple(X.shape), "the shape of the layer's output")
        return self._adjoint(accum_grad, saved, xp)

    def _apply(
        self, X: Array, noise: dict[str, Array], xp: Namespace
    ) -> tuple[Array, dict[str, Array]]:
        raise NotImplementedError

    def _adjoint(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        raise NotImplementedError


def _noise_entry(
    noise: dict[str, Array], key: str, n: int, layer: str, kind: str, xp: Namespace
) -> Array:
    """``noise[key]``, which must be an array of `xp` of dtype `kind` ("bool" or
    "integral"), one value per sample."""
    if not isinstance(noise, dict) or key not in noise:
        raise ValueError(f"{layer}'s `noise` must be a dict with {key!r}, got {noise!r}")
    value = noise[key]
    if not array_api_compat.is_array_api_obj(value) or isinstance(value, bool | int | float):
        raise TypeError(
            f"{layer}'s noise {key!r} must be an array of the input's library, got "
            f"{type(value).__name__}"
        )
    try:
        same_library = array_api_compat.array_namespace(value) == xp
        right_kind = same_library and bool(xp.isdtype(value.dtype, kind))
    except TypeError:
        same_library = right_kind = False
    if not right_kind:
        what = "bool" if kind == "bool" else "integer"
        raise TypeError(
            f"{layer}'s noise {key!r} must be a {what} array of the input's library, got "
            f"{type(value).__name__} of dtype {getattr(value, 'dtype', None)}"
        )
    if tuple(value.shape) != (n,):
        raise ValueError(
            f"{layer}'s noise {key!r} must have shape ({n},), one per sample, got "
            f"{tuple(value.shape)}"
        )
    return value


class RandomFlip(_RandomLayer):
    """Mirror each image with probability 1/2 in training; the identity in inference.

    Args:
        mode: ``"horizontal"`` (left-right, along W), ``"vertical"`` (top-bottom,
            along H) or ``"horizontal_and_vertical"`` (each drawn independently).
        input_shape: (C, H, W) of one sample, or taken from the first batch.

    Noise (`sample_noise`): ``"horizontal"`` and/or ``"vertical"``, a (N,) bool array,
    True where that sample is flipped.

    Shape:
        input (N, C, H, W) -> output (N, C, H, W).

    Example:
        >>> import numpy as np
        >>> layer = RandomFlip()
        >>> layer.initialize(seed=0)
        >>> X = np.arange(3.0).reshape(1, 1, 1, 3)
        >>> layer.forward_pass(X, noise={"horizontal": np.asarray([True])})
        array([[[[2., 1., 0.]]]])
        >>> layer.forward_pass(X, training=False)
        array([[[[0., 1., 2.]]]])
    """

    def __init__(
        self, mode: FlipMode = "horizontal", input_shape: tuple[int, ...] | None = None
    ) -> None:
        if not isinstance(mode, str) or mode not in _FLIP_AXES:
            raise ValueError(
                f"`mode` must be one of {', '.join(map(repr, _FLIP_AXES))}, got {mode!r}"
            )
        self.mode = mode
        super().__init__(input_shape)

    def sample_noise(self, n_samples: int) -> dict[str, Array]:
        rng, backend = self._generator()
        # one coin per sample and direction, in a fixed order
        return {
            direction: backend.asarray(rng.random(n_samples) < 0.5)
            for direction in _FLIP_AXES[self.mode]
        }

    def _flip(self, X: Array, noise: dict[str, Array], xp: Namespace) -> Array:
        n = int(X.shape[0])
        for direction in _FLIP_AXES[self.mode]:
            mask = _noise_entry(noise, direction, n, self.layer_name(), "bool", xp)
            axis = -1 if direction == "horizontal" else -2
            # each sample: its mirror image where the mask says so, else itself
            X = xp.where(mask[:, None, None, None], xp.flip(X, axis=axis), X)
        return X

    def _apply(
        self, X: Array, noise: dict[str, Array], xp: Namespace
    ) -> tuple[Array, dict[str, Array]]:
        used = {
            d: noise[d] for d in _FLIP_AXES[self.mode] if isinstance(noise, dict) and d in noise
        }
        return self._flip(X, noise, xp), used

    def _adjoint(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        # a flip is its own adjoint (horizontal and vertical flips commute)
        return self._flip(accum_grad, saved, xp)


class RandomCrop(_RandomLayer):
    """Pad each image with zeros, then crop it back to its size at a random offset.

    Like torchvision's ``RandomCrop(32, padding=4)``: in training, sample n's output
    is the (H, W) window at rows ``dy[n]`` and columns ``dx[n]`` of its image padded by
    `padding` zeros on each side, the offsets uniform in ``[0, 2 * padding]``; in
    inference the identity. The window is taken with two one-hot selection matmuls
    (rows, then columns), so the layer needs only standard array operations and its
    gradient is the transposed selection.

    Args:
        padding: zeros added on each side, an integer >= 0 or a pair (pad_h, pad_w).
        input_shape: (C, H, W) of one sample, or taken from the first batch.

    Noise (`sample_noise`): ``"dy"`` and ``"dx"``, (N,) int32 arrays of offsets.

    Shape:
        input (N, C, H, W) -> output (N, C, H, W).

    Example:
        >>> import numpy as np
        >>> layer = RandomCrop(padding=1)
        >>> layer.initialize(seed=0)
        >>> X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
        >>> offsets = {"dy": np.asarray([0]), "dx": np.asarray([2])}
        >>> layer.forward_pass(X, noise=offsets)[0, 0]
        array([[0., 0., 0.],
               [2., 3., 0.],
               [5., 6., 0.]])
    """

    def __init__(
        self, padding: int | tuple[int, int] = 4, input_shape: tuple[int, ...] | None = None
    ) -> None:
        self._pad = int_or_pair(padding, "padding", minimum=0)
        if max(self._pad) > MAX_PADDING:  # offsets and rows are int32
            raise ValueError(f"`padding` must be at most {MAX_PADDING}, got {padding!r}")
        self.padding = padding
        super().__init__(input_shape)

    def sample_noise(self, n_samples: int) -> dict[str, Array]:
        rng, backend = self._generator()
        pad_h, pad_w = self._pad
        # rows first, then columns
        dy = rng.integers(0, 2 * pad_h + 1, size=n_samples)
        dx = rng.integers(0, 2 * pad_w + 1, size=n_samples)
        return {"dy": backend.asarray(dy, dtype="int32"), "dx": backend.asarray(dx, dtype="int32")}

    def _selections(self, X: Array, noise: dict[str, Array], xp: Namespace) -> tuple[Array, Array]:
        """One-hot (N, 1, H, H) row and (N, 1, W, W) column selections for the offsets.

        Output row i of sample n is input row ``i + dy[n] - pad_h`` (a padded zero
        row where that is outside the image); likewise for columns.
        """
        n, _, height, width = (int(d) for d in X.shape)
        device = array_api_compat.device(X)
        (pad_h, pad_w), name = self._pad, self.layer_name()
        dy = _noise_entry(noise, "dy", n, name, "integral", xp)
        dx = _noise_entry(noise, "dx", n, name, "integral", xp)
        # rows: rows[n, i, k] = 1 where input row k lands on output row i
        i = xp.arange(height, dtype=xp.int32, device=device)
        source = i[None, :] + xp.astype(dy, xp.int32)[:, None] - pad_h
        rows = xp.astype(source[:, :, None] == i[None, None, :], X.dtype)
        # columns: cols[n, k, j] = 1 where input column k lands on output column j
        j = xp.arange(width, dtype=xp.int32, device=device)
        source = j[None, :] + xp.astype(dx, xp.int32)[:, None] - pad_w
        cols = xp.astype(j[None, :, None] == source[:, None, :], X.dtype)
        return rows[:, None, :, :], cols[:, None, :, :]

    def _apply(
        self, X: Array, noise: dict[str, Array], xp: Namespace
    ) -> tuple[Array, dict[str, Array]]:
        rows, cols = self._selections(X, noise, xp)
        # select the window's rows, then its columns
        return xp.matmul(xp.matmul(rows, X), cols), {"rows": rows, "cols": cols}

    def _adjoint(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        # the transposed selections put each output gradient back on its input pixel
        rows_t = xp.matrix_transpose(saved["rows"])
        cols_t = xp.matrix_transpose(saved["cols"])
        return xp.matmul(xp.matmul(rows_t, accum_grad), cols_t)

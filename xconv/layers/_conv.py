"""The Conv2D layer, on top of `xconv.functional`'s convolution."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv.backends import Backend
from xconv.functional._checks import check_shape, namespace_of
from xconv.functional._conv import forward, input_gradient, weight_gradient
from xconv.functional._geometry import (
    ConvGeometry,
    IntOrPair,
    Padding,
    as_int,
    check_padding,
    pair,
)

from ._base import Array, Layer, make_rng
from ._initializers import DEFAULT_INITIALIZER, check_initializer, initial_weights
from ._smooth_activations import FusedActivation

__all__ = ["Conv2D"]


class Conv2D(Layer):
    """A 2-D convolution layer: ``conv2d(X, weight, bias, ...)`` with learned parameters.

    Args:
        n_filters: number of output channels F.
        filter_shape: kernel size, int or (kh, kw).
        input_shape: (C, H, W) of one sample; needed before `initialize`, or taken
            from the first batch.
        padding: ``"same"`` (default; output = ceil(input / stride), any stride),
            ``"valid"``, an int, a pair or ((top, bottom), (left, right)).
        stride, dilation: int or pair, >= 1.
        groups: split channels and filters into this many blocks.
        use_bias: learn one bias per filter.
        activation: an activation applied to the output (``"relu"``, ``"gelu"``, ...,
            as `Activation` names them), or None (default).
        kernel_initializer: how the weights are drawn, by name (see
            `xconv.layers.INITIALIZERS`); default ``"fan_in_uniform"``.

    Parameters (in `params`): ``"weight"`` of shape (F, C // groups, kh, kw), by
    default drawn uniformly from +-1/sqrt(fan_in) with fan_in = C // groups * kh * kw
    (and fan_out = F * kh * kw), and ``"bias"`` of shape (F,), zeros. They are drawn
    on the host from the seed given to `initialize`, so a seed gives the same layer on
    every backend.

    Shape:
        input (N, C, H, W) -> output (N, F, OH, OW), ``OH = (H + pad_top + pad_bottom
        - dilation_h * (kh - 1) - 1) // stride_h + 1``, OW likewise.

    Example:
        >>> import numpy as np
        >>> layer = Conv2D(8, 3, input_shape=(1, 6, 6), stride=2)
        >>> layer.initialize(seed=0)
        >>> layer.output_shape(), layer.parameters()
        ((8, 3, 3), 80)
        >>> out = layer.forward_pass(np.ones((2, 1, 6, 6), dtype=np.float32))
        >>> grad_input = layer.backward_pass(np.ones_like(out))
        >>> grad_input.shape, layer.grads["weight"].shape
        ((2, 1, 6, 6), (8, 1, 3, 3))
    """

    def __init__(
        self,
        n_filters: int,
        filter_shape: IntOrPair,
        input_shape: tuple[int, int, int] | None = None,
        padding: Padding = "same",
        stride: IntOrPair = 1,
        dilation: IntOrPair = 1,
        groups: int = 1,
        use_bias: bool = True,
        activation: str | None = None,
        kernel_initializer: str = DEFAULT_INITIALIZER,
    ) -> None:
        if isinstance(n_filters, bool) or not isinstance(n_filters, int) or n_filters < 1:
            raise ValueError(f"`n_filters` must be a positive integer, got {n_filters!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"`groups` must be a positive integer, got {groups!r}")
        if n_filters % groups:
            raise ValueError(
                f"`n_filters` (={n_filters}) must be divisible by `groups` (={groups})"
            )
        if not isinstance(use_bias, bool):
            raise TypeError(f"`use_bias` must be True or False, got {use_bias!r}")
        check_padding(padding)
        self.n_filters = n_filters
        self.filter_shape = pair(filter_shape, "filter_shape")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = padding
        self.groups = groups
        self.use_bias = use_bias
        self.kernel_initializer = check_initializer(kernel_initializer)
        self._activation = FusedActivation(activation)
        self.activation = activation
        self._geometry: ConvGeometry | None = None
        self._cols: Array | None = None
        self._input: Array | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        dims = [as_int(d) for d in shape] if isinstance(shape, tuple | list) else []
        if len(dims) != 3 or any(d is None or d < 1 for d in dims):
            raise ValueError(
                f"`input_shape` must be three positive integers (channels, height, width), "
                f"got {shape!r}"
            )
        channels, height, width = (int(d or 0) for d in dims)
        if channels % self.groups:
            raise ValueError(
                f"`input_shape` {tuple(shape)} has {channels} channels, not divisible by "
                f"`groups` (={self.groups})"
            )
        self._geometry = self._build_geometry(height, width)
        super().set_input_shape((channels, height, width))

    def _build_geometry(self, height: int, width: int) -> ConvGeometry:
        return ConvGeometry.build(
            (height, width),
            self.filter_shape,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )

    def initialize(
        self,
        *,
        seed: int | np.random.Generator = 0,
        dtype: Any = "float32",
        backend: str | Backend | None = None,
    ) -> None:
        """Create `weight` and `bias` on `backend` (default: the current backend)."""
        if self.input_shape is None:
            raise ValueError(
                "Conv2D needs its input shape before initialize(): pass "
                "input_shape=(channels, height, width) or call set_input_shape()"
            )
        rng = make_rng(seed)
        super().initialize(seed=rng, dtype=dtype, backend=backend)
        assert self.backend is not None
        kh, kw = self.filter_shape
        self.params = {
            "weight": initial_weights(
                self.kernel_initializer,
                self._weight_shape(),
                fan_in=self.input_shape[0] // self.groups * kh * kw,
                fan_out=self.n_filters * kh * kw,
                rng=rng,
                backend=self.backend,
                dtype=dtype,
            )
        }
        if self.use_bias:
            self.params["bias"] = self.backend.asarray(np.zeros(self.n_filters), dtype=dtype)
        self.grads = {}

    def _weight_shape(self) -> tuple[int, int, int, int]:
        assert self.input_shape is not None
        return (self.n_filters, self.input_shape[0] // self.groups, *self.filter_shape)

    # the ancestor's names for the parameters
    @property
    def W(self) -> Array:
        """The filters, ``params["weight"]``."""
        return self.params["weight"]

    @property
    def w0(self) -> Array | None:
        """The biases, ``params["bias"]`` (None without bias)."""
        return self.params.get("bias")

    def output_shape(self) -> tuple[int, int, int]:
        if self._geometry is None:
            raise ValueError("Conv2D's output shape is unknown until its input shape is set")
        return (self.n_filters, *self._geometry.out_size)

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        self.check_input(X)
        weight, bias = self.params["weight"], self.params.get("bias")
        xp = namespace_of(X=X, weight=weight, bias=bias)
        assert self._geometry is not None
        out, cols = forward(
            X, weight, bias, self._geometry, self.groups, xp, keep_columns=training
        )
        # keep the input, and the columns if they fit the workspace, for backward_pass
        self._cols, self._input = cols, (X if training else None)
        return self._activation.forward(out, training)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._input is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        weight = self.params["weight"]
        xp = namespace_of(accum_grad=accum_grad, weight=weight)
        assert self._geometry is not None
        expected = (self._input.shape[0], *self.output_shape())
        check_shape(accum_grad, "accum_grad", expected, "the shape of the layer's output")
        accum_grad = self._activation.backward(accum_grad)
        geometry, groups = self._geometry, self.groups
        self.grads = {
            "weight": weight_gradient(
                accum_grad, self._input, self._cols, tuple(weight.shape), geometry, groups, xp
            )
        }
        if self.use_bias:
            self.grads["bias"] = xp.sum(accum_grad, axis=(0, 2, 3))
        # the columns are as large as the input times kh * kw: free them before the
        # input gradient makes columns of its own
        self._cols = self._input = None
        return input_gradient(accum_grad, weight, geometry, groups, xp)

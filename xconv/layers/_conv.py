"""The Conv2D layer, on top of `xconv.functional`'s convolution."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._typing import Array, IntOrPair, Padding
from xconv._validation import (
    as_int,
    check_shape,
    int_or_pair,
    namespace_of,
    positive_int,
    true_or_false,
)
from xconv.functional import (
    ConvColumns,
    ConvGeometry,
    conv2d_forward,
    conv2d_gradients,
)

from ._base import Layer
from ._initializers import DEFAULT_INITIALIZER, check_initializer
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
        n_filters = positive_int(n_filters, "n_filters")
        groups = positive_int(groups, "groups")
        if n_filters % groups:
            raise ValueError(
                f"`n_filters` (={n_filters}) must be divisible by `groups` (={groups})"
            )
        use_bias = true_or_false(use_bias, "use_bias")
        ConvGeometry.check_padding(padding)
        self.n_filters = n_filters
        # made pairs once, here: the geometry is built from these pairs as they are
        self.filter_shape = int_or_pair(filter_shape, "filter_shape")
        self.stride = int_or_pair(stride, "stride")
        self.dilation = int_or_pair(dilation, "dilation")
        self.padding = padding
        self.groups = groups
        self.use_bias = use_bias
        self.kernel_initializer = check_initializer(kernel_initializer)
        self._activation = FusedActivation(activation)
        self.activation = activation
        self._geometry: ConvGeometry | None = None
        self._cols: ConvColumns | None = None
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
        return ConvGeometry.from_pairs(
            (height, width),
            self.filter_shape,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        """Create `weight` and `bias` (see the class's docstring)."""
        kh, kw = self.filter_shape
        self.params = {
            "weight": self.make_weight(
                self._weight_shape(),
                initializer=self.kernel_initializer,
                fan_in=input_shape[0] // self.groups * kh * kw,
                fan_out=self.n_filters * kh * kw,
                rng=rng,
                dtype=dtype,
            )
        }
        if self.use_bias:
            self.params["bias"] = self.make_weight((self.n_filters,), dtype=dtype)

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
        weight, bias = self.params["weight"], self.params.get("bias")
        self.check_input(X, weight=weight, bias=bias)
        assert self._geometry is not None
        out, cols = conv2d_forward(
            X, weight, bias, geometry=self._geometry, groups=self.groups, keep_columns=training
        )
        # keep the input, and the columns if they fit the workspace, for backward_pass
        self._cols, self._input = cols, (X if training else None)
        return self._activation.forward(out, training)

    #: `backward_pass` can leave out the input's gradient (a network's first layer)
    skips_input_gradient = True

    def backward_pass(self, accum_grad: Array, *, input_gradient: bool = True) -> Array | None:
        """Gradient for the layer below (None without `input_gradient`: nothing reads it,
        so it is not computed), and the parameters' gradients in ``grads``."""
        if self._input is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        weight = self.params["weight"]
        namespace_of(accum_grad=accum_grad, weight=weight)
        assert self._geometry is not None
        expected = (self._input.shape[0], *self.output_shape())
        check_shape(accum_grad, "accum_grad", expected, "the shape of the layer's output")
        accum_grad = self._activation.backward(accum_grad)
        x, columns = self._input, self._cols
        self._cols = self._input = None
        # (the gradients use the kept columns up and free them before the input
        # gradient makes columns of its own)
        grad_input, grad_weight, grad_bias = conv2d_gradients(
            accum_grad,
            x,
            weight,
            geometry=self._geometry,
            groups=self.groups,
            bias=self.use_bias,
            columns=columns,
            input_gradient=input_gradient,
        )
        self.grads = {"weight": grad_weight}
        if grad_bias is not None:
            self.grads["bias"] = grad_bias
        return grad_input

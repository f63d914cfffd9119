"""Shape and padding algebra of a 2-D convolution, validated once.

Everything here works on Python integers, before any array is touched, so bad
arguments fail fast with a message that names them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "ConvGeometry",
    "IntOrPair",
    "Padding",
    "as_int",
    "check_padding",
    "explicit_padding",
    "pair",
]

IntOrPair: TypeAlias = int | tuple[int, int]
Padding: TypeAlias = (
    int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]] | Literal["valid", "same"]
)


def as_int(value: object) -> int | None:
    """`value` as an int if it is an integer (bools excluded), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def pair(value: object, name: str, *, minimum: Literal[0, 1] = 1) -> tuple[int, int]:
    """Normalise an int-or-pair argument to a pair of ints >= `minimum` (0 or 1).

    >>> pair(3, "stride")
    (3, 3)
    >>> pair((1, 2), "dilation")
    (1, 2)
    >>> pair(0, "stride")
    Traceback (most recent call last):
    ...
    ValueError: `stride` must be a positive integer or pair of them, got 0
    """
    what = f"a {'positive' if minimum else 'non-negative'} integer or pair of them"
    single = as_int(value)
    if single is not None:
        items: tuple[int | None, ...] = (single, single)
    elif isinstance(value, tuple | list) and len(value) == 2:
        items = (as_int(value[0]), as_int(value[1]))
    else:
        raise TypeError(f"`{name}` must be {what}, got {value!r}")
    if items[0] is None or items[1] is None:
        raise TypeError(f"`{name}` must be {what}, got {value!r}")
    if items[0] < minimum or items[1] < minimum:
        raise ValueError(f"`{name}` must be {what}, got {value!r}")
    return items[0], items[1]


_PADDING_FORMS = (
    "an integer >= 0, a pair (pad_h, pad_w), a pair of pairs "
    "((top, bottom), (left, right)), 'valid' or 'same'"
)


def explicit_padding(padding: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding given as numbers, as ((top, bottom), (left, right))."""
    if (
        isinstance(padding, tuple | list)
        and len(padding) == 2
        and all(isinstance(p, tuple | list) for p in padding)
    ):
        try:
            top, bottom = pair(padding[0], "padding", minimum=0)
            left, right = pair(padding[1], "padding", minimum=0)
        except (TypeError, ValueError):
            raise _padding_error(padding) from None
        return (top, bottom), (left, right)
    try:
        pad_h, pad_w = pair(padding, "padding", minimum=0)
    except TypeError:
        raise _padding_error(padding, TypeError) from None
    except ValueError:
        raise _padding_error(padding) from None
    return (pad_h, pad_h), (pad_w, pad_w)


def _padding_error(padding: object, kind: type[Exception] = ValueError) -> Exception:
    return kind(f"`padding` must be {_PADDING_FORMS}, got {padding!r}")


def check_padding(padding: object) -> None:
    """Raise the error `ConvGeometry.build` would raise for a malformed `padding`."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise _padding_error(padding)
    else:
        explicit_padding(padding)


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': output = ceil(size / stride), odd pixel at the end."""
    out = -(-size // stride)
    span = dilation * (kernel - 1) + 1
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True, slots=True)
class ConvGeometry:
    """The sizes of one 2-D convolution: what im2col, col2im and their kernels need.

    Build it with `ConvGeometry.build`, which validates the arguments. Sizes are
    (height, width) pairs; `padding` is ((top, bottom), (left, right)).

    Shape:
        ``out_size[0] = (in_size[0] + top + bottom - dilation[0] * (kernel_size[0] - 1)
        - 1) // stride[0] + 1``, and likewise for the width.

    >>> g = ConvGeometry.build((5, 5), 3, stride=2, padding="same")
    >>> g.out_size, g.padding
    ((3, 3), ((1, 1), (1, 1)))
    >>> ConvGeometry.build((4, 4), 3, stride=2, padding="same").padding
    ((0, 1), (0, 1))
    """

    in_size: tuple[int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    out_size: tuple[int, int]

    @classmethod
    def build(
        cls,
        in_size: tuple[int, int],
        kernel_size: IntOrPair,
        *,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
    ) -> ConvGeometry:
        """Validate the arguments and work out the padding and the output size."""
        size = pair(in_size, "input size", minimum=0)
        kernel = pair(kernel_size, "kernel_size")
        strides = pair(stride, "stride")
        dilations = pair(dilation, "dilation")
        check_padding(padding)
        if padding == "valid":
            pads = (0, 0), (0, 0)
        elif padding == "same":
            pads = (
                _same_padding(size[0], kernel[0], strides[0], dilations[0]),
                _same_padding(size[1], kernel[1], strides[1], dilations[1]),
            )
        else:
            pads = explicit_padding(padding)
        out = []
        for axis, name in enumerate(("height", "width")):
            padded = size[axis] + pads[axis][0] + pads[axis][1]
            span = dilations[axis] * (kernel[axis] - 1) + 1
            if span > padded:
                raise ValueError(
                    f"the kernel spans {span} pixels along the {name} (kernel_size="
                    f"{kernel_size!r}, dilation={dilation!r}) but the padded input has "
                    f"{padded} (input {size[axis]}, padding {pads[axis][0]} + "
                    f"{pads[axis][1]}); use a smaller kernel or more padding"
                )
            out.append((padded - span) // strides[axis] + 1)
        return cls(size, kernel, strides, dilations, pads, (out[0], out[1]))

    @property
    def padded_size(self) -> tuple[int, int]:
        """(height, width) of the input after padding."""
        (top, bottom), (left, right) = self.padding
        return self.in_size[0] + top + bottom, self.in_size[1] + left + right

    @property
    def is_padded(self) -> bool:
        """Whether any side is padded."""
        return any(self.padding[0]) or any(self.padding[1])

    def window(self, i: int, j: int) -> tuple[slice, slice]:
        """Slices of the padded input that kernel tap (i, j) sees, one per output pixel."""
        rows = slice(
            i * self.dilation[0],
            i * self.dilation[0] + self.stride[0] * (self.out_size[0] - 1) + 1,
            self.stride[0],
        )
        cols = slice(
            j * self.dilation[1],
            j * self.dilation[1] + self.stride[1] * (self.out_size[1] - 1) + 1,
            self.stride[1],
        )
        return rows, cols

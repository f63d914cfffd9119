"""Shape and padding algebra of a 2-D convolution, validated once.

Everything here works on Python integers, before any array is touched, so bad
arguments fail fast with a message that names them.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from xconv._typing import IntOrPair, Padding
from xconv._validation import int_or_pair, true_or_false

__all__ = [
    "ConvGeometry",
    "IntOrPair",
    "Padding",
    "check_padding",
    "explicit_padding",
]


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
            top, bottom = int_or_pair(padding[0], "padding", minimum=0)
            left, right = int_or_pair(padding[1], "padding", minimum=0)
        except (TypeError, ValueError):
            raise _padding_error(padding) from None
        return (top, bottom), (left, right)
    try:
        pad_h, pad_w = int_or_pair(padding, "padding", minimum=0)
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


_ATOMS = (int, str, type(None))


def _plain(value: object) -> bool:
    """Whether `value` may key the geometry cache: None, a str, an exact int (not a
    bool, float or NumPy scalar: the checks tell those apart, a dict would not) or a
    tuple of them."""
    if type(value) in _ATOMS:
        return True
    if not isinstance(value, tuple):
        return False
    # (atoms tested inline: this runs on every call of an op)
    return all(type(item) in _ATOMS or _plain(item) for item in value)


@functools.lru_cache(maxsize=1024)
def _cached(make: Any, arguments: tuple[Any, ...]) -> ConvGeometry:
    """`make(*arguments)`, once per distinct arguments (geometries are immutable; a
    call that raises is not cached, so it raises again)."""
    geometry: ConvGeometry = make(*arguments)
    return geometry


@dataclass(frozen=True, slots=True)
class ConvGeometry:
    """The sizes of one 2-D convolution: what im2col, col2im and their kernels need.

    Build it with `ConvGeometry.build`, which validates the arguments. Sizes are
    (height, width) pairs; `padding` is ((top, bottom), (left, right)).

    A pooling's geometry in PyTorch's ``ceil_mode`` (`for_pooling`) keeps one more
    window where the last one would overhang the bottom or right: `padding` then
    holds the rows and columns that window reaches past the padding asked for, and
    `ceil_padding` says how many of them that is, (bottom, right), so that
    ``count_include_pad`` counts only the padding asked for.

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
    ceil_padding: tuple[int, int] = (0, 0)

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
        """Validate the arguments and work out the padding and the output size.

        An op calls this on every call: arguments of plain ints and strings are looked
        up in a cache, so a shape met before costs a dictionary lookup.
        """
        arguments = (in_size, kernel_size, stride, padding, dilation)
        if _plain(arguments):
            return _cached(cls._build, arguments)
        return cls._build(*arguments)

    @classmethod
    def _build(
        cls,
        in_size: tuple[int, int],
        kernel_size: IntOrPair,
        stride: IntOrPair,
        padding: Padding,
        dilation: IntOrPair,
    ) -> ConvGeometry:
        return cls.from_pairs(
            int_or_pair(in_size, "input size", minimum=0),
            int_or_pair(kernel_size, "kernel_size"),
            stride=int_or_pair(stride, "stride"),
            padding=padding,
            dilation=int_or_pair(dilation, "dilation"),
        )

    @classmethod
    def from_pairs(
        cls,
        in_size: tuple[int, int],
        kernel_size: tuple[int, int],
        *,
        stride: tuple[int, int],
        padding: Padding,
        dilation: tuple[int, int],
    ) -> ConvGeometry:
        """`build` from sizes already made pairs of ints (by `int_or_pair`), as a layer
        holds them: they are not normalised a second time; `padding` is checked.

        >>> ConvGeometry.from_pairs((4, 4), (2, 2), stride=(2, 2), padding=0, dilation=(1, 1))
        ... # doctest: +NORMALIZE_WHITESPACE
        ConvGeometry(in_size=(4, 4), kernel_size=(2, 2), stride=(2, 2), dilation=(1, 1),
                     padding=((0, 0), (0, 0)), out_size=(2, 2), ceil_padding=(0, 0))
        """
        size, kernel, strides, dilations = in_size, kernel_size, stride, dilation
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
    def is_exact(self) -> bool:
        """Whether a convolution of `in_size` gives exactly `out_size` windows.

        Always so for a convolution's geometry; a transposed convolution's with an
        output padding of at least its stride (which xconv allows below the dilation)
        has an input one window too large, which the libraries' own ops refuse.
        """
        padded, dilation = self.padded_size, self.dilation
        return all(
            (padded[a] - dilation[a] * (self.kernel_size[a] - 1) - 1) // self.stride[a] + 1
            == self.out_size[a]
            for a in (0, 1)
        )

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

    check_padding = staticmethod(check_padding)

    def _real_taps(self, axis: int) -> list[list[bool]]:
        """For each window along `axis` (0 or 1), whether each of its taps is a real
        (non-padding) pixel."""
        before, size = self.padding[axis][0], self.in_size[axis]
        step, dilation = self.stride[axis], self.dilation[axis]
        return [
            [0 <= o * step + t * dilation - before < size for t in range(self.kernel_size[axis])]
            for o in range(self.out_size[axis])
        ]

    def real_pixels(self, axis: int) -> list[int]:
        """How many real (non-padding) pixels each window holds along `axis` (0 or 1)."""
        return [sum(taps) for taps in self._real_taps(axis)]

    def first_real_taps(self) -> list[list[int]]:
        """For each window (OH x OW), its first real pixel's position in the window,
        row-major (``i * kw + j``): where PyTorch's max pooling puts the maximum of a
        window whose real pixels are all -inf (and its padding too)."""
        rows = [taps.index(True) for taps in self._real_taps(0)]
        cols = [taps.index(True) for taps in self._real_taps(1)]
        kw = self.kernel_size[1]
        return [[i * kw + j for j in cols] for i in rows]

    def pool_divisors(
        self, *, count_include_pad: bool, divisor_override: int | None
    ) -> list[list[float]]:
        """What average pooling divides each window's sum by (OH x OW), as PyTorch's
        `avg_pool2d`: `divisor_override` if given; else the window's real pixels, and
        with `count_include_pad` its padding too, but not the rows and columns that
        only ``ceil_mode`` adds (`ceil_padding`)."""
        if divisor_override is not None:
            return [[float(divisor_override)] * self.out_size[1]] * self.out_size[0]
        if count_include_pad:
            counts = []
            for axis in (0, 1):
                # the window clipped to the input and the padding asked for
                end = self.padded_size[axis] - self.ceil_padding[axis]
                size, step = self.kernel_size[axis], self.stride[axis]
                starts = range(0, self.out_size[axis] * step, step)
                counts.append([min(s + size, end) - s for s in starts])
            rows, cols = counts
        else:
            rows, cols = self.real_pixels(0), self.real_pixels(1)
        return [[float(r * c) for c in cols] for r in rows]

    @classmethod
    def for_pooling(
        cls,
        in_size: tuple[int, int],
        kernel_size: IntOrPair,
        *,
        stride: IntOrPair | None = None,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
        ceil_mode: bool = False,
    ) -> ConvGeometry:
        """A pooling's geometry (`stride` defaults to the window); every window must
        keep at least one real pixel.

        With `ceil_mode` (PyTorch's), the output size rounds up rather than down, and a
        last window that would start in the bottom (right) padding is dropped.

        >>> ConvGeometry.for_pooling((7, 8), 2).out_size
        (3, 4)
        >>> g = ConvGeometry.for_pooling((7, 8), 2, ceil_mode=True)
        >>> g.out_size, g.padding, g.ceil_padding
        ((4, 4), ((0, 1), (0, 0)), (1, 0))
        """
        ceil = true_or_false(ceil_mode, "ceil_mode")
        # (the flag as an int: a cache key of plain ints, see `_plain`)
        arguments = (in_size, kernel_size, stride, padding, dilation, int(ceil))
        if _plain(arguments):
            return _cached(cls._for_pooling, arguments)
        return cls._for_pooling(*arguments)

    @classmethod
    def _for_pooling(
        cls,
        in_size: tuple[int, int],
        kernel_size: IntOrPair,
        stride: IntOrPair | None,
        padding: Padding,
        dilation: IntOrPair,
        ceil_mode: int,
    ) -> ConvGeometry:
        geometry = cls.build(
            in_size,
            kernel_size,
            stride=kernel_size if stride is None else stride,
            padding=padding,
            dilation=dilation,
        )
        if ceil_mode:
            geometry = geometry._ceil_mode()
        for axis, name in enumerate(("height", "width")):
            if min(geometry.real_pixels(axis)) < 1:
                raise ValueError(
                    f"`padding` (={padding!r}) leaves pooling windows with no input pixel "
                    f"along the {name} (input {geometry.in_size[axis]}, kernel "
                    f"{geometry.kernel_size[axis]}, dilation {geometry.dilation[axis]}, "
                    f"padding {geometry.padding[axis][0]} + {geometry.padding[axis][1]}); "
                    f"pad each side by less than the kernel size"
                )
        return geometry

    def _ceil_mode(self) -> ConvGeometry:
        """This geometry with PyTorch's ``ceil_mode``: one more window on an axis where
        windows do not fit exactly, unless it would start in the bottom/right padding
        (PyTorch drops it), padded past the bottom/right for it."""
        out, extra, pads = [], [], []
        for axis in (0, 1):
            (before, after), step = self.padding[axis], self.stride[axis]
            span = self.dilation[axis] * (self.kernel_size[axis] - 1) + 1
            count = -(-(self.padded_size[axis] - span) // step) + 1
            if (count - 1) * step >= before + self.in_size[axis]:
                count -= 1
            more = max((count - 1) * step + span - self.padded_size[axis], 0)
            out.append(count)
            extra.append(more)
            pads.append((before, after + more))
        return dataclasses.replace(
            self,
            padding=(pads[0], pads[1]),
            out_size=(out[0], out[1]),
            ceil_padding=(extra[0], extra[1]),
        )

    @classmethod
    def for_transpose(
        cls,
        in_size: tuple[int, int],
        kernel_size: IntOrPair,
        *,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        output_padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
    ) -> ConvGeometry:
        """The geometry of the convolution that a transposed convolution of an input
        of (H, W) = `in_size` transposes.

        Its `in_size` is the transposed convolution's output size, its `out_size` the
        transposed convolution's input size.

        >>> ConvGeometry.for_transpose((5, 5), 3, stride=2, padding="same").in_size
        (10, 10)
        """
        kernel = int_or_pair(kernel_size, "kernel_size")
        strides = int_or_pair(stride, "stride")
        dilations = int_or_pair(dilation, "dilation")
        extra = int_or_pair(output_padding, "output_padding", minimum=0)
        check_padding(padding)
        for axis in (0, 1):
            if extra[axis] >= max(strides[axis], dilations[axis]):
                raise ValueError(
                    f"`output_padding` must be smaller than the stride or the dilation, got "
                    f"{output_padding!r} with stride={stride!r}, dilation={dilation!r}"
                )
        if padding == "same":
            if any(extra):
                raise ValueError(
                    f"`output_padding` must be 0 with padding='same', got {output_padding!r}"
                )
            out_size = (in_size[0] * strides[0], in_size[1] * strides[1])
        else:
            pads = ((0, 0), (0, 0)) if padding == "valid" else explicit_padding(padding)
            out_size = (
                _transposed(in_size[0], kernel[0], strides[0], pads[0], extra[0], dilations[0]),
                _transposed(in_size[1], kernel[1], strides[1], pads[1], extra[1], dilations[1]),
            )
            if min(out_size) < 1:
                raise ValueError(
                    f"`padding` {padding!r} crops more than the transposed convolution "
                    f"makes: the output would be {out_size[0]} x {out_size[1]}"
                )
        geometry = cls.from_pairs(
            out_size, kernel, stride=strides, padding=padding, dilation=dilations
        )
        # An output_padding of at least the stride (allowed while below the dilation)
        # makes room for one more window than the input has; the transposed convolution
        # spreads exactly the input's pixels, so it keeps that many windows.
        assert all(o >= i for o, i in zip(geometry.out_size, in_size, strict=True)), geometry
        return dataclasses.replace(geometry, out_size=(in_size[0], in_size[1]))


def _transposed(
    size: int, kernel: int, stride: int, pads: tuple[int, int], extra: int, dilation: int
) -> int:
    return (size - 1) * stride - pads[0] - pads[1] + dilation * (kernel - 1) + extra + 1

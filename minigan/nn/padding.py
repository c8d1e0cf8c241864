"""Padding layers with PyTorch's names: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and
CircularPad, each in a 1d form (pads L) and a 2d form (pads H and W). ``padding`` is an int (all
sides) or the sizes (left, right[, top, bottom]).

    >>> import minigan as mg
    >>> from minigan import nn
    >>> pad = nn.ReflectionPad2d(1)
    >>> pad, pad(mg.zeros(2, 3, 8, 8)).shape
    (ReflectionPad2d((1, 1, 1, 1)), (2, 3, 10, 10))
"""
from .. import functional as F
from ..functional import _checks as checks
from .module import Module


class _Pad(Module):
    _mode = "constant"
    _sides = 2  # sizes per padded dimension times the dimensions: 2 for 1d, 4 for 2d
    _minimum = 0  # reflect, replicate and circular take no negative sizes
    _layout = ""

    def __init__(self, padding):
        super().__init__()
        who = type(self).__name__
        sizes = (padding,) * self._sides if checks._is_int(padding) else tuple(padding)
        if len(sizes) != self._sides or not all(
                checks._is_int(n) and (self._minimum is None or n >= self._minimum) for n in sizes):
            kind = "ints" if self._minimum is None else f"ints >= {self._minimum}"
            raise ValueError(f"{who}: padding must be an int or {self._sides} {kind}, got {padding!r}")
        self.padding = tuple(int(n) for n in sizes)

    def forward(self, x):
        ndim = self._sides // 2
        checks._check_ndim(self.describe(), x, (ndim + 1, ndim + 2), self._layout)
        return F.pad(x, self.padding, self._mode, getattr(self, "value", None))

    def extra_repr(self):
        return f"{self.padding}"


class _Pad1d(_Pad):
    _sides, _layout = 2, "(N, C, L) or (C, L)"


class _Pad2d(_Pad):
    _sides, _layout = 4, "(N, C, H, W) or (C, H, W)"


class _ConstantPad(_Pad):
    _minimum = None  # a negative size crops

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPad, _Pad1d):
    """Pad the last dimension with ``value`` (a negative size crops)."""


class ConstantPad2d(_ConstantPad, _Pad2d):
    """Pad the last two dimensions with ``value`` (a negative size crops)."""


class ZeroPad1d(ConstantPad1d):
    """Pad the last dimension with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dimensions with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_Pad1d):
    """Mirror the last dimension about its edge pixels (each size less than the dimension)."""

    _mode = "reflect"


class ReflectionPad2d(_Pad2d):
    """Mirror H and W about their edge pixels: the border convolutions of CycleGAN's and
    pix2pix's generators see image-like content instead of zeros."""

    _mode = "reflect"


class ReplicationPad1d(_Pad1d):
    """Repeat the edge pixels of the last dimension."""

    _mode = "replicate"


class ReplicationPad2d(_Pad2d):
    """Repeat the edge pixels of H and W."""

    _mode = "replicate"


class CircularPad1d(_Pad1d):
    """Wrap the last dimension around (each size at most the dimension)."""

    _mode = "circular"


class CircularPad2d(_Pad2d):
    """Wrap H and W around, as on a torus."""

    _mode = "circular"

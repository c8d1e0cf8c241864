"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (PyTorch's names, arguments and
reprs; no parameters, so nothing in the state dict).

    >>> import minigan as mg
    >>> from minigan import nn
    >>> nn.MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> nn.AdaptiveAvgPool2d(1)(mg.zeros(4, 8, 5, 7)).shape
    (4, 8, 1, 1)
"""
from .. import functional as F
from ..functional import _checks as checks
from .module import Module


def _checked(value, name, minimum, who):
    """The argument as given (PyTorch's repr shows it so), once it is a valid int or pair."""
    checks._pair(value, name, minimum, who)
    return tuple(value) if isinstance(value, list) else value


class _Pool2d(Module):
    def __init__(self, kernel_size, stride, padding, ceil_mode):
        super().__init__()
        who = type(self).__name__
        self.kernel_size = _checked(kernel_size, "kernel_size", 1, who)
        self.stride = self.kernel_size if stride is None else _checked(stride, "stride", 1, who)
        self.padding = _checked(padding, "padding", 0, who)
        kernel, pad = checks._pair(kernel_size, "", 1, who), checks._pair(padding, "", 0, who)
        if any(p > k // 2 for p, k in zip(pad, kernel)):
            raise ValueError(f"{who}: padding {padding} must be at most half the kernel size "
                             f"{kernel_size}")
        self.ceil_mode = bool(ceil_mode)

    def _check(self, x):
        checks._check_ndim(self.describe(), x, (3, 4), "(N, C, H, W) or (C, H, W)")


class MaxPool2d(_Pool2d):
    """The largest value of each kernel window; ``stride`` defaults to ``kernel_size``, padding
    counts as -inf; ``return_indices`` also returns the flat index of each picked pixel."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = _checked(dilation, "dilation", 1, "MaxPool2d")
        self.return_indices = bool(return_indices)

    def forward(self, x):
        self._check(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    """The mean of each kernel window; ``stride`` defaults to ``kernel_size``; padded pixels
    count in the divisor unless ``count_include_pad=False``; ``divisor_override`` replaces it."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x):
        self._check(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to ``output_size`` (an int, or a pair whose None entries keep the
    input's size), whatever the input's size: AdaptiveAvgPool2d(1) is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
        if len(sizes) != 2 or not all(s is None or checks._is_int(s) and s >= 1 for s in sizes):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be a positive int or a pair of "
                             f"them (None keeps the input's size), got {output_size!r}")
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def forward(self, x):
        checks._check_ndim(self.describe(), x, (3, 4), "(N, C, H, W) or (C, H, W)")
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"

"""Linear maps with learned weights: fully connected layers and convolutions.

Each function checks its arguments, then runs the engine's fused op (``minigan.ops``); inside
``minigan.use_reference()`` it runs the plain definition from ``minigan.functional.reference``
instead. The two agree to rounding, in values and in first and second derivatives.

    >>> import minigan as mg
    >>> from minigan import F
    >>> x = mg.randn(2, 3, 8, 8)
    >>> F.conv2d(x, mg.randn(16, 3, 3, 3), padding=1).shape
    (2, 16, 8, 8)
"""
from ..ops import conv as conv_ops
from ..ops import linalg
from . import reference
from ._checks import (
    _check_conv_input, _check_conv_transpose_input, _check_floating, _check_weight, _pair,
)


def linear(input, weight, bias=None):
    """input @ weight.T + bias, with weight of shape (out_features, in_features)."""
    if weight.ndim != 2 or (bias is not None and tuple(bias.shape) != (weight.shape[0],)):
        raise ValueError(
            f"linear: expected a 2-D weight and a bias of shape (out_features,), got weight "
            f"{weight.shape} and bias {None if bias is None else bias.shape}")
    _check_floating("linear", input, weight)
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected input with {weight.shape[1]} features in its last dimension, "
            f"got input shape {input.shape}")
    if reference.enabled():
        return reference.linear(input, weight, bias)
    rows = input if input.ndim == 2 else input.reshape(-1, weight.shape[1])
    out = linalg.linear(rows, weight, bias)
    return out if input.ndim == 2 else out.reshape(*input.shape[:-1], weight.shape[0])


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation of (N, C, H, W) with a weight of shape (O, C, kh, kw).

    Each output position is one column of ``unfold(input)`` times the flattened kernels, so
    the whole convolution is a single matrix product (``reference.conv2d`` writes it out).
    """
    stride = _pair(stride, "stride", 1, "conv2d")
    padding = _pair(padding, "padding", 0, "conv2d")
    dilation = _pair(dilation, "dilation", 1, "conv2d")
    _check_weight("conv2d", weight, bias, 4, 0)
    _check_floating("conv2d", input, weight)
    out_channels, channels, kh, kw = weight.shape
    _check_conv_input("conv2d", input, channels, (kh, kw), stride, padding, dilation)
    if reference.enabled():
        return reference.conv2d(input, weight, bias, stride, padding, dilation)
    return conv_ops.conv2d(input, weight, bias, ((kh, kw), stride, padding, dilation))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed convolution (the input-gradient of conv2d) with weight (C, O, kh, kw).

    Every input pixel scatters its kernel-weighted copy into the output: one matrix product
    gives all copies as columns, and fold sums the overlapping ones into place. Output size
    per axis: (H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    """
    who = "conv_transpose2d"
    stride = _pair(stride, "stride", 1, who)
    padding = _pair(padding, "padding", 0, who)
    output_padding = _pair(output_padding, "output_padding", 0, who)
    dilation = _pair(dilation, "dilation", 1, who)
    _check_weight(who, weight, bias, 4, 1)
    _check_floating(who, input, weight)
    channels, out_channels, kh, kw = weight.shape
    size = _check_conv_transpose_input(
        who, input, channels, (kh, kw), stride, padding, output_padding, dilation)
    if reference.enabled() or any(op >= s for op, s in zip(output_padding, stride)):
        # (output_padding >= stride is allowed when dilation is larger: the fused op's fold
        # does not reach those rows, the definition pads them)
        return reference.conv_transpose2d(input, weight, bias, stride, padding, output_padding, dilation)
    out = conv_ops.conv_transpose2d(input, weight, size, ((kh, kw), stride, padding, dilation))
    return _add_channel_bias(out, bias)


def _add_channel_bias(out, bias):
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


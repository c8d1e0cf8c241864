"""Argument and input checks shared by the functional layers and the nn modules.

``who`` names the caller in every message: a function ("conv2d") or a layer's one-line
description ("Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))").
"""
from ..autograd import Tensor
from ..kernels import conv_output_size
from ..ops.conv import _int, _is_int, _pair  # noqa: F401  (the layers' argument checks)


def _check_floating(who, x, like=None):
    """Layers compute in their weights' dtype: an integer input would silently become float64
    (and the next layer then fail on mixed dtypes), so it is refused here, by name."""
    if like is not None and like.dtype.kind != "f":
        raise TypeError(f"{who}: expected a floating weight, got dtype {like.dtype}; convert it "
                        "with .float() (float32) or .double() (float64)")
    if x.dtype.kind != "f" or (like is not None and x.dtype != like.dtype):
        wanted = "a floating" if like is None else f"a {like.dtype}"
        raise TypeError(f"{who}: expected {wanted} input, got dtype {x.dtype}; convert it with "
                        ".float() (float32) or .double() (float64)")


def _check_weight(who, weight, bias, ndim, out_axis):
    """A weight with ``ndim`` dimensions and a bias with one value per output channel, the
    channel count read from ``weight.shape[out_axis]``."""
    if weight.ndim != ndim:
        raise ValueError(f"{who}: expected a {ndim}-D weight, got shape {weight.shape}")
    if bias is not None and tuple(bias.shape) != (weight.shape[out_axis],):
        raise ValueError(f"{who}: expected a bias of shape ({weight.shape[out_axis]},) for weight "
                         f"shape {weight.shape}, got {tuple(bias.shape)}")


def _check_ndim(who, x, allowed, layout):
    if x.ndim not in allowed:
        wanted = " or ".join(f"{n}-D" for n in allowed)
        raise ValueError(
            f"{who}: expected a {wanted} input {layout}, got a {x.ndim}-D input of shape {x.shape}")


def _check_channels(who, x, expected):
    if x.shape[1] != expected:
        raise ValueError(
            f"{who}: expected input with {expected} channels, got {x.shape[1]} (input shape {x.shape})")


def _check_conv_input(who, x, channels, kernel, stride, padding, dilation):
    """Refuse what conv2d cannot take; return the output's spatial size (OH, OW)."""
    _check_ndim(who, x, (4,), "(N, C, H, W)")
    _check_channels(who, x, channels)
    (h, w), (kh, kw), (ph, pw), (dh, dw) = x.shape[2:], kernel, padding, dilation
    out = (conv_output_size(h, kh, stride[0], ph, dh), conv_output_size(w, kw, stride[1], pw, dw))
    if min(out) <= 0:
        raise ValueError(
            f"{who}: kernel {kh}x{kw} (dilation {dh}x{dw}) is larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw} (input shape {x.shape}, padding {ph}x{pw})")
    return out


def _transposed_output_size(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _check_conv_transpose_input(who, x, channels, kernel, stride, padding, output_padding, dilation):
    """Refuse what conv_transpose2d cannot take; return the output's spatial size (OH, OW)."""
    _check_ndim(who, x, (4,), "(N, C, H, W)")
    _check_channels(who, x, channels)
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):  # a larger output_padding would only add rows no window reaches
            raise ValueError(
                f"{who}: output_padding {output_padding} must be smaller than stride {stride} "
                f"or dilation {dilation} in each dimension")
    out = tuple(_transposed_output_size(n, *args) for n, *args in zip(
        x.shape[2:], kernel, stride, padding, output_padding, dilation))
    if min(out) <= 0:
        raise ValueError(
            f"{who}: the output would be {out[0]}x{out[1]} for input shape {x.shape} (kernel "
            f"{kernel[0]}x{kernel[1]}, stride {stride}, padding {padding}); reduce the padding")
    return out


def _check_same_shape(who, input, target):
    if input.shape != target.shape:
        raise ValueError(
            f"{who}: target shape {target.shape} differs from input shape {input.shape}; "
            "reshape one of them (broadcasting here usually hides a bug)")


def _check_indices(who, indices, upper):
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{who}: expected integer indices, got dtype {indices.dtype}")
    if indices.numel() and (int(indices.data.min()) < 0 or int(indices.data.max()) >= upper):
        raise ValueError(
            f"{who}: indices must lie in [0, {upper}), got values from {int(indices.data.min())} "
            f"to {int(indices.data.max())}")


def _reduce(loss, reduction, who):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _constant(array):
    return Tensor(array)


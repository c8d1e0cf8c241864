"""The definitions: each fused op of the engine written as a few lines of primitives.

Read these first. ``linear``, ``conv2d``, ``conv_transpose2d`` and ``batch_norm`` in
``minigan.functional`` run fused ops (``minigan.ops.linalg``, ``ops.conv``,
``ops.normalization``) that compute the same numbers faster; the tests check that each fused op
equals its definition here in values, first derivatives and second derivatives (float64).

Every layer can be routed through these definitions, to watch a lesson run slower and give the
same numbers:

    with minigan.use_reference():          # or MINIGAN_REFERENCE=1 in the environment
        loss = D(G(z)).mean()

The definitions are compositions of primitives, so they need no backward of their own: the
engine differentiates them, twice if asked.

    >>> import minigan as mg
    >>> x, w = mg.randn(2, 3, 5, 5), mg.randn(4, 3, 3, 3)
    >>> fast = mg.F.conv2d(x, w)
    >>> with mg.use_reference():
    ...     slow = mg.F.conv2d(x, w)
    >>> bool(abs(fast - slow).max().item() < 1e-5)
    True
"""
import os
import threading

from ..kernels import conv_output_size
from ..ops import col2im, im2col
from ..ops.normalization import normalize_batch
from .indexing import pad

_switch = threading.local()
_DEFAULT = os.environ.get("MINIGAN_REFERENCE", "").strip().lower() not in ("", "0", "false", "no")


def enabled():
    """True inside ``use_reference()`` (or with MINIGAN_REFERENCE=1 set before import)."""
    return getattr(_switch, "on", _DEFAULT)


class use_reference:
    """Context manager: layers run the definitions in this module instead of the fused ops.
    ``use_reference(False)`` switches back to the fused ops inside."""

    def __init__(self, on=True):
        self.on = bool(on)
        self._saved = []

    def __enter__(self):
        self._saved.append(enabled())
        _switch.on = self.on
        return self

    def __exit__(self, *exc):
        _switch.on = self._saved.pop()
        return False


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def linear(input, weight, bias=None):
    """input @ weight.T + bias."""
    out = input @ weight.T
    return out if bias is None else out + bias


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """Convolution = unfold -> one matrix product -> reshape.

    im2col puts every kernel window of every image in a column: (C*kh*kw, N*OH*OW). Each output
    channel's kernel, flattened to a row of C*kh*kw numbers, dotted with a column, gives that
    channel at that position: one matrix product gives them all."""
    n, _, h, w = input.shape
    out_channels, _, kh, kw = weight.shape
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    oh, ow = (conv_output_size(*axis) for axis in zip((h, w), (kh, kw), stride, padding, dilation))
    cols = im2col(input, (kh, kw), stride, padding, dilation)           # (C*kh*kw, N*OH*OW)
    out = weight.reshape(out_channels, -1) @ cols                        # (O, N*OH*OW)
    out = out.reshape(out_channels, n, oh, ow).permute(1, 0, 2, 3)       # (N, O, OH, OW)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed convolution = one matrix product -> fold.

    Every input pixel scatters a copy of the kernel, scaled by its value, into the output: the
    product gives all copies as columns, and col2im adds them into place where they overlap.
    The copies are folded onto the whole unpadded canvas; ``padding`` then crops it, and
    ``output_padding`` adds rows at the far edge that no copy reaches."""
    n, channels, h, w = input.shape
    _, out_channels, kh, kw = weight.shape
    stride, padding = _pair(stride), _pair(padding)
    output_padding, dilation = _pair(output_padding), _pair(dilation)
    rows = input.permute(1, 0, 2, 3).reshape(channels, n * h * w)         # (C, N*H*W)
    cols = weight.reshape(channels, -1).T @ rows                          # (O*kh*kw, N*H*W)
    canvas = tuple((m - 1) * s + d * (k - 1) + 1
                   for m, k, s, d in zip((h, w), (kh, kw), stride, dilation))
    out = col2im(cols, n, canvas, (kh, kw), stride, 0, dilation)          # (N, O, *canvas)
    (ph, pw), (oph, opw) = padding, output_padding
    out = pad(out, (0, opw, 0, oph))[:, :, ph:canvas[0] - ph + oph, pw:canvas[1] - pw + opw]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch norm per channel (axis 1).

    training:  y = (x - mean) / sqrt(var + eps) * weight + bias with this batch's mean and
               biased variance over every axis but the channel's (``normalize_batch``: mean,
               subtract, multiply, power -1/2), and the running statistics moved towards them;
    otherwise: the same with the running statistics in place of the batch's."""
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    if training:
        axes = (0,) + tuple(range(2, input.ndim))
        out = normalize_batch(input, axes, eps)
        if running_mean is not None or running_var is not None:
            batch_mean = input.detach().mean(axes, keepdims=True)
            centred = input.detach() - batch_mean
            batch_var = (centred * centred).mean(axes, keepdims=True)
            update_running_stats(running_mean, running_var, batch_mean.data, batch_var.data,
                                 input.numel() // input.shape[1], momentum)
    else:
        out = (input - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps) ** -0.5
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def update_running_stats(running_mean, running_var, batch_mean, batch_var, count, momentum):
    """running = (1 - momentum) * running + momentum * batch, in place and outside the graph
    (optimisers and state dicts keep the same arrays); the variance that moves the running
    one is the unbiased batch variance, PyTorch's convention."""
    for buffer, value in ((running_mean, batch_mean), (running_var, batch_var * (count / (count - 1)))):
        if buffer is not None:
            buffer.data[...] = (1.0 - momentum) * buffer.data + momentum * value.reshape(buffer.shape)
            buffer._modified()

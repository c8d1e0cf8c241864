"""The definitions: each fused op of the engine written as a few lines of primitives.

Read these first. ``linear``, ``conv2d``, ``conv_transpose2d``, ``batch_norm``,
``group_norm``/``instance_norm``, ``pad``, ``max_pool2d`` and ``avg_pool2d`` in
``minigan.functional`` run fused ops (``minigan.ops.linalg``, ``ops.conv``,
``ops.normalization``, ``ops.padding``, ``ops.pooling``) that compute the same numbers faster;
``interpolate`` and ``adaptive_avg_pool2d`` run matrix products. The tests check that each fast
path equals its definition here in values, first derivatives and second derivatives (float64).

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

from ..creation import full
from ..kernels import conv_output_size
from ..ops import cat, col2im, im2col, stack, unfold
from ..ops.normalization import normalize_batch, normalize_groups

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
    out = pad(out, ((0, 0), (0, 0), (0, oph), (0, opw)))[:, :, ph:canvas[0] - ph + oph, pw:canvas[1] - pw + opw]
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


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Each sample's channels in ``num_groups`` groups of neighbours; each group normalised by
    its own mean and biased variance over its channels and positions (``normalize_groups``),
    then a per-channel weight and bias."""
    out = normalize_groups(input, num_groups, eps)
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def instance_norm(input, running_mean, running_var, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Group norm with one channel per group: each image's channel by its own statistics; the
    running statistics move towards their average over the batch. Without input statistics,
    batch norm's eval formula with the running ones."""
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    if running_mean is not None or running_var is not None:
        axes = tuple(range(2, input.ndim))
        x = input.detach()
        mean = x.mean(axes, keepdims=True)
        var = ((x - mean) * (x - mean)).mean(axes, keepdims=True)
        update_running_stats(running_mean, running_var, mean.mean(0).data, var.mean(0).data,
                             input.numel() // (input.shape[0] * input.shape[1]), momentum)
    return group_norm(input, input.shape[1], weight, bias, eps)


def pad(input, widths, mode="constant", value=0.0):
    """Padding one axis at a time, last first, by joining pieces with ``cat``; ``widths`` holds
    (before, after) per axis. The pieces, for an axis of length n:

        constant   full(value)          | x |  full(value)
        reflect    x[1 : before+1] flipped  | x |  x[n-1-after : n-1] flipped
        replicate  x[0] repeated           | x |  x[n-1] repeated
        circular   x[n-before : n]         | x |  x[0 : after]"""
    out = input
    for axis in reversed(range(input.ndim)):
        before, after = widths[axis]
        if (before, after) == (0, 0):
            continue
        n = out.shape[axis]

        def part(start, stop, size=None, out=out, axis=axis):
            piece = out[(slice(None),) * axis + (slice(start, stop),)]
            if size is None:
                return piece
            return piece.broadcast_to(out.shape[:axis] + (size,) + out.shape[axis + 1:])

        if mode == "constant":
            left, right = (full(out.shape[:axis] + (size,) + out.shape[axis + 1:], value,
                                dtype=out.dtype) for size in (before, after))
        elif mode == "reflect":
            left, right = part(1, before + 1).flip(axis), part(n - 1 - after, n - 1).flip(axis)
        elif mode == "replicate":
            left, right = part(0, 1, before), part(n - 1, n, after)
        else:
            left, right = part(n - before, n), part(0, after)
        out = cat([left, out, right], axis)
    return out


def max_pool2d(input, kernel, stride, dilation, widths, positions):
    """Max pooling = pad with -inf -> unfold -> the largest value of every window.

    Returns (values, offsets): the offset i * kw + j, in the window, of the first maximum (the
    one PyTorch picks too), which receives the gradient."""
    n, c = input.shape[:2]
    padded = pad(input, ((0, 0), (0, 0)) + tuple(widths), value=float("-inf"))
    windows = unfold(padded, kernel, stride, 0, dilation)                # (N, C*kh*kw, OH*OW)
    return windows.reshape(n, c, kernel[0] * kernel[1], *positions).max(dim=2)


def avg_pool2d(input, kernel, stride, widths, positions, divisor):
    """Average pooling = pad with zeros -> unfold -> each window's sum / ``divisor``: the
    window's size, or how many of its pixels are not padding (per output position)."""
    n, c = input.shape[:2]
    windows = unfold(pad(input, ((0, 0), (0, 0)) + tuple(widths)), kernel, stride)
    return windows.reshape(n, c, kernel[0] * kernel[1], *positions).sum(dim=2) / divisor


def adaptive_avg_pool2d(input, bins):
    """Each output pixel is the mean of its bin of the input; ``bins`` holds per spatial axis
    the (start, end) of every output position's bin."""
    rows = [stack([input[:, :, top:bottom, left:right].mean(dim=(2, 3)) for left, right in bins[1]], -1)
            for top, bottom in bins[0]]
    return stack(rows, -2)


def interpolate(input, taps):
    """Resampling one spatial axis at a time. Along an axis, output pixel y reads input pixels
    first[y] and second[y] and mixes them, (1 - t[y]) * x[first[y]] + t[y] * x[second[y]]
    (linear), or takes x[first[y]] (nearest). ``taps`` holds (first, second, t) per spatial
    axis, second and t None for nearest."""
    out = input
    for axis, (first, second, t) in enumerate(taps, start=2):
        lead = (slice(None),) * axis
        picked = out[lead + (first,)]
        if t is not None:
            t = t.reshape((-1,) + (1,) * (input.ndim - axis - 1))
            picked = picked * (1 - t) + out[lead + (second,)] * t
        out = picked
    return out

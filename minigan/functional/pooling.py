"""Pooling with PyTorch's names: ``max_pool2d``, ``avg_pool2d`` (fused ops) and
``adaptive_avg_pool2d`` (two matrix products).

Each output pixel summarises one kernel window of the input: its largest value (max) or its mean
(average). The output size per axis is PyTorch's, floor((n + 2p - d(k-1) - 1) / s) + 1, or with
``ceil_mode`` the ceiling, dropping a last window that would start in the right padding.

    >>> import minigan as mg
    >>> from minigan import F
    >>> x = mg.tensor([[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]]])
    >>> F.max_pool2d(x, 2).tolist(), F.avg_pool2d(x, 2).tolist()
    ([[[[6.0, 8.0]]]], [[[[3.5, 5.5]]]])
    >>> F.adaptive_avg_pool2d(x, 1).tolist()
    [[[[4.5]]]]
"""
from ..autograd import Tensor, _as_tensor
from ..backend import xp
from ..ops import pooling
from . import reference
from ._checks import _check_floating, _check_ndim, _is_int, _pair
from .sampling import _area_taps, _bin_matrix, resample


def _output_positions(n, k, s, p, d, ceil_mode):
    span = d * (k - 1) + 1
    if not ceil_mode:
        return (n + 2 * p - span) // s + 1
    out = -(-(n + 2 * p - span) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out  # no window may start in the right padding


def _geometry(who, x, kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel, stride, dilation, widths, positions): the pairs, the padding (before, after) of
    each spatial axis (after grows in ceil mode, to hold the last window) and (OH, OW)."""
    kernel = _pair(kernel_size, "kernel_size", 1, who)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride, "stride", 1, who)
    padding = _pair(padding, "padding", 0, who)
    dilation = _pair(dilation, "dilation", 1, who)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{who}: padding {padding} must be at most half the kernel size {kernel}")
    positions, widths = [], []
    for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation):
        out = _output_positions(n, k, s, p, d, ceil_mode)
        if out < 1:
            raise ValueError(
                f"{who}: kernel {kernel} (dilation {dilation}) does not fit the input of shape "
                f"{x.shape} with padding {padding}: the output would be empty")
        widths.append((p, max(p, (out - 1) * s + d * (k - 1) + 1 - n - p)))
        positions.append(out)
    return kernel, stride, dilation, tuple(widths), tuple(positions)


def _batched(who, input):
    input = _as_tensor(input, None)
    _check_ndim(who, input, (3, 4), "(N, C, H, W) or (C, H, W)")
    _check_floating(who, input)
    return input if input.ndim == 4 else input.unsqueeze(0)


def _flat_indices(offsets, geometry, width):
    """PyTorch's return_indices: the picked pixel's position in its (H, W) image, row * W + col."""
    (_, kw), (sh, sw), (dh, dw), ((ph, _), (pw, _)), (oh, ow) = geometry
    i, j = xp.divmod(offsets.astype(xp.int64), kw)
    rows = xp.arange(oh).reshape(-1, 1) * sh - ph + i * dh
    return Tensor(rows * width + xp.arange(ow) * sw - pw + j * dw)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The largest value of each kernel window of an (N, C, H, W) or (C, H, W) input; padding
    counts as -inf. ``stride`` defaults to ``kernel_size``. Where several pixels of a window
    tie, the first (row-major) gets the gradient, as in PyTorch. ``return_indices`` also returns
    each picked pixel's flat index in its H x W image (int64, no gradient)."""
    batched = _batched("max_pool2d", input)
    geometry = _geometry("max_pool2d", batched, kernel_size, stride, padding, dilation, ceil_mode)
    if reference.enabled():
        out, offsets = reference.max_pool2d(batched, *geometry)
        offsets = offsets.data
    else:
        out, offsets = pooling.max_pool2d(batched, geometry)
    indices = _flat_indices(offsets, geometry, batched.shape[3]) if return_indices else None
    if batched is not input:
        out, indices = out.squeeze(0), indices.squeeze(0) if return_indices else None
    return (out, indices) if return_indices else out


def _divisor(x, geometry, count_include_pad, divisor_override):
    """Each window's divisor, per output position (PyTorch's rule): the window's extent within
    the padded input, or only its pixels inside the image; a number when all are equal."""
    if divisor_override is not None:
        return divisor_override
    kernel, stride, _, widths, positions = geometry
    counts = []
    for n, k, s, (p, _), m in zip(x.shape[2:], kernel, stride, widths, positions):
        starts = [y * s - p for y in range(m)]
        ends = [min(start + k, n + p) for start in starts]
        if not count_include_pad:
            starts, ends = [max(a, 0) for a in starts], [min(b, n) for b in ends]
        counts.append([b - a for a, b in zip(starts, ends)])
    if len(set(counts[0])) == len(set(counts[1])) == 1:
        return counts[0][0] * counts[1][0]
    return xp.outer(xp.asarray(counts[0]), xp.asarray(counts[1])).astype(x.dtype)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """The mean of each kernel window of an (N, C, H, W) or (C, H, W) input: its sum divided
    by the window's size, counting padded pixels (``count_include_pad``) or not, or by
    ``divisor_override``. ``stride`` defaults to ``kernel_size``."""
    batched = _batched("avg_pool2d", input)
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int, got {divisor_override!r}")
    geometry = _geometry("avg_pool2d", batched, kernel_size, stride, padding, 1, ceil_mode)
    divisor = _divisor(batched, geometry, count_include_pad, divisor_override)
    if reference.enabled():
        kernel, stride, _, widths, positions = geometry
        divisor = divisor if isinstance(divisor, int) else Tensor(divisor)
        out = reference.avg_pool2d(batched, kernel, stride, widths, positions, divisor)
    else:
        scale = 1.0 / divisor if isinstance(divisor, int) else 1 / divisor
        out = pooling.avg_pool2d(batched, geometry, scale)
    return out if batched is input else out.squeeze(0)


def _adaptive_sizes(who, x, output_size):
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2 or not all(s is None or _is_int(s) and s >= 1 for s in sizes):
        raise ValueError(f"{who}: output_size must be a positive int or a pair of them (None keeps "
                         f"the input's size), got {output_size!r}")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{who}: expected a non-empty image, got input shape {x.shape}")
    return tuple(n if s is None else int(s) for n, s in zip(x.shape[2:], sizes))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a given output size, whatever the input's: output pixel y along an
    axis averages input pixels [floor(y * n / size), ceil((y + 1) * n / size)) (bins may differ
    by one pixel and overlap). Along each axis that is a matrix with 1 / (bin size) across each
    bin, so the whole pooling is two matrix products (``resample``);
    ``reference.adaptive_avg_pool2d`` takes the bins' means one by one."""
    batched = _batched("adaptive_avg_pool2d", input)
    sizes = _adaptive_sizes("adaptive_avg_pool2d", batched, output_size)
    bins = [_area_taps(n, s) for n, s in zip(batched.shape[2:], sizes)]
    if reference.enabled():
        out = reference.adaptive_avg_pool2d(batched, bins)
    else:
        out = resample(batched, *(None if s == n else _bin_matrix(b, n, batched.dtype)
                                  for b, n, s in zip(bins, batched.shape[2:], sizes)))
    return out if batched is input else out.squeeze(0)

"""Resampling images: ``interpolate`` (nearest, linear/bilinear, area), ``pixel_shuffle`` and
``pixel_unshuffle``.

Interpolation works one spatial axis at a time, and along one axis it is a linear map: output
pixel y reads input pixels first[y] and second[y] (its *taps*) and mixes them,
(1 - t[y]) * x[first[y]] + t[y] * x[second[y]]. The taps follow PyTorch's source-coordinate rules
to the last rounding (``_linear_taps``, ``_nearest_taps``). Written as a matrix A (out x in)
with those two weights per row, resizing an image is ``A_h @ x @ A_w.T``: two matrix products
for the whole batch, whose gradients (``A_h.T @ g @ A_w``) and second derivatives come from
matmul itself. Nearest upsampling by whole factors, where each row of A holds a single 1, runs
as plain copies instead (``minigan.ops.pooling.repeat_pixels``).
``minigan.functional.reference.interpolate`` is the definition with the taps read by indexing;
the tests check the two agree.

    >>> import minigan as mg
    >>> from minigan import F
    >>> x = mg.tensor([[[[1.0, 2.0]]]])
    >>> F.interpolate(x, scale_factor=2).tolist()
    [[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]]
    >>> F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True).tolist()
    [[[[1.0, 1.5, 2.0]]]]
"""
import math

from ..autograd import Tensor, _as_tensor
from ..backend import xp
from ..ops import pooling
from . import reference
from ._checks import _check_floating, _is_int

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "area")


def _nearest_taps(n, size, scale, exact, copy_equal):
    """Input pixel of each output pixel along one axis: floor(y * ratio) ('nearest', PyTorch's
    historical rule) or floor((y + 0.5) * ratio) ('nearest-exact'), ratio = 1 / scale_factor if
    one was given, else in/out; computed in float32, as PyTorch does. PyTorch's 2-D 'nearest'
    kernel copies an axis whose size does not change (``copy_equal``), whatever the scale
    factor; its 1-D one and 'nearest-exact' apply the rule."""
    if copy_equal and size == n:
        return xp.arange(n), None, None
    f32 = xp.float32
    ratio = f32(1.0 / scale) if scale else f32(n) / f32(size)
    y = xp.arange(size, dtype=f32)
    source = (y + f32(0.5)) * ratio if exact else y * ratio
    return xp.minimum(xp.floor(source).astype(xp.int64), n - 1), None, None


def _linear_taps(n, size, scale, align_corners, dtype):
    """(first, second, t) along one axis for linear interpolation, in the input's dtype:
    source coordinate y * (n - 1) / (size - 1) with align_corners (corner pixels' centres
    meet), else (y + 0.5) * ratio - 0.5 clipped at 0 (ratio as for nearest); first = its floor,
    second the next pixel (the last one at the edge), t the fraction between them."""
    y = xp.arange(size)
    if size == n:  # PyTorch copies the input through, whatever the scale factor
        return y, y, xp.zeros(size, dtype=dtype)
    one = xp.ones((), dtype=dtype)
    if align_corners:
        ratio = one * (n - 1) / (size - 1) if size > 1 else one * 0
        source = ratio * y.astype(dtype)
    else:
        ratio = one * (1.0 / scale) if scale else one * n / size
        source = xp.maximum(ratio * (y.astype(dtype) + one * 0.5) - one * 0.5, 0)
    first = xp.minimum(xp.floor(source.astype(xp.float32)).astype(xp.int64), n - 1)
    t = xp.clip(source - first.astype(dtype), 0, 1).astype(dtype)
    return first, xp.minimum(first + 1, n - 1), t


def _area_taps(n, size):
    """Bins of adaptive average pooling along one axis: output y averages input pixels
    [floor(y * n / size), ceil((y + 1) * n / size))."""
    return [((y * n) // size, -(-((y + 1) * n) // size)) for y in range(size)]


def _matrix(taps, n, dtype):
    """The (out, in) matrix of taps: weights 1 - t and t at columns first and second (or 1 at
    first, for nearest); a constant Tensor."""
    first, second, t = taps
    rows = xp.arange(len(first))
    m = xp.zeros((len(first), n), dtype=dtype)
    if t is None:
        m[rows, first] = 1
    else:
        m[rows, first] = 1 - t
        m[rows, second] += t
    return Tensor(m)


def _bin_matrix(bins, n, dtype):
    """The (out, in) matrix of averaging bins: 1 / (bin size) across each bin."""
    m = xp.zeros((len(bins), n), dtype=dtype)
    for y, (start, end) in enumerate(bins):
        m[y, start:end] = 1.0 / (end - start)
    return Tensor(m)


def _is_batch_last(x):
    return x.shape[0] > 1 and x.data.transpose(1, 2, 3, 0).flags.c_contiguous and not x.data.flags.c_contiguous


def resample(x, rows, cols):
    """rows @ x[n, c] @ cols.T for every image of an (N, C, H, W) x: two matrix products over
    the whole batch (an axis whose matrix is None is left alone). A batch-last x (a
    convolution's output) stays batch-last, and no transposing copy is made."""
    n, c, h, w = x.shape
    if _is_batch_last(x):
        out = x.permute(1, 2, 3, 0)                                     # (C, H, W, N)
        if cols is not None:
            out = cols @ out                                            # (C, H, OW, N)
        if rows is not None:
            ow = out.shape[2]
            out = (rows @ out.reshape(c, h, ow * n)).reshape(c, rows.shape[0], ow, n)
        return out.permute(3, 0, 1, 2)
    out = x
    if cols is not None:
        out = (out.reshape(n * c * h, w) @ cols.T).reshape(n, c, h, cols.shape[0])
    if rows is not None:
        ow = out.shape[3]
        out = (rows @ out.reshape(n * c, h, ow)).reshape(n, c, rows.shape[0], ow)
    return out


def _output_size(who, x, size, scale_factor, recompute_scale_factor):
    """(output sizes, scale factors or None per axis), as PyTorch settles them."""
    dims = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{who}: give exactly one of size and scale_factor")
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dims
        if len(sizes) != dims or not all(_is_int(s) and s > 0 for s in sizes):
            raise ValueError(f"{who}: size must be a positive int or {dims} of them for input shape "
                             f"{x.shape}, got {size!r}")
        if recompute_scale_factor:
            raise ValueError(f"{who}: recompute_scale_factor is not meaningful with an explicit size")
        return tuple(int(s) for s in sizes), (None,) * dims
    scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * dims
    if len(scales) != dims or not all(isinstance(s, (int, float)) and not isinstance(s, bool)
                                      and math.isfinite(s) and s > 0 for s in scales):
        raise ValueError(f"{who}: scale_factor must be a positive number or {dims} of them for "
                         f"input shape {x.shape}, got {scale_factor!r}")
    sizes = tuple(math.floor(n * float(s)) for n, s in zip(x.shape[2:], scales))
    if min(sizes) < 1:
        raise ValueError(f"{who}: scale_factor {scale_factor!r} makes an empty output from input "
                         f"shape {x.shape}")
    return sizes, (None,) * dims if recompute_scale_factor else tuple(float(s) for s in scales)


def _check_mode(who, x, mode, align_corners):
    if mode not in MODES:
        raise ValueError(f"{who}: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    needs = {"linear": 3, "bilinear": 4}.get(mode)
    if needs is not None and x.ndim != needs or x.ndim not in (3, 4):
        layout = {3: "(N, C, L)", 4: "(N, C, H, W)"}
        wanted = layout[needs] if needs else f"{layout[3]} or {layout[4]}"
        raise ValueError(f"{who}: mode {mode!r} expects a {wanted} input, got shape {x.shape}")
    if align_corners is not None and mode not in ("linear", "bilinear"):
        raise ValueError(f"{who}: align_corners only goes with the interpolating modes 'linear' "
                         f"and 'bilinear', got mode {mode!r}")
    if x.numel() == 0:
        raise ValueError(f"{who}: expected a non-empty input, got shape {x.shape}")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dimensions of an (N, C, L) or (N, C, H, W) input to ``size`` or by
    ``scale_factor`` (output size floor(in * scale)), as PyTorch's F.interpolate:

    'nearest'        input pixel floor(y / scale) (PyTorch's rule, which shifts the image a
                     little when downsampling), 'nearest-exact' floor((y + 0.5) / scale);
    'linear'/'bilinear'  two taps per axis; align_corners=True maps corner pixel centres onto
                     each other, False (default) pixel edges, with source (y + 0.5) / scale - 0.5;
    'area'           the mean over each output pixel's bin (adaptive average pooling).

    Given ``scale_factor``, the coordinates use it (not in/out) unless recompute_scale_factor."""
    input = _as_tensor(input, None)
    who = "interpolate"
    if antialias:
        raise ValueError(f"{who}: antialias=True is not supported")
    _check_mode(who, input, mode, align_corners)
    _check_floating(who, input)
    sizes, scales = _output_size(who, input, size, scale_factor, recompute_scale_factor)
    if input.ndim == 3:  # a 1-D signal is an image one pixel high
        return _interpolate(input.unsqueeze(2), (1,) + sizes, (None,) + scales, mode,
                            align_corners, one_d=True).squeeze(2)
    return _interpolate(input, sizes, scales, mode, align_corners)


def _is_identity(taps, n):
    """True when the taps copy an axis of length n through unchanged (the matrix is skipped)."""
    first, _, t = taps
    return len(first) == n and bool((first == xp.arange(n)).all()) and (t is None or not t.any())


def _repeat_factor(taps, n):
    """f when the taps repeat each of the n pixels f times in order (nearest, by a whole
    factor), else None."""
    first, _, t = taps
    factor = len(first) // n
    if t is not None or len(first) != factor * n:
        return None
    return factor if bool((first == xp.arange(len(first)) // factor).all()) else None


def _interpolate(input, sizes, scales, mode, align_corners, one_d=False):
    spatial = input.shape[2:]
    if mode == "area":
        bins = [_area_taps(n, s) for n, s in zip(spatial, sizes)]
        if reference.enabled():
            return reference.adaptive_avg_pool2d(input, bins)
        return resample(input, *(None if s == n else _bin_matrix(b, n, input.dtype)
                                 for b, n, s in zip(bins, spatial, sizes)))
    if mode.startswith("nearest"):
        exact = mode == "nearest-exact"
        taps = [_nearest_taps(n, s, scale, exact, not (one_d or exact))
                for n, s, scale in zip(spatial, sizes, scales)]
    else:
        taps = [_linear_taps(n, s, scale, bool(align_corners), input.dtype)
                for n, s, scale in zip(spatial, sizes, scales)]
    if reference.enabled():
        return reference.interpolate(input, [(f, s, None if t is None else Tensor(t))
                                             for f, s, t in taps])
    factors = [_repeat_factor(tap, n) for tap, n in zip(taps, spatial)]
    if all(factors):  # every pixel repeated a whole number of times: copies, not products
        return pooling.repeat_pixels(input, factors)
    return resample(input, *(None if _is_identity(tap, n) else _matrix(tap, n, input.dtype)
                             for tap, n in zip(taps, spatial)))


def _check_shuffle(who, x, factor, name):
    if not _is_int(factor) or factor < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {factor!r}")
    if x.ndim < 3:
        raise ValueError(f"{who}: expected an input of at least 3 dimensions (..., C, H, W), got "
                         f"shape {x.shape}")
    return int(factor)


def pixel_shuffle(input, upscale_factor):
    """(..., C*r*r, H, W) -> (..., C, H*r, W*r): each group of r*r channels becomes an r x r
    block of pixels (sub-pixel convolution's upsampling, Shi et al. 2016). A reshape and a
    permutation, so its gradient is the inverse rearrangement."""
    input = _as_tensor(input, None)
    r = _check_shuffle("pixel_shuffle", input, upscale_factor, "upscale_factor")
    *lead, channels, h, w = input.shape
    if channels % (r * r):
        raise ValueError(f"pixel_shuffle: the channels ({channels}, input shape {input.shape}) must "
                         f"be divisible by upscale_factor**2 = {r * r}")
    k = len(lead)
    out = input.reshape(*lead, channels // (r * r), r, r, h, w)
    out = out.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)           # (..., C, H, r, W, r)
    return out.reshape(*lead, channels // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(..., C, H*r, W*r) -> (..., C*r*r, H, W): the inverse of pixel_shuffle."""
    input = _as_tensor(input, None)
    r = _check_shuffle("pixel_unshuffle", input, downscale_factor, "downscale_factor")
    *lead, channels, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"pixel_unshuffle: height and width ({h}x{w}, input shape {input.shape}) "
                         f"must be divisible by downscale_factor = {r}")
    k = len(lead)
    out = input.reshape(*lead, channels, h // r, r, w // r, r)
    out = out.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)           # (..., C, r, r, H, W)
    return out.reshape(*lead, channels * r * r, h // r, w // r)

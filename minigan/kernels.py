"""The fast array kernels behind the convolution ops: plain arrays in, plain arrays out.

Nothing here knows about tensors or gradients. ``minigan.ops.conv`` wraps these kernels in
Functions; the definitions they must agree with are the plain ``unfold``/``fold`` primitives
(``minigan.ops.conv``) and the compositions in ``minigan.functional.reference``. Tests check
each kernel equal to its plain counterpart on drawn geometries.

Key to the names
----------------
N          images in the batch             C, O      input and output channels
H, W       image height and width          kh, kw    kernel height and width
OH, OW     output positions (kernel windows) along each axis
sh, sw     stride     ph, pw    padding     dh, dw    dilation
geometry   the tuple (kernel, stride, padding, dilation), each a pair (rows, columns)

batch-last  an (N, C, H, W) array whose memory is ordered (C, H, W, N): ``x.transpose(1, 2, 3,
            0)`` is contiguous. Every copy below then moves W*N neighbouring numbers at once
            instead of one short image row, and the next layer reads its input without a
            transposing copy. Shapes and values are the usual (N, C, H, W) ones.
columns     (C, kh, kw, OH, OW, N): for kernel offset (i, j), the pixel that offset sees at each
            output position of each image. As a matrix, (C*kh*kw, OH*OW*N), one matrix product
            with the (O, C*kh*kw) kernels gives the whole convolution.
phase plane with stride s, the padded image's pixels (s*a + r, s*b + q) for one phase (r, q),
            packed densely at (a, b). A kernel offset's pixels over all output positions are a
            strided (every s-th) sub-grid of the image, but a plain rectangle of one plane:

                padded image (stride 2)        plane (0,0)   plane (0,1)   plane (1,0) ...
                a b a b a b                    a a a         b b b         c c c
                c d c d c d          ->        a a a         b b b         c c c
                a b a b a b                    a a a         b b b         c c c

            Copying rectangles instead of strided views keeps NumPy's inner loops long.
row block   the output positions of a few rows (OH range), whose columns fit in ``BLOCK_BYTES``:
            the convolutions gather one block's columns, multiply them and move on, so the
            columns stay in the CPU's cache instead of a k*k-times-larger array going through
            memory (and nothing that large is kept for the backward).
"""
import builtins

from .backend import xp


BLOCK_BYTES = 1 << 20  # the columns of one row block: small enough to stay in the CPU's cache


def matmul(a, b, out=None):
    """Every matrix product of the engine goes through here (the benchmark times this one
    function to tell matrix products from everything else)."""
    return xp.matmul(a, b, out=out)


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """Positions a kernel visits along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def batch_last(x):
    """The (C, H, W, N) array of an (N, C, H, W) one: a view when it already lies batch-last."""
    return xp.ascontiguousarray(x.transpose(1, 2, 3, 0))


def positions(size, geometry):
    """(OH, OW): the output positions of a convolution with ``geometry`` over an image ``size``."""
    return tuple(conv_output_size(*axis) for axis in zip(size, *geometry))


def _zero_planes(c, n, size, geometry, dtype):
    """Zeroed phase planes (C, sh, sw, rows, cols, N) of a padded batch-last image, big enough
    for every pixel and for every kernel window at each output position."""
    kernel, stride, padding, dilation = geometry
    extent = [builtins.max(((k - 1) * d) // s + m_out, -(-(m + 2 * p) // s))
              for m, k, s, p, d, m_out in zip(size, kernel, stride, padding, dilation,
                                               positions(size, geometry))]
    return xp.zeros((c, *stride, *extent, n), dtype=dtype)


def _image_in_planes(size, stride, padding):
    """Pairs (image index, plane index): the pixels of one stride phase of a (C, H, W, N)
    image, image[:, y::s, x::s], and the rectangle of the phase planes that holds them."""
    (h, w), (sh, sw), (ph, pw) = size, stride, padding
    for y in range(builtins.min(sh, h)):
        a, r = divmod(y + ph, sh)
        rows = slice(a, a + len(range(y, h, sh)))
        for x in range(builtins.min(sw, w)):
            b, q = divmod(x + pw, sw)
            columns = slice(b, b + len(range(x, w, sw)))
            yield (slice(None), slice(y, None, sh), slice(x, None, sw)), (slice(None), r, q, rows, columns)


def _windows_in_planes(geometry, rows, ow):
    """Pairs (column index, plane index): the columns of kernel offset (i, j), cols[:, i, j],
    for the output rows ``rows`` = (first, end), and the rectangle of the phase planes their
    windows cover, one pixel per output position."""
    (kh, kw), (sh, sw), _, (dh, dw) = geometry
    first, end = rows
    for i in range(kh):
        qi, ri = divmod(i * dh, sh)
        for j in range(kw):
            qj, rj = divmod(j * dw, sw)
            yield (slice(None), i, j), (slice(None), ri, rj, slice(qi + first, qi + end), slice(qj, qj + ow))


def _row_blocks(rows, bytes_per_row):
    """(first, end) ranges covering ``rows`` output rows, each within ``BLOCK_BYTES``."""
    step = builtins.max(1, BLOCK_BYTES // builtins.max(1, bytes_per_row))
    for first in range(0, rows, step):
        yield first, builtins.min(rows, first + step)


def planes(x, geometry):
    """The phase planes (C, sh, sw, rows, cols, N) of the padded image x (N, C, H, W): where
    every kernel window is a rectangle. Stride 1 without padding needs no copy (the batch-last
    image is its own single plane)."""
    n, c, h, w = x.shape
    _, stride, padding, _ = geometry
    if tuple(stride) + tuple(padding) == (1, 1, 0, 0):
        return batch_last(x).reshape(c, 1, 1, h, w, n)
    result = _zero_planes(c, n, (h, w), geometry, x.dtype)
    image = x.transpose(1, 2, 3, 0)  # (C, H, W, N), a view
    for in_image, in_planes in _image_in_planes((h, w), stride, padding):
        result[in_planes] = image[in_image]
    return result


def _gather(source, cols, geometry, rows):
    """Fill ``cols`` (C, kh, kw, rows, OW, N) with the windows of output rows ``rows``."""
    for in_cols, in_planes in _windows_in_planes(geometry, rows, cols.shape[4]):
        cols[in_cols] = source[in_planes]


def _scatter(cols, target, geometry, rows):
    """Add the columns of output rows ``rows`` back into the phase planes ``target``."""
    for in_cols, in_planes in _windows_in_planes(geometry, rows, cols.shape[4]):
        target[in_planes] += cols[in_cols]


def _interleave(source, size, geometry):
    """The (N, C, H, W) image, lying batch-last, whose phase planes are ``source``."""
    c, _, _, _, _, n = source.shape
    (h, w), (_, stride, (ph, pw), _) = size, geometry
    if tuple(stride) == (1, 1):
        return source[:, 0, 0, ph:ph + h, pw:pw + w].transpose(3, 0, 1, 2)  # a view
    out = xp.empty((c, h, w, n), dtype=source.dtype)
    for in_image, in_planes in _image_in_planes(size, stride, padding=(ph, pw)):
        out[in_image] = source[in_planes]
    return out.transpose(3, 0, 1, 2)


def im2col(x, kernel, stride, padding, dilation):
    """All the columns (C, kh, kw, OH, OW, N) of an (N, C, H, W) array at once: equal to the
    plain unfold's columns, reordered. (The convolutions gather them a row block at a time.)"""
    geometry = (kernel, stride, padding, dilation)
    oh, ow = positions(x.shape[2:], geometry)
    cols = xp.empty((x.shape[1], *kernel, oh, ow, x.shape[0]), dtype=x.dtype)
    _gather(planes(x, geometry), cols, geometry, (0, oh))
    return cols


def fold(cols, size, stride, padding, dilation):
    """Sum all the columns (C, kh, kw, OH, OW, N) into an (N, C, H, W) image lying batch-last:
    the adjoint of ``im2col``. Each kernel offset is added into the plane of its stride phase (a
    rectangle there), and the planes are interleaved into the image at the end."""
    c, kh, kw, oh, ow, n = cols.shape
    geometry = ((kh, kw), stride, padding, dilation)
    target = _zero_planes(c, n, size, geometry, cols.dtype)
    _scatter(cols, target, geometry, (0, oh))
    return _interleave(target, size, geometry)


def conv2d(source, size, weight, bias, geometry):
    """The convolution of the image whose phase planes are ``source`` (see ``planes``; the
    image is (N, C, *size)) with ``weight`` (O, C, kh, kw), plus ``bias`` (O,): for each row
    block, its columns gathered and one matrix product into the output. (N, O, OH, OW),
    batch-last."""
    c, n = source.shape[0], source.shape[-1]
    o, _, kh, kw = weight.shape
    oh, ow = positions(size, geometry)
    k = c * kh * kw
    kernels2d = weight.reshape(o, k)
    out = xp.empty((o, oh, ow, n), dtype=source.dtype)
    for first, end in _row_blocks(oh, k * ow * n * source.itemsize):
        length = (end - first) * ow * n
        cols = xp.empty((c, kh, kw, end - first, ow, n), dtype=source.dtype)
        _gather(source, cols, geometry, (first, end))
        matmul(kernels2d, cols.reshape(k, length), out=out[:, first:end].reshape(o, length))
    if bias is not None:
        out += bias.reshape(-1, 1, 1, 1)
    return out.transpose(3, 0, 1, 2)


def conv_weight_grad(source, size, g, geometry):
    """d<conv2d(x, w), g>/dw from the phase planes ``source`` of x and the output gradient g
    (N, O, OH, OW): the sum over row blocks of g's rows times the block's columns, transposed."""
    c, n = source.shape[0], source.shape[-1]
    (kh, kw), o = geometry[0], g.shape[1]
    oh, ow = positions(size, geometry)
    k = c * kh * kw
    rows = batch_last(g)  # (O, OH, OW, N): free when g lies batch-last
    total = xp.zeros((o, k), dtype=g.dtype)
    for first, end in _row_blocks(oh, k * ow * n * g.itemsize):
        length = (end - first) * ow * n
        cols = xp.empty((c, kh, kw, end - first, ow, n), dtype=g.dtype)
        _gather(source, cols, geometry, (first, end))
        total += matmul(rows[:, first:end].reshape(o, length), cols.reshape(k, length).T)
    return total.reshape(o, c, kh, kw)


def conv_transpose2d(x, weight, geometry, size):
    """x (N, C, H, W) with weight (C, O, kh, kw) -> (N, O, *size) batch-last: every input pixel
    scatters its kernel-weighted copy. x's pixels are the output positions of the convolution
    this one transposes; for each row block of them one matrix product gives the copies as
    columns, added into the phase planes of the result, which are interleaved at the end."""
    n, c, h, w = x.shape
    _, o, kh, kw = weight.shape
    k = o * kh * kw
    rows = batch_last(x)  # (C, H, W, N)
    spread = weight.reshape(c, k).T  # (O*kh*kw, C)
    target = _zero_planes(o, n, size, geometry, x.dtype)
    for first, end in _row_blocks(h, k * w * n * x.itemsize):
        cols = matmul(spread, rows[:, first:end].reshape(c, (end - first) * w * n))
        _scatter(cols.reshape(o, kh, kw, end - first, w, n), target, geometry, (first, end))
    return _interleave(target, size, geometry)

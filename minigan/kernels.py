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
"""
import builtins

from .backend import xp


def matmul(a, b):
    """Every matrix product of the engine goes through here (the benchmark times this one
    function to tell matrix products from everything else)."""
    return xp.matmul(a, b)


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """Positions a kernel visits along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def batch_last(x):
    """The (C, H, W, N) array of an (N, C, H, W) one: a view when it already lies batch-last."""
    return xp.ascontiguousarray(x.transpose(1, 2, 3, 0))


def _phase_planes(c, n, size, kernel, stride, padding, dilation, positions, dtype):
    """Zeroed phase planes (C, sh, sw, rows, cols, N) of a padded batch-last image, big enough
    for every pixel and for every kernel window at each of ``positions`` (OH, OW)."""
    extent = [builtins.max(((k - 1) * d) // s + m_out, -(-(m + 2 * p) // s))
              for m, k, s, p, d, m_out in zip(size, kernel, stride, padding, dilation, positions)]
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


def _windows_in_planes(kernel, stride, dilation, positions):
    """Pairs (column index, plane index): the columns of kernel offset (i, j), cols[:, i, j],
    and the rectangle of the phase planes its windows cover, one pixel per output position."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, positions
    for i in range(kh):
        qi, ri = divmod(i * dh, sh)
        for j in range(kw):
            qj, rj = divmod(j * dw, sw)
            yield (slice(None), i, j), (slice(None), ri, rj, slice(qi, qi + oh), slice(qj, qj + ow))


def im2col(x, kernel, stride, padding, dilation):
    """Columns (C, kh, kw, OH, OW, N) of an (N, C, H, W) array: the padded image is split into
    its stride phases, where every kernel window is a rectangle. Equals the plain unfold's
    columns, reordered."""
    n, c, h, w = x.shape
    positions = tuple(conv_output_size(*axis) for axis in zip((h, w), kernel, stride, padding, dilation))
    if tuple(stride) + tuple(padding) == (1, 1, 0, 0):
        planes = batch_last(x).reshape(c, 1, 1, h, w, n)  # no copy when x is batch-last
    else:
        planes = _phase_planes(c, n, (h, w), kernel, stride, padding, dilation, positions, x.dtype)
        image = x.transpose(1, 2, 3, 0)  # (C, H, W, N), a view
        for in_image, in_planes in _image_in_planes((h, w), stride, padding):
            planes[in_planes] = image[in_image]
    cols = xp.empty((c, *kernel, *positions, n), dtype=x.dtype)
    for in_cols, in_planes in _windows_in_planes(kernel, stride, dilation, positions):
        cols[in_cols] = planes[in_planes]
    return cols


def fold(cols, size, stride, padding, dilation):
    """Sum columns (C, kh, kw, OH, OW, N) into an (N, C, H, W) image lying batch-last: the
    adjoint of ``im2col``. Each kernel offset is added into the plane of its stride phase (a
    rectangle there), and the planes are interleaved into the image at the end.

    (Adding every offset into a stride-2 view of a channel-major image instead runs NumPy inner
    loops one output row long, 8 values for a 16x16 image: mostly loop overhead. On a
    64-channel 8x8 -> 16x16 fold the planes took 1.8 ms instead of 5.3 ms, one core.)"""
    c, kh, kw, oh, ow, n = cols.shape
    (h, w), (ph, pw) = size, padding
    planes = _phase_planes(c, n, size, (kh, kw), stride, padding, dilation, (oh, ow), cols.dtype)
    for in_cols, in_planes in _windows_in_planes((kh, kw), stride, dilation, (oh, ow)):
        planes[in_planes] += cols[in_cols]
    if tuple(stride) == (1, 1):
        out = planes[:, 0, 0, ph:ph + h, pw:pw + w]  # a view; batch-last rows of a wider image
    else:
        out = xp.empty((c, h, w, n), dtype=cols.dtype)
        for in_image, in_planes in _image_in_planes(size, stride, padding):
            out[in_image] = planes[in_planes]
    return out.transpose(3, 0, 1, 2)


def as_matrix(cols):
    """Columns (C, kh, kw, OH, OW, N) as the matrix (C*kh*kw, OH*OW*N), a view."""
    c, kh, kw, oh, ow, n = cols.shape
    return cols.reshape(c * kh * kw, oh * ow * n)


def conv2d(cols, weight, bias=None):
    """The convolution of the image ``cols`` came from with ``weight`` (O, C, kh, kw), plus
    ``bias`` (O,): one matrix product, the bias added in place; (N, O, OH, OW) batch-last."""
    *_, oh, ow, n = cols.shape
    out = matmul(weight.reshape(weight.shape[0], -1), as_matrix(cols))
    if bias is not None:
        out += bias.reshape(-1, 1)
    return out.reshape(weight.shape[0], oh, ow, n).transpose(3, 0, 1, 2)


def conv_transpose2d(x, weight, geometry, size):
    """x (N, C, H, W) with weight (C, O, kh, kw) -> (N, O, *size) batch-last: every input pixel
    scatters its kernel-weighted copy, all copies from one matrix product, summed by ``fold``."""
    (kh, kw), stride, padding, dilation = geometry
    n, channels, h, w = x.shape
    rows = batch_last(x).reshape(channels, h * w * n)
    cols = matmul(weight.reshape(channels, -1).T, rows)  # (O*kh*kw, H*W*N)
    cols = cols.reshape(weight.shape[1], kh, kw, h, w, n)
    return fold(cols, size, stride, padding, dilation)


def conv_weight_grad(cols, g):
    """d<conv2d(x, w), g>/dw from the columns of x and the output gradient g (N, O, OH, OW):
    (O, C*kh*kw) = g as (O, OH*OW*N) @ columns as a matrix, transposed."""
    c, kh, kw, oh, ow, n = cols.shape
    rows = batch_last(g).reshape(g.shape[1], oh * ow * n)  # the columns' order; free when batch-last
    return matmul(rows, as_matrix(cols).T).reshape(g.shape[1], c, kh, kw)

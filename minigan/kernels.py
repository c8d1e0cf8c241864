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
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1:
        # a sum over one term: the outer product, which BLAS computes 3-4x slower than a multiply
        return xp.multiply(a, b, out=out)
    return xp.matmul(a, b, out=out)


def product_transposed(rows, columns):
    """Whether to compute a (rows, columns) matrix product as its transpose, b.T @ a.T, and
    transpose the result back. It is the same arithmetic, but OpenBLAS writes a result faster
    with its longer side as rows: 1.3-1.8x for a convolution's weight gradient at 16-64 output
    channels, 13-46% less time for ``linear`` at a batch of 64, and slower the other way round
    (docs/benchmarks.md)."""
    return columns > rows


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
    flip = product_transposed(o, k)  # then the sum is built as (C*kh*kw, O) = cols @ rows.T
    total = xp.zeros((k, o) if flip else (o, k), dtype=g.dtype)
    for first, end in _row_blocks(oh, k * ow * n * g.itemsize):
        length = (end - first) * ow * n
        cols = xp.empty((c, kh, kw, end - first, ow, n), dtype=g.dtype)
        _gather(source, cols, geometry, (first, end))
        block_rows, block_cols = rows[:, first:end].reshape(o, length), cols.reshape(k, length)
        total += matmul(block_cols, block_rows.T) if flip else matmul(block_rows, block_cols.T)
    return (xp.ascontiguousarray(total.T) if flip else total).reshape(o, c, kh, kw)


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


def transposed_by_convolution(c, o, in_size, size, geometry):
    """Whether ``conv_transpose2d`` from ``c`` to ``o`` channels should run as
    ``conv_transpose2d_stride1``: at stride 1, when the padding leaves a border to convolve
    over (p <= d*(k-1)) and there is no output padding, and when gathering x's C*kh*kw windows
    at each output pixel copies no more than scattering O*kh*kw columns from each input pixel
    adds (C*H'*W' <= O*H*W: a 3x3 "same" convolution's input gradient with C <= O), and when
    the border it pads x with is no larger than x (not a 1x1 input spread over a 7x7 kernel,
    whose windows are nearly all zeros). The product then sums over C*kh*kw terms instead of C,
    which OpenBLAS runs faster (0.65-0.98x the time at 16-128 channels, docs/benchmarks.md)."""
    around = _around(geometry)
    if tuple(geometry[1]) != (1, 1) or builtins.min(around[2]) < 0:
        return False
    if tuple(size) != positions(in_size, around):  # output padding
        return False
    if COPY_SIDE is not None:
        return COPY_SIDE == "output"
    area, in_area = size[0] * size[1], in_size[0] * in_size[1]
    return area <= 2 * in_area and c * area <= o * in_area


def conv_transpose2d_stride1(x, weight, geometry):
    """``conv_transpose2d`` at stride 1 as a convolution: each output pixel sums the input
    pixels whose kernel copies land on it, which is the convolution of x, padded by d*(k-1) - p,
    with the kernel flipped in both axes and its two channel axes swapped (the windows gathered,
    nothing scattered). (N, O, H', W') lying batch-last."""
    flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (O, C, kh, kw)
    around = _around(geometry)
    return conv2d(planes(x, around), x.shape[2:], flipped, None, around)


def _around(geometry):
    """The geometry of the stride-1 convolution that equals a stride-1 transposed one: the same
    kernel and dilation, padding d*(k-1) - p."""
    kernel, _, padding, dilation = geometry
    return (tuple(kernel), (1, 1), tuple(d * (k - 1) - p for k, p, d in zip(kernel, padding, dilation)),
            tuple(dilation))


# --- when the output side has the fewer channels ------------------------------------------------
# The kernels above copy windows of the convolution's input side: C*kh*kw numbers per output
# position. A layer that narrows to a few channels (a critic's last layer to one score map, a
# generator's last to three colours) can arrange the same sums so that only windows of its
# narrow O-channel side are copied. Without dilation, stride phase (r, q) of the phase planes is
# read by the kernel offsets i = r + sh*i', j = q + sw*j' at plane rows i' + y: a stride-1
# correlation with the sub-kernel weight[:, :, r::sh, q::sw]. Its adjoint (that phase's share
# of the transposed convolution) is a stride-1 convolution of the zero-padded O-channel side
# with the sub-kernel flipped, and the kernels above compute each of these copying O-channel
# windows. Tests check each function below equal to its counterpart above.

COPY_SIDE = None  # None: choose by channel counts; tests force "input" or "output"


def copies_output_side(c, o, size, geometry):
    """Whether a convolution from ``c`` to ``o`` channels over an image ``size`` (and its
    input and weight gradients) should copy windows of its o-channel side: when o is at most
    half of c, without dilation, and when the phase planes it then multiplies over are at most
    twice the output positions (a small output under a large kernel would waste the products)."""
    if tuple(geometry[3]) != (1, 1):
        return False
    if COPY_SIDE is not None:
        return COPY_SIDE == "output"
    (oh, ow), (kh, kw), (sh, sw) = positions(size, geometry), geometry[0], geometry[1]
    planes_area = (oh - 1 - (-kh // sh)) * (ow - 1 - (-kw // sw))
    return 2 * o <= c and planes_area <= 2 * oh * ow


def _phases(kernel, stride):
    """(r, q, (kh', kw')) for each stride phase some kernel offset reads, with the number of
    offsets reading it along each axis."""
    (sh, sw), (kh, kw) = stride, kernel
    for r in range(builtins.min(sh, kh)):
        for q in range(builtins.min(sw, kw)):
            yield r, q, (len(range(r, kh, sh)), len(range(q, kw, sw)))


def _phase_kernels(weight, stride):
    """(r, q, kernel) for each stride phase some offset reads: the offsets that read it,
    weight[:, :, r::sh, q::sw], flipped in both axes with the two channel axes swapped."""
    for r, q, _ in _phases(weight.shape[2:], stride):
        sub = weight[:, :, r::stride[0], q::stride[1]]
        yield r, q, xp.ascontiguousarray(sub[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def _padded(g, before, rows, cols):
    """g (N, O, H, W) as one stride-1 plane (O, 1, 1, bh + rows, bw + cols, N): ``before`` =
    (bh, bw) zero rows and columns in front of it, zeros behind it up to rows and cols."""
    n, o, h, w = g.shape
    (bh, bw) = before
    out = xp.zeros((o, 1, 1, bh + rows, bw + cols, n), dtype=g.dtype)
    out[:, 0, 0, bh:bh + h, bw:bw + w] = g.transpose(1, 2, 3, 0)
    return out


def _stride1(kernel_size):
    """The geometry of a plain stride-1 convolution without padding or dilation."""
    return (tuple(kernel_size), (1, 1), (0, 0), (1, 1))


def _front(kernel, stride):
    """Zero rows and columns in front of the padded side: one less than the most offsets any
    phase has along each axis."""
    return tuple(-(-k // s) - 1 for k, s in zip(kernel, stride))


def conv2d_by_products(source, size, weight, bias, geometry):
    """``conv2d`` copying output-side windows: for each stride phase, every pixel of the plane
    spreads its sub-kernel-weighted copy (a stride-1 ``conv_transpose2d``), and the output is
    the window of the spread where each position's whole sub-kernel landed."""
    n, o = source.shape[-1], weight.shape[0]
    oh, ow = positions(size, geometry)
    out = xp.zeros((o, oh, ow, n), dtype=source.dtype)
    for r, q, kernel in _phase_kernels(weight, geometry[1]):
        kh, kw = kernel.shape[2:]
        plane = source[:, r, q, :oh + kh - 1, :ow + kw - 1].transpose(3, 0, 1, 2)  # the rows read
        spread = conv_transpose2d(plane, kernel, _stride1((kh, kw)), (oh + 2 * kh - 2, ow + 2 * kw - 2))
        out += spread[:, :, kh - 1:kh - 1 + oh, kw - 1:kw - 1 + ow].transpose(1, 2, 3, 0)
    if bias is not None:
        out += bias.reshape(-1, 1, 1, 1)
    return out.transpose(3, 0, 1, 2)


def conv_transpose2d_by_gather(x, weight, geometry, size):
    """``conv_transpose2d`` copying input-side windows (x's few channels): each stride phase
    of the result is a stride-1 convolution of the zero-padded x with its flipped sub-kernel."""
    n, o = x.shape[0], weight.shape[1]
    target = _zero_planes(o, n, size, geometry, x.dtype)
    rows, cols = target.shape[3:5]
    bh, bw = _front(weight.shape[2:], geometry[1])
    padded = _padded(x, (bh, bw), rows, cols)
    for r, q, kernel in _phase_kernels(weight, geometry[1]):
        kh, kw = kernel.shape[2:]
        source = padded[:, :, :, bh - kh + 1:, bw - kw + 1:]
        target[:, r, q] = conv2d(source, source.shape[3:5], kernel, None, _stride1((kh, kw))).transpose(1, 2, 3, 0)
    return _interleave(target, size, geometry)


def conv_weight_grad_by_g(source, size, g, geometry):
    """``conv_weight_grad`` copying windows of g (its few channels): for each stride phase,
    the weight gradient of a stride-1 convolution of the zero-padded g whose output gradient
    is the phase plane, flipped back into the phase's kernel offsets."""
    c, o = source.shape[0], g.shape[1]
    (kh, kw), (sh, sw) = geometry[0], geometry[1]
    rows, cols = source.shape[3:5]
    bh, bw = _front((kh, kw), (sh, sw))
    padded = _padded(g, (bh, bw), rows, cols)
    total = xp.empty((o, c, kh, kw), dtype=g.dtype)
    for r, q, sub in _phases((kh, kw), (sh, sw)):
        windows = padded[:, :, :, bh - sub[0] + 1:, bw - sub[1] + 1:]
        plane = source[:, r, q].transpose(3, 0, 1, 2)  # the phase plane as an output gradient
        part = conv_weight_grad(windows, windows.shape[3:5], plane, _stride1(sub))
        total[:, :, r::sh, q::sw] = part[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return total

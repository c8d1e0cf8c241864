"""Primitive ops: each a Function with its forward on arrays and its backward in Tensor ops.

Because every backward below is built from these same ops, a recorded backward pass can be
differentiated again. Ops that are compositions of primitives (mean, var, stack, flatten ...)
are plain functions at the end of the file and need no backward of their own.
"""
import builtins
import math

from . import backend
from .autograd import Function, Tensor, _as_tensor, grad, is_grad_enabled
from .backend import xp


def _sum_to_shape(g, shape):
    """Undo NumPy broadcasting: sum ``g`` down to ``shape`` (the backward of every broadcast)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _const(array):
    """A tensor outside the graph (masks, signs): treated as a constant by the derivative."""
    return Tensor(array)


# --- elementwise arithmetic ---------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return _sum_to_shape(g, a.shape), _sum_to_shape(g, b.shape)


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        gb = _sum_to_shape(-g, b.shape) if self.needs_input_grad[1] else None
        return _sum_to_shape(g, a.shape), gb


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = _sum_to_shape(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = _sum_to_shape(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = _sum_to_shape(g / b, a.shape) if self.needs_input_grad[0] else None
        # d(a/b)/db = -a/b^2 = -out/b
        gb = _sum_to_shape(-g * self.output / b, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class PowScalar(Function):
    def forward(self, a, p):
        self.p = p
        return a**p

    def backward(self, g):
        (a,) = self.inputs
        p = self.p
        if p == 0:
            return g * 0.0
        if p == 1:
            return g
        return g * p * a ** (p - 1)


class Pow(Function):
    def forward(self, a, b):
        return a**b

    def backward(self, g):
        a, b = self.inputs
        ga = _sum_to_shape(g * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        # d(a^b)/db = a^b log a
        gb = _sum_to_shape(g * self.output * log(a), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Exp(Function):
    def forward(self, a):
        return xp.exp(a)

    def backward(self, g):
        return g * self.output


class Log(Function):
    def forward(self, a):
        return xp.log(a)

    def backward(self, g):
        return g / self.inputs[0]


class Log1p(Function):
    """log(1 + a), accurate where a is tiny (softplus and the logit losses need that)."""

    def forward(self, a):
        return xp.log1p(a)

    def backward(self, g):
        return g / (1.0 + self.inputs[0])


class Sqrt(Function):
    def forward(self, a):
        return xp.sqrt(a)

    def backward(self, g):
        return g * 0.5 / self.output


class Abs(Function):
    def forward(self, a):
        self.sign = xp.sign(a)
        return xp.abs(a)

    def backward(self, g):
        return g * _const(self.sign)


class Tanh(Function):
    def forward(self, a):
        return xp.tanh(a)

    def backward(self, g):
        out = self.output
        return g * (1.0 - out * out)


class Sigmoid(Function):
    def forward(self, a):
        # exp of -|a| never overflows; the two branches are the same function
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)

    def backward(self, g):
        out = self.output
        return g * out * (1.0 - out)


class Relu(Function):
    # No xp.where here or in LeakyRelu: with a mask of random signs it branches per element and
    # ran ~15x slower than max/multiply (2.2 ms against 0.15 ms on 524k floats, one core); the
    # 32x32 DCGAN step went from 1.53x to 1.34x PyTorch's, the 28x28 one from 1.13x to 1.03x.
    def forward(self, a):
        self.mask = a > 0
        return xp.maximum(a, 0)  # NaN stays NaN, as in PyTorch

    def backward(self, g):
        return g * _const(self.mask)  # float * bool: g where a > 0, else 0


class LeakyRelu(Function):
    def forward(self, a, slope):
        # a boolean mask, not a float scale: no float64 temporary, a quarter of the memory
        self.mask, self.slope = a > 0, slope
        if 0 <= slope <= 1:  # max(a, slope * a) is a for a > 0 and slope * a otherwise
            out = xp.multiply(a, slope, out=xp.empty_like(a))
            return xp.maximum(out, a, out=out)
        return xp.where(self.mask, a, a * slope)

    def backward(self, g):
        slope = xp.asarray(self.slope, dtype=g.dtype)
        # mask * (1 - slope) + slope: slope where a <= 0, and exactly 1 where a > 0 (for
        # 0 <= slope <= 1, float rounding of slope + (1 - slope) lands on 1; a test checks it)
        scale = xp.multiply(self.mask, 1 - slope) if 0 <= self.slope <= 1 else None
        if scale is None:
            scale = xp.where(self.mask, xp.ones((), dtype=g.dtype), slope)
        else:
            scale += slope
        return g * _const(scale)


class Clamp(Function):
    def forward(self, a, low, high):
        self.mask = xp.ones(a.shape, dtype=bool)
        if low is not None:
            self.mask &= a >= low
        if high is not None:
            self.mask &= a <= high
        return xp.clip(a, low, high)

    def backward(self, g):
        return g * _const(self.mask.astype(g.dtype))


class Where(Function):
    def forward(self, a, b, cond):
        self.cond = cond
        return xp.where(cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        zero = _const(xp.zeros((), dtype=g.dtype))
        ga = _sum_to_shape(where(self.cond, g, zero), a.shape) if self.needs_input_grad[0] else None
        gb = _sum_to_shape(where(self.cond, zero, g), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Cast(Function):
    def forward(self, a, dtype):
        self.from_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return cast(g, self.from_dtype)


# --- reductions ---------------------------------------------------------------------------------
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    def forward(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = _axes(axis, a.ndim)
        return xp.sum(a, axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return g.reshape(_kept_shape(self.in_shape, self.axes)).broadcast_to(self.in_shape)


class Max(Function):
    def forward(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = _axes(axis, a.ndim)
        top = xp.max(a, axis=self.axes, keepdims=True)
        # ties share the gradient evenly, like PyTorch's amax
        mask = (a == top).astype(a.dtype)
        self.share = mask / xp.sum(mask, axis=self.axes, keepdims=True)
        return top if keepdims else top.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        g = g.reshape(_kept_shape(self.in_shape, self.axes))
        return g * _const(self.share)


# --- shape ops ----------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    def forward(self, a, axes):
        self.axes = axes
        return xp.transpose(a, axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return g.permute(*inverse)


class BroadcastTo(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        return xp.broadcast_to(a, shape)

    def backward(self, g):
        return _sum_to_shape(g, self.in_shape)


def _index_data(index):
    """Turn tensors and lists inside an index into backend arrays."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if isinstance(i, Tensor):
            i = i.data
        elif isinstance(i, list):
            i = xp.asarray(i)
        out.append(i)
    return tuple(out)


def _is_basic(index):
    return all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in index)


class GetItem(Function):
    def forward(self, a, index):
        self.in_shape = a.shape
        self.index = index
        return a[index]

    def backward(self, g):
        return IndexAdd.apply(g, shape=self.in_shape, index=self.index)


class IndexAdd(Function):
    """zeros(shape)[index] += g: the adjoint of indexing (repeated indices add up)."""

    def forward(self, g, shape, index):
        self.index = index
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        else:
            backend.index_add(out, index, g)
        return out

    def backward(self, g):
        return GetItem.apply(g, index=self.index)


class Cat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        grads, start = [], 0
        lead = (slice(None),) * (self.axis % g.ndim)
        for n in self.sizes:
            grads.append(g[lead + (slice(start, start + n),)])
            start += n
        return tuple(grads)


def _matmul(a, b):
    """Every matrix product in the engine goes through here (benchmarks time it)."""
    return xp.matmul(a, b)


class MatMul(Function):
    def forward(self, a, b):
        return _matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        ga = _sum_to_shape(g @ b.transpose(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = _sum_to_shape(a.transpose(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb



class Linear(Function):
    """x @ weight.T + bias for a 2-D x, as one op. Composed of matmul(x, weight.T) and add, the
    weight's gradient arrived transposed (column-major) and had to be copied into the weight's
    layout before Adam could use it at full speed; here it is computed as g.T @ x, already
    row-major, and the bias is added in place (MLP GAN step, 1 thread:
    1.43x -> 1.12x PyTorch's). Unrecorded backward works on arrays; recorded, in Tensor ops."""

    def forward(self, x, weight, bias=None):
        out = _matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, weight = self.inputs[:2]
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.inputs) == 3 and self.needs_input_grad[2]
        if is_grad_enabled():  # the backward pass is being recorded
            gx = g @ weight if need_x else None
            gw = g.transpose(0, 1) @ x if need_w else None
            gb = g.sum(axis=0) if need_b else None
        else:
            gd = g.data
            gx = _const(_matmul(gd, weight.data)) if need_x else None
            gw = _const(_matmul(gd.T, x.data)) if need_w else None
            gb = _const(gd.sum(axis=0)) if need_b else None
        return (gx, gw, gb) if len(self.inputs) == 3 else (gx, gw)

# --- batch normalisation -----------------------------------------------------------------------
def _normalise_by_batch(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over ``axes``, written in primitives: the reference the
    fused op below must agree with, and what its derivative is taken of when recorded."""
    mean_ = mean(x, axes, keepdims=True)
    centred = x - mean_
    return centred * (mean(centred * centred, axes, keepdims=True) + eps) ** -0.5


class BatchNormTrain(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with this batch's statistics (axes
    ``axes``, biased variance), fused: forward in ~5 passes over x instead of ~9, and the
    first-order backward as the closed form

        dx = weight * rstd * (g - mean(g) - xhat * mean(g * xhat)),
        dweight = sum(g * xhat),  dbias = sum(g).

    When the backward itself is being recorded (create_graph=True) it differentiates the
    composition of primitives instead, so second derivatives stay exact. The batch mean and
    variance are kept on the op (``batch_mean``, ``batch_var``) for the running statistics.
    """

    def forward(self, x, weight, bias, axes, eps, stats):
        shape = _kept_shape(x.shape, axes)
        self.axes, self.eps = axes, eps
        batch_mean = xp.mean(x, axis=axes, keepdims=True)
        xhat = x - batch_mean
        squares = xhat * xhat
        batch_var = xp.mean(squares, axis=axes, keepdims=True)
        stats.update(mean=batch_mean, var=batch_var)
        self.rstd = 1.0 / xp.sqrt(batch_var + eps)
        xhat *= self.rstd
        self.xhat = xhat
        out = xp.multiply(xhat, weight.reshape(shape), out=squares)
        out += bias.reshape(shape)
        return out

    def backward(self, g):
        x, weight, bias = self.inputs
        shape = _kept_shape(x.shape, self.axes)
        if is_grad_enabled():  # the backward pass is being recorded
            out = _normalise_by_batch(x, self.axes, self.eps) * weight.reshape(shape) + bias.reshape(shape)
            wanted = [t for t, need in zip(self.inputs, self.needs_input_grad) if need]
            grads = iter(grad(out, wanted, grad_outputs=g, create_graph=True, allow_unused=True))
            return tuple(next(grads) if need else None for need in self.needs_input_grad)
        gd, xhat = g.data, self.xhat
        count = gd.size // weight.size
        dbias = xp.sum(gd, axis=self.axes, keepdims=True)
        dweight = xp.sum(gd * xhat, axis=self.axes, keepdims=True)
        dx = None
        if self.needs_input_grad[0]:
            dx = xhat * (dweight / count)
            xp.subtract(gd, dx, out=dx)
            dx -= dbias / count
            dx *= weight.data.reshape(shape) * self.rstd
        return _const(dx), _const(dweight.reshape(weight.shape)), _const(dbias.reshape(bias.shape))


def batch_norm_train(x, weight, bias, axes, eps):
    """Apply BatchNormTrain; returns (y, batch_mean, batch_var), the statistics as arrays."""
    stats = {}
    out = BatchNormTrain.apply(x, weight, bias, axes=axes, eps=eps, stats=stats)
    return out, stats["mean"], stats["var"]


# --- unfold / fold (im2col / col2im) ------------------------------------------------------------
def _pair(v, name):
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(n, int) for n in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return pair


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """Positions a kernel visits along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _window_slices(k_index, dilation, stride, count):
    start = k_index * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _im2col(x, kernel_size, stride, padding, dilation):
    """The array work of Im2Col (unfold; the convolution ops use the batch-last one below)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"unfold: kernel {kh}x{kw} (dilation {dh}x{dw}) is larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw} (input {h}x{w}, padding {ph}x{pw})"
        )
    source = x.transpose(1, 0, 2, 3)  # a view: (C, N, H, W)
    if ph or pw:
        padded = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = source
        source = padded
    cols = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    # one strided slice copy per kernel offset, instead of gathering with an index array
    for i in range(kh):
        rows = _window_slices(i, dh, sh, oh)
        for j in range(kw):
            cols[:, i, j] = source[:, :, rows, _window_slices(j, dw, sw, ow)]
    return cols.reshape(c * kh * kw, n * oh * ow)


class Im2Col(Function):
    """(N, C, H, W) -> (C*kh*kw, N*L): one column per output position of every image.

    Channel-major columns make a whole convolution ONE matrix product, (O, C*kh*kw) @ cols,
    instead of N small ones (on the 28x28 DCGAN that alone made the train step ~2x faster; the
    convolution ops now go one step further, see _im2col_batch_last). Recorded backwards of the
    convolution ops use this op and Col2Im.
    """

    def forward(self, x, kernel_size, stride, padding, dilation):
        self.params = x.shape[0], tuple(x.shape[2:]), kernel_size, stride, padding, dilation
        return _im2col(x, kernel_size, stride, padding, dilation)

    def backward(self, g):
        return Col2Im.apply(g, params=self.params)


def _col2im(cols, params):
    """The array work of Col2Im."""
    n, (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = params
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    ckk, length = cols.shape
    if ckk % (kh * kw) or length != n * oh * ow or oh <= 0 or ow <= 0:
        raise ValueError(
            f"fold: input of shape {(n, ckk, length // max(n, 1))} does not match output_size "
            f"{h}x{w} with kernel {kh}x{kw}, stride {sh}x{sw}, padding {ph}x{pw}, dilation "
            f"{dh}x{dw} (expected (N, C*{kh * kw}, {max(oh, 0) * max(ow, 0)}))"
        )
    c = ckk // (kh * kw)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    out = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)

    for i in range(kh):
        rows = _window_slices(i, dh, sh, oh)
        for j in range(kw):
            out[:, :, rows, _window_slices(j, dw, sw, ow)] += cols[:, i, j]
    if ph or pw:
        out = out[:, :, ph:ph + h, pw:pw + w]
    return out.transpose(1, 0, 2, 3)


class Col2Im(Function):
    """(C*kh*kw, N*L) -> (N, C, H, W), summing overlapping windows: the adjoint of Im2Col.

    The result is a (N, C, H, W) view of channel-major memory, which is exactly the layout the
    next layer's Im2Col or matrix product reads without a copy."""

    def forward(self, cols, params):
        self.params = params
        return _col2im(cols, params)

    def backward(self, g):
        n, size, kernel, stride, padding, dilation = self.params
        return Im2Col.apply(g, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)


# The convolution ops keep images "batch-last": an (N, C, H, W) tensor whose memory is ordered
# (C, H, W, N). Their columns are then (C*kh*kw, OH*OW*N), every window copy and every fold add
# sweeps OW*N contiguous values instead of one OW-long row per image and channel, and the next
# layer reads its input without a transposing copy. (The public unfold/fold keep the plain
# channel-major im2col above.) On the 32x32 DCGAN step this layout took the time of im2col and
# col2im per step from 18 + 42 ms to 10 + 14 ms (cProfile, one thread; docs/benchmarks.md).
def _batch_last(x):
    """The (C, H, W, N) array of an (N, C, H, W) one: a view when it already lies batch-last."""
    return xp.ascontiguousarray(x.transpose(1, 2, 3, 0))


def _phase_planes(c, n, size, kernel, stride, padding, dilation, positions, dtype):
    """Zeroed stride-phase planes (C, sh, sw, rows, cols, N) of a padded batch-last image:
    padded pixel (s*a + r, s*b + q) lies in plane (r, q) at (a, b). Big enough for every pixel
    and for every kernel window at each of ``positions`` (OH, OW)."""
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


def _im2col_batch_last(x, kernel, stride, padding, dilation):
    """Columns (C, kh, kw, OH, OW, N) of an (N, C, H, W) array, for the convolution ops: the
    padded image is split into its stride phases, where every kernel window is a rectangle."""
    n, c, h, w = x.shape
    positions = tuple(conv_output_size(*axis) for axis in zip((h, w), kernel, stride, padding, dilation))
    if tuple(stride) + tuple(padding) == (1, 1, 0, 0):
        planes = _batch_last(x).reshape(c, 1, 1, h, w, n)  # no copy when x is batch-last
    else:
        planes = _phase_planes(c, n, (h, w), kernel, stride, padding, dilation, positions, x.dtype)
        image = x.transpose(1, 2, 3, 0)  # (C, H, W, N), a view
        for in_image, in_planes in _image_in_planes((h, w), stride, padding):
            planes[in_planes] = image[in_image]
    cols = xp.empty((c, *kernel, *positions, n), dtype=x.dtype)
    for in_cols, in_planes in _windows_in_planes(kernel, stride, dilation, positions):
        cols[in_cols] = planes[in_planes]
    return cols


def _fold_batch_last(cols, size, stride, padding, dilation):
    """Sum columns (C, kh, kw, OH, OW, N) into an (N, C, H, W) image lying batch-last: the
    adjoint of _im2col_batch_last. Each kernel offset is added into the plane of its stride
    phase (a rectangle there), and the planes are interleaved into the image at the end.

    (The plain col2im adds every offset into a stride-2 view of a channel-major image, in numpy
    inner loops one output row long, 8 values for a 16x16 image: mostly loop overhead. On a
    64-channel 8x8 -> 16x16 fold this took 1.8 ms instead of 5.3 ms, one core.)"""
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


def _as_matrix(cols):
    """Columns (C, kh, kw, OH, OW, N) as the matrix (C*kh*kw, OH*OW*N), a view."""
    return cols.reshape(cols.shape[0] * cols.shape[1] * cols.shape[2], -1)


def _apply_kernels(weight2d, cols, bias=None):
    """weight2d (O, C*kh*kw) @ columns (C, kh, kw, OH, OW, N), plus bias: the convolution's
    output (N, O, OH, OW), lying batch-last."""
    *_, oh, ow, n = cols.shape
    out = _matmul(weight2d, _as_matrix(cols))
    if bias is not None:
        out += bias.reshape(-1, 1)
    return out.reshape(-1, oh, ow, n).transpose(3, 0, 1, 2)


def _conv_transpose_array(x, weight, geometry, size):
    """conv_transpose2d on arrays: x (N, C, H, W), weight (C, O, kh, kw) -> (N, O, *size)
    batch-last, as one matrix product and _fold_batch_last."""
    (kh, kw), stride, padding, dilation = geometry
    n, channels, h, w = x.shape
    rows = _batch_last(x).reshape(channels, h * w * n)
    cols = _matmul(weight.reshape(channels, -1).T, rows)  # (O*kh*kw, H*W*N)
    cols = cols.reshape(weight.shape[1], kh, kw, h, w, n)
    return _fold_batch_last(cols, size, stride, padding, dilation)


class Conv2d(Function):
    """conv2d(x, weight[, bias]) as one op: batch-last im2col, one matrix product, bias added
    in place; the output lies batch-last. The input gradient is the transposed convolution of
    the output gradient. Recorded (create_graph=True), the backward is conv_transpose2d and a
    matrix product with im2col(x), both differentiable ops, so second derivatives stay exact.
    """

    def forward(self, x, weight, bias=None, geometry=None):
        self.geometry = geometry
        self.cols = _im2col_batch_last(x, *geometry)  # kept for the weight's gradient
        return _apply_kernels(weight.reshape(weight.shape[0], -1), self.cols, bias)

    def backward(self, g):
        x, weight = self.inputs[:2]
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.inputs) == 3 and self.needs_input_grad[2]
        out_channels = weight.shape[0]
        size = x.shape[2:]
        if is_grad_enabled():  # the backward pass is being recorded
            rows = g.permute(1, 0, 2, 3).reshape(out_channels, -1)
            gx = conv_transpose2d(g, weight, size, *self.geometry) if need_x else None
            gw = (rows @ im2col(x, *self.geometry).T).reshape(weight.shape) if need_w else None
            gb = rows.sum(axis=1) if need_b else None
        else:
            rows = _batch_last(g.data).reshape(out_channels, -1)  # the columns' order: free
            gx = _const(_conv_transpose_array(g.data, weight.data, self.geometry, size)) if need_x else None
            gw = _const(_matmul(rows, _as_matrix(self.cols).T).reshape(weight.shape)) if need_w else None
            gb = _const(rows.sum(axis=1)) if need_b else None
        return (gx, gw, gb) if len(self.inputs) == 3 else (gx, gw)


class ConvTranspose2d(Function):
    """conv_transpose2d(x, weight) as one op: one matrix product -> fold, without keeping the
    k*k-times-larger columns alive until the backward (which never needs them: it im2cols the
    incoming gradient). Holding them made the 28x28 DCGAN step need 2.0x PyTorch's memory;
    without, 1.6x. ``size`` is the output's (H, W). Recorded, the backward is im2col and
    matrix products, differentiable ops."""

    def forward(self, x, weight, geometry, size):
        self.geometry = geometry
        return _conv_transpose_array(x, weight, geometry, size)

    def backward(self, g):
        x, weight = self.inputs
        kernel, stride, padding, dilation = self.geometry
        n, channels, h, w = x.shape
        need_x, need_w = self.needs_input_grad
        gx = gw = None
        if not is_grad_enabled():  # plain arrays, batch-last like the forward
            g_cols = _im2col_batch_last(g.data, *self.geometry)  # (O, kh, kw, H, W, N)
            if need_x:  # the conv2d of g with the same weight
                gx = _const(_apply_kernels(weight.data.reshape(channels, -1), g_cols))
            if need_w:
                rows = _batch_last(x.data).reshape(channels, -1)
                gw = _const(_matmul(rows, _as_matrix(g_cols).T).reshape(weight.shape))
            return gx, gw
        g_cols = im2col(g, kernel, stride, padding, dilation)  # (O*k*k, N*H*W)
        if need_x:
            gx = (weight.reshape(channels, -1) @ g_cols).reshape(channels, n, h, w).permute(1, 0, 2, 3)
        if need_w:
            rows = x.permute(1, 0, 2, 3).reshape(channels, n * h * w)
            gw = (rows @ g_cols.T).reshape(weight.shape)
        return gx, gw


def conv_transpose2d(x, weight, size, kernel_size, stride, padding, dilation):
    return ConvTranspose2d.apply(x, weight, geometry=(kernel_size, stride, padding, dilation),
                                 size=tuple(size))


def conv2d(x, weight, bias, kernel_size, stride, padding, dilation):
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*inputs, geometry=(kernel_size, stride, padding, dilation))


def _check_4d(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Channel-major columns of an (N, C, H, W) tensor: (C*kh*kw, N*L), the layout convolutions use."""
    x = _as_tensor(x, None)
    _check_4d("unfold", x)
    return Im2Col.apply(
        x, kernel_size=_pair(kernel_size, "kernel_size"), stride=_pair(stride, "stride"),
        padding=_pair(padding, "padding"), dilation=_pair(dilation, "dilation"))


def col2im(cols, batch, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Sum channel-major columns (C*kh*kw, N*L) back into an (N, C, H, W) image."""
    params = (batch, _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size"),
              _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"))
    return Col2Im.apply(cols, params=params)


def unfold(x, kernel_size, stride=1, padding=0, dilation=1):
    """Extract every kernel window of an (N, C, H, W) tensor as columns: (N, C*kh*kw, L),
    PyTorch's layout (a view of the channel-major im2col)."""
    cols = im2col(x, kernel_size, stride, padding, dilation)
    n = x.shape[0]
    return cols.reshape(cols.shape[0], n, cols.shape[1] // n).permute(1, 0, 2)


def fold(x, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Sum columns (N, C*kh*kw, L) back into an (N, C, H, W) image: the adjoint of unfold."""
    x = _as_tensor(x, None)
    if x.ndim != 3:
        raise ValueError(f"fold: expected a 3-D input (N, C*kh*kw, L), got shape {x.shape}")
    n, ckk, length = x.shape
    cols = x.permute(1, 0, 2).reshape(ckk, n * length)
    return col2im(cols, n, output_size, kernel_size, stride, padding, dilation)


# --- the functions users call -------------------------------------------------------------------
def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, b):
    """a ** b, for a tensor and a Python number (either way round) or two tensors."""
    if isinstance(b, (int, float)) and isinstance(a, Tensor):
        return PowScalar.apply(a, p=b)
    return Pow.apply(a, b)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def log1p(a):
    return Log1p.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def abs(a):
    return Abs.apply(a)


def tanh(a):
    return Tanh.apply(a)


def sigmoid(a):
    return Sigmoid.apply(a)


def relu(a):
    return Relu.apply(a)


def leaky_relu(a, negative_slope=0.01):
    return LeakyRelu.apply(a, slope=negative_slope)


def clamp(a, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min and max")
    return Clamp.apply(a, low=min, high=max)


def where(cond, a, b):
    """Elementwise ``a`` where ``cond`` holds, else ``b``; ``cond`` is a constant mask."""
    cond = cond.data if isinstance(cond, Tensor) else xp.asarray(cond)
    return Where.apply(a, b, cond=cond)


def cast(a, dtype):
    dtype = xp.dtype(dtype)
    if a.dtype == dtype:
        return a
    return Cast.apply(a, dtype=dtype)


def sum(a, axis=None, keepdims=False):
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):
    return Max.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    a = _as_tensor(a, None)
    count = math.prod(a.shape[i] for i in _axes(axis, a.ndim))
    return sum(a, axis, keepdims) * (1.0 / count)


def var(a, axis=None, keepdims=False, correction=1):
    """Variance over ``axis``, divided by (count - correction): 1 for PyTorch's default
    unbiased estimate, 0 for the population variance that BatchNorm normalises with."""
    count = math.prod(a.shape[i] for i in _axes(axis, a.ndim))
    centred = a - mean(a, axis, keepdims=True)
    return sum(centred * centred, axis, keepdims) * (1.0 / (count - correction))


def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def reshape(a, *shape):
    shape = _shape_args(shape)
    size = math.prod(n for n in shape if n != -1)
    if shape.count(-1) > 1 or (-1 not in shape and size != a.size) or (size and a.size % size):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}")
    return Reshape.apply(a, shape=shape)


def permute(a, *axes):
    axes = tuple(ax % a.ndim for ax in _shape_args(axes))
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {a.ndim} axes of shape {a.shape}")
    return Permute.apply(a, axes=axes)


def transpose(a, dim0, dim1):
    axes = list(range(a.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return permute(a, *axes)


def flatten(a, start_dim=0, end_dim=-1):
    if a.ndim == 0:
        return a.reshape(1)
    start, end = start_dim % a.ndim, end_dim % a.ndim
    shape = a.shape[:start] + (math.prod(a.shape[start:end + 1]),) + a.shape[end + 1:]
    return a.reshape(shape)


def unsqueeze(a, dim):
    dim = dim % (a.ndim + 1)
    return a.reshape(a.shape[:dim] + (1,) + a.shape[dim:])


def squeeze(a, dim=None):
    if dim is None:
        return a.reshape(tuple(n for n in a.shape if n != 1))
    dim = dim % a.ndim
    if a.shape[dim] != 1:
        return a
    return a.reshape(a.shape[:dim] + a.shape[dim + 1:])


def broadcast_to(a, shape):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    return BroadcastTo.apply(a, shape=shape)


def getitem(a, index):
    return GetItem.apply(a, index=_index_data(index))


def cat(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return Cat.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    return cat([unsqueeze(_as_tensor(t, None), axis) for t in tensors], axis)


def matmul(a, b):
    """Matrix product with NumPy's rules: batched over leading axes, 1-D operands promoted."""
    a, b = _as_tensor(a, b if isinstance(b, Tensor) else None), _as_tensor(b, a if isinstance(a, Tensor) else None)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({k_a} columns on the left, {k_b} rows on the right)"
        )
    if a.ndim == 1:
        return MatMul.apply(a.reshape(1, k_a), b if b.ndim > 1 else b.reshape(k_b, 1)).reshape(
            b.shape[:-2] + b.shape[-1:] if b.ndim > 1 else ())
    if b.ndim == 1:
        return MatMul.apply(a, b.reshape(k_b, 1)).reshape(a.shape[:-1])
    return MatMul.apply(a, b)

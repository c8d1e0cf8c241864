"""Convolution: the ``unfold``/``fold`` primitives (im2col/col2im) and the fused convolution ops.

The primitives are the definition a learner reads. ``unfold`` copies every kernel window of an
image into a column; ``fold`` adds columns back into an image, summing where windows overlap.
They are each other's adjoint, so each is the other's backward:

    conv2d(x, w)           = w.reshape(O, C*kh*kw) @ im2col(x)           (one matrix product)
    conv_transpose2d(x, w) = col2im(w.reshape(C, O*kh*kw).T @ x as (C, N*H*W))

(``minigan.functional.reference`` writes both out.) The fused ops ``Conv2d`` and
``ConvTranspose2d`` compute the same with the batch-last kernels of ``minigan.kernels``, and
their backwards are other fused ops, as in Chainer: the input gradient of a convolution is the
transposed convolution of the output gradient and the other way round, and the weight gradient
is its own op, ``ConvWeightGrad``, whose backward is again a convolution and a transposed one.
Every backward is therefore made of differentiable ops, and second derivatives stay exact.

    >>> import minigan as mg
    >>> mg.unfold(mg.zeros(2, 3, 5, 5), 3).shape      # (N, C*kh*kw, L)
    (2, 27, 9)
"""
from .. import kernels
from ..autograd import _as_tensor
from ..function import Function
from ..backend import xp
from ..kernels import conv_output_size  # noqa: F401  (part of this module's interface)


def _is_int(value):
    """Python and NumPy integers (anything with __index__), but not bools or floats."""
    return not isinstance(value, bool) and hasattr(type(value), "__index__")


def _int(value, name, minimum, who):
    """``value`` as a Python int >= ``minimum``; a clear error naming ``who`` otherwise."""
    if not _is_int(value) or int(value) < minimum:
        raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _pair(value, name, minimum, who):
    """An int or a pair of ints, each >= ``minimum``, as a pair of Python ints."""
    pair = (value, value) if _is_int(value) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(n) and int(n) >= minimum for n in pair):
        raise ValueError(f"{who}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return tuple(int(n) for n in pair)


def _window_slices(k_index, dilation, stride, count):
    start = k_index * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def _im2col(x, kernel_size, stride, padding, dilation):
    """The array work of Im2Col: one strided slice copy per kernel offset."""
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
    for i in range(kh):
        rows = _window_slices(i, dh, sh, oh)
        for j in range(kw):
            cols[:, i, j] = source[:, :, rows, _window_slices(j, dw, sw, ow)]
    return cols.reshape(c * kh * kw, n * oh * ow)


class Im2Col(Function):
    """(N, C, H, W) -> (C*kh*kw, N*L): one column per output position of every image.

    Channel-major columns make a whole convolution ONE matrix product, (O, C*kh*kw) @ cols,
    instead of N small ones."""

    reads_inputs, reads_output = (), False

    def forward(self, x, kernel_size, stride, padding, dilation):
        self.params = x.shape[0], tuple(x.shape[2:]), kernel_size, stride, padding, dilation
        return _im2col(x, kernel_size, stride, padding, dilation)

    def backward(self, g):
        return Col2Im.apply(g, params=self.params)


def _col2im(cols, params):
    """The array work of Col2Im: one strided slice add per kernel offset."""
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
    """(C*kh*kw, N*L) -> (N, C, H, W), summing overlapping windows: the adjoint of Im2Col."""

    reads_inputs, reads_output = (), False

    def forward(self, cols, params):
        self.params = params
        return _col2im(cols, params)

    def backward(self, g):
        n, size, kernel, stride, padding, dilation = self.params
        return Im2Col.apply(g, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)


# --- the fused convolution ops ------------------------------------------------------------------
class Conv2d(Function):
    """conv2d(x, weight[, bias]), a row block of columns at a time (``kernels.conv2d``), the
    output lying batch-last. ``source`` may pass x's phase planes when the caller already has
    them (the backward of ConvTranspose2d does). The planes are not kept for the weight's
    gradient, which makes them again from x: the graph holds x anyway, and keeping a padded copy
    of it as well cost more memory (a fifth of the lessons' step peaks) than remaking it costs
    time (nothing measurable)."""

    reads_inputs, reads_output = (0, 1), False

    def forward(self, x, weight, bias=None, geometry=None, source=None):
        self.geometry = geometry
        source = kernels.planes(x, geometry) if source is None else source
        if kernels.copies_output_side(weight.shape[1], weight.shape[0], x.shape[2:], geometry):
            return kernels.conv2d_by_products(source, x.shape[2:], weight, bias, geometry)
        return kernels.conv2d(source, x.shape[2:], weight, bias, geometry)

    def backward(self, g):
        x, weight = self.inputs[:2]
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = conv_transpose2d(g, weight, x.shape[2:], self.geometry)
        if self.needs_input_grad[1]:
            gw = ConvWeightGrad.apply(x, g, geometry=self.geometry)
        if len(self.inputs) == 2:
            return gx, gw
        if self.needs_input_grad[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


class ConvTranspose2d(Function):
    """conv_transpose2d(x, weight), a row block at a time (``kernels.conv_transpose2d``), or at
    stride 1 as the convolution of x with the flipped kernel when x has no more channels than
    the output (``kernels.conv_transpose2d_stride1``); ``size`` is the output's (H, W). The
    backward splits the incoming gradient into its phase planes once, for both of its products."""

    reads_inputs, reads_output = (0, 1), False

    def forward(self, x, weight, geometry, size):
        self.geometry = geometry
        if kernels.transposed_by_convolution(weight.shape[0], weight.shape[1], x.shape[2:], size, geometry):
            return kernels.conv_transpose2d_stride1(x, weight, geometry)
        if kernels.copies_output_side(weight.shape[1], weight.shape[0], size, geometry):  # x: the narrow side
            return kernels.conv_transpose2d_by_gather(x, weight, geometry, size)
        return kernels.conv_transpose2d(x, weight, geometry, size)

    def backward(self, g):
        x, weight = self.inputs
        source = kernels.planes(g.data, self.geometry)
        gx = gw = None
        if self.needs_input_grad[0]:  # the convolution of g with the same weight
            gx = Conv2d.apply(g, weight, geometry=self.geometry, source=source)
        if self.needs_input_grad[1]:  # conv2d's weight gradient with the roles of x and g swapped
            gw = ConvWeightGrad.apply(g, x, geometry=self.geometry, source=source)
        return gx, gw


class ConvWeightGrad(Function):
    """d<conv2d(x, w), g>/dw for x (N, C, H, W) and g (N, O, OH, OW): an (O, C, kh, kw) array.
    It is linear in x and in g, and its own derivatives are convolutions again:
    d/dx <ConvWeightGrad(x, g), u> = conv_transpose2d(g, u), d/dg = conv2d(x, u)."""

    reads_inputs, reads_output = (0, 1), False

    def forward(self, x, g, geometry, source=None):
        self.geometry = geometry
        source = kernels.planes(x, geometry) if source is None else source
        if kernels.copies_output_side(x.shape[1], g.shape[1], x.shape[2:], geometry):
            return kernels.conv_weight_grad_by_g(source, x.shape[2:], g, geometry)
        return kernels.conv_weight_grad(source, x.shape[2:], g, geometry)

    def backward(self, u):
        x, g = self.inputs
        gx = conv_transpose2d(g, u, x.shape[2:], self.geometry) if self.needs_input_grad[0] else None
        gg = Conv2d.apply(x, u, geometry=self.geometry) if self.needs_input_grad[1] else None
        return gx, gg


def conv2d(x, weight, bias, geometry):
    """The fused Conv2d op; ``geometry`` = (kernel, stride, padding, dilation), each a pair."""
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*inputs, geometry=geometry)


def conv_transpose2d(x, weight, size, geometry):
    """The fused ConvTranspose2d op with output size ``size`` (H, W)."""
    return ConvTranspose2d.apply(x, weight, geometry=geometry, size=tuple(size))


# --- the functions users call -------------------------------------------------------------------
def _geometry(who, kernel_size, stride, padding, dilation):
    return dict(kernel_size=_pair(kernel_size, "kernel_size", 1, who), stride=_pair(stride, "stride", 1, who),
                padding=_pair(padding, "padding", 0, who), dilation=_pair(dilation, "dilation", 1, who))


def _check_4d(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Channel-major columns of an (N, C, H, W) tensor: (C*kh*kw, N*L), the layout convolutions use."""
    x = _as_tensor(x, None)
    _check_4d("unfold", x)
    return Im2Col.apply(x, **_geometry("unfold", kernel_size, stride, padding, dilation))


def col2im(cols, batch, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Sum channel-major columns (C*kh*kw, N*L) back into an (N, C, H, W) image."""
    geometry = _geometry("fold", kernel_size, stride, padding, dilation)
    params = (batch, _pair(output_size, "output_size", 1, "fold"), *geometry.values())
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

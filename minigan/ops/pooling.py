"""Pooling, fused: max and average pooling over kernel windows, each with its gradient op.

For kernel offset (i, j), the pixels that offset sees at every output position form one strided
view of the padded input, x[:, :, i*dh + sh*y, j*dw + sw*x] over output positions (y, x). Pooling
reduces the kh*kw views element by element (a running maximum, or a sum): kh*kw passes over an
output-sized array, with no unfolded copy of the input. The gradient spreads the output's
gradient back through the same views.

    MaxPool2d      the largest value of each window, and which offset held it (the first, in
                   row-major order, when several tie: PyTorch's choice)
    MaxPool2dGrad  each output's gradient onto the pixel its window picked (adds where windows
                   overlap); linear in the gradient, its derivative in x is zero
    MaxPool2dPick  a tensor read at the picked pixels: MaxPool2dGrad's adjoint, and its backward
    AvgPool2d      each window's sum times ``scale`` (1 / divisor, per output position)
    AvgPool2dGrad  its adjoint: scale * g added onto every pixel of the window; with no scale
                   and kernel = stride, nearest upsampling by whole factors (``repeat_pixels``)

``minigan.functional.reference`` defines both poolings as pad -> unfold -> max or sum; the tests
check the fused ops equal those definitions in values, first and second derivatives.

    >>> import minigan as mg
    >>> x = mg.arange(16.0).reshape(1, 1, 4, 4)
    >>> mg.F.max_pool2d(x, 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
"""
from ..function import Function
from ..backend import xp
from .padding import empty_like_layout, pad_array


def _windows(a, geometry):
    """The view of the padded array ``a`` for each kernel offset (i, j), in row-major order:
    a[:, :, i*dh + sh*y, j*dw + sw*x] over the output positions (y, x)."""
    (kh, kw), (sh, sw), (dh, dw), _, (oh, ow) = geometry
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            yield a[:, :, rows, slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)]


def _padded(x, geometry, fill):
    widths = geometry[3]
    if all(w == (0, 0) for w in widths):
        return x
    return pad_array(x, ((0, 0), (0, 0)) + tuple(widths), "constant", fill)


def _disjoint(geometry):
    """True when no pixel lies in two windows: each offset's view is then written, not added."""
    kernel, stride, dilation = geometry[:3]
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


def _tiles(geometry, extent):
    """True when the windows cover the padded image exactly once (kernel = stride)."""
    kernel, stride, dilation, _, positions = geometry
    return all(k == s and d == 1 and m * s == n
               for k, s, d, m, n in zip(kernel, stride, dilation, positions, extent))


def _spread(part, like, size, geometry):
    """The adjoint of reading the windows: ``part(k, out)`` writes what offset k sends back
    (one value per output position) into ``out``; those values are added onto the pixels the
    offset's view reads, and the padding is cropped off. ``like`` lends its memory layout."""
    widths = geometry[3]
    padded = size[:2] + tuple(n + b + a for n, (b, a) in zip(size[2:], widths))
    out = empty_like_layout(like, padded)
    if not _tiles(geometry, padded[2:]):  # some pixels are in no window
        out[...] = 0
    disjoint, temp = _disjoint(geometry), None
    for k, view in enumerate(_windows(out, geometry)):
        if disjoint:
            part(k, view)
        else:
            temp = part(k, temp if temp is not None else xp.empty_like(view))
            view += temp
    return out[(slice(None), slice(None)) + tuple(slice(b, b + n) for (b, _), n in zip(widths, size[2:]))]


class MaxPool2d(Function):
    """The largest value of each window; ``arg`` keeps the offset (i*kw + j) of the first
    maximum, which is all the backward reads."""

    reads_inputs, reads_output = (), False

    def forward(self, x, geometry, found):
        self.geometry, self.size = geometry, x.shape
        (kh, kw), positions = geometry[0], geometry[4]
        views = _windows(_padded(x, geometry, -xp.inf), geometry)
        out = empty_like_layout(x, x.shape[:2] + tuple(positions))
        out[...] = next(views)
        self.arg = xp.zeros_like(out, dtype=xp.uint8 if kh * kw <= 256 else xp.int32)
        better, step = xp.empty_like(out, dtype=bool), xp.empty_like(self.arg)
        for k, view in enumerate(views, start=1):
            xp.greater(view, out, out=better)  # strictly greater: an earlier maximum keeps its place
            xp.maximum(out, view, out=out)     # (NaN propagates, as in PyTorch)
            # the offsets come in increasing order, so the latest improvement is the largest k
            xp.multiply(better, self.arg.dtype.type(k), out=step)
            xp.maximum(self.arg, step, out=self.arg)
        found["offsets"] = self.arg
        return out

    def backward(self, g):
        return MaxPool2dGrad.apply(g, self.inputs[0], arg=self.arg, geometry=self.geometry,
                                   size=self.size)


class MaxPool2dGrad(Function):
    """d<max_pool2d(x), g>/dx: each g goes to the pixel its window picked. ``tie`` (x) is an
    input only so that the result is a function of x, as it is: differentiated again, it gives
    x a zero derivative (as in PyTorch) and g the picking, ``MaxPool2dPick``."""

    reads_inputs, reads_output = (), False

    def forward(self, g, *tie, arg, geometry, size):
        self.arg, self.geometry, self.size = arg, geometry, size

        def part(k, out):
            return xp.multiply(g, arg == k, out=out)

        return _spread(part, g, size, geometry)

    def backward(self, gg):
        pick = MaxPool2dPick.apply(gg, arg=self.arg, geometry=self.geometry, size=self.size)
        return (pick,) + (None,) * (len(self.inputs) - 1)


class MaxPool2dPick(Function):
    """u (shaped like the pooled input) read where MaxPool2d picked: the adjoint of
    MaxPool2dGrad, whose backward is MaxPool2dGrad again."""

    reads_inputs, reads_output = (), False

    def forward(self, u, arg, geometry, size):
        self.arg, self.geometry, self.size = arg, geometry, size
        out = xp.zeros_like(arg, dtype=u.dtype)
        temp = xp.empty_like(out)
        for k, view in enumerate(_windows(_padded(u, geometry, 0.0), geometry)):
            out += xp.multiply(view, arg == k, out=temp)
        return out

    def backward(self, g):
        return MaxPool2dGrad.apply(g, arg=self.arg, geometry=self.geometry, size=self.size)


class AvgPool2d(Function):
    """Each window's sum times ``scale``: a number, or one per output position (OH, OW) where
    windows differ in their divisor, or None for the plain sum."""

    reads_inputs, reads_output = (), False

    def forward(self, x, geometry, scale):
        self.geometry, self.scale, self.size = geometry, scale, x.shape
        views = _windows(_padded(x, geometry, 0.0), geometry)
        out = empty_like_layout(x, x.shape[:2] + tuple(geometry[4]))
        out[...] = next(views)
        for view in views:
            out += view
        if scale is not None:
            out *= scale
        return out

    def backward(self, g):
        return AvgPool2dGrad.apply(g, geometry=self.geometry, scale=self.scale, size=self.size)


class AvgPool2dGrad(Function):
    """d<avg_pool2d(x), g>/dx: scale * g added onto every pixel of each window. It does not
    depend on x; its backward is average pooling again."""

    reads_inputs, reads_output = (), False

    def forward(self, g, geometry, scale, size):
        self.geometry, self.scale = geometry, scale
        share = g if scale is None else g * scale

        def part(k, out):
            xp.copyto(out, share)
            return out

        return _spread(part, g, size, geometry)

    def backward(self, gg):
        return AvgPool2d.apply(gg, geometry=self.geometry, scale=self.scale)


def max_pool2d(x, geometry):
    """(values, offsets): the fused MaxPool2d, and the offset (i*kw + j) in each window of the
    value it picked, as an array. ``geometry`` = (kernel, stride, dilation, widths, positions):
    pairs, the padding (before, after) of each spatial axis, and the output's (OH, OW)."""
    found = {}
    out = MaxPool2d.apply(x, geometry=geometry, found=found)
    return out, found["offsets"]


def avg_pool2d(x, geometry, scale):
    """The fused AvgPool2d; ``scale`` = 1 / divisor, a number or an (OH, OW) array."""
    return AvgPool2d.apply(x, geometry=geometry, scale=scale)


def repeat_pixels(x, factors):
    """Nearest upsampling by whole factors (fh, fw): every pixel becomes an fh x fw block. That
    is the adjoint of summing over those blocks, so it runs as AvgPool2dGrad with no scale, and
    its gradient is sum pooling (AvgPool2d): fh*fw strided copies, and fh*fw strided adds."""
    n, c, h, w = x.shape
    geometry = (tuple(factors), tuple(factors), (1, 1), ((0, 0), (0, 0)), (h, w))
    return AvgPool2dGrad.apply(x, geometry=geometry, scale=None, size=(n, c, h * factors[0], w * factors[1]))

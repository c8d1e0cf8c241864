"""Padding, fused: ``Pad`` widens the trailing axes of an array in one allocation, and its
adjoint ``PadAdjoint`` folds a gradient back onto the unpadded input.

What the border holds, per mode (one axis, input ``a b c d``, two places each side):

    constant    v v | a b c d | v v      (``value``; its derivative is zero)
    reflect     c b | a b c d | c b      (mirrored about the edge pixel, which is not repeated)
    replicate   a a | a b c d | d d      (the edge pixel repeated)
    circular    c d | a b c d | a b      (the other end, as if the axis were a ring)

Every border pixel is a copy of one input pixel (or a constant), so the adjoint adds each
border's gradient back onto the pixel it copies. ``minigan.functional.reference.pad`` defines
the same thing as slices, flips and ``cat``; the tests check that the two agree in values, first
and second derivatives.

    >>> import minigan as mg
    >>> from minigan.ops.padding import pad
    >>> pad(mg.tensor([[1.0, 2.0, 3.0]]), ((0, 0), (2, 2)), "reflect").tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]]
"""
from ..function import Function
from ..backend import xp


def empty_like_layout(x, shape, dtype=None):
    """An uninitialised array of ``shape`` whose memory is ordered like ``x``'s: a batch-last
    ``x`` (a convolution's output) gives a batch-last array, so copies between the two run
    along memory instead of across it."""
    order = sorted(range(x.ndim), key=lambda axis: -x.strides[axis])  # outermost axis first
    out = xp.empty([shape[axis] for axis in order], dtype=x.dtype if dtype is None else dtype)
    return out.transpose([order.index(axis) for axis in range(x.ndim)])


def _border_copies(mode, before, after, size):
    """(border, source) index pairs along one padded axis whose inner pixels lie at [before,
    before + size): each border pixel is a copy of the source pixel. One pixel at a time, so
    that every copy is a slab of the other axes (long rows), not a column one pixel wide."""
    end = before + size
    if mode == "reflect":
        sources = [2 * before - j for j in range(before)] + [end - 2 - k for k in range(after)]
    elif mode == "replicate":
        sources = [before] * before + [end - 1] * after
    else:  # circular
        sources = [size + j for j in range(before)] + [before + k for k in range(after)]
    return list(zip([*range(before), *range(end, end + after)], sources))


def _steps(widths, shape):
    """For each padded axis, last first: (at, before, after, size), where ``at(part)`` indexes
    the slab ``part`` of that axis. Axes handled before it span their full padded length (their
    borders are filled by then), the ones after it only their inner part."""
    inner = [slice(b, b + n) for (b, _), n in zip(widths, shape)]
    done = []
    for axis in reversed(range(len(shape))):
        if widths[axis] == (0, 0):
            continue

        def at(part, axis=axis, done=tuple(done)):
            return tuple(part if a == axis else slice(None) if a in done else inner[a]
                         for a in range(len(shape)))

        yield (at, *widths[axis], shape[axis])
        done.append(axis)


def pad_array(x, widths, mode, value=0.0):
    """x with ``widths[a] = (before, after)`` pixels added along each axis a."""
    shape = tuple(n + b + a for n, (b, a) in zip(x.shape, widths))
    out = empty_like_layout(x, shape)
    out[tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))] = x
    for at, before, after, size in _steps(widths, x.shape):
        if mode == "constant":
            out[at(slice(0, before))] = value
            out[at(slice(before + size, None))] = value
            continue
        for border, source in _border_copies(mode, before, after, size):
            out[at(border)] = out[at(source)]
    return out


def unpad_array(g, widths, mode):
    """The adjoint of ``pad_array``: each border pixel's gradient added onto the pixel it was
    copied from (undoing the copies in reverse order), then the inner part."""
    inner = tuple(slice(b, b + n - b - a) for (b, a), n in zip(widths, g.shape))
    if mode == "constant":
        return g[inner]
    g = g.copy(order="K")
    size = [n - b - a for (b, a), n in zip(widths, g.shape)]
    for at, before, after, n in reversed(list(_steps(widths, size))):
        for border, source in reversed(_border_copies(mode, before, after, n)):
            g[at(source)] += g[at(border)]
    return g[inner]


class Pad(Function):
    """Fused padding of the trailing axes; its backward is ``PadAdjoint``."""

    reads_inputs, reads_output = (), False

    def forward(self, x, widths, mode, value):
        self.widths, self.mode = widths, mode
        return pad_array(x, widths, mode, value)

    def backward(self, g):
        return PadAdjoint.apply(g, widths=self.widths, mode=self.mode)


class PadAdjoint(Function):
    """The gradient of ``Pad``; linear, so its own backward is ``Pad`` (with zeros in the
    border of a constant pad)."""

    reads_inputs, reads_output = (), False

    def forward(self, g, widths, mode):
        self.widths, self.mode = widths, mode
        return unpad_array(g, widths, mode)

    def backward(self, gg):
        return Pad.apply(gg, widths=self.widths, mode=self.mode, value=0.0)


def pad(x, widths, mode="constant", value=0.0):
    """The fused Pad op; ``widths`` holds one (before, after) pair per axis of x (no negative
    sizes: ``minigan.functional.pad`` crops for those)."""
    return Pad.apply(x, widths=tuple(widths), mode=mode, value=value)

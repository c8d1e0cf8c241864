"""Reductions: ``sum`` and ``max`` are primitives; ``mean`` and ``var`` are made of them.

The backward of a reduction spreads the gradient back over the axes it removed: ``sum``
copies it to every element, ``max`` gives it to the elements that were the maximum.

    >>> import minigan as mg
    >>> mg.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(axis=0).numpy()
    array([4., 6.], dtype=float32)
"""
import math
from collections import namedtuple

from ..autograd import Tensor, _as_tensor
from ..function import Function
from ..backend import xp
from .elementwise import const


def check_dim(dim, ndim, who, extra=0):
    """``dim`` in [-span, span) as a non-negative axis, span = ndim + extra (``unsqueeze`` has
    one more place than its input has axes); IndexError naming ``who`` otherwise. A 0-d tensor
    takes 0 and -1, as in PyTorch."""
    span = ndim + extra if ndim + extra else 1
    if isinstance(dim, bool) or not isinstance(dim, int) and not hasattr(dim, "__index__"):
        raise TypeError(f"{who}: dimensions must be integers, got {dim!r}")
    dim = int(dim)
    if not -span <= dim < span:
        raise IndexError(f"{who}: dimension {dim} is out of range for a {ndim}-D tensor "
                         f"(expected a value in [{-span}, {span - 1}])")
    return dim % span


def normalize_axes(axis, ndim, who="reduction"):
    """``axis`` (None, an int or a sequence, negatives allowed) as a sorted tuple of axes;
    out-of-range or repeated axes raise."""
    if axis is None:
        return tuple(range(ndim))
    axes = [axis] if not isinstance(axis, (tuple, list)) else list(axis)
    axes = [check_dim(a, ndim, who) for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{who}: dimension {axis!r} names an axis twice")
    return tuple(sorted(a for a in axes if a < ndim))  # (a 0-d tensor has no axis to reduce)


def kept_shape(shape, axes):
    """``shape`` with the reduced ``axes`` kept as size 1 (the keepdims shape)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = normalize_axes(axis, a.ndim, "sum")
        return xp.sum(a, axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return g.reshape(kept_shape(self.in_shape, self.axes)).broadcast_to(self.in_shape)


class Max(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = normalize_axes(axis, a.ndim, "max")
        if any(a.shape[i] == 0 for i in self.axes):
            raise ValueError(f"max: cannot reduce over an empty dimension (input shape {a.shape})")
        top = xp.max(a, axis=self.axes, keepdims=True)
        # ties share the gradient evenly, like PyTorch's amax
        mask = (a == top).astype(a.dtype)
        self.share = mask / xp.sum(mask, axis=self.axes, keepdims=True)
        return top if keepdims else top.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        g = g.reshape(kept_shape(self.in_shape, self.axes))
        return g * const(self.share)


def resolve_dims(dim, keepdim, axis, keepdims, who):
    """PyTorch's ``dim``/``keepdim`` and NumPy's ``axis``/``keepdims`` are the same arguments:
    one of each pair may be given."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{who}: give dim or axis (the same argument), not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def sum(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Sum over ``dim`` (an int, a tuple, or None for all); ``keepdim`` keeps them as size 1."""
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "sum")
    return Sum.apply(a, axis=dim, keepdims=keepdim)


def amax(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The largest value over ``dim``; tied maxima share the gradient evenly (as PyTorch's)."""
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "amax")
    return Max.apply(a, axis=dim, keepdims=keepdim)


def amin(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "amin")
    return -Max.apply(-_as_tensor(a, None), axis=dim, keepdims=keepdim)


MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _arg(a, dim, keepdim, pick, who):
    """Indices (int64, no gradient) of ``pick`` (xp.argmax or xp.argmin) along ``dim``, or into
    the flattened tensor when ``dim`` is None."""
    a = _as_tensor(a, None)
    if dim is None:
        if a.numel() == 0:
            raise ValueError(f"{who}: cannot take the index of an empty tensor")
        index = pick(a.data.reshape(-1))
        return Tensor(xp.asarray(index, dtype=xp.int64).reshape((1,) * a.ndim if keepdim else ()))
    dim = check_dim(dim, a.ndim, who)
    if a.ndim and a.shape[dim] == 0:
        raise ValueError(f"{who}: cannot reduce over an empty dimension (input shape {a.shape})")
    return Tensor(pick(a.data, axis=dim, keepdims=keepdim).astype(xp.int64) if a.ndim
                  else xp.zeros((), dtype=xp.int64))


def argmax(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "argmax")
    return _arg(a, dim, keepdim, xp.argmax, "argmax")


def argmin(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "argmin")
    return _arg(a, dim, keepdim, xp.argmin, "argmin")


def _pick_along(a, indices, dim, keepdim):
    """a's values at ``indices`` (kept dims) along ``dim``: the gradient goes to those places."""
    index = tuple(indices.data if i == dim else
                  xp.arange(n).reshape((-1,) + (1,) * (a.ndim - i - 1))
                  for i, n in enumerate(a.shape))
    values = a[index]
    return values if keepdim else values.squeeze(dim)


def max(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Without ``dim``: the largest value (a 0-d tensor). With ``dim``: the named pair
    (values, indices) along it, as PyTorch returns; the gradient goes to the picked element.
    Given a tensor instead of a dim, the element-wise ``maximum``."""
    if hasattr(dim, "shape"):
        return maximum(a, dim)
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "max")
    a = _as_tensor(a, None)
    if dim is None:
        return Max.apply(a, axis=None, keepdims=keepdim)
    dim = check_dim(dim, a.ndim, "max") if a.ndim else 0
    indices = _arg(a, dim, True, xp.argmax, "max")
    return MaxResult(_pick_along(a, indices, dim, keepdim) if a.ndim else a, indices if keepdim
                     else indices.squeeze(dim))


def min(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As ``max``, for the smallest value."""
    if hasattr(dim, "shape"):
        return minimum(a, dim)
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "min")
    a = _as_tensor(a, None)
    if dim is None:
        return amin(a, keepdim=keepdim)
    dim = check_dim(dim, a.ndim, "min") if a.ndim else 0
    indices = _arg(a, dim, True, xp.argmin, "min")
    return MinResult(_pick_along(a, indices, dim, keepdim) if a.ndim else a, indices if keepdim
                     else indices.squeeze(dim))


def maximum(a, b):
    """Element-wise larger of a and b; at ties each gets half the gradient (as PyTorch)."""
    a, b = _as_tensor(a, b if isinstance(b, Tensor) else None), _as_tensor(b, a if isinstance(a, Tensor) else None)
    first, tie = (a.data > b.data), (a.data == b.data)
    share_a = (first + 0.5 * tie).astype(a.dtype)
    share_b = ((a.data < b.data) + 0.5 * tie).astype(b.dtype)
    return a * const(share_a) + b * const(share_b)


def minimum(a, b):
    return -maximum(-_as_tensor(a, None), -_as_tensor(b, None))


def mean(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "mean")
    a = _as_tensor(a, None)
    count = math.prod(a.shape[i] for i in normalize_axes(dim, a.ndim, "mean"))
    return sum(a, dim, keepdim) * (1.0 / count if count else float("nan"))  # empty: NaN, as PyTorch


def var(a, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Variance over ``dim``, divided by (count - correction): correction 1 (``unbiased``,
    PyTorch's default) or 0 for the population variance that BatchNorm normalises with."""
    dim, keepdim = resolve_dims(dim, keepdim, axis, keepdims, "var")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    count = math.prod(a.shape[i] for i in normalize_axes(dim, a.ndim, "var"))
    centred = a - mean(a, dim, keepdim=True)
    scale = 1.0 / (count - correction) if count > correction else float("nan")
    return sum(centred * centred, dim, keepdim) * scale


def std(a, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """The square root of ``var`` (same arguments)."""
    return var(a, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims).sqrt()

"""Reductions: ``sum`` and ``max`` are primitives; ``mean`` and ``var`` are made of them.

The backward of a reduction spreads the gradient back over the axes it removed: ``sum``
copies it to every element, ``max`` gives it to the elements that were the maximum.

    >>> import minigan as mg
    >>> mg.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(axis=0).numpy()
    array([4., 6.], dtype=float32)
"""
import math

from ..autograd import Function, _as_tensor
from ..backend import xp
from .elementwise import const


def normalize_axes(axis, ndim):
    """``axis`` (None, an int or a sequence, negatives allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


def kept_shape(shape, axes):
    """``shape`` with the reduced ``axes`` kept as size 1 (the keepdims shape)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = normalize_axes(axis, a.ndim)
        return xp.sum(a, axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return g.reshape(kept_shape(self.in_shape, self.axes)).broadcast_to(self.in_shape)


class Max(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, axis, keepdims):
        self.in_shape = a.shape
        self.axes = normalize_axes(axis, a.ndim)
        top = xp.max(a, axis=self.axes, keepdims=True)
        # ties share the gradient evenly, like PyTorch's amax
        mask = (a == top).astype(a.dtype)
        self.share = mask / xp.sum(mask, axis=self.axes, keepdims=True)
        return top if keepdims else top.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        g = g.reshape(kept_shape(self.in_shape, self.axes))
        return g * const(self.share)


def sum(a, axis=None, keepdims=False):
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):
    return Max.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    a = _as_tensor(a, None)
    count = math.prod(a.shape[i] for i in normalize_axes(axis, a.ndim))
    return sum(a, axis, keepdims) * (1.0 / count)


def var(a, axis=None, keepdims=False, correction=1):
    """Variance over ``axis``, divided by (count - correction): 1 for PyTorch's default
    unbiased estimate, 0 for the population variance that BatchNorm normalises with."""
    count = math.prod(a.shape[i] for i in normalize_axes(axis, a.ndim))
    centred = a - mean(a, axis, keepdims=True)
    return sum(centred * centred, axis, keepdims) * (1.0 / (count - correction))

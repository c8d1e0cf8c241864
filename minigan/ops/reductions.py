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


def sum(a, axis=None, keepdims=False):
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):
    return Max.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    a = _as_tensor(a, None)
    count = math.prod(a.shape[i] for i in normalize_axes(axis, a.ndim, "mean"))
    return sum(a, axis, keepdims) * (1.0 / count if count else float("nan"))  # empty: NaN, as PyTorch


def var(a, axis=None, keepdims=False, correction=1):
    """Variance over ``axis``, divided by (count - correction): 1 for PyTorch's default
    unbiased estimate, 0 for the population variance that BatchNorm normalises with."""
    count = math.prod(a.shape[i] for i in normalize_axes(axis, a.ndim, "var"))
    centred = a - mean(a, axis, keepdims=True)
    scale = 1.0 / (count - correction) if count > correction else float("nan")
    return sum(centred * centred, axis, keepdims) * scale

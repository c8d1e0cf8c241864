"""Tensors made from nothing: zeros, ones, full, random draws, ranges (``torch``'s names).

Random draws come from minigan's one generator (``minigan.manual_seed``).

    >>> import minigan as mg
    >>> mg.zeros(2, 3).shape
    (2, 3)
"""
from . import backend
from .autograd import Tensor
from .backend import xp


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _dtype(dtype):
    return xp.dtype(dtype) if dtype is not None else backend.get_default_dtype()


def zeros(*shape, requires_grad=False, dtype=None):
    return Tensor(xp.zeros(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def ones(*shape, requires_grad=False, dtype=None):
    return Tensor(xp.ones(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def full(shape, value, requires_grad=False, dtype=None):
    return Tensor(xp.full(_shape((shape,)), value, dtype=_dtype(dtype)), requires_grad)


def zeros_like(t, requires_grad=False):
    return Tensor(xp.zeros_like(t.data), requires_grad)


def ones_like(t, requires_grad=False):
    return Tensor(xp.ones_like(t.data), requires_grad)


def randn(*shape, requires_grad=False, dtype=None):
    """Standard normal samples from minigan's one generator (see ``manual_seed``)."""
    return Tensor(backend.randn(_shape(shape), _dtype(dtype)), requires_grad)


def rand(*shape, requires_grad=False, dtype=None):
    """Uniform samples in [0, 1) from minigan's one generator."""
    return Tensor(backend.rand(_shape(shape), _dtype(dtype)), requires_grad)


def arange(*args, dtype=None):
    return Tensor(xp.arange(*args, dtype=dtype))

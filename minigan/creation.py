"""Tensors made from nothing: zeros, ones, full, random draws, ranges (``torch``'s names).

Random draws come from minigan's one generator (``minigan.manual_seed``). ``device=`` is
accepted as in PyTorch and checked against the backend ("cpu" on NumPy, "cuda" on CuPy).

    >>> import minigan as mg
    >>> mg.zeros(2, 3).shape
    (2, 3)
"""
import contextlib

from . import backend
from .autograd import Tensor
from .backend import xp


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _dtype(dtype, device=None, who="tensor"):
    backend.check_device(device, who)
    return xp.dtype(dtype) if dtype is not None else backend.get_default_dtype()


def zeros(*shape, requires_grad=False, dtype=None, device=None):
    return Tensor(xp.zeros(_shape(shape), dtype=_dtype(dtype, device, "zeros")), requires_grad)


def ones(*shape, requires_grad=False, dtype=None, device=None):
    return Tensor(xp.ones(_shape(shape), dtype=_dtype(dtype, device, "ones")), requires_grad)


def empty(*shape, requires_grad=False, dtype=None, device=None):
    """Zeros: minigan never hands out uninitialised memory."""
    return zeros(*shape, requires_grad=requires_grad, dtype=dtype, device=device)


def full(shape, value, requires_grad=False, dtype=None, device=None):
    return Tensor(xp.full(_shape((shape,)), value, dtype=_dtype(dtype, device, "full")), requires_grad)


def zeros_like(t, requires_grad=False, dtype=None, device=None):
    backend.check_device(device, "zeros_like")
    return Tensor(xp.zeros_like(t.data, dtype=dtype), requires_grad)


def ones_like(t, requires_grad=False, dtype=None, device=None):
    backend.check_device(device, "ones_like")
    return Tensor(xp.ones_like(t.data, dtype=dtype), requires_grad)


def full_like(t, value, requires_grad=False, dtype=None, device=None):
    backend.check_device(device, "full_like")
    return Tensor(xp.full_like(t.data, value, dtype=dtype), requires_grad)


def randn(*shape, requires_grad=False, dtype=None, device=None):
    """Standard normal samples from minigan's one generator (see ``manual_seed``)."""
    return Tensor(backend.randn(_shape(shape), _dtype(dtype, device, "randn")), requires_grad)


def rand(*shape, requires_grad=False, dtype=None, device=None):
    """Uniform samples in [0, 1) from minigan's one generator."""
    return Tensor(backend.rand(_shape(shape), _dtype(dtype, device, "rand")), requires_grad)


def randn_like(t, requires_grad=False, dtype=None):
    return randn(*t.shape, requires_grad=requires_grad, dtype=dtype or t.dtype)


def rand_like(t, requires_grad=False, dtype=None):
    return rand(*t.shape, requires_grad=requires_grad, dtype=dtype or t.dtype)


def randint(low, high=None, size=None, dtype=None, device=None):
    """Integers uniform in [low, high) (``randint(high, size)`` starts at 0), int64."""
    if high is None or size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high if size is None else size
    backend.check_device(device, "randint")
    return Tensor(backend.randint(low, high, tuple(size)).astype(dtype or xp.int64))


def arange(*args, dtype=None, device=None):
    backend.check_device(device, "arange")
    return Tensor(xp.arange(*args, dtype=dtype))


@contextlib.contextmanager
def fork_rng():
    """Draw from minigan's RNG inside the block; afterwards it is back where it was.

    For measurements taken during training (a histogram of gradient norms, say): the training
    after the block draws the same numbers whether the measurement ran or not, so a run stopped
    and resumed at another step than an uninterrupted one still matches it."""
    state = backend.get_rng_state()
    try:
        yield
    finally:
        backend.set_rng_state(state)


def seeded_noise(seed, *shape):
    """Standard normal noise of ``shape`` from its own ``seed``, leaving minigan's RNG where it
    was: fixed samples to watch during a run that do not shift the numbers training draws."""
    with fork_rng():
        backend.manual_seed(seed)
        return randn(*shape)

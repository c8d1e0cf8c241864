"""Utilities on parameters and their gradients, as in ``torch.nn.utils``: gradient clipping,
and spectral normalisation (from ``minigan.nn.spectral_norm``).

``clip_grad_norm_`` rescales all gradients together so that their joint norm (the norm of the
vector of every gradient's norm) is at most ``max_norm``; ``clip_grad_value_`` clamps each
element. Both change the ``.grad`` arrays in place, between ``backward()`` and the optimizer's
``step()``.

    >>> import minigan as mg
    >>> from minigan import nn
    >>> w = mg.tensor([3.0, 4.0], requires_grad=True)
    >>> w.grad = mg.tensor([3.0, 4.0])
    >>> nn.utils.clip_grad_norm_([w], max_norm=1.0).item()    # the norm before clipping
    5.0
    >>> w.grad.numpy().round(4)
    array([0.6, 0.8], dtype=float32)
"""
import math
import numbers

from .. import backend
from ..autograd import Tensor
from .spectral_norm import remove_spectral_norm, spectral_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "spectral_norm", "remove_spectral_norm"]


def _gradients(parameters):
    """The distinct ``.grad`` tensors of a Tensor or an iterable of Tensors (None skipped)."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads, seen = [], set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameter {i} is a {type(p).__name__}, expected a Tensor")
        if p.grad is not None and id(p.grad) not in seen:
            seen.add(id(p.grad))
            grads.append(p.grad)
    return grads


def _limit(who, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{who}: invalid {name}: {value!r} (a number >= 0)")
    return float(value)


def _vector_norm(array, p):
    """The p-norm of all elements of ``array``, in its dtype."""
    xp = backend.xp
    magnitude = xp.abs(array)
    if p == math.inf:
        return magnitude.max() if magnitude.size else xp.zeros((), array.dtype)
    if p == 1:
        return magnitude.sum()
    if p == 2:
        return xp.sqrt((magnitude * magnitude).sum())
    return (magnitude**p).sum() ** (1 / p)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of ``parameters`` in place by min(1, max_norm / (norm + 1e-6)),
    where norm is the ``norm_type``-norm of all gradients seen as one vector (``'inf'`` for the
    largest magnitude). Returns that norm, before clipping, as a 0-d Tensor.

    A NaN or infinite norm raises RuntimeError with ``error_if_nonfinite=True``; otherwise, as
    in PyTorch, the gradients are scaled by it (and become NaN), which the caller can detect.
    Parameters without a gradient are skipped; with none at all the norm is 0.
    """
    who = "clip_grad_norm_"
    max_norm = _limit(who, "max_norm", max_norm)
    p = float(norm_type)
    if not p > 0:
        raise ValueError(f"{who}: invalid norm_type: {norm_type!r} (a number > 0, or 'inf')")
    grads = _gradients(parameters)
    xp = backend.xp
    if not grads:
        return Tensor(xp.zeros((), backend.get_default_dtype()))
    dtype = xp.result_type(*(g.data for g in grads))
    norms = xp.stack([_vector_norm(g.data, p).astype(dtype) for g in grads])
    total = xp.asarray(_vector_norm(norms, p))
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"{who}: the total norm of order {p} of the gradients is non-finite ({float(total)}), "
            "so they cannot be clipped; pass error_if_nonfinite=False to scale them by it anyway")
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g.data *= scale.astype(g.dtype)  # in place; assigning .data counts as a change of g
    return Tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element of ``parameters`` into [-clip_value, clip_value], in place."""
    clip_value = _limit("clip_grad_value_", "clip_value", clip_value)
    for g in _gradients(parameters):
        g.data = backend.xp.clip(g.data, -clip_value, clip_value, out=g.data)

"""Activations and dropout.

``relu``, ``leaky_relu``, ``tanh`` and ``sigmoid`` are primitives (``minigan.ops``); the rest
(softplus, gelu, silu, elu, softmax, log_softmax, dropout) are compositions of primitives with
exact first and second derivatives.

    >>> import minigan as mg
    >>> from minigan import F
    >>> F.softplus(mg.tensor([0.0])).item() == float(mg.log(mg.tensor(2.0)).item())
    True
"""
import warnings

from .. import backend, ops
from ..ops import relu, sigmoid, tanh  # noqa: F401  (PyTorch's functional names)
from ..ops.reductions import check_dim
from ._checks import _constant


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout),
    so evaluation needs no rescaling. The mask is drawn from minigan's one generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = backend.rand(input.shape, input.dtype) >= p
    return input * _constant(keep.astype(input.dtype) * (1.0 / (1.0 - p)))


def dropout2d(input, p=0.5, training=True):
    """Zero whole channels of an (N, C, H, W) (or (C, H, W)) input with probability p, scaling
    the kept ones by 1/(1-p): neighbouring pixels are correlated, so dropping single pixels of
    a feature map barely regularises (Tompson et al. 2015)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be between 0 and 1, got {p}")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                         f"shape {input.shape}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    mask_shape = input.shape[:-2] + (1, 1)
    keep = backend.rand(mask_shape, input.dtype) >= p
    return input * _constant(keep.astype(input.dtype) * (1.0 / (1.0 - p)))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """max(x, 0) + negative_slope * min(x, 0). ``inplace`` is accepted for PyTorch's sake: the
    result is always a new tensor (minigan has no in-place ops), with the same values."""
    return ops.leaky_relu(input, negative_slope)


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt 2)) / 2 (Hendrycks & Gimpel
    2016); ``approximate="tanh"`` uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "none":
        return input * 0.5 * (1.0 + ops.erf(input * 0.7071067811865476))
    if approximate == "tanh":
        inner = 0.7978845608028654 * (input + 0.044715 * input * input * input)
        return input * 0.5 * (1.0 + ops.tanh(inner))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input):
    """x * sigmoid(x), also called swish (Ramachandran et al. 2017)."""
    return input * ops.sigmoid(input)


def elu(input, alpha=1.0):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere (Clevert et al. 2015). exp sees min(x, 0)
    only, so the branch not taken can neither overflow nor poison the gradient."""
    negative = ops.clamp(input, max=0.0)
    return ops.where(input.data > 0, input, alpha * (ops.exp(negative) - 1.0))


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, without overflow for any x; x itself where beta * x >
    ``threshold`` (PyTorch's cut-off: there the two differ by less than exp(-threshold)).

    For z > 0 it is computed as z + log1p(exp(-z)), otherwise as log1p(exp(z)), so exp only
    ever sees z <= 0. Each branch gets a clamped copy of z, so the unused branch stays finite
    and its (zeroed) gradient cannot turn into 0 * inf = nan. The derivative is sigmoid(beta x)
    everywhere, including x = 0.
    """
    z = input * beta if beta != 1.0 else input
    positive, negative = ops.clamp(z, min=0.0), ops.clamp(z, max=0.0)
    out = ops.where(z.data > 0, positive + ops.log1p(ops.exp(-positive)),
                    ops.log1p(ops.exp(negative)))
    out = out * (1.0 / beta) if beta != 1.0 else out
    return ops.where(z.data > threshold, input, out)


def _implicit_dim(input, dim, who):
    """PyTorch's rule when ``dim`` is left out (deprecated there, with a warning): 0 for 0-, 1-
    and 3-D inputs, else 1."""
    if dim is None:
        warnings.warn(f"{who}: pass dim= explicitly; using PyTorch's implicit choice", stacklevel=3)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return check_dim(dim, input.ndim, who)


def log_softmax(input, dim=None):
    """x - logsumexp(x) along ``dim``. The max is subtracted first so exp never overflows; it
    is held constant because the result does not depend on the shift."""
    dim = _implicit_dim(input, dim, "log_softmax")
    shifted = input - input.amax(dim, keepdim=True).detach()
    return shifted - ops.log(ops.exp(shifted).sum(dim, keepdims=True))


def softmax(input, dim=None):
    dim = _implicit_dim(input, dim, "softmax")
    e = ops.exp(input - input.amax(dim, keepdim=True).detach())
    return e / e.sum(dim, keepdims=True)


"""minigan: a small deep-learning engine with second-order autograd, built to rebuild GANs.

    >>> import minigan as mg
    >>> x = mg.tensor([0.5], requires_grad=True)
    >>> (dy,) = mg.grad(mg.tanh(x).sum(), x, create_graph=True)
    >>> dy.backward()            # d^2/dx^2 tanh(x) lands in x.grad
"""
from . import backend, ops
from .autograd import Tensor, grad, tensor
from .function import Function
from .creation import (
    arange, empty, full, full_like, ones, ones_like, rand, rand_like, randint, randn, randn_like,
    zeros, zeros_like,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .backend import get_default_dtype, get_rng_state, manual_seed, set_default_dtype, set_rng_state
from .backend import float32, float64, int64
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import cuda, functional, nn, optim
from .cuda import device
from .io import load, save
from . import functional as F
from .functional import use_reference
from .ops import (
    abs, amax, amin, argmax, argmin, cat, chunk, clamp, clone, erf, exp, flatten, flip, fold,
    leaky_relu, log, matmul, max, maximum, mean, min, minimum, permute, relu, reshape, rsqrt,
    sigmoid, sign, split, sqrt, squeeze, stack, std, sum, tanh, transpose, unfold, unsqueeze, var,
    where,
)

# PyTorch's dtype names, so tutorial code such as ``dtype=torch.long`` runs unchanged
float, double, long = float32, float64, int64

__version__ = "0.1.0"

# ``from minigan import *`` brings everything public except the names that would hide Python's
# builtins (abs, max, min, sum, float): use those as ``mg.max`` and so on
__all__ = sorted(name for name in dict(globals()) if not name.startswith("_")
                 and name not in {"abs", "max", "min", "sum", "float", "backend", "ops"})

"""The primitive ops, by topic, and the Tensor operators and methods that call them.

    elementwise   arithmetic, exp/log/tanh/sigmoid, relu/leaky_relu, clamp, where, cast
    reductions    sum, max (primitives); mean, var, std, min, argmax ... (made of them)
    shape         reshape, permute, broadcast_to, indexing, cat, flip; transpose, chunk ...
    linalg        matmul, and the fused Linear op
    conv          unfold/fold (im2col/col2im), and the fused convolution ops
    normalization the fused BatchNorm of training mode

Importing this package attaches Tensor's operators (``+ - * / ** @``, unary ``-``, ``abs``,
indexing, comparisons) and its method forms (``x.sum()``, ``x.reshape(...)`` ...) to the Tensor
class, once. ``minigan.autograd`` never imports ops: the arrows point one way.
"""
from .. import backend
from ..autograd import Tensor
from ..backend import xp
from .conv import col2im, conv_output_size, fold, im2col, unfold
from .elementwise import (
    abs, add, cast, clamp, div, erf, exp, leaky_relu, log, log1p, mul, neg, pow, relu, rsqrt,
    sigmoid, sign, sqrt, sub, tanh, where,
)
from .linalg import matmul
from .reductions import (
    amax, amin, argmax, argmin, max, maximum, mean, min, minimum, std, sum, var,
)
from .shape import (
    broadcast_to, cat, chunk, clone, expand, flatten, flip, getitem, permute, reshape, split,
    squeeze, stack, transpose, unsqueeze,
)

__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "broadcast_to", "cast", "cat", "chunk",
    "clamp", "clone", "col2im", "conv_output_size", "div", "erf", "exp", "expand", "flatten",
    "flip", "fold", "getitem", "im2col", "leaky_relu", "log", "log1p", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mul", "neg", "permute", "pow", "relu", "reshape", "rsqrt",
    "sigmoid", "sign", "split", "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh",
    "transpose", "unfold", "unsqueeze", "var", "where",
]


def _swap(fn):
    """The reflected operator: ``other (op) tensor``."""
    return lambda self, other: fn(other, self)


def _compare(fn):
    """Comparisons give plain boolean tensors (masks): they have no gradient."""
    return lambda self, other: Tensor(fn(self.data, other.data if isinstance(other, Tensor) else other))


def _to(self, *args, **kwargs):
    """``x.to(device)``, ``x.to(dtype)``, ``x.to(device, dtype)`` or ``x.to(other)``, as in
    PyTorch. One backend holds every array, so a device is checked, never moved to."""
    dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, str) or hasattr(arg, "type"):
            device = arg
        else:
            dtype = arg
    backend.check_device(device, "to")
    return self if dtype is None else cast(self, dtype)


def _attach():
    operators = {"add": add, "sub": sub, "mul": mul, "truediv": div, "pow": pow, "matmul": matmul}
    for name, fn in operators.items():
        setattr(Tensor, f"__{name}__", fn)
        setattr(Tensor, f"__r{name}__", _swap(fn))
    comparisons = {"lt": xp.less, "le": xp.less_equal, "gt": xp.greater, "ge": xp.greater_equal,
                   "eq": xp.equal, "ne": xp.not_equal}
    for name, fn in comparisons.items():
        setattr(Tensor, f"__{name}__", _compare(fn))
    Tensor.__neg__, Tensor.__abs__, Tensor.__getitem__ = neg, abs, getitem
    methods = {
        "sum": sum, "mean": mean, "max": max, "min": min, "amax": amax, "amin": amin,
        "argmax": argmax, "argmin": argmin, "var": var, "std": std, "reshape": reshape,
        "view": reshape, "permute": permute, "transpose": transpose, "flatten": flatten,
        "broadcast_to": broadcast_to, "unsqueeze": unsqueeze, "squeeze": squeeze, "flip": flip,
        "chunk": chunk, "split": split, "clone": clone, "exp": exp, "log": log, "sqrt": sqrt,
        "abs": abs, "sign": sign, "rsqrt": rsqrt, "expand": expand, "tanh": tanh,
        "sigmoid": sigmoid, "relu": relu, "clamp": clamp,
        "astype": cast, "to": _to, "maximum": maximum, "minimum": minimum, "matmul": matmul,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.float = lambda self: cast(self, xp.float32)
    Tensor.double = lambda self: cast(self, xp.float64)
    Tensor.long = lambda self: cast(self, xp.int64)
    Tensor.cpu = lambda self: _to(self, "cpu")
    Tensor.cuda = lambda self: _to(self, "cuda")
    Tensor.contiguous = lambda self: self if self.data.flags.c_contiguous else clone(self)


_attach()

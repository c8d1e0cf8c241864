"""The primitive ops, by topic, and the Tensor operators and methods that call them.

    elementwise   arithmetic, exp/log/tanh/sigmoid, relu/leaky_relu, clamp, where, cast
    reductions    sum, max (primitives); mean, var (made of them)
    shape         reshape, permute, broadcast_to, indexing, cat; transpose, flatten, stack ...
    linalg        matmul, and the fused Linear op
    conv          unfold/fold (im2col/col2im), and the fused convolution ops
    normalization the fused BatchNorm of training mode

Importing this package attaches Tensor's operators (``+ - * / ** @``, unary ``-``, ``abs``,
indexing, comparisons) and its method forms (``x.sum()``, ``x.reshape(...)`` ...) to the Tensor
class, once. ``minigan.autograd`` never imports ops: the arrows point one way.
"""
from ..autograd import Tensor
from ..backend import xp
from .conv import col2im, conv_output_size, fold, im2col, unfold
from .elementwise import (
    abs, add, cast, clamp, div, exp, leaky_relu, log, log1p, mul, neg, pow, relu, sigmoid, sqrt,
    sub, tanh, where,
)
from .linalg import matmul
from .reductions import max, mean, sum, var
from .shape import (
    broadcast_to, cat, flatten, getitem, permute, reshape, squeeze, stack, transpose, unsqueeze,
)

__all__ = [
    "abs", "add", "broadcast_to", "cast", "cat", "clamp", "col2im", "conv_output_size", "div",
    "exp", "flatten", "fold", "getitem", "im2col", "leaky_relu", "log", "log1p", "matmul", "max",
    "mean", "mul", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "sqrt", "squeeze",
    "stack", "sub", "sum", "tanh", "transpose", "unfold", "unsqueeze", "var", "where",
]


def _swap(fn):
    """The reflected operator: ``other (op) tensor``."""
    return lambda self, other: fn(other, self)


def _compare(fn):
    """Comparisons give plain boolean tensors (masks): they have no gradient."""
    return lambda self, other: Tensor(fn(self.data, other.data if isinstance(other, Tensor) else other))


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
        "sum": sum, "mean": mean, "max": max, "var": var, "reshape": reshape, "view": reshape,
        "permute": permute, "transpose": transpose, "flatten": flatten, "broadcast_to": broadcast_to,
        "unsqueeze": unsqueeze, "squeeze": squeeze, "exp": exp, "log": log, "sqrt": sqrt,
        "abs": abs, "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "clamp": clamp, "astype": cast,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.expand = lambda self, *shape: broadcast_to(self, shape[0] if len(shape) == 1 else shape)
    Tensor.float = lambda self: cast(self, xp.float32)
    Tensor.double = lambda self: cast(self, xp.float64)


_attach()

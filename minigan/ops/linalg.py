"""Matrix products: the ``matmul`` primitive and ``Linear``, the fused op of fully connected
layers.

``Linear`` computes x @ weight.T + bias in one op. Its definition, the composition a learner
reads, is ``minigan.functional.reference.linear``; tests check the two agree in values, first
and second derivatives. The fused op's gain: the weight gradient is computed as g.T @ x, which
comes out in the weight's own row-major layout (the composition's x @ weight.T gives it
transposed, and Adam then ran ~3x slower over it), and the bias is added in place.

    >>> import minigan as mg
    >>> (mg.ones(2, 3) @ mg.ones(3, 4)).shape
    (2, 4)
"""
from ..autograd import _as_tensor
from ..function import Function
from .. import kernels
from ..backend import xp
from .elementwise import sum_to_shape


class MatMul(Function):
    reads_inputs, reads_output = (0, 1), False

    def forward(self, a, b):
        return kernels.matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        ga = sum_to_shape(g @ b.transpose(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to_shape(a.transpose(-1, -2) @ g, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Linear(Function):
    """x (N, in) @ weight (out, in).T + bias (out,), as one op. The backward is three matrix
    products and a sum, written in Tensor ops, so it is recorded when create_graph=True."""

    reads_inputs, reads_output = (0, 1), False

    def forward(self, x, weight, bias=None):
        if kernels.product_transposed(x.shape[0], weight.shape[0]):  # more features than rows
            out = xp.ascontiguousarray(kernels.matmul(weight, x.T).T)
        else:
            out = kernels.matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, weight = self.inputs[:2]
        need_x, need_w = self.needs_input_grad[:2]
        gx = g @ weight if need_x else None
        gw = g.transpose(0, 1) @ x if need_w else None  # (out, in): row-major like the weight
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, g.sum(axis=0) if self.needs_input_grad[2] else None


def matmul(a, b):
    """Matrix product with NumPy's rules: batched over leading axes, 1-D operands promoted."""
    a, b = _as_tensor(a, b if hasattr(b, "data") else None), _as_tensor(b, a if hasattr(a, "data") else None)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({k_a} columns on the left, {k_b} rows on the right)"
        )
    if a.ndim == 1:
        return MatMul.apply(a.reshape(1, k_a), b if b.ndim > 1 else b.reshape(k_b, 1)).reshape(
            b.shape[:-2] + b.shape[-1:] if b.ndim > 1 else ())
    if b.ndim == 1:
        return MatMul.apply(a, b.reshape(k_b, 1)).reshape(a.shape[:-1])
    return MatMul.apply(a, b)


def linear(x, weight, bias=None):
    """The fused ``Linear`` op on a 2-D x (``minigan.functional.linear`` checks and reshapes)."""
    return Linear.apply(x, weight, *(() if bias is None else (bias,)))

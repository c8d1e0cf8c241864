"""Shape and indexing primitives: reshape, permute, broadcast_to, indexing and its adjoint,
concatenation; and the shape helpers made of them (transpose, flatten, squeeze, stack ...).

Their derivatives move numbers around without arithmetic: the backward of ``reshape`` reshapes
back, of ``permute`` permutes back, of indexing adds the gradient into a zero array at the
indexed places (``IndexAdd``, whose own backward is indexing again).

    >>> import minigan as mg
    >>> mg.zeros(2, 3).permute(1, 0).shape
    (3, 2)
"""
import math

from .. import backend
from ..autograd import Tensor, _as_tensor
from ..function import Function
from ..backend import xp
from .elementwise import sum_to_shape
from .reductions import check_dim


class Reshape(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, axes):
        self.axes = axes
        return xp.transpose(a, axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return g.permute(*inverse)


class BroadcastTo(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return xp.broadcast_to(a, shape)

    def backward(self, g):
        return sum_to_shape(g, self.in_shape)


def _index_data(index):
    """Turn tensors and lists inside an index into backend arrays."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for i in index:
        if isinstance(i, Tensor):
            i = i.data
        elif isinstance(i, list):
            i = xp.asarray(i)
        out.append(i)
    return tuple(out)


def _is_basic(index):
    return all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in index)


class GetItem(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, index):
        self.in_shape = a.shape
        self.index = index
        return a[index]

    def backward(self, g):
        return IndexAdd.apply(g, shape=self.in_shape, index=self.index)


class IndexAdd(Function):
    """zeros(shape)[index] += g: the adjoint of indexing (repeated indices add up)."""

    reads_inputs, reads_output = (), False

    def forward(self, g, shape, index):
        self.index = index
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        else:
            backend.index_add(out, index, g)
        return out

    def backward(self, g):
        return GetItem.apply(g, index=self.index)


class Clone(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


class Flip(Function):
    reads_inputs, reads_output = (), False

    def forward(self, a, axes):
        self.axes = axes
        return xp.flip(a, axis=axes)

    def backward(self, g):
        return Flip.apply(g, axes=self.axes)


class Cat(Function):
    reads_inputs, reads_output = (), False

    def forward(self, *arrays, axis):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        grads, start = [], 0
        lead = (slice(None),) * (self.axis % g.ndim)
        for n in self.sizes:
            grads.append(g[lead + (slice(start, start + n),)])
            start += n
        return tuple(grads)


# --- the functions users call -------------------------------------------------------------------
def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def reshape(a, *shape):
    shape = _shape_args(shape)
    size = math.prod(n for n in shape if n != -1)
    if shape.count(-1) > 1 or (-1 not in shape and size != a.numel()) or (size and a.numel() % size):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}")
    return Reshape.apply(a, shape=shape)


def permute(a, *axes):
    axes = _shape_args(axes)
    if len(axes) != a.ndim:
        raise ValueError(f"permute: {axes} is not a permutation of the {a.ndim} axes of shape {a.shape}")
    axes = tuple(check_dim(ax, a.ndim, "permute") for ax in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {a.ndim} axes of shape {a.shape}")
    return Permute.apply(a, axes=axes)


def transpose(a, dim0, dim1):
    dim0, dim1 = check_dim(dim0, a.ndim, "transpose"), check_dim(dim1, a.ndim, "transpose")
    axes = list(range(a.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return permute(a, *axes)


def flatten(a, start_dim=0, end_dim=-1):
    if a.ndim == 0:
        return a.reshape(1)
    start, end = check_dim(start_dim, a.ndim, "flatten"), check_dim(end_dim, a.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"for a {a.ndim}-D tensor")
    shape = a.shape[:start] + (math.prod(a.shape[start:end + 1]),) + a.shape[end + 1:]
    return a.reshape(shape)


def unsqueeze(a, dim):
    dim = check_dim(dim, a.ndim, "unsqueeze", extra=1)
    return a.reshape(a.shape[:dim] + (1,) + a.shape[dim:])


def squeeze(a, dim=None):
    if dim is None:
        return a.reshape(tuple(n for n in a.shape if n != 1))
    dim = check_dim(dim, a.ndim, "squeeze")
    if a.ndim == 0 or a.shape[dim] != 1:
        return a
    return a.reshape(a.shape[:dim] + a.shape[dim + 1:])


def broadcast_to(a, shape):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    return BroadcastTo.apply(a, shape=shape)


def expand(a, *shape):
    """``a`` broadcast to ``shape`` (new axes on the left); -1 keeps an axis's size (PyTorch)."""
    shape = _shape_args(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: shape {shape} has fewer axes than the tensor's shape {a.shape}")
    sizes = tuple(a.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
    if -1 in sizes:
        raise ValueError(f"expand: -1 is only allowed for the tensor's own axes, got {shape} for {a.shape}")
    return broadcast_to(a, sizes)


def getitem(a, index):
    return GetItem.apply(a, index=_index_data(index))


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along ``dim`` (``axis`` is NumPy's name for it)."""
    axis = dim if axis is None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = _as_tensor(tensors[0], None)
    axis = check_dim(axis, first.ndim, "cat")
    for i, t in enumerate(tensors[1:], 1):
        shape = getattr(t, "shape", None)
        if shape is not None and (len(shape) != first.ndim or any(
                n != m for d, (n, m) in enumerate(zip(shape, first.shape)) if d != axis)):
            raise ValueError(f"cat: tensor {i} has shape {tuple(shape)}, which does not match "
                             f"tensor 0's shape {first.shape} outside dimension {axis}")
    return Cat.apply(*tensors, axis=axis)


def stack(tensors, dim=0, *, axis=None):
    """Join tensors along a new dimension ``dim``."""
    axis = dim if axis is None else axis
    tensors = [_as_tensor(t, None) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    axis = check_dim(axis, tensors[0].ndim, "stack", extra=1)
    return cat([unsqueeze(t, axis) for t in tensors], axis)


def clone(a):
    """A copy with its own memory that stays in the graph (the gradient passes straight through)."""
    return Clone.apply(a)


def flip(a, dims):
    """Reverse the order of elements along ``dims`` (an int or a sequence)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return Flip.apply(a, axes=tuple(check_dim(d, a.ndim, "flip") for d in dims))


def split(a, split_size_or_sections, dim=0):
    """Pieces of ``split_size_or_sections`` along ``dim`` (the last may be smaller), or of the
    listed sizes; views in the graph, as in PyTorch."""
    dim = check_dim(dim, a.ndim, "split")
    n = a.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - start) for start in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the length of dimension {dim}")
    pieces, start, lead = [], 0, (slice(None),) * dim
    for size in sizes:
        pieces.append(a[lead + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(a, chunks, dim=0):
    """``chunks`` pieces along ``dim`` (the last may be smaller or fewer come back, as in PyTorch)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = a.shape[check_dim(dim, a.ndim, "chunk")]
    return split(a, max(1, -(-n // chunks)), dim)


"""Integer indices in: one-hot codes and embedding lookups; and padding.

    >>> import minigan as mg
    >>> from minigan import F
    >>> F.one_hot(mg.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
"""
from ..autograd import Tensor, _as_tensor
from ..creation import full
from ..backend import xp
from .. import ops
from ._checks import _check_indices


def one_hot(input, num_classes=-1):
    """Integer indices of shape S -> int64 one-hot of shape S + (num_classes,)."""
    input = _as_tensor(input, None)
    if num_classes == -1:
        num_classes = int(input.data.max()) + 1 if input.numel() else 0
    _check_indices("one_hot", input, num_classes)
    return Tensor(xp.eye(num_classes, dtype=xp.int64)[input.data])


def embedding(input, weight):
    """Rows of ``weight`` picked by integer indices: shape input.shape + (embedding_dim,).
    The backward scatter-adds into the rows that were picked (repeated indices add up)."""
    input = _as_tensor(input, None)
    _check_indices("embedding", input, weight.shape[0])
    return weight[input]


def pad(input, pad, mode="constant", value=0.0):
    """Constant padding, PyTorch's order: (left, right) for the last axis, then (top, bottom)
    for the one before, and so on."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or any(n < 0 for n in pad):
        raise ValueError(
            f"pad: expected an even number of non-negative sizes, at most 2 per axis of the "
            f"{input.ndim}-D input, got {pad}")
    out = input
    for i in range(len(pad) // 2):
        axis = input.ndim - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        pieces = [out]
        if before:
            pieces.insert(0, full(out.shape[:axis] + (before,) + out.shape[axis + 1:], value, dtype=out.dtype))
        if after:
            pieces.append(full(out.shape[:axis] + (after,) + out.shape[axis + 1:], value, dtype=out.dtype))
        if len(pieces) > 1:
            out = ops.cat(pieces, axis)
    return out


"""Integer indices in: one-hot codes and embedding lookups.

    >>> import minigan as mg
    >>> from minigan import F
    >>> F.one_hot(mg.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
"""
from ..autograd import Tensor, _as_tensor
from ..backend import xp
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

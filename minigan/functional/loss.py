"""Losses, with PyTorch's names, arguments and reductions ('mean', 'sum', 'none').

    >>> import minigan as mg
    >>> from minigan import F
    >>> F.mse_loss(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 4.0])).item()
    2.0
"""
from .. import ops
from ..autograd import _as_tensor
from ._checks import _check_indices, _check_same_shape, _constant, _reduce
from .activation import log_softmax, softplus
from .indexing import one_hot


def _capped_log(p):
    """log p, but never below -100 (PyTorch's cap in binary_cross_entropy), so a saturated
    sigmoid (exactly 0 or 1 in float32) gives a finite loss. Where p == 0 the log sees 1
    instead: the chosen branch is the constant -100 and no 0 * inf reaches the gradient. A NaN
    probability stays NaN (in the loss and its gradient), so a diverged model is not hidden."""
    usable = ~(p.data <= 0)  # True for p > 0 and for NaN
    return ops.clamp(ops.where(usable, ops.log(ops.where(usable, p, 1.0)), -100.0), min=-100.0)


def _check_weight_shape(who, weight, input):
    """A per-element ``weight`` must broadcast to the input's shape without growing it: a
    (2, 1) weight against a (2,) input would silently make a (2, 2) loss."""
    weight = _as_tensor(weight, input)
    shape = tuple(input.shape)
    grown = len(weight.shape) > len(shape) or any(
        w not in (1, n) for w, n in zip(reversed(weight.shape), reversed(shape)))
    if grown:
        raise ValueError(f"{who}: weight of shape {tuple(weight.shape)} does not broadcast to the "
                         f"input's shape {shape}")
    return weight


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)) for probabilities x in [0, 1]. Prefer
    binary_cross_entropy_with_logits, which is exact where the sigmoid saturates."""
    who = "binary_cross_entropy"
    target = _as_tensor(target, input)
    _check_same_shape(who, input, target)
    if input.numel() and (float(input.data.min()) < 0.0 or float(input.data.max()) > 1.0):
        raise ValueError(f"{who}: input must hold probabilities in [0, 1] (apply sigmoid first, "
                         "or use binary_cross_entropy_with_logits on the raw scores)")
    loss = -(target * _capped_log(input) + (1.0 - target) * _capped_log(1.0 - input))
    if weight is not None:
        loss = loss * _check_weight_shape(who, weight, input)
    return _reduce(loss, reduction, who)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of sigmoid(x), computed from the logits x without forming sigmoid:

        -(w_p t log s(x) + (1 - t) log(1 - s(x))) = (1 - t) x + (1 + (w_p - 1) t) softplus(-x)

    using log s(x) = -softplus(-x) and log(1 - s(x)) = -x - softplus(-x). Finite for any
    logit (+-100 included); ``pos_weight`` (w_p) scales the positive term per class.
    """
    who = "binary_cross_entropy_with_logits"
    target = _as_tensor(target, input)
    _check_same_shape(who, input, target)
    log_weight = 1.0 if pos_weight is None else 1.0 + (pos_weight - 1.0) * target
    loss = (1.0 - target) * input + log_weight * softplus(-input)
    if weight is not None:
        loss = loss * _check_weight_shape(who, weight, input)
    return _reduce(loss, reduction, who)


def mse_loss(input, target, reduction="mean"):
    target = _as_tensor(target, input)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def _class_axis_last_to_1(t):
    """(N, d1, ..., C) -> (N, C, d1, ...): one_hot puts classes last, the losses want axis 1."""
    if t.ndim <= 2:
        return t
    return t.permute(0, t.ndim - 1, *range(1, t.ndim - 1))


def nll_loss(input, target, weight=None, reduction="mean"):
    """Negative log-likelihood of class indices, from log-probabilities with classes on axis 1
    (axis 0 for one unbatched sample). 'mean' divides by the summed weights of the targets."""
    who = "nll_loss"
    target = _as_tensor(target, None)
    class_axis = 0 if input.ndim == 1 else 1
    classes = input.shape[class_axis]
    expected = input.shape[:class_axis] + input.shape[class_axis + 1:]
    if target.shape != expected:
        raise ValueError(f"{who}: expected target shape {expected} for input shape {input.shape}, "
                         f"got {target.shape}")
    _check_indices(who, target, classes)
    picked = _constant(_class_axis_last_to_1(one_hot(target, classes)).data.astype(input.dtype))
    loss = -(input * picked).sum(class_axis)
    if weight is None:
        return _reduce(loss, reduction, who)
    target_weight = _as_tensor(weight, input)[target]
    loss = loss * target_weight
    if reduction == "mean":
        return loss.sum() / target_weight.sum()
    return _reduce(loss, reduction, who)


def cross_entropy(input, target, weight=None, reduction="mean"):
    """Softmax cross-entropy from raw scores, classes on axis 1 (axis 0 unbatched).

    ``target`` holds class indices (integers, shape of input without the class axis) or class
    probabilities (floats, the input's shape). Built on log_softmax, so large scores are safe.
    """
    class_axis = 0 if input.ndim == 1 else 1
    log_p = log_softmax(input, class_axis)
    target = _as_tensor(target, input)
    if target.dtype.kind in "iu":
        return nll_loss(log_p, target, weight, reduction)
    _check_same_shape("cross_entropy", input, target)
    if weight is not None:
        stat_shape = tuple(n if i == class_axis else 1 for i, n in enumerate(input.shape))
        target = target * _as_tensor(weight, input).reshape(stat_shape)
    loss = -(log_p * target).sum(class_axis)
    return _reduce(loss, reduction, "cross_entropy")


"""Losses, with PyTorch's names, arguments and reductions ('mean', 'sum', 'none'; kl_div also
'batchmean').

    regression      mse_loss, l1_loss, smooth_l1_loss
    binary          binary_cross_entropy, binary_cross_entropy_with_logits
    classes         nll_loss, cross_entropy (ignore_index, label_smoothing)
    distributions   kl_div

Each is a composition of primitives, so first and second derivatives are exact.

    >>> import minigan as mg
    >>> from minigan import F
    >>> F.mse_loss(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 4.0])).item()
    2.0
    >>> F.smooth_l1_loss(mg.tensor([0.0, 0.0]), mg.tensor([0.5, 3.0]), reduction="none").tolist()
    [0.125, 2.5]
"""
import math
import numbers

from .. import ops
from ..autograd import _as_tensor
from ..backend import xp
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
    """(x - t)^2 per element."""
    target = _as_tensor(target, input)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """|x - t| per element; its derivative is sign(x - t) (0 where x = t, as PyTorch's)."""
    target = _as_tensor(target, input)
    _check_same_shape("l1_loss", input, target)
    return _reduce(ops.abs(input - target), reduction, "l1_loss")


def _check_beta(who, beta):
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < math.inf:
        raise ValueError(f"{who}: beta must be a finite number >= 0, got {beta!r}")


def _check_label_smoothing(who, label_smoothing):
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{who}: label_smoothing must lie in [0, 1], got {label_smoothing!r}")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Quadratic near zero, linear beyond ``beta`` (Girshick, 2015, "Fast R-CNN"); d = |x - t|:

        0.5 d^2 / beta   where d < beta,      d - 0.5 beta   elsewhere

    The two pieces meet with equal value and slope at d = beta. ``beta = 0`` is l1_loss.
    """
    who = "smooth_l1_loss"
    _check_beta(who, beta)
    target = _as_tensor(target, input)
    _check_same_shape(who, input, target)
    d = ops.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, who)
    loss = ops.where(d.data < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(loss, reduction, who)


def kl_div(input, target, reduction="mean", log_target=False):
    """Kullback-Leibler divergence KL(t || p) per element, from log-probabilities ``input``
    (log p) and probabilities ``target`` t (log-probabilities with ``log_target=True``):

        t (log t - log p)     with 0 log 0 = 0     (log_target: exp(log t) (log t - log p))

    'batchmean' divides the sum by the batch size (input.shape[0]): the true KL divergence of
    each sample's distribution, averaged. 'mean' divides by the number of elements, as PyTorch
    does (it warns that this is rarely wanted). Where t = 0, the derivative with respect to t
    is taken as -log p (PyTorch's is NaN there).
    """
    who = "kl_div"
    target = _as_tensor(target, input)
    _check_same_shape(who, input, target)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        nonzero = target.data != 0
        loss = ops.where(nonzero, target * ops.log(ops.where(nonzero, target, 1.0)), 0.0) \
            - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{who}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got "
                         f"{reduction!r}")
    return _reduce(loss, reduction, who)


def _class_axis_last_to_1(t):
    """(N, d1, ..., C) -> (N, C, d1, ...): one_hot puts classes last, the losses want axis 1."""
    if t.ndim <= 2:
        return t
    return t.permute(0, t.ndim - 1, *range(1, t.ndim - 1))


def _targets(who, input, target, ignore_index):
    """Class indices checked against the input, and the mask of those not ignored. Ignored
    positions get class 0, so they can index like any other (their weight is then 0)."""
    target = _as_tensor(target, None)
    class_axis = 0 if input.ndim == 1 else 1
    classes = input.shape[class_axis]
    expected = input.shape[:class_axis] + input.shape[class_axis + 1:]
    if target.shape != expected:
        raise ValueError(f"{who}: expected target shape {expected} for input shape {input.shape}, "
                         f"got {target.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{who}: expected integer class indices, got dtype {target.dtype}")
    kept = target.data != ignore_index
    if not kept.all():
        target = _constant(xp.where(kept, target.data, 0))
    _check_indices(who, target, classes)
    return target, kept, class_axis


def _target_weights(input, target, kept, weight):
    """Each target's class weight (1 without ``weight``), 0 where the target is ignored."""
    kept = _constant(kept.astype(input.dtype))
    return kept if weight is None else _as_tensor(weight, input)[target] * kept


def nll_loss(input, target, weight=None, reduction="mean", *, ignore_index=-100):
    """Negative log-likelihood of class indices, from log-probabilities with classes on axis 1
    (axis 0 for one unbatched sample). Targets equal to ``ignore_index`` add nothing. 'mean'
    divides by the summed weights of the targets that count (their number, without weights)."""
    who = "nll_loss"
    target, kept, class_axis = _targets(who, input, target, ignore_index)
    classes = input.shape[class_axis]
    picked = _constant(_class_axis_last_to_1(one_hot(target, classes)).data.astype(input.dtype))
    loss = -(input * picked).sum(class_axis)
    if weight is None and kept.all():
        return _reduce(loss, reduction, who)
    target_weight = _target_weights(input, target, kept, weight)
    loss = loss * target_weight
    if reduction == "mean":
        return loss.sum() / target_weight.sum()
    return _reduce(loss, reduction, who)


def cross_entropy(input, target, weight=None, reduction="mean", *, ignore_index=-100,
                  label_smoothing=0.0):
    """Softmax cross-entropy from raw scores, classes on axis 1 (axis 0 unbatched).

    ``target`` holds class indices (integers, shape of input without the class axis) or class
    probabilities (floats, the input's shape). Built on log_softmax, so large scores are safe.
    ``label_smoothing`` e mixes the target with the uniform distribution over the C classes:
    (1 - e) * target + e / C; for class indices, as in PyTorch, that is

        (1 - e) * nll_loss + e / C * (the reduced sum over classes of -w_c log p_c),

    with ignored targets left out of both parts and of the 'mean' normaliser.
    """
    who = "cross_entropy"
    _check_label_smoothing(who, label_smoothing)
    class_axis = 0 if input.ndim == 1 else 1
    classes = input.shape[class_axis]
    stat_shape = tuple(n if i == class_axis else 1 for i, n in enumerate(input.shape))
    log_p = log_softmax(input, class_axis)
    target = _as_tensor(target, input)
    if target.dtype.kind not in "iu":
        if ignore_index >= 0:
            raise ValueError(f"{who}: ignore_index={ignore_index} needs class indices; the target "
                             f"holds class probabilities (dtype {target.dtype})")
        _check_same_shape(who, input, target)
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / classes
        if weight is not None:
            target = target * _as_tensor(weight, input).reshape(stat_shape)
        return _reduce(-(log_p * target).sum(class_axis), reduction, who)
    nll = nll_loss(log_p, target, weight, reduction, ignore_index=ignore_index)
    if not label_smoothing:
        return nll
    target, kept, _ = _targets(who, input, target, ignore_index)
    weighted = log_p if weight is None else log_p * _as_tensor(weight, input).reshape(stat_shape)
    smooth = ops.where(kept, -weighted.sum(class_axis), 0.0)
    if reduction == "mean":
        smooth = smooth.sum() / _target_weights(input, target, kept, weight).sum()
    else:
        smooth = _reduce(smooth, reduction, who)
    return (1.0 - label_smoothing) * nll + smooth * (label_smoothing / classes)

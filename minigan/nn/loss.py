"""Loss modules: each functional loss of ``minigan.functional.loss`` as a Module, with
PyTorch's names, arguments and defaults. Class weights are buffers, so they are saved in the
state dict under PyTorch's keys ("weight", "pos_weight") and follow ``.double()`` / ``.to()``;
a loss without weights has an empty state dict, as in PyTorch.

    >>> import minigan as mg
    >>> from minigan import nn
    >>> criterion = nn.BCEWithLogitsLoss(pos_weight=mg.tensor([2.0]))
    >>> round(criterion(mg.tensor([0.0]), mg.tensor([1.0])).item(), 4)   # 2 log 2
    1.3863
    >>> list(criterion.state_dict())
    ['pos_weight']
"""
from .. import backend
from .. import functional as F
from ..autograd import Tensor
from ..functional.loss import _check_beta, _check_label_smoothing
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    """Keeps ``reduction``, checked when the module is made rather than at its first call."""

    _reductions = _REDUCTIONS

    def __init__(self, *, reduction="mean"):
        super().__init__()
        if reduction not in self._reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{', '.join(map(repr, self._reductions))}, got {reduction!r}")
        self.reduction = reduction


def _buffer(who, name, value):
    """A floating Tensor for a weight buffer (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        value = Tensor(backend.asarray(value, dtype=backend.get_default_dtype()))
    if value.dtype.kind != "f":
        raise TypeError(f"{who}: {name} must be floating, got dtype {value.dtype}")
    return value


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction=reduction)
        self.register_buffer("weight", _buffer(type(self).__name__, "weight", weight))


class L1Loss(_Loss):
    """Mean (or sum) absolute error: ``F.l1_loss``."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) squared error: ``F.mse_loss``."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below ``beta``, absolute error above: ``F.smooth_l1_loss``."""

    def __init__(self, *, reduction="mean", beta=1.0):
        super().__init__(reduction=reduction)
        _check_beta("SmoothL1Loss", beta)
        self.beta = float(beta)

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self):
        return f"beta={self.beta}" if self.beta != 1.0 else ""


class KLDivLoss(_Loss):
    """KL(target || input) from log-probabilities: ``F.kl_div``. ``reduction='batchmean'`` is
    the true divergence averaged over the batch; the default 'mean' (PyTorch's) divides by
    every element."""

    _reductions = _REDUCTIONS + ("batchmean",)

    def __init__(self, *, reduction="mean", log_target=False):
        super().__init__(reduction=reduction)
        self.log_target = bool(log_target)

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities (after a Sigmoid): ``F.binary_cross_entropy``.
    ``weight`` rescales each element's loss (it broadcasts against the input)."""

    def __init__(self, weight=None, *, reduction="mean"):
        super().__init__(weight, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy from raw scores, stable for any logit:
    ``F.binary_cross_entropy_with_logits``. ``pos_weight`` scales the positive term per class
    (the last axis), ``weight`` each element's loss."""

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        super().__init__(reduction=reduction)
        self.register_buffer("weight", _buffer("BCEWithLogitsLoss", "weight", weight))
        self.register_buffer("pos_weight", _buffer("BCEWithLogitsLoss", "pos_weight", pos_weight))

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices from log-probabilities: ``F.nll_loss``.
    ``weight`` holds one weight per class; targets equal to ``ignore_index`` are left out."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(weight, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.reduction,
                          ignore_index=self.ignore_index)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy from raw scores, against class indices or class probabilities:
    ``F.cross_entropy`` (with ``weight`` per class, ``ignore_index`` and ``label_smoothing``)."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(weight, reduction)
        _check_label_smoothing("CrossEntropyLoss", label_smoothing)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.reduction,
                               ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)

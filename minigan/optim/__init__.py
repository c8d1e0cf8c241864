"""Optimizers and learning-rate schedules, with PyTorch's names, defaults and update formulas.

    optimizer       Optimizer: parameter groups, step, zero_grad, state dicts
    sgd             SGD (momentum, dampening, Nesterov)
    adam            Adam, AdamW (amsgrad)
    rmsprop         RMSprop (centered, momentum)
    lr_scheduler    StepLR, ExponentialLR, LambdaLR, CosineAnnealingLR

Every optimizer takes ``maximize=True`` to climb instead of descend.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0], requires_grad=True)
    >>> opt = mg.optim.Adam([w], lr=0.1)
    >>> sched = mg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(4):
    ...     opt.zero_grad(); (w * w).sum().backward(); opt.step(); sched.step()
    >>> sched.get_last_lr()
    [0.025]
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]

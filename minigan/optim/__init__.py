"""Optimizers, with PyTorch's names, defaults and update formulas.

    optimizer       Optimizer: parameter groups, step, zero_grad, state dicts
    sgd             SGD (momentum, dampening, Nesterov)
    adam            Adam, AdamW (amsgrad)
    rmsprop         RMSprop (centered, momentum)

Every optimizer takes ``maximize=True`` to climb instead of descend.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0], requires_grad=True)
    >>> opt = mg.optim.Adam([w], lr=0.1, maximize=True)
    >>> (w * w).sum().backward(); opt.step()   # climbs: the first Adam step is lr * sign(g)
    >>> round(w.item(), 6)
    1.1
"""
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop"]

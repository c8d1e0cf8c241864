"""Stochastic gradient descent, with PyTorch's momentum, dampening, Nesterov and weight decay.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0], requires_grad=True)
    >>> opt = mg.optim.SGD([w], lr=0.5, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()      # grad 2: w = 1 - 0.5 * 2
    >>> w.item()
    0.0
"""
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's formulation):

        g = -g  (maximize)
        d = g + weight_decay * p
        b = d on the first step, else momentum * b + (1 - dampening) * d
        d = d + momentum * b  (nesterov)  or  d = b
        p = p - lr * d
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check(self, group):
        self._numbers(group, "lr", "momentum", "dampening", "weight_decay")
        self._flags(group, "nesterov", "maximize")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov momentum needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, param, grad, state, group):
        momentum = group["momentum"]
        d = grad
        if group["weight_decay"]:
            d = d + group["weight_decay"] * param
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * d
            d = d + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * d

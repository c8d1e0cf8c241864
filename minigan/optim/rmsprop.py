"""RMSprop: each parameter's step divided by a running root mean square of its gradients.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0], requires_grad=True)
    >>> opt = mg.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> (w * w).sum().backward(); opt.step()  # s = 0.25 g^2: the step is lr * g / (|g| / 2)
    >>> round(w.item(), 6)
    0.98
"""
from .. import backend
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), PyTorch's variant:

        g = -g  (maximize);  g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g^2
        a = alpha * a + (1 - alpha) * g;  r = sqrt(s - a^2) + eps   (centered)
        r = sqrt(s) + eps                                           (otherwise)
        b = momentum * b + g / r;  p = p - lr * b                   (momentum > 0)
        p = p - lr * g / r                                          (otherwise)

    ``alpha`` must lie in [0, 1] (PyTorch takes any alpha >= 0, but above 1 the mean square
    turns negative and the step NaN).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check(self, group):
        self._numbers(group, "lr", "eps", "weight_decay", "momentum")
        group["alpha"] = self._number("alpha", group["alpha"], high=1.0, high_open=False)
        self._flags(group, "centered", "maximize")

    def _update(self, param, grad, state, group):
        xp, alpha, momentum = backend.xp, group["alpha"], group["momentum"]
        for name, wanted in (("square_avg", True), ("momentum_buffer", momentum > 0),
                             ("grad_avg", group["centered"])):
            if wanted and name not in state:
                state[name] = xp.zeros_like(param)
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            rms = xp.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            rms = xp.sqrt(square_avg) + group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / rms
            param -= group["lr"] * buf
        else:
            param -= group["lr"] * (grad / rms)

"""Adam and AdamW: steps scaled by running estimates of the gradient's mean and mean square.

The two differ only in weight decay. Adam adds ``weight_decay * p`` to the gradient (an L2
penalty, which the moment estimates then rescale); AdamW shrinks the parameter directly,
``p = p - lr * weight_decay * p``, before the Adam step (Loshchilov & Hutter, 2019, "Decoupled
Weight Decay Regularization"), so the decay is the same for every parameter whatever its
gradient's scale.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = mg.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward(); opt.step()    # first step: p(1 - 0.05) - 0.1 sign(g)
    >>> w.numpy().round(6)
    array([ 0.85, -0.85], dtype=float32)
"""
from .. import backend
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay added to the gradient, as PyTorch's Adam:

        g = -g  (maximize);  g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g          v = beta2 * v + (1 - beta2) * g^2
        v_max = max(v_max, v); v = v_max         (amsgrad: Reddi et al., 2018)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The state holds ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``.
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check(self, group):
        self._numbers(group, "lr", "eps", "weight_decay")
        self._flags(group, "amsgrad", "maximize")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: invalid betas: {betas!r} (expected two numbers)")
        group["betas"] = tuple(self._number(f"beta{k + 1}", beta, high=1.0)
                               for k, beta in enumerate(betas))

    def _update(self, param, grad, state, group):
        xp = backend.xp
        beta1, beta2 = group["betas"]
        if "exp_avg" not in state:
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        if group["weight_decay"]:
            if self.decoupled_weight_decay:
                param *= 1 - group["lr"] * group["weight_decay"]
            else:
                grad = grad + group["weight_decay"] * param
        # in place through one scratch array: 2 allocations fewer per parameter made the
        # MLP GAN's two Adam steps ~40% cheaper (benchmarks/train_step.py)
        scratch = xp.subtract(grad, m)
        scratch *= 1 - beta1
        m += scratch  # = beta1 * m + (1 - beta1) * g, written as PyTorch's lerp
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        v *= beta2
        v += scratch
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        xp.sqrt(v, out=scratch)
        scratch /= (1 - beta2**t) ** 0.5
        scratch += group["eps"]
        xp.divide(m, scratch, out=scratch)
        scratch *= group["lr"] / (1 - beta1**t)
        param -= scratch


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW; its default weight_decay is 0.01):

        p = p * (1 - lr * weight_decay)
        then Adam's step, with the gradient left as it is.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)

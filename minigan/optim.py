"""Optimizers: SGD, Adam and RMSprop, with PyTorch's names, defaults and update formulas.

An optimizer holds ``param_groups``: a list of dicts, each with its ``params`` and its own
hyper-parameters (so a generator and a discriminator head can share one optimizer with
different learning rates). ``step()`` reads every parameter's ``.grad`` and updates the
parameter's array in place, under ``no_grad``; parameters whose ``.grad`` is None are skipped.
Per-parameter state (moment estimates, momentum buffers, a step count) lives in ``state``.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = mg.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward()          # grad = 2w
    >>> opt.step(); opt.zero_grad()
    >>> w.numpy()
    array([ 0.8, -1.6], dtype=float32)
"""
import math

from . import backend
from .autograd import Tensor, enable_grad, no_grad


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and state dicts.

    A subclass gives ``defaults`` (its hyper-parameters), ``_check(group)`` (validates and
    normalises one group's hyper-parameters) and ``_update(param, grad, state, group)``
    (updates the raw ``param`` array in place, given the raw ``grad`` array).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # parameter -> {"step": int, name: backend array, ...}
        if isinstance(params, Tensor):
            raise TypeError(
                "params should be an iterable of Tensors or of dicts, got a single Tensor; "
                "wrap it in a list: [tensor]"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a dict with ``params`` (and optional hyper-parameters; the rest take defaults)."""
        if not isinstance(group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(group).__name__}")
        group = dict(group)
        params = group.get("params")
        params = [params] if isinstance(params, Tensor) else list(params or [])
        if not params:
            raise ValueError("a parameter group needs at least one parameter")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"parameter {i} is a {type(p).__name__}, expected a Tensor")
            if p.dtype.kind != "f":
                raise TypeError(f"parameter {i} (shape {p.shape}) has dtype {p.dtype}; optimizers "
                                "update floating tensors only")
            if not p.is_leaf:
                raise ValueError(
                    f"parameter {i} (shape {p.shape}) is not a leaf tensor (it was made by an op); "
                    "optimizers update leaves only: detach it or create it with requires_grad=True"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("a parameter appears more than once across the parameter groups")
        group["params"] = params
        for name, value in self.defaults.items():
            group.setdefault(name, value)
        self._check(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of every parameter: ``.grad = None`` (or a fresh zero tensor)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor(backend.xp.zeros_like(p.data))

    def step(self, closure=None):
        """Update every parameter that has a gradient. ``closure``, if given, recomputes the
        loss (with gradients) before the update, and its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.shape != p.shape:
                        raise RuntimeError(
                            f"{type(self).__name__}.step(): a gradient of shape {p.grad.shape} "
                            f"cannot update a parameter of shape {p.shape}"
                        )
                    state = self.state.setdefault(p, {"step": 0})
                    state["step"] += 1
                    self._update(p.data, p.grad.data, state, group)
                    p._modified()
        return loss

    def _check(self, group):
        raise NotImplementedError

    def _update(self, param, grad, state, group):
        raise NotImplementedError

    # --- saving and restoring -----------------------------------------------------------------
    def _indexed_params(self):
        """Every parameter with its position counted over all groups (PyTorch's numbering)."""
        return list(enumerate(p for group in self.param_groups for p in group["params"]))

    def state_dict(self):
        """``{"state": {index: {"step": int, name: Tensor}}, "param_groups": [{..., "params":
        [indices]}]}``. Arrays are copies, so later steps do not change a saved dict."""
        state = {}
        for i, p in self._indexed_params():
            if p in self.state:
                state[i] = {
                    name: value if name == "step" else Tensor(value.copy())
                    for name, value in self.state[p].items()
                }
        groups, start = [], 0
        for group in self.param_groups:
            saved = {name: value for name, value in group.items() if name != "params"}
            saved["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by ``state_dict``. State
        arrays may be NumPy arrays or Tensors; they are copied onto the backend."""
        groups = list(state_dict["param_groups"])
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"the state dict has {len(groups)} parameter group(s) but this optimizer has "
                f"{len(self.param_groups)}"
            )
        for k, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {k} of the state dict has {len(saved['params'])} parameter(s) "
                    f"but this optimizer's has {len(group['params'])}"
                )
        by_index = {
            int(i): p
            for saved, group in zip(groups, self.param_groups)
            for i, p in zip(saved["params"], group["params"])
        }
        state = {}
        for key, entry in state_dict["state"].items():
            index = int(key)
            if index not in by_index:
                raise ValueError(
                    f"the state dict has state for parameter {index}, but this optimizer's "
                    f"parameters are numbered 0 to {len(by_index) - 1}"
                )
            p = by_index[index]
            state[p] = {name: _restore(name, value, p, index) for name, value in entry.items()}
        for saved, group in zip(groups, self.param_groups):
            group.update({name: value for name, value in saved.items() if name != "params"})
            self._check(group)
        self.state = state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"  group {k}: {len(group['params'])} parameter(s)")
            lines += [f"    {name}: {value}" for name, value in group.items() if name != "params"]
        return "\n".join(lines + [")"])


def _restore(name, value, param, index):
    if name == "step":
        return int(value.item() if isinstance(value, Tensor) else value)
    array = value.data if isinstance(value, Tensor) else value
    array = backend.asarray(array, dtype=param.dtype).copy()
    if tuple(array.shape) != param.shape:
        raise ValueError(
            f"state {name!r} of parameter {index} has shape {tuple(array.shape)} but the parameter "
            f"has shape {param.shape}"
        )
    return array


def _non_negative(group, *names):
    for name in names:
        value = float(group[name])
        if not 0 <= value < math.inf:  # NaN fails this too
            raise ValueError(f"invalid {name}: {group[name]!r} (it must be a finite number >= 0)")
        group[name] = value


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's formulation):

        d = g + weight_decay * p
        b = d on the first step, else momentum * b + (1 - dampening) * d
        d = d + momentum * b  (nesterov)  or  d = b
        p = p - lr * d
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, group):
        _non_negative(group, "lr", "momentum", "dampening", "weight_decay")
        group["nesterov"] = bool(group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"nesterov momentum needs momentum > 0 and dampening = 0, got "
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


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay added to the gradient, as PyTorch's Adam:

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g          v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _check(self, group):
        _non_negative(group, "lr", "eps", "weight_decay")
        betas = tuple(float(b) for b in group["betas"])
        if len(betas) != 2:
            raise ValueError(f"invalid betas: {group['betas']!r} (expected two numbers)")
        for k, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta{k + 1}: {beta!r} (it must lie in [0, 1))")
        group["betas"] = betas

    def _update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        if "exp_avg" not in state:
            state["exp_avg"] = backend.xp.zeros_like(param)
            state["exp_avg_sq"] = backend.xp.zeros_like(param)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        # in place through one scratch array: 2 allocations fewer per parameter made the
        # MLP GAN's two Adam steps ~40% cheaper (benchmarks/train_step.py)
        xp = backend.xp
        scratch = xp.subtract(grad, m)
        scratch *= 1 - beta1
        m += scratch  # = beta1 * m + (1 - beta1) * g, written as PyTorch's lerp
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        v *= beta2
        v += scratch
        xp.sqrt(v, out=scratch)
        scratch /= (1 - beta2**t) ** 0.5
        scratch += group["eps"]
        xp.divide(m, scratch, out=scratch)
        scratch *= group["lr"] / (1 - beta1**t)
        param -= scratch


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), PyTorch's variant:

        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g^2
        a = alpha * a + (1 - alpha) * g;  r = sqrt(s - a^2) + eps   (centered)
        r = sqrt(s) + eps                                           (otherwise)
        b = momentum * b + g / r;  p = p - lr * b                   (momentum > 0)
        p = p - lr * g / r                                          (otherwise)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, group):
        _non_negative(group, "lr", "alpha", "eps", "weight_decay", "momentum")
        group["centered"] = bool(group["centered"])

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

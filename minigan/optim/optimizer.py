"""The Optimizer base class: parameter groups, ``step``, ``zero_grad`` and state dicts.

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
import numbers

from .. import backend
from ..autograd import Tensor, enable_grad, no_grad


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and state dicts.

    A subclass gives ``defaults`` (its hyper-parameters), ``_check(group)`` (validates and
    normalises one group's hyper-parameters) and ``_update(param, grad, state, group)``
    (updates the raw ``param`` array in place, given the raw ``grad`` array, which it must not
    change). A group with ``maximize=True`` climbs its objective: ``_update`` sees ``-grad``.
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
                    grad = -p.grad.data if group.get("maximize") else p.grad.data
                    state = self.state.setdefault(p, {})
                    state["step"] = state.get("step", 0) + 1  # PyTorch's SGD saves no step
                    self._update(p.data, grad, state, group)
                    p._modified()
        return loss

    def _check(self, group):
        raise NotImplementedError

    def _update(self, param, grad, state, group):
        raise NotImplementedError

    # --- validating hyper-parameters ---------------------------------------------------------
    def _number(self, name, value, low=0.0, high=math.inf, high_open=True):
        """``value`` as a float in [low, high) (or [low, high] with ``high_open=False``); NaN,
        infinities and non-numbers are refused, naming the optimizer, ``name`` and the value."""
        where = f"{type(self).__name__}: invalid {name}: {value!r}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{where} (expected a number)")
        number = float(value)
        inside = low <= number and (number < high if high_open else number <= high)
        if not (inside and math.isfinite(number)):  # NaN fails every comparison
            bound = "" if high == math.inf else f" and {'<' if high_open else '<='} {high}"
            raise ValueError(f"{where} (it must be a finite number >= {low}{bound})")
        return number

    def _numbers(self, group, *names):
        """``_number`` for each name: finite and >= 0 (learning rates, decays, eps)."""
        for name in names:
            group[name] = self._number(name, group[name])

    def _flags(self, group, *names):
        for name in names:
            if not isinstance(group[name], (bool, numbers.Integral, backend.xp.bool_)):
                raise TypeError(f"{type(self).__name__}: invalid {name}: {group[name]!r} "
                                "(expected True or False)")
            group[name] = bool(group[name])

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
        arrays may be NumPy arrays or Tensors; they are copied onto the backend. A saved group
        without a newer hyper-parameter (``maximize``, say) keeps this optimizer's value."""
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
        updated = []
        for saved, group in zip(groups, self.param_groups):
            group = dict(group, **{name: value for name, value in saved.items() if name != "params"})
            self._check(group)  # every group is checked before any is changed
            updated.append(group)
        for group, new in zip(self.param_groups, updated):
            group.update(new)
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

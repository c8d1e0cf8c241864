"""Learning-rate schedules: each ``step()`` sets the next learning rate of every parameter group.

Call ``scheduler.step()`` once per epoch (or per training step), after ``optimizer.step()``.
The formulas and their floating-point order are PyTorch's, so the sequence of learning rates
is the same number for number. Most are *recursive* (the next rate is computed from the
optimizer's current one), as PyTorch's ``step()`` computes them; the closed forms they follow
are given in each docstring.

A scheduler's ``state_dict()`` holds plain numbers and lists: save it beside the optimizer's
(in a checkpoint's ``optimizers`` mapping, or with ``minigan.io.save``), build a fresh optimizer
and scheduler the same way, load both, and training continues exactly. The keys are PyTorch's
(``last_epoch``, ``base_lrs``, ``_last_lr``, ``_step_count`` and the arguments), so state dicts
move between the two libraries.

    >>> import minigan as mg
    >>> w = mg.tensor([1.0], requires_grad=True)
    >>> opt = mg.optim.SGD([w], lr=1.0)
    >>> sched = mg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    >>> rates = []
    >>> for _ in range(4):
    ...     opt.step(); sched.step(); rates.append(round(sched.get_last_lr()[0], 6))
    >>> rates
    [0.853553, 0.5, 0.146447, 0.0]
"""
import math
import numbers

from .optimizer import Optimizer

# flags PyTorch keeps in its schedulers' state dicts (only meaningful inside its step()): saved
# as False so the keys are PyTorch's, and ignored when loading
_TORCH_FLAGS = ("_get_lr_called_within_step", "_is_initial")


class LRScheduler:
    """Base class. A subclass maps its arguments to their checks in ``_arguments``, sets them
    with ``_set_arguments`` and defines ``get_lr()``: the rates for epoch ``last_epoch``
    (already advanced), read by ``step()``.

    Making a scheduler records each group's ``initial_lr`` (when ``last_epoch`` is -1) and
    takes the first step, to epoch 0. ``last_epoch`` >= 0 continues a schedule whose optimizer
    already holds ``initial_lr`` (PyTorch's convention); loading a state dict does the same more
    simply.
    """

    _arguments = {}

    def __init__(self, optimizer, last_epoch=-1):
        who = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{who}: expected an Optimizer, got {type(optimizer).__name__}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) \
                or last_epoch < -1:
            raise ValueError(f"{who}: invalid last_epoch: {last_epoch!r} (an integer >= -1)")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"{who}: last_epoch={last_epoch} continues a schedule, but param_groups[{i}] "
                    "has no 'initial_lr'; load the optimizer's state dict first, or start with "
                    "last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._step_count = 0  # counted as PyTorch counts it, for its key in the state dict
        self._initial = True  # the constructor's step: some schedules keep the current rates
        try:
            self.step()
        finally:
            self._initial = False

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        """Advance one epoch and write the new learning rates into the optimizer. A rate that
        is not a finite number >= 0 raises ValueError and leaves everything as it was."""
        self.last_epoch += 1
        try:
            rates = [float(lr) for lr in self.get_lr()]
            for k, lr in enumerate(rates):
                if not (math.isfinite(lr) and lr >= 0):
                    raise ValueError(f"{type(self).__name__}: the learning rate of group {k} at "
                                     f"epoch {self.last_epoch} would be {lr!r}; it must be a "
                                     "finite number >= 0")
        except BaseException:
            self.last_epoch -= 1
            raise
        for group, lr in zip(self.optimizer.param_groups, rates):
            group["lr"] = lr
        self._last_lr = rates
        self._step_count += 1

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group."""
        return list(self._last_lr)

    def _set_arguments(self, **arguments):
        """Check every argument, then set them all."""
        for name, value in self._checked(arguments).items():
            setattr(self, name, value)

    def _checked(self, arguments):
        return {name: self._arguments[name](type(self).__name__, name, value)
                for name, value in arguments.items()}

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    # --- saving and restoring -----------------------------------------------------------------
    def state_dict(self):
        """Where the schedule stands and its arguments: numbers and lists only."""
        state = {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch,
                 "_step_count": self._step_count, "_last_lr": list(self._last_lr),
                 **dict.fromkeys(_TORCH_FLAGS, False)}
        state.update({name: getattr(self, name) for name in self._arguments})
        return state

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict`` saved (PyTorch's state dicts load too). The optimizer's
        learning rates are not touched: they come back with the optimizer's own state dict."""
        who = type(self).__name__
        expected = {"base_lrs", "last_epoch", "_step_count", "_last_lr", *self._arguments}
        given = set(state_dict) - {*_TORCH_FLAGS, "verbose"}  # older PyTorch saved verbose
        if given != expected:
            missing, unexpected = sorted(expected - given), sorted(given - expected)
            raise ValueError(f"{who}.load_state_dict: missing keys {missing}, unexpected keys "
                             f"{unexpected}")
        groups = len(self.optimizer.param_groups)
        for name in ("base_lrs", "_last_lr"):
            if len(state_dict[name]) != groups:
                raise ValueError(f"{who}.load_state_dict: {name} has {len(state_dict[name])} "
                                 f"value(s) but the optimizer has {groups} parameter group(s)")
        restored = self._checked({name: state_dict[name] for name in self._arguments})
        restored.update(base_lrs=[float(lr) for lr in state_dict["base_lrs"]],
                        _last_lr=[float(lr) for lr in state_dict["_last_lr"]],
                        last_epoch=int(state_dict["last_epoch"]),
                        _step_count=int(state_dict["_step_count"]))
        for name, value in restored.items():  # only once everything converted
            setattr(self, name, value)

    def __repr__(self):
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._arguments)
        return f"{type(self).__name__}({arguments}, last_epoch={self.last_epoch})"


def _positive_int(who, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{who}: invalid {name}: {value!r} (an integer >= 1)")
    return int(value)


def _non_negative(who, name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{who}: invalid {name}: {value!r} (a finite number "
                         f"{'> 0' if positive else '>= 0'})")
    return float(value)


def _positive(who, name, value):
    return _non_negative(who, name, value, positive=True)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:

        lr(epoch) = initial_lr * gamma ** (epoch // step_size)
    """

    _arguments = {"step_size": _positive_int, "gamma": _positive}

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self._set_arguments(step_size=step_size, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch:

        lr(epoch) = initial_lr * gamma ** epoch
    """

    _arguments = {"gamma": _positive}

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self._set_arguments(gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class LambdaLR(LRScheduler):
    """The initial learning rate times a factor a function gives for the epoch:

        lr(epoch) = initial_lr * lr_lambda(epoch)

    ``lr_lambda`` is one function, or a list with one per parameter group. Functions are not
    saved in the state dict (its ``lr_lambdas`` entry is a list of None, as PyTorch's for plain
    functions): a resumed run builds its scheduler with the same functions, then loads the
    state, which restores the epoch.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 1
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(lambdas) != groups:
            raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter group), "
                             f"got {len(lambdas)}")
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be callable, got {type(fn).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        return dict(super().state_dict(), lr_lambdas=[None] * len(self.lr_lambdas))

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        lambdas = state_dict.pop("lr_lambdas", None)
        if not isinstance(lambdas, list) or len(lambdas) != len(self.lr_lambdas) \
                or any(entry is not None for entry in lambdas):
            raise ValueError(f"LambdaLR.load_state_dict: expected lr_lambdas to be a list of "
                             f"{len(self.lr_lambdas)} None (functions are not saved), got {lambdas!r}")
        super().load_state_dict(state_dict)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the initial learning rate down to ``eta_min`` over ``T_max`` epochs
    (SGDR, Loshchilov & Hutter, 2017, without restarts), continuing as a cosine after it:

        lr(epoch) = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    computed recursively, as PyTorch does, from the current rate:

        lr(e) = eta_min + (lr(e-1) - eta_min) * (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T))

    except where the denominator is 0 (e - 1 = T_max, 3 T_max, ...), where the rate climbs
    back by (initial_lr - eta_min) * (1 - cos(pi / T_max)) / 2.
    """

    _arguments = {"T_max": _positive_int, "eta_min": _non_negative}

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self._set_arguments(T_max=T_max, eta_min=eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        e, T, low = self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return self._current_lrs()
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
        return [ratio * (lr - low) + low for lr in self._current_lrs()]

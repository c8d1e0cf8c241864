"""Grad mode: whether ops record a graph. On by default; ``no_grad`` turns it off for updates,
evaluation and sampling, ``enable_grad`` back on. Grad mode belongs to the thread that sets it.

    >>> import minigan as mg
    >>> x = mg.ones(2, requires_grad=True)
    >>> with mg.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
"""
import functools
import threading

_mode = threading.local()  # grad mode is per thread, as in PyTorch


def is_grad_enabled():
    return getattr(_mode, "enabled", True)


def _set_grad_enabled(enabled):
    _mode.enabled = bool(enabled)


class _GradMode:
    """A context manager (and decorator) that sets grad mode inside and restores it after.
    One object can be entered again, and nested, any number of times."""

    enabled = True

    def __init__(self):
        self._saved = []

    def __enter__(self):
        self._saved.append(is_grad_enabled())
        _set_grad_enabled(self.enabled)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._saved.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapped


class no_grad(_GradMode):
    """Ops inside record no graph (for updates, evaluation, sampling). A context manager or a
    decorator; grad mode belongs to the thread that sets it."""

    enabled = False


class enable_grad(_GradMode):
    """Record graphs again inside a ``no_grad`` block (a context manager or a decorator)."""

    enabled = True


class _grad_mode(_GradMode):
    def __init__(self, enabled):
        super().__init__()
        self.enabled = enabled

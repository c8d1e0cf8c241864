"""Function: one node of the graph, the base class of every op.

A subclass gives ``forward`` (arrays in, an array out) and ``backward`` (the output's gradient
in, one gradient per input out, written in Tensor ops so that it can be recorded and
differentiated again). ``apply`` wires the two to tensors:

    >>> import minigan as mg
    >>> class Square(mg.Function):
    ...     def forward(self, a):
    ...         return a * a
    ...     def backward(self, g):
    ...         return g * 2 * self.inputs[0]
    >>> x = mg.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).sum().backward()
    >>> x.grad.item()
    6.0
"""
import weakref

from .autograd import Tensor, _as_tensor, _check_dtypes, _like
from .grad_mode import is_grad_enabled


class Function:
    """One node of the graph. Subclasses define ``forward(ctx, *arrays, **params)`` and
    ``backward(ctx, grad)``; ``apply`` wires them to tensors.

    ``ctx`` is the Function instance itself: forward saves what backward needs on it.
    ``ctx.inputs`` are the input Tensors, ``ctx.output`` the output Tensor (held weakly, to keep
    the graph free of reference cycles), ``ctx.needs_input_grad`` one flag per input.

    ``reads_inputs`` (positions, or None for all) and ``reads_output`` say which tensors the
    backward reads. Their versions are noted when the op runs, and backward refuses to run if
    one was changed in place since (an optimizer step, an assignment to ``.data``): the
    gradient would silently belong to other numbers.
    """

    reads_inputs = None
    reads_output = True

    def __init__(self, inputs):
        self.inputs = inputs
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        self._output = None

    @property
    def output(self):
        return self._output()

    @property
    def label(self):
        return type(self).__name__.lower()

    @classmethod
    def apply(cls, *inputs, **params):
        tensors = tuple(_as_tensor(x, _like(inputs)) for x in inputs)
        _check_dtypes(cls.__name__, tensors)
        ctx = cls(tensors)
        data = ctx.forward(*(t.data for t in tensors), **params)
        record = is_grad_enabled() and any(ctx.needs_input_grad)
        out = Tensor(data, requires_grad=record, _node=ctx if record else None)
        if record:
            ctx._output = weakref.ref(out)
            read = range(len(tensors)) if cls.reads_inputs is None else cls.reads_inputs
            ctx._read_versions = tuple((tensors[i], tensors[i]._version) for i in read)
        return out

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def _check_versions(self):
        """Refuse to differentiate with numbers that changed since the forward pass."""
        read = list(self._read_versions)
        if self.reads_output and self.output is not None:
            read.append((self.output, 0))
        for t, version in read:
            if t._version != version:
                raise RuntimeError(
                    f"backward(): a tensor of shape {t.shape} that {self.label} needs for its "
                    f"gradient was modified in place after {self.label} ran (its version is "
                    f"{t._version}, expected {version}), so the gradient would be wrong; run the "
                    "forward pass again after changing it (e.g. call optimizer.step() only after "
                    "backward)")

    def _release(self):
        """Drop the inputs and everything the forward saved: the graph behind this node is
        freed, and a later backward through it raises instead of using stale numbers."""
        self.__dict__.clear()
        self._freed = True

"""Tensor, Function and the backward walk.

A ``Tensor`` wraps one backend array. Every op that makes a tensor from tensors is a
``Function``: ``forward`` works on raw arrays, ``backward`` is written with Tensor ops. When the
backward pass runs with ``create_graph=True`` those ops are recorded like any others, so the
gradient is itself a differentiable graph: that is all double backward needs.

This module knows no op. ``minigan.ops`` defines them and attaches Tensor's operators and
methods (``x * y``, ``x.sum()``) when it is imported, so the arrows point one way.

    >>> import minigan as mg
    >>> x = mg.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([2., 4.], dtype=float32)
"""
import functools
import threading
import weakref

from . import backend
from .backend import xp

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


class Function:
    """One node of the graph. Subclasses define ``forward(ctx, *arrays, **params)`` and
    ``backward(ctx, grad)``; ``apply`` wires them to tensors.

    ``ctx`` is the Function instance itself: forward saves what backward needs on it.
    ``ctx.inputs`` are the input Tensors, ``ctx.output`` the output Tensor (held weakly, to keep
    the graph free of reference cycles), ``ctx.needs_input_grad`` one flag per input.
    """

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
        return out

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def _like(inputs):
    for x in inputs:
        if isinstance(x, Tensor):
            return x
    return None


def _as_tensor(x, like):
    if isinstance(x, Tensor):
        return x
    dtype = like.dtype if like is not None and like.data.dtype.kind == "f" else None
    return tensor(x, dtype=dtype)


def _check_dtypes(op, tensors):
    floats = {t.dtype for t in tensors if t.dtype.kind == "f"}
    if len(floats) > 1:
        names = " and ".join(sorted(str(d) for d in floats))
        raise TypeError(
            f"{op}: cannot mix tensors of dtypes {names}; convert one with .float() or .double() "
            f"(or set_default_dtype) so both match."
        )


class Tensor:
    """An n-dimensional array that remembers how it was made.

    ``data`` is the backend array, ``grad`` a Tensor (or None) filled by ``backward``,
    ``requires_grad`` whether gradients flow to it. Tensors made by ops while gradients are
    enabled keep a reference to their Function (``node``), whose ``label`` names the op.
    """

    __array_priority__ = 1000  # numpy array (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, _node=None):
        self.data = data
        self.grad = None
        self.node = _node
        self._requires_grad = False
        self.requires_grad = requires_grad

    # --- basic properties -------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, not {self.data.dtype}")
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    @property
    def is_leaf(self):
        return self.node is None

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return int(self.data.size)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def __len__(self):
        return self.shape[0]

    def numpy(self):
        """The values as a NumPy array on the host (a copy on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def __repr__(self):
        extra = ""
        if self.node is not None:
            extra = f", op={self.node.label}"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        body = str(self.numpy()).replace("\n", "\n       ")
        return f"tensor({body}, dtype={self.dtype}{extra})"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() / .all() on its .data or compare element-wise"
            )
        return bool(self.data)

    # --- gradients --------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        ``grad`` may be omitted only for a one-element tensor. With ``create_graph=True`` the
        gradients are themselves recorded, so they can be differentiated again. The graph is
        always kept (backward may run on it again), so ``retain_graph`` is accepted for
        PyTorch's sake and changes nothing.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph; "
                "make its inputs with requires_grad=True (and not under no_grad())."
            )
        grads = _run_backward([self], [_seed_grad(self, grad)], None, create_graph)
        for leaf, g in grads.items():
            if not create_graph:
                g = _in_layout_of(leaf, g)
            leaf.grad = g if leaf.grad is None else _accumulate(leaf.grad, g, create_graph)


def _seed_grad(out, grad):
    if grad is None:
        if out.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a one-element output, got shape {out.shape}; "
                "reduce it first (e.g. .sum() or .mean()) or pass grad= of the same shape."
            )
        return Tensor(xp.ones_like(out.data))
    grad = grad if isinstance(grad, Tensor) else tensor(grad, dtype=out.dtype)
    if grad.shape != out.shape:
        raise RuntimeError(
            f"backward(): grad has shape {grad.shape} but the output has shape {out.shape}"
        )
    return grad


def _in_layout_of(leaf, g):
    """A gradient laid out in memory like its leaf. A weight used as ``weight.T`` gets a
    transposed (column-major) gradient; the optimiser's element-wise update over a row-major
    weight and a column-major gradient ran ~3x slower (the MLP GAN's Adam steps: 9.6 -> 3 ms)."""
    if leaf.data.flags.c_contiguous and not g.data.flags.c_contiguous:
        return Tensor(xp.ascontiguousarray(g.data))
    return g


def _accumulate(total, g, create_graph):
    if create_graph:
        return total + g
    return Tensor(total.data + g.data)


def _topological_order(roots):
    """Function nodes reachable from ``roots``, each after every node that consumes it.

    Iterative depth-first post-order, so graphs of any depth work (no recursion limit).
    """
    order, visited = [], set()
    stack = [(t.node, False) for t in roots if t.node is not None]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t.node is not None and id(t.node) not in visited:
                stack.append((t.node, False))
    order.reverse()  # consumers first
    return order


def _run_backward(outputs, seeds, targets, create_graph):
    """Push ``seeds`` from ``outputs`` back through the graph.

    Returns {tensor: gradient} for the leaves that require grad (``targets`` None) or for the
    ``targets`` tensors only (leaves or not), skipping branches that lead to no target.
    """
    order = _topological_order(outputs)
    wanted = None if targets is None else {id(t) for t in targets}
    relevant = _relevant_nodes(order, wanted) if wanted is not None else None

    node_grads = {}
    leaf_grads = {}

    def deposit(t, g):
        if wanted is not None and id(t) in wanted:
            prev = leaf_grads.get(id(t))
            leaf_grads[id(t)] = (t, g if prev is None else _accumulate(prev[1], g, create_graph))
        if t.node is not None:
            prev = node_grads.get(id(t.node))
            node_grads[id(t.node)] = g if prev is None else _accumulate(prev, g, create_graph)
        elif wanted is None and t.requires_grad:
            prev = leaf_grads.get(id(t))
            leaf_grads[id(t)] = (t, g if prev is None else _accumulate(prev[1], g, create_graph))

    for out, seed in zip(outputs, seeds):
        deposit(out, seed)

    with _grad_mode(create_graph):
        for node in order:
            grad = node_grads.pop(id(node), None)
            if grad is None:
                continue
            needs = node.needs_input_grad
            if relevant is not None:
                needs = tuple(
                    t.requires_grad and (id(t) in wanted or (t.node is not None and id(t.node) in relevant))
                    for t in node.inputs
                )
                if not any(needs):
                    continue
                full_needs, node.needs_input_grad = node.needs_input_grad, needs
            try:
                in_grads = node.backward(grad)
            finally:
                if relevant is not None:
                    node.needs_input_grad = full_needs
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for t, g, needed in zip(node.inputs, in_grads, needs):
                if needed and g is not None:
                    deposit(t, g)
    return {t: g for t, g in leaf_grads.values()}


def _relevant_nodes(order, wanted):
    """Ids of the nodes from which some target tensor can be reached going backwards."""
    relevant = set()
    for node in reversed(order):  # producers before consumers
        for t in node.inputs:
            if id(t) in wanted or (t.node is not None and id(t.node) in relevant):
                relevant.add(id(node))
                break
    return relevant


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple; ``.grad`` is
    left untouched. With ``create_graph=True`` the results can be differentiated again (what a
    gradient penalty needs). Graphs are never freed, so ``retain_graph`` changes nothing.

        >>> x = tensor([3.0], requires_grad=True)
        >>> (dy,) = grad((x ** 3).sum(), x, create_graph=True)   # 3x^2 = 27
        >>> (d2y,) = grad(dy.sum(), x)                           # 6x   = 18
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(
                f"grad(): input {i} (shape {t.shape}) does not require grad; "
                "create it with requires_grad=True or call .requires_grad_()"
            )
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"grad(): output {i} (shape {out.shape}) does not require grad, so it does not "
                "depend on any input that does"
            )
    seeds = [_seed_grad(o, g) for o, g in zip(outputs, grad_outputs)]
    found = _run_backward(outputs, seeds, inputs, create_graph)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(t)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad(): input {i} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


# --- constructors -----------------------------------------------------------------------------
def _resolve_dtype(data, dtype):
    if dtype is not None:
        return xp.dtype(dtype)
    kind = getattr(data, "dtype", None)
    if kind is not None:
        kind = kind.kind
        if kind == "f":
            return backend.get_default_dtype() if data.dtype.itemsize < 4 else data.dtype
        return data.dtype
    return None


def tensor(data, requires_grad=False, dtype=None):
    """Make a Tensor from a number, nested list, NumPy/CuPy array or Tensor. The data is always
    copied, as ``torch.tensor`` does, so an optimiser stepping the tensor never changes the
    caller's array. Floating Python data takes the default dtype (float32 unless
    ``set_default_dtype`` changed it); NumPy float64 arrays stay float64 unless ``dtype`` says."""
    if isinstance(data, Tensor):
        data = data.data
    if not backend.is_array(data):
        host = backend.asarray(data)
        if host.dtype.kind == "f" and dtype is None:
            dtype = backend.get_default_dtype()
        if host.dtype.kind == "i" and dtype is None:
            dtype = xp.int64
        data = host
    arr = xp.array(data, dtype=_resolve_dtype(data, dtype), copy=True)
    return Tensor(arr, requires_grad=requires_grad)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _dtype(dtype):
    return xp.dtype(dtype) if dtype is not None else backend.get_default_dtype()


def zeros(*shape, requires_grad=False, dtype=None):
    return Tensor(xp.zeros(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def ones(*shape, requires_grad=False, dtype=None):
    return Tensor(xp.ones(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def full(shape, value, requires_grad=False, dtype=None):
    return Tensor(xp.full(_shape((shape,)), value, dtype=_dtype(dtype)), requires_grad)


def zeros_like(t, requires_grad=False):
    return Tensor(xp.zeros_like(t.data), requires_grad)


def ones_like(t, requires_grad=False):
    return Tensor(xp.ones_like(t.data), requires_grad)


def randn(*shape, requires_grad=False, dtype=None):
    """Standard normal samples from minigan's one generator (see ``manual_seed``)."""
    return Tensor(backend.randn(_shape(shape), _dtype(dtype)), requires_grad)


def rand(*shape, requires_grad=False, dtype=None):
    """Uniform samples in [0, 1) from minigan's one generator."""
    return Tensor(backend.rand(_shape(shape), _dtype(dtype)), requires_grad)


def arange(*args, dtype=None):
    return Tensor(xp.arange(*args, dtype=dtype))

"""Tensor, Function and the backward walk.

A ``Tensor`` wraps one backend array. Every op that makes a tensor from tensors is a
``Function``: ``forward`` works on raw arrays, ``backward`` is written with Tensor ops. When the
backward pass runs with ``create_graph=True`` those ops are recorded like any others, so the
gradient is itself a differentiable graph: that is all double backward needs.

This module knows no op. ``minigan.function`` defines the node class, ``minigan.ops`` the ops,
and ops attaches Tensor's operators and methods (``x * y``, ``x.sum()``) when it is imported,
so the arrows point one way.

    >>> import minigan as mg
    >>> x = mg.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy()
    array([2., 4.], dtype=float32)
"""
from . import backend
from .backend import xp
from .grad_mode import _grad_mode, enable_grad, is_grad_enabled, no_grad  # noqa: F401

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
        self._data = data
        self._version = 0  # counts in-place changes; see Function._check_versions
        self.grad = None
        self.node = _node
        self._requires_grad = False
        self.requires_grad = requires_grad

    # --- basic properties -------------------------------------------------------------------
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, array):
        """Assigning (``t.data = a``, ``t.data += 1``) counts as an in-place change. A Tensor
        may be assigned too (``p.data = other``, as PyTorch code does): its array is taken."""
        self._data = array.data if isinstance(array, Tensor) else array
        self._version += 1

    def _modified(self):
        """Note an in-place change of ``data`` made through the array itself (optimizers,
        initialisers, loading a state dict, running statistics)."""
        self._version += 1

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, not {self.data.dtype}")
        self._requires_grad = bool(flag)

    def retain_grad(self):
        """Keep this (non-leaf) tensor's gradient in ``.grad`` when backward runs; leaves
        keep theirs anyway."""
        self._retains_grad = True

    @property
    def device(self):
        return backend.device_name()

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

    def size(self, dim=None):
        """The shape (PyTorch's ``torch.Size`` is a tuple too), or the length of axis ``dim``."""
        if dim is None:
            return self.shape
        if not -max(self.ndim, 1) <= dim < max(self.ndim, 1):
            raise IndexError(f"size: dimension {dim} is out of range for a {self.ndim}-D tensor")
        return self.shape[dim]

    def numel(self):
        """The number of elements."""
        return int(self.data.size)

    def dim(self):
        """The number of axes (``ndim``)."""
        return self.data.ndim

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def __len__(self):
        return self.shape[0]

    def numpy(self):
        """The values as a NumPy array on the host (a copy on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

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
        if self.numel() != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() / .all() on its .data or compare element-wise"
            )
        return bool(self.data)

    # --- gradients --------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        ``grad`` may be omitted only for a one-element tensor. With ``create_graph=True`` the
        gradients are themselves recorded, so they can be differentiated again. As in PyTorch,
        what the graph saved for its backward is freed once backward has run through it,
        unless ``retain_graph=True`` (which ``create_graph=True`` implies): a second backward
        through a freed graph raises. Each leaf's ``.grad`` owns its array (no two leaves, and
        not the ``grad`` passed in, share memory).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph; "
                "make its inputs with requires_grad=True (and not under no_grad())."
            )
        retain = create_graph if retain_graph is None else retain_graph
        seed = _seed_grad(self, grad)
        grads = _run_backward([self], [seed], None, create_graph, free=not retain)
        handed_out = {id(seed.data)}
        for leaf, g in grads.items():
            if not create_graph:
                g = _owned_by(leaf, g, handed_out)
            leaf.grad = g if leaf.grad is None else _accumulate(leaf.grad, g, create_graph)


def _seed_grad(out, grad):
    if grad is None:
        if out.numel() != 1:
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


def _owned_by(leaf, g, handed_out):
    """A gradient array that belongs to ``leaf`` alone, laid out in memory like the leaf.

    The backward of an addition hands the same gradient to both inputs, and a reshape hands
    on a view of the caller's seed; such arrays are copied, so clipping one leaf's gradient in
    place never changes another's. A weight used as ``weight.T`` gets a transposed
    (column-major) gradient: the optimiser's element-wise update over a row-major weight and a
    column-major gradient ran ~3x slower (the MLP GAN's Adam steps: 9.6 -> 3 ms)."""
    array = g.data
    shared = id(array) in handed_out or array.base is not None
    misplaced = leaf.data.flags.c_contiguous and not array.flags.c_contiguous
    if shared or misplaced:
        array = xp.array(array, order="C" if leaf.data.flags.c_contiguous else "K", copy=True)
        g = Tensor(array)
    handed_out.add(id(array))
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
        if getattr(node, "_freed", False):
            raise RuntimeError(
                f"backward(): the graph through {node.label} was freed by an earlier backward "
                "(what it saved for its gradient is gone); pass retain_graph=True to the first "
                "backward() or grad() to run backward through the same graph again")
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t.node is not None and id(t.node) not in visited:
                stack.append((t.node, False))
    order.reverse()  # consumers first
    return order


def _run_backward(outputs, seeds, targets, create_graph, free):
    """Push ``seeds`` from ``outputs`` back through the graph.

    Returns {tensor: gradient} for the leaves that require grad (``targets`` None) or for the
    ``targets`` tensors only (leaves or not), skipping branches that lead to no target. With
    ``free``, each node releases what it saved once its backward has run.
    """
    order = _topological_order(outputs)
    wanted = None if targets is None else {id(t) for t in targets}
    relevant = _relevant_nodes(order, wanted) if wanted is not None else None

    node_grads = {}
    leaf_grads = {}
    ran = []

    def deposit(t, g):
        if wanted is not None and id(t) in wanted:
            prev = leaf_grads.get(id(t))
            leaf_grads[id(t)] = (t, g if prev is None else _accumulate(prev[1], g, create_graph))
        if t.node is not None:
            prev = node_grads.get(id(t.node))
            node_grads[id(t.node)] = g if prev is None else _accumulate(prev, g, create_graph)
        if wanted is None and t.requires_grad and (t.node is None or getattr(t, "_retains_grad", False)):
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
            node._check_versions()
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
            ran.append(node)
    if free:  # after the walk: a node's output (which its backward may read) lives in its consumers
        for node in ran:
            node._release()
    return {t: g for t, g in leaf_grads.values()}


def _graph_inputs(outputs):
    """Ids of every tensor the graph behind ``outputs`` takes as an input (and the outputs)."""
    found = {id(t) for t in outputs}
    for node in _topological_order(outputs):
        found.update(id(t) for t in node.inputs)
    return found


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
    gradient penalty needs). The graph is freed behind the backward unless ``retain_graph``
    (default: ``create_graph``) is true, as in ``Tensor.backward``.

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
    retain = create_graph if retain_graph is None else retain_graph
    in_graph = _graph_inputs(outputs)
    found = _run_backward(outputs, seeds, inputs, create_graph, free=not retain)
    result = []
    for i, t in enumerate(inputs):
        g = found.get(t)
        if g is None and id(t) in in_graph:
            # part of the graph, but every path to it has a zero derivative (the second
            # derivative of relu, say): PyTorch answers with zeros
            g = Tensor(xp.zeros_like(t.data))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad(): input {i} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


# --- the constructor every op uses ------------------------------------------------------------
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


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a Tensor from a number, nested list, NumPy/CuPy array or Tensor. The data is always
    copied, as ``torch.tensor`` does, so an optimiser stepping the tensor never changes the
    caller's array. Floating Python data takes the default dtype (float32 unless
    ``set_default_dtype`` changed it); NumPy float64 arrays stay float64 unless ``dtype`` says.
    ``device`` is checked against the backend, as in ``Tensor.to``."""
    if device is not None:
        backend.check_device(device, "tensor")
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

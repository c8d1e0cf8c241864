"""Module and Parameter: what every layer and model is built from.

A Module registers what is assigned to it: a ``Parameter`` becomes a trainable parameter, a
Module a child, and a tensor passed to ``register_buffer`` a buffer (state that is saved but not
trained, such as BatchNorm's running statistics). ``state_dict`` walks all three with PyTorch's
dotted names ("0.weight", "1.running_mean"), so weights move between minigan and PyTorch.

    >>> from minigan import nn
    >>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
"""
from collections import namedtuple

from .. import backend
from ..autograd import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A tensor a Module trains: assigning one to a Module attribute registers it.

    Made from a Tensor (sharing its array) or from array-like data; requires grad by default.
    """

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            array = data.data
        else:
            array = backend.asarray(data)
            if array.dtype.kind == "f":
                array = array.astype(backend.get_default_dtype(), copy=False)
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclasses set attributes in ``__init__`` (after calling
    ``super().__init__()``) and define ``forward``; calling the module runs ``forward``."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", [])
        object.__setattr__(self, "_forward_hooks", [])

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        for hook in self._forward_pre_hooks:
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks:
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` runs before forward; a non-None result replaces the args."""
        self._forward_pre_hooks.append(hook)
        return hook

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` runs after forward; a non-None result replaces it."""
        self._forward_hooks.append(hook)
        return hook

    # --- registration ------------------------------------------------------------------------
    def _registry(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning parameters, "
                "buffers or submodules")
        return self._parameters, self._buffers, self._modules

    def _forget(self, name):
        for store in self._registry():
            store.pop(name, None)
        self.__dict__.pop(name, None)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.{name}: expected a Parameter or None, "
                            f"got {type(param).__name__}")
        self._registry()
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor):
        """Saved in the state dict, not trained (running statistics, counters)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"{type(self).__name__}.{name}: a buffer must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._registry()
        self._forget(name)
        self._buffers[name] = tensor

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.{name}: expected a Module or None, "
                            f"got {type(module).__name__}")
        self._registry()
        self._forget(name)
        self._modules[name] = module

    def __setattr__(self, name, value):
        params, buffers, modules = self.__dict__.get("_parameters"), self.__dict__.get("_buffers"), \
            self.__dict__.get("_modules")
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__} (a Parameter or None is expected)")
            params[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r} of "
                                f"{type(self).__name__} (a Tensor or None is expected)")
            buffers[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r} of "
                                f"{type(self).__name__} (a Module or None is expected)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only reached when ordinary attribute lookup fails
        for store in ("_parameters", "_buffers", "_modules"):
            registered = self.__dict__.get(store)
            if registered is not None and name in registered:
                return registered[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            registered = self.__dict__.get(store)
            if registered is not None and name in registered:
                del registered[name]
                return
        object.__delattr__(self, name)

    # --- traversal ---------------------------------------------------------------------------
    def named_children(self):
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            stack.extend(reversed([(f"{name}.{child_name}" if name else child_name, child)
                                   for child_name, child in module.named_children()]))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def _named_members(self, store, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Call ``fn`` on every submodule (children first) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # --- modes and gradients -----------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (batch statistics, active dropout) for this module and all below it."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter, e.g. the critic while the generator trains."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def to(self, *args, **kwargs):
        """``model.to(device)``, ``model.to(dtype)`` or both, as in PyTorch; returns the model.
        One backend holds every array, so a device is checked (see ``Tensor.to``), never moved
        to; a floating dtype converts every floating parameter and buffer in place."""
        dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}.to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, str) or hasattr(arg, "type"):
                device = arg
            else:
                dtype = arg
        backend.check_device(device, f"{type(self).__name__}.to")
        if dtype is not None:
            dtype = backend.xp.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}.to: only floating dtypes, got {dtype}")
            for _, t in self._state_items():
                if t.dtype.kind == "f" and t.dtype != dtype:
                    t.data = t.data.astype(dtype)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}")

    def float(self):
        return self.to(backend.xp.float32)

    def double(self):
        return self.to(backend.xp.float64)

    def zero_grad(self):
        for param in self.parameters():
            param.grad = None

    # --- state dict --------------------------------------------------------------------------
    def _state_items(self, prefix=""):
        """(dotted name, tensor) for parameters then buffers of each module, PyTorch's order."""
        for module_name, module in self.named_modules(prefix):
            dot = f"{module_name}." if module_name else ""
            for store in (module._parameters, module._buffers):
                for name, value in store.items():
                    if value is not None:
                        yield dot + name, value

    def state_dict(self):
        """{dotted name: tensor} of every parameter and buffer. The tensors are detached but
        share their arrays with the module: copy them (or save them) to keep a snapshot."""
        return {name: value.detach() for name, value in self._state_items()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into this module's parameters and buffers, in place.

        Keys must match exactly (``strict``) and shapes always; every problem is listed in one
        error. Values may be Tensors or arrays (NumPy, or anything NumPy can convert); they are
        cast to each target's dtype. Returns (missing_keys, unexpected_keys).
        """
        own = dict(self._state_items())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(repr, unexpected)))
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arrays[key] = value.data if isinstance(value, Tensor) else backend.asarray(value)
            if tuple(arrays[key].shape) != target.shape:
                problems.append(f"size mismatch for {key!r}: the state dict has shape "
                                f"{tuple(arrays[key].shape)}, the model has shape {target.shape}")
        if problems:
            raise RuntimeError(f"error(s) loading the state dict into {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        for key, array in arrays.items():
            own[key].data[...] = array.astype(own[key].dtype, copy=False)
            own[key]._modified()
        return IncompatibleKeys(missing, unexpected)

    # --- printing ----------------------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown between the parentheses of this module's repr."""
        return ""

    def describe(self):
        """One line naming this module and its arguments, e.g. 'Linear(in_features=2, ...)'."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self.named_children()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = ([extra] if extra else []) + lines
        return f"{type(self).__name__}(\n  " + "\n  ".join(body) + "\n)"

"""Containers: Sequential (modules applied in turn), ModuleList and ModuleDict (modules held
and registered, applied however ``forward`` says), with PyTorch's names and state-dict keys.

    >>> from minigan import nn
    >>> blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    >>> sorted(blocks.state_dict())[:2]
    ['0.bias', '0.weight']
"""
from .module import Module


class Sequential(Module):
    """Modules applied one after another. Children are named "0", "1", ... (or by the keys of a
    dict passed as the only argument); indexing, slicing, len and iteration work as on a list.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(dict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential index {index} is out of range for {len(items)} modules")
        return items[index][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules, each registered under its index ("0", "1", ...) so its parameters
    belong to the model: use it where a Python list would hide them (progressive growing's
    blocks, a StyleGAN's synthesis layers)."""

    def __init__(self, modules=None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def _key(self, index):
        if not isinstance(index, int):
            raise TypeError(f"ModuleList indices must be integers or slices, not {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"ModuleList index {index} is out of range for {len(self)} modules")
        return str(index % len(self))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __setitem__(self, index, module):
        self.add_module(self._key(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        for name in list(self._modules):
            del self._modules[name]
        self.extend(items)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward: iterate over it in your model's forward")


class ModuleDict(Module):
    """A dict of modules, each registered under its key (a string)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__}")
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module

    def pop(self, key):
        module = self._modules[key]
        del self._modules[key]
        return module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward: pick its modules in your model's forward")

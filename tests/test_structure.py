"""The shape of the package: imports point one way (no module imports one that imports it back,
not even inside a function), the engine's layers keep their order, and every module stays short
enough to read in one sitting."""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "minigan")
MAX_LINES = 500

# backend <- autograd <- ops <- functional <- nn <- optim: a module may import its own layer or
# the ones to its left, never one to its right
LAYERS = ["backend", "autograd", "ops", "functional", "nn", "optim"]
LAYER_OF = {"grad_mode": "backend", "kernels": "autograd", "creation": "autograd", "function": "autograd",
            "gradcheck": "ops"}


def _modules():
    """{dotted module name: path} for every .py file of the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, os.path.join(ROOT, "..")).split(os.sep)
                parts[-1] = parts[-1][:-3]
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


def _imports(module, path, modules):
    """The package modules ``module`` imports anywhere in its file (functions included)."""
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    # importing a submodule runs its parent packages first: that is not an arrow back
    return {t for t in targets if t in modules and not module.startswith(t + ".") and t != module}


def _graph():
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles = []
    for start in graph:  # depth-first search for a path back to ``start``
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def _layer(module):
    parts = module.split(".")
    if len(parts) < 2:
        return None
    name = LAYER_OF.get(parts[1], parts[1])
    return LAYERS.index(name) if name in LAYERS else None


def test_the_engine_layers_import_only_leftwards():
    wrong = []
    for module, targets in _graph().items():
        mine = _layer(module)
        if mine is None:
            continue
        for target in targets:
            theirs = _layer(target)
            if theirs is None or theirs > mine:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module, path", sorted(_modules().items()))
def test_every_module_is_short_enough_to_read_in_one_sitting(module, path):
    with open(path) as f:
        lines = sum(1 for _ in f)
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES})"


def test_attaching_operators_runs_no_import_statement():
    # Tensor's operators are attached once at import; using them must not import anything
    import builtins

    import minigan as mg

    x = mg.ones(2, requires_grad=True)
    original, calls = builtins.__import__, []

    def spy(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    builtins.__import__ = spy
    try:
        y = (x * x + 1 - x / 2) ** 2 @ x
        y.backward()
        x.astype(mg.float64).sum(axis=0)
    finally:
        builtins.__import__ = original
    assert calls == []

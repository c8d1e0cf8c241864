"""The backend choice, its errors, and the rule that only backend.py imports numpy/cupy."""
import ast
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "minigan"
HOST_SIDE = {"backend.py", "data.py", "io.py", "viz.py", "metrics.py", "progress.py", "experiment.py"}
HOST_SIDE_PACKAGES = {"data"}  # folders whose modules are all host side


def _import_minigan_with(backend):
    env = dict(os.environ, MINIGAN_BACKEND=backend)
    return subprocess.run([sys.executable, "-c", "import minigan"], capture_output=True, text=True, env=env)


def _last_line(stderr):
    return stderr.strip().splitlines()[-1]


def test_unknown_backend_is_one_clear_sentence():
    result = _import_minigan_with("bogus")
    assert result.returncode != 0
    line = _last_line(result.stderr)
    assert "MINIGAN_BACKEND='bogus' is not a known backend" in line and "numpy" in line and "cupy" in line


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_cupy_without_cupy_says_what_to_install():
    result = _import_minigan_with("cupy")
    assert result.returncode != 0
    line = _last_line(result.stderr)
    assert "CuPy is not installed" in line and "pip install 'minigan[gpu]'" in line
    assert "ImportError" not in result.stderr and "ModuleNotFoundError" not in result.stderr


def _engine_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.name in HOST_SIDE:
            continue
        if path.parent.parent == PACKAGE and path.parent.name in HOST_SIDE_PACKAGES:
            continue
        yield path


def _array_imports(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in ("numpy", "cupy", "cupyx")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in ("numpy", "cupy", "cupyx"):
                found.append(node.module)
    return found


def test_engine_modules_never_import_numpy_or_cupy():
    offenders = {str(p.relative_to(PACKAGE)): _array_imports(p) for p in _engine_modules()}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"engine modules must use minigan.backend.xp, not: {offenders}"
    assert len(list(_engine_modules())) >= 4  # the guard is looking at real files


def test_the_guard_sees_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom cupy import asarray\n")
    assert _array_imports(bad) == ["numpy", "cupy"]


def test_same_seed_same_numbers():
    import minigan as mg

    mg.manual_seed(3)
    a = mg.randn(5).numpy()
    state = mg.get_rng_state()
    b = mg.randn(5).numpy()
    mg.manual_seed(3)
    assert (mg.randn(5).numpy() == a).all()
    mg.set_rng_state(state)
    assert (mg.randn(5).numpy() == b).all()

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


# Allocate twenty 4 MiB arrays, write them, free them: a few times to settle, then count the page
# faults of five more rounds. Kept memory is reused without faults; memory handed back to the
# operating system faults again on every page (about 1,000 per array).
_FAULTS_PER_ROUND = """
import resource
import minigan
import numpy as np

def one_round():
    arrays = [np.ones(1 << 20, dtype=np.float32) for _ in range(20)]
    del arrays

one_round(); one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    one_round()
print(minigan.backend.keeps_freed_memory, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def _faults_per_round(**env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "MINIGAN_MALLOC"))}
    result = subprocess.run([sys.executable, "-c", _FAULTS_PER_ROUND], capture_output=True, text=True,
                            env=dict(environment, **env), check=True)
    kept, faults = result.stdout.split()
    return kept == "True", float(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the allocator setting is glibc's (Linux)")
def test_freed_arrays_are_reused_without_page_faults():
    kept, faults = _faults_per_round()
    if not kept:
        pytest.skip("this C library has no mallopt (not glibc)")
    assert faults < 100, f"{faults} page faults per round of twenty 4 MiB arrays: freed memory was handed back"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the allocator setting is glibc's (Linux)")
def test_minigan_malloc_system_leaves_the_allocator_alone():
    kept, faults = _faults_per_round(MINIGAN_MALLOC="system")
    assert not kept
    kept_by_user, _ = _faults_per_round(MALLOC_TRIM_THRESHOLD_="1000000")
    assert not kept_by_user  # the user's own glibc setting wins
    # without the setting the same rounds fault again: the test above can tell the two apart
    assert faults > 1000

"""Every lesson runs with --quick into a temporary directory, writes its files, and reports
finite losses. Each lesson runs in its own interpreter, as a learner would run it."""
import concurrent.futures
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
GAN_FILES = ("samples_final.png", "history.png", "metrics.json", "checkpoint.npz", "samples.npy")

# lesson -> (files it must write, channels of its samples or None)
EXPECTED = {
    "01_autograd": (("derivatives.png", "metrics.json"), None),
    "02_layers": (("metrics.json",), None),
    "03_mlp_gan": (GAN_FILES, 1),
    "04_dcgan": (GAN_FILES, 1),
    "05_failure_modes": (("metrics.json",), None),
    "06_wgan": (GAN_FILES, 1),
    "07_wgan_gp": (GAN_FILES, 1),
}


def run_lesson(name, out, *flags, threads=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    result = subprocess.run(
        [sys.executable, str(LESSONS / f"{name}.py"), "--quick", "--out", str(out), *flags],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, f"{name} --quick failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Every lesson's --quick run, made once (two at a time, one BLAS thread each, so the
    whole file stays well under a minute on two cores) and shared by the tests below."""
    outs = {name: tmp_path_factory.mktemp(name) for name in EXPECTED}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        failures = {name: pool.submit(_try_lesson, name, out) for name, out in outs.items()}
    return {name: (outs[name], failures[name].result()) for name in outs}


def _try_lesson(name, out):
    try:
        run_lesson(name, out, threads=1)
    except AssertionError as exc:
        return str(exc)
    return None


def test_every_lesson_file_is_covered():
    assert sorted(p.stem for p in LESSONS.glob("[0-9][0-9]_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lesson_runs_quick_and_writes_its_files(name, quick_runs):
    files, channels = EXPECTED[name]
    tmp_path, failure = quick_runs[name]
    assert failure is None, failure
    missing = [f for f in files if not (tmp_path / f).is_file()]
    assert not missing, f"{name} did not write {missing}"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    losses = {k: v for k, v in numbers.items() if "loss" in k}
    assert all(math.isfinite(v) for v in numbers.values()), f"{name}: non-finite metrics {numbers}"
    if channels is not None:
        assert losses, f"{name}: metrics.json has no loss values"
        samples = np.load(tmp_path / "samples.npy", allow_pickle=False)
        assert samples.dtype == np.float32 and samples.shape[:2] == (1000, channels)
        assert samples.min() >= -1 and samples.max() <= 1 and np.isfinite(samples).all()


def test_a_gan_lesson_resumes_from_its_checkpoint(quick_runs, tmp_path):
    shutil.copytree(quick_runs["03_mlp_gan"][0], tmp_path, dirs_exist_ok=True)
    first = json.loads((tmp_path / "metrics.json").read_text())
    result = run_lesson("03_mlp_gan", tmp_path, "--resume", "--steps", "24")
    assert "resumed from" in result.stdout
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert resumed["steps"] > first["steps"]


def test_generate_samples_in_eval_mode_and_restores_the_mode():
    import minigan as mg
    from minigan import nn
    from minigan.experiment import generate

    G = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    z = mg.randn(10, 4)
    G.train()
    G(z)  # one training batch moves the running statistics
    with mg.no_grad():
        one_by_one = mg.cat([G.eval()(z[i:i + 1]) for i in range(10)])
    G.train()
    images = generate(G, z, chunk=3, image_shape=(2, 3))
    assert G.training and not images.requires_grad and images.shape == (10, 2, 3)
    # same values up to float32 rounding (matrix products over batches of 3 vs 1 may round apart)
    np.testing.assert_allclose(images.numpy().reshape(10, 6), one_by_one.numpy(), rtol=1e-5, atol=1e-6)

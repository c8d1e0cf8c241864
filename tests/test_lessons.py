"""Every lesson runs with --quick into a temporary directory, writes its files, and reports
finite losses. Each lesson runs in its own interpreter, as a learner would run it."""
import json
import math
import os
import pathlib
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


def run_lesson(name, out, *flags):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(LESSONS / f"{name}.py"), "--quick", "--out", str(out), *flags],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, f"{name} --quick failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_every_lesson_file_is_covered():
    assert sorted(p.stem for p in LESSONS.glob("[0-9][0-9]_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_lesson_runs_quick_and_writes_its_files(name, tmp_path):
    files, channels = EXPECTED[name]
    run_lesson(name, tmp_path)
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


def test_a_gan_lesson_resumes_from_its_checkpoint(tmp_path):
    run_lesson("03_mlp_gan", tmp_path)
    first = json.loads((tmp_path / "metrics.json").read_text())
    result = run_lesson("03_mlp_gan", tmp_path, "--resume", "--steps", "24")
    assert "resumed from" in result.stdout
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert resumed["steps"] > first["steps"]

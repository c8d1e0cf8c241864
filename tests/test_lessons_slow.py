"""Slow checks, left out of the default test run (``python -m pytest -m slow`` runs them).

A GAN lesson on an MNIST-shaped dataset: four gzipped IDX files written to a temporary folder
(built-in digits in MNIST's file format, a few thousand of them, never the real files), so
the whole path a learner takes with ``--dataset mnist`` runs: reading the files, training
and caching lesson 10's judge, the diversity readings in the history, the final scores in
metrics.json, and an exact resume with all of them."""
import gzip
import json
import struct

import numpy as np
import pytest

from minigan import io
from minigan.data import load_dataset
from minigan.data.digits import generate_digits

from test_lessons import assert_identical, lesson_process, outcome

pytestmark = pytest.mark.slow

STEPS, EVERY = 1000, 500  # lesson 03 reads the diversity at its sample points, every 500 steps


def write_idx(path, array):
    """An IDX file as MNIST ships it: magic (0, 0, uint8 code, ndim), the sizes, the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_digit_files(folder, train, test):
    """MNIST's four files in ``folder``, holding ``train`` and ``test`` built-in digits."""
    folder.mkdir(parents=True)
    for prefix, n, seed in (("train", train, 5), ("t10k", test, 6)):
        images, labels = generate_digits(n, seed=seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_digit_files(root / "mnist", 3000, 600)
    return root


def run_03(out, root, steps, *flags):
    result = lesson_process("03_mlp_gan", "--dataset", "mnist", "--data-root", str(root),
                            "--out", str(out), "--steps", str(steps), "--batch-size", "32",
                            *flags, threads=1, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_files_read_as_mnist(mnist_root):
    data = load_dataset("mnist", root=mnist_root)
    assert data.name == "mnist" and data.images.shape == (3000, 1, 28, 28)
    assert len(load_dataset("mnist", root=mnist_root, train=False)) == 600


def test_a_lesson_on_mnist_reads_coverage_into_its_history_and_metrics(mnist_root, tmp_path):
    out = tmp_path / "run"
    result = run_03(out, mnist_root, STEPS)
    assert "training the mnist classifier once" in result.stderr
    assert (mnist_root / "classifiers").is_dir()  # cached beside the data for the next run
    history = io.load(out / "checkpoint.npz")["history"]
    steps = len(history["step"])
    assert steps == STEPS
    for name in ("coverage", "precision", "recall", "cosine", "pixel_std"):
        assert len(history[name]) == steps, name
    coverage = np.array(history["coverage"])
    assert set(coverage) <= set(range(11)) and np.isfinite(history["recall"]).all()
    # a reading is taken at the first step and at every sample point, then carried
    for name in ("cosine", "pixel_std"):
        changes = np.flatnonzero(np.diff(history[name])) + 1
        assert list(changes) == [EVERY * k - 1 for k in range(1, STEPS // EVERY + 1)], name

    metrics = json.loads((out / "metrics.json").read_text())
    judge = metrics["judge"]
    assert judge["dataset"] == "mnist" and judge["neighbours"] == 3
    for scores in (judge["samples"], judge["real"]):
        assert 0 <= scores["coverage"] <= 10 and len(scores["class_fractions"]) == 10
        assert abs(sum(scores["class_fractions"]) - 1) < 1e-9
        assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
        assert scores["frechet_distance"] >= 0
    # real images are the floor: the judge finds them close to the test images, and a
    # 1,000-step MLP GAN further away
    assert judge["real"]["recall"] > 0.5 and judge["real"]["precision"] > 0.5
    assert judge["real"]["frechet_distance"] < judge["samples"]["frechet_distance"]
    assert metrics["last_readings"]["coverage"] == coverage[-1] and "final_coverage" not in metrics


def test_a_resumed_run_reads_the_same_coverage(mnist_root, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_03(straight, mnist_root, STEPS)
    run_03(resumed, mnist_root, 700)
    run_03(resumed, mnist_root, STEPS, "--resume")
    assert_identical(outcome(resumed), outcome(straight))

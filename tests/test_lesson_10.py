"""Lesson 10: its quick run and its --samples scoring (each in its own interpreter, as a learner
would run them), the minibatch-stddev layer's derivatives, the calibration sets and the toy's
resume."""
import argparse
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np

import minigan as mg
from minigan.data import ImageDataset
from helpers import check_grads, load_lesson

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSON = ROOT / "lessons" / "10_evaluation.py"
SCORES = {"frechet_distance", "inception_score", "coverage", "class_fractions", "precision", "recall"}


lesson = load_lesson("10_evaluation")


def run_lesson(out, *flags):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(LESSON), "--quick", "--out", str(out), *flags],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def finite_scores(scores):
    return SCORES <= set(scores) and all(
        math.isfinite(v) for k, v in scores.items() if k != "class_fractions")


def test_quick_run_writes_its_pictures_and_the_calibration_table(tmp_path):
    result = run_lesson(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("calibration_examples.png", "calibration_classes.png", "toy_samples.png",
                 "toy_progress.png", "toy_modes.png", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 <= record["classifier_accuracy"] <= 1 and record["neighbours"] == 3
    assert list(record["calibration"]) == ["real (train)", "classes 0-4", "class 1 only",
                                           "shuffled pixels", "Gaussian noise"]
    assert all(finite_scores(s) for s in record["calibration"].values())
    assert record["calibration"]["class 1 only"]["coverage"] <= 2  # a quick judge may misread a few
    assert set(record["toy"]) == {"plain", "minibatch_stddev", "packing"}
    for variant in record["toy"].values():
        assert all(0 <= m <= lesson.RING_MODES for m in variant["modes"])
    assert "Fréchet" in result.stdout and "modes covered" in result.stdout


def test_samples_flag_scores_a_runs_samples(tmp_path):
    run_dir = tmp_path / "04_dcgan"
    run_dir.mkdir()
    samples = np.random.default_rng(0).uniform(-1, 1, (64, 1, 28, 28)).astype(np.float32)
    np.save(run_dir / "samples.npy", samples)
    result = run_lesson(tmp_path / "out", "--samples", str(run_dir / "samples.npy"))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "scores_04_dcgan.json").read_text())
    assert finite_scores(record["scores"]) and finite_scores(record["real_floor"])
    assert (tmp_path / "out" / "scores_04_dcgan_classes.png").is_file()
    assert not (tmp_path / "out" / "metrics.json").exists()  # scoring does not run the lesson


def test_samples_of_the_wrong_shape_are_refused_by_name(tmp_path):
    np.save(tmp_path / "samples.npy", np.zeros((4, 3, 32, 32), np.float32))
    result = run_lesson(tmp_path / "out", "--samples", str(tmp_path / "samples.npy"))
    assert result.returncode != 0 and "expected images shaped (N, 1, 28, 28)" in result.stderr


def test_minibatch_stddev_appends_the_mean_feature_spread():
    h = mg.tensor([[0.0, 0.0], [2.0, 4.0]], dtype=mg.float64)
    out = lesson.MinibatchStdDev()(h).numpy()
    # population std per feature: 1 and 2; their mean, 1.5, is appended to every row
    np.testing.assert_allclose(out, [[0, 0, 1.5], [2, 4, 1.5]], rtol=1e-8)
    collapsed = mg.tensor(np.ones((3, 2)), dtype=mg.float64)
    np.testing.assert_allclose(lesson.MinibatchStdDev()(collapsed).numpy()[:, 2], 1e-4)


def test_minibatch_stddev_derivatives_match_finite_differences(float64):
    check_grads(lambda h: lesson.MinibatchStdDev()(h), (5, 3))
    check_grads(lambda h: lesson.MinibatchStdDev()(h) * lesson.MinibatchStdDev()(h), (4, 2), seed=1)


def test_packed_discriminator_reads_pack_samples_per_row():
    D = lesson.make_toy_discriminator("packing")
    points = mg.randn(8, 2)
    assert D(points.reshape(-1, 2 * lesson.PACK)).shape == (8 // lesson.PACK, 1)
    assert D[0].in_features == 2 * lesson.PACK


def test_calibration_sets_hold_what_their_names_say():
    # each image carries its label in pixel (0, 0) and its index in pixels (0, 1) and (0, 2)
    n = 600
    labels = np.arange(n) % 10
    images = np.zeros((n, 1, 28, 28), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1], images[:, 0, 0, 2] = labels, np.arange(n) % 256, np.arange(n) // 256
    sets = lesson.calibration_sets(ImageDataset(images, labels, [str(d) for d in range(10)]), 40, seed=0)
    label_of = {name: s[:, 0, 0, 0] for name, s in sets.items()}
    index_of = {name: s[:, 0, 0, 1].astype(int) + 256 * s[:, 0, 0, 2].astype(int) for name, s in sets.items()}
    assert set(label_of["classes 0-4"]) == {0, 1, 2, 3, 4}
    assert set(label_of["class 1 only"]) == {1}
    for name in ("real (train)", "classes 0-4", "class 1 only"):
        assert len(set(index_of[name])) == 40, f"{name}: repeated images"
    # shuffling moves the pixels of each real image within that image
    np.testing.assert_array_equal(np.sort(sets["shuffled pixels"].reshape(40, -1), axis=1),
                                  np.sort(sets["real (train)"].reshape(40, -1), axis=1))
    assert not np.array_equal(sets["shuffled pixels"], sets["real (train)"])
    noise = sets["Gaussian noise"]
    assert noise.shape == (40, 1, 28, 28) and noise.dtype == np.float32
    assert noise.min() >= -1 and noise.max() <= 1


def test_a_resumed_toy_run_ends_where_an_uninterrupted_one_does(tmp_path):
    def run(steps, resume, out):
        args = argparse.Namespace(steps=steps, batch_size=16, out=str(out), resume=resume)
        return lesson.train_toy("minibatch_stddev", 0, args)

    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    straight = run(10, False, tmp_path / "a")
    run(4, False, tmp_path / "b")
    resumed = run(10, True, tmp_path / "b")
    np.testing.assert_array_equal(resumed["points"], straight["points"])
    assert resumed["modes"] == straight["modes"]

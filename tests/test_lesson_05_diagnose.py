"""diagnose() of lesson 05: known failure modes in synthetic curves, the verdicts on histories
recorded from real runs (tests/data/), and on short real runs of the lesson's own experiments."""
import dataclasses
import importlib.util
import json
import math
import pathlib
import random

import pytest

from minigan.data import load_dataset

LESSON = pathlib.Path(__file__).resolve().parents[1] / "lessons" / "05_failure_modes.py"
RECORDED = pathlib.Path(__file__).resolve().parent / "data"
JUDGE_READINGS = ("coverage", "precision", "recall")


@pytest.fixture(scope="module")
def lesson():
    # The file name starts with a digit, so it cannot be imported with an import statement.
    spec = importlib.util.spec_from_file_location("lesson_05_failure_modes", LESSON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curves(n=600, d_real=0.7, d_fake=0.3, cosine=0.75, pixel_std=0.3, grad_g=1.0,
           noise=0.05, wave=0.0, period=100, seed=0, coverage=None, recall=None):
    """A synthetic history: constant levels plus batch noise, and optionally a slow wave on D;
    with ``coverage`` and ``recall``, the judge's readings too."""
    rng = random.Random(seed)

    def jitter(level, scale=noise):
        return [level + rng.uniform(-scale, scale) for _ in range(n)]

    wobble = [wave * math.sin(2 * math.pi * i / period) for i in range(n)]
    fake = [min(max(f + w, 0.0), 1.0) for f, w in zip(jitter(d_fake), wobble)]
    real = [min(max(r - w, 0.0), 1.0) for r, w in zip(jitter(d_real), wobble)]
    history = {"step": list(range(n)), "d_real": real, "d_fake": fake,
               "loss_d": jitter(1.2), "loss_g": jitter(1.0), "cosine": jitter(cosine, 0.01),
               "pixel_std": jitter(pixel_std, 0.01), "grad_g": jitter(grad_g, 0.1 * grad_g)}
    if coverage is not None:
        history.update(coverage=[coverage] * n, recall=jitter(recall, 0.02),
                       precision=jitter(0.6, 0.02))
    return history


SYNTHETIC = [
    ("healthy", dict(), "healthy"),
    ("healthy, noisy D", dict(noise=0.25), "healthy"),
    ("mode collapse", dict(cosine=0.99, pixel_std=0.05, d_real=0.55, d_fake=0.45), "mode collapse"),
    ("collapse seen in pixel std only", dict(cosine=0.8, pixel_std=0.08), "mode collapse"),
    ("discriminator wins", dict(d_real=0.98, d_fake=0.02, grad_g=3.0, noise=0.01),
     "discriminator wins"),
    ("vanishing gradient", dict(d_real=0.999, d_fake=0.002, grad_g=0.003, noise=0.001),
     "discriminator wins"),
    ("oscillation", dict(wave=0.25, period=120), "oscillation"),
    ("healthy by the judge", dict(coverage=10, recall=0.8), "healthy"),
    ("collapse seen by the judge's recall only", dict(coverage=10, recall=0.1), "mode collapse"),
    ("collapse seen by the judge's coverage only", dict(coverage=6, recall=0.5), "mode collapse"),
]


@pytest.mark.parametrize("name, settings, expected", SYNTHETIC, ids=[c[0] for c in SYNTHETIC])
def test_synthetic_histories(lesson, name, settings, expected):
    diagnosis = lesson.diagnose(curves(**settings))
    assert diagnosis.mode == expected, str(diagnosis)
    assert diagnosis.fix and {"d_real", "d_fake", "swing"} <= set(diagnosis.evidence)


def test_the_fix_follows_the_cause(lesson):
    vanishing = lesson.diagnose(curves(d_real=0.999, d_fake=0.002, grad_g=0.003, noise=0.001))
    strong = lesson.diagnose(curves(d_real=0.98, d_fake=0.02, grad_g=3.0, noise=0.01))
    assert "non-saturating" in vanishing.fix
    assert "label smoothing" in strong.fix
    assert "TTUR" in lesson.diagnose(curves(cosine=0.99, pixel_std=0.05)).fix


def test_only_d_scores_are_required(lesson):
    history = curves()
    minimal = {k: history[k] for k in ("d_real", "d_fake")}
    assert lesson.diagnose(minimal).mode == "healthy"
    assert lesson.diagnose(dict(minimal, d_fake=[0.01] * 600, d_real=[0.99] * 600)).mode == \
        "discriminator wins"


def test_reference_sets_the_collapse_threshold(lesson):
    history = curves(cosine=0.9, pixel_std=0.3)
    assert lesson.diagnose(history, {"cosine": 0.7, "pixel_std": 0.36}).mode == "healthy"
    assert lesson.diagnose(history, {"cosine": 0.5, "pixel_std": 0.36}).mode == "mode collapse"


# --- histories recorded from real runs ---------------------------------------------------------
def recorded(name):
    """A real run's history (every 20th step of it) and its real data's cosine and spread."""
    saved = json.loads((RECORDED / f"history_{name}.json").read_text())
    return saved["history"], saved["reference"]


RECORDED_RUNS = [
    # lesson 03 on MNIST without BatchNorm in G: a third of the samples are 1s, recall 0.02
    ("03_mnist_without_batchnorm", "mode collapse"),
    # lesson 03's default run on MNIST: every digit, recall 0.9
    ("03_mnist", "healthy"),
]


@pytest.mark.parametrize("name, expected", RECORDED_RUNS, ids=[r[0] for r in RECORDED_RUNS])
def test_recorded_histories_of_real_runs(lesson, name, expected):
    history, reference = recorded(name)
    assert len(history["step"]) >= 300 and set(JUDGE_READINGS) <= set(history)
    diagnosis = lesson.diagnose(history, reference)
    assert diagnosis.mode == expected, str(diagnosis)


def test_the_collapse_on_mnist_is_seen_by_the_judge_not_by_the_pixels(lesson):
    """The collapsed run's cosine and pixel spread look like real data's; only the judge's
    readings (its recall and the classes it covers) show that digits are missing."""
    history, reference = recorded("03_mnist_without_batchnorm")
    diagnosis = lesson.diagnose(history, reference)
    assert diagnosis.evidence["recall"] < 0.1 and diagnosis.evidence["coverage"] < 8
    pixels_only = {k: v for k, v in history.items() if k not in JUDGE_READINGS}
    assert lesson.diagnose(pixels_only, reference).mode == "healthy"


# --- short real runs of the lesson's own experiments -------------------------------------------
REAL_RUNS = [
    # experiment, steps, batch size, expected mode, a word the fix must contain: a few hundred
    # steps, long enough for each failure to settle in (collapse sets its own batch of 16).
    ("saturating", 400, 64, "discriminator wins", "non-saturating"),
    ("strong_d", 250, 32, "discriminator wins", "label smoothing"),  # at 150 d_fake sat on the 0.05 line
    ("collapse", 80, 64, "mode collapse", "TTUR"),
]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("name, steps, batch_size, expected, fix_word", REAL_RUNS,
                         ids=[r[0] for r in REAL_RUNS])
def test_real_runs(lesson, digits, tmp_path, name, steps, batch_size, expected, fix_word):
    args = lesson.parse_args(["--steps", str(steps), "--batch-size", str(batch_size),
                              "--out", str(tmp_path), "--experiments", name,
                              "--diversity-every", "10", "--no-judge"])
    lesson.mg.manual_seed(0)
    diversity_z = lesson.mg.randn(64, lesson.LATENT)
    run, _, _ = lesson.train(name, lesson.EXPERIMENTS[name], args, digits, diversity_z)
    diagnosis = lesson.diagnose(run.history)
    assert diagnosis.mode == expected, str(diagnosis)
    assert fix_word in diagnosis.fix


def test_experiments_pair_each_failure_with_a_fix(lesson):
    fixes = {e.fixes for e in lesson.EXPERIMENTS.values() if e.fixes}
    assert fixes == {n for n, e in lesson.EXPERIMENTS.items() if not e.fixes}
    assert all(dataclasses.is_dataclass(e) for e in lesson.EXPERIMENTS.values())


def test_every_fix_gives_g_lesson_03s_batchnorm_back_and_no_failure_has_it(lesson, digits, tmp_path):
    for name, exp in lesson.EXPERIMENTS.items():
        assert exp.batchnorm == bool(exp.fixes), name
    args = lesson.parse_args(["--steps", "2", "--batch-size", "8", "--out", str(tmp_path),
                              "--no-judge"])
    diversity_z = lesson.mg.randn(8, lesson.LATENT)
    for name in ("collapse", "ttur"):
        _, G, _ = lesson.train(name, lesson.EXPERIMENTS[name], args, digits, diversity_z)
        norms = [m for m in G.modules() if isinstance(m, lesson.nn.BatchNorm1d)]
        assert len(norms) == (2 if name == "ttur" else 0), name

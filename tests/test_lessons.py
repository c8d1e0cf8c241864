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
    "08_sngan": (("samples_final.png", "history.png", "sigma.png", "samples.png", "metrics.json", "samples.npy"), None),
    "09_conditional": (GAN_FILES + ("agreement.png", "labels.npy", "evaluations.json"), 1),
    "10_evaluation": (("metrics.json", "toy_samples.png", "calibration_classes.png"), None),
    "11_dcgan_color": (GAN_FILES + ("colour_histograms.png", "checkerboard.png", "spectra.png"), 3),
    "12_progressive": (GAN_FILES + ("growth.png", "fade_in.png", "stage_32.png"), 1),
    "13_stylegan": (GAN_FILES + ("style_mixing.png", "truncation.png", "noise.png", "ema.png"), 1),
}


def lesson_process(name, *arguments, threads=None, timeout=120):
    """Run lessons/<name>.py with ``arguments`` in its own interpreter; returns the result."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, str(LESSONS / f"{name}.py"), *arguments],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout,
                          check=False)


# The GAN lessons' smoke tests read diversity without lesson 10's judge, so they never train one
# (tests/test_lessons_slow.py runs a lesson with it) and run alike with or without its cache.
NO_JUDGE = {name: ("--no-judge",) for name in ("03_mlp_gan", "04_dcgan", "05_failure_modes",
                                               "06_wgan", "07_wgan_gp")}


def run_lesson(name, out, *flags, threads=None):
    result = lesson_process(name, "--quick", "--out", str(out), *NO_JUDGE.get(name, ()), *flags,
                            threads=threads)
    assert result.returncode == 0, f"{name} --quick failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def quick(name, out, *flags):
    """One --quick run at one BLAS thread, for the test files of single lessons."""
    result = lesson_process(name, "--quick", "--out", str(out), *flags, threads=1)
    assert result.returncode == 0, f"{name} --quick failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def finite_numbers(record):
    """Whether every number in a metrics record is finite."""
    return all(math.isfinite(v) for v in record.values()
               if isinstance(v, (int, float)) and not isinstance(v, bool))


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


# lessons whose quick runs, files and resume are checked in a test file of their own
OWN_TESTS = {"14_pix2pix": "test_lessons_14_15.py", "15_cyclegan": "test_lessons_14_15.py"}


def test_every_lesson_file_is_covered():
    assert sorted(p.stem for p in LESSONS.glob("[0-9][0-9]_*.py")) == sorted([*EXPECTED, *OWN_TESTS])
    for name, test_file in OWN_TESTS.items():
        assert f'quick("{name}"' in (ROOT / "tests" / test_file).read_text(), f"{test_file} runs no {name} --quick"


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


# --- exact resume -------------------------------------------------------------------------------
RESUMES = [
    # lesson, flags, total steps, the steps it is stopped at and resumed from. 40 images in
    # batches of 8 make five batches an epoch: stopped at 7 is mid-epoch and the resumed run
    # crosses the epoch's end at 10; stopped at 5 is exactly at an epoch's end, then at 8 again
    # mid-epoch.
    ("03_mlp_gan", ("--train-size", "40", "--batch-size", "8"), 12, (7,)),
    ("03_mlp_gan", ("--train-size", "40", "--batch-size", "8"), 12, (5, 8)),
    ("04_dcgan", ("--train-size", "40", "--batch-size", "8"), 8, (3,)),
    # five D steps per step: eight batches an epoch, so epochs end inside steps
    ("05_failure_modes", ("--train-size", "64", "--batch-size", "8", "--experiments", "strong_d",
                          "--diversity-every", "2"), 6, (3,)),
    # five critic batches a step, three batches an epoch: stopped at 2 is mid-epoch
    ("06_wgan", ("--train-size", "48", "--batch-size", "16", "--critic-steps", "5"), 4, (2,)),
    ("07_wgan_gp", ("--train-size", "40", "--batch-size", "8"), 4, (2,)),
]


def run_steps(name, out, flags, steps, resume=False):
    arguments = ["--out", str(out), *NO_JUDGE[name], *flags, "--steps", str(steps)] + \
        (["--resume"] if resume else [])
    result = lesson_process(name, *arguments, threads=1, timeout=300)
    assert result.returncode == 0, f"{name} {' '.join(arguments)} failed:\n{result.stderr[-3000:]}"


def outcome(out):
    """What an uninterrupted and a resumed run must share: the checkpoint (weights, optimizer
    and stream states, RNG, history), metrics but the wall time, samples.npy, the final grid."""
    from minigan import io

    checkpoint = io.load(out / "checkpoint.npz")
    checkpoint["extra"].pop("elapsed")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("seconds")
    return {"checkpoint": checkpoint, "metrics": metrics,
            "samples.npy": np.load(out / "samples.npy"),
            "samples_final.png": (out / "samples_final.png").read_bytes()}


def assert_identical(a, b, where="run"):
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype} {a.shape} vs {b.dtype} {b.shape}"
        assert np.array_equal(a, b, equal_nan=True), f"{where}: values differ, by up to " \
            f"{np.nanmax(np.abs(a.astype(np.float64) - b)):.3g}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


@pytest.mark.parametrize("name, flags, steps, stops", RESUMES,
                         ids=[f"{r[0]}-stopped-at-{'-'.join(map(str, r[3]))}" for r in RESUMES])
def test_a_stopped_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(
        tmp_path, name, flags, steps, stops):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"

    def stop_and_resume():
        for i, stop in enumerate(stops):
            run_steps(name, resumed, flags, stop, resume=i > 0)
        run_steps(name, resumed, flags, steps, resume=True)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(run_steps, name, straight, flags, steps), pool.submit(stop_and_resume)]
        for job in jobs:
            job.result()
    if name == "05_failure_modes":  # each experiment is a run of its own, in its own folder
        straight, resumed = straight / "strong_d", resumed / "strong_d"
    assert_identical(outcome(resumed), outcome(straight))


@pytest.mark.parametrize("name", ["06_wgan", "07_wgan_gp"])
def test_wgan_takes_as_many_critic_steps_per_generator_step_as_critic_steps_asks(tmp_path, name):
    """Every critic step draws a real batch, so the data stream's position in its epoch counts
    them: two generator steps with --critic-steps 1 serve 2 batches of 4, with 3 they serve 6."""
    from minigan import io

    for critic_steps in (1, 3):
        out = tmp_path / str(critic_steps)
        run_lesson(name, out, "--train-size", "40", "--batch-size", "4",
                   "--critic-steps", str(critic_steps), threads=1)
        stream = io.load(out / "checkpoint.npz")["streams"]["real"]
        assert (stream["epoch"], stream["position"]) == (1, 2 * critic_steps * 4)
        assert json.loads((out / "metrics.json").read_text())["critic_steps"] == critic_steps
    # the checkpoint records the ratio: continuing the 3-step run with another one is refused
    result = lesson_process(name, "--quick", "--out", str(out), *NO_JUDGE.get(name, ()), "--train-size", "40",
                            "--batch-size", "4", "--critic-steps", "1", "--steps", "4", "--resume", threads=1)
    assert result.returncode != 0 and "was made with critic_steps 3 (now 1)" in result.stderr, result.stderr[-2000:]


# --- refusals and failures ----------------------------------------------------------------------
BAD_FLAGS = [("01_autograd", "--seed", "-1"), ("02_layers", "--seed", "-1"),
             ("03_mlp_gan", "--batch-size", "-5"), ("04_dcgan", "--batch-size", "0"),
             ("05_failure_modes", "--steps", "0"), ("06_wgan", "--steps", "-1"),
             ("07_wgan_gp", "--seed", "-1"), ("07_wgan_gp", "--critic-steps", "0"),
             ("06_wgan", "--critic-steps", "0"),
             ("05_failure_modes", "--diversity-every", "0")]


@pytest.mark.parametrize("name, flag, value", BAD_FLAGS)
def test_a_bad_flag_stops_the_lesson_with_an_error_naming_it(tmp_path, name, flag, value):
    result = lesson_process(name, "--out", str(tmp_path), flag, value)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"argument {flag}: expected" in result.stderr and f"got {value}" in result.stderr
    assert not list(tmp_path.iterdir()), "a refused run must not write files"


def test_resuming_to_fewer_steps_than_the_checkpoint_is_refused(quick_runs, tmp_path):
    shutil.copytree(quick_runs["03_mlp_gan"][0], tmp_path, dirs_exist_ok=True)
    metrics_before = (tmp_path / "metrics.json").read_bytes()
    result = lesson_process("03_mlp_gan", "--out", str(tmp_path), "--resume", "--steps", "5")
    assert result.returncode == 1
    assert "is at step 12, past --steps 5" in result.stderr and ">= 12" in result.stderr
    assert (tmp_path / "metrics.json").read_bytes() == metrics_before


def test_a_diverged_lesson_still_writes_samples_metrics_and_grid(quick_runs, tmp_path):
    from minigan import io

    shutil.copytree(quick_runs["03_mlp_gan"][0], tmp_path, dirs_exist_ok=True)
    for name in ("samples.npy", "samples_final.png", "metrics.json"):
        (tmp_path / name).unlink()
    state = io.load(tmp_path / "checkpoint.npz")
    state["models"]["G"]["6.bias"][:] = np.nan  # the output layer's bias: every pixel NaN
    io.save(state, tmp_path / "checkpoint.npz")
    result = run_lesson("03_mlp_gan", tmp_path, "--resume", "--steps", "14")
    assert "the run diverged: 100.0% of the sample values are NaN or infinite" in result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["diverged"] is True and metrics["nonfinite_fraction"] == 1.0
    assert "feature_distance" not in metrics and metrics["steps"] == 14
    assert np.isnan(np.load(tmp_path / "samples.npy")).all()
    assert (tmp_path / "samples_final.png").is_file()

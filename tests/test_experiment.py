"""minigan.experiment: the lessons' flags, the pieces they share, and a Run's checkpoints and
final files (resume refusals, the dataset it really used, a diverged run)."""
import json

import numpy as np
import pytest

import minigan as mg
from minigan import nn, optim
from minigan.data import MNIST, DatasetUnavailable, forever
from minigan.experiment import (
    EMA_HALF_LIFE,
    EMA_RAMP,
    Run,
    dcgan_generator,
    dcgan_init,
    fork_rng,
    lesson_parser,
    non_negative_int,
    positive_int,
    update_ema,
)

from helpers import load_lesson


def parser():
    return lesson_parser("99_test", "a test lesson", steps=40, batch_size=8, quick_steps=3)


def parse(*flags):
    return parser().parse_args(list(flags))


# --- flags --------------------------------------------------------------------------------------
BAD_FLAGS = [
    ("--steps", "0", "expected a positive integer, got 0"),
    ("--steps", "-1", "expected a positive integer, got -1"),
    ("--batch-size", "0", "expected a positive integer, got 0"),
    ("--batch-size", "-5", "expected a positive integer, got -5"),
    ("--batch-size", "2.5", "expected a positive integer, got '2.5'"),
    ("--train-size", "0", "expected a positive integer, got 0"),
    ("--seed", "-1", "expected an integer >= 0, got -1"),
    ("--seed", "x", "expected an integer >= 0, got 'x'"),
]


@pytest.mark.parametrize("flag, value, message", BAD_FLAGS)
def test_bad_counts_and_seeds_are_argparse_errors_naming_flag_and_value(capsys, flag, value,
                                                                        message):
    with pytest.raises(SystemExit) as exit_info:
        parse(flag, value)
    assert exit_info.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_steps_come_from_the_flag_then_quick_then_the_default():
    assert parse().steps == 40
    assert parse("--quick").steps == 3
    assert parse("--quick", "--steps", "7").steps == 7
    args = parse("--batch-size", "4", "--seed", "0", "--train-size", "16")
    assert (args.batch_size, args.seed, args.train_size) == (4, 0, 16)
    assert parse().train_size is None


def test_the_argparse_types_accept_their_range():
    assert positive_int("1") == 1 and positive_int("12") == 12
    assert non_negative_int("0") == 0 and non_negative_int("7") == 7


# --- shared pieces ------------------------------------------------------------------------------
def test_fork_rng_puts_the_rng_back_after_the_block():
    mg.manual_seed(3)
    expected = mg.randn(5).numpy()
    mg.manual_seed(3)
    with fork_rng():
        inside = mg.randn(5).numpy()
        mg.randn(100)
    np.testing.assert_array_equal(inside, expected)  # the block drew the numbers that were next
    np.testing.assert_array_equal(mg.randn(5).numpy(), expected)  # ... and left them next
    with pytest.raises(RuntimeError), fork_rng():
        mg.randn(7)
        raise RuntimeError("the state comes back on errors too")
    mg.manual_seed(3)
    mg.randn(5)
    after = mg.randn(2).numpy()
    mg.manual_seed(3)
    mg.randn(5)
    np.testing.assert_array_equal(mg.randn(2).numpy(), after)


def test_dcgan_init_draws_the_papers_weights_and_leaves_other_layers_alone():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 4), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 32, 4),
                          nn.Linear(5, 5))
    linear_before = model[3].weight.numpy().copy()
    model.apply(dcgan_init)
    for conv in (model[0], model[2]):
        weights = conv.weight.numpy()
        assert abs(weights.mean()) < 0.002 and 0.019 < weights.std() < 0.021
        assert not conv.bias.numpy().any()
    scale = model[1].weight.numpy()
    assert abs(scale.mean() - 1) < 0.01 and 0.01 < scale.std() < 0.03
    assert not model[1].bias.numpy().any()
    np.testing.assert_array_equal(model[3].weight.numpy(), linear_before)


def test_dcgan_generator_at_width_32_is_lesson_04s_generator():
    lesson = load_lesson("04_dcgan")
    mg.manual_seed(1)
    written_out = lesson.make_generator().apply(dcgan_init)
    mg.manual_seed(1)
    shared = dcgan_generator(lesson.LATENT, 32).apply(dcgan_init)
    assert repr(shared) == repr(written_out)
    for (key, a), (other, b) in zip(shared.state_dict().items(), written_out.state_dict().items()):
        assert key == other
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert shared(mg.randn(2, lesson.LATENT, 1, 1)).shape == (2, 1, 28, 28)
    assert dcgan_generator(10, 8)(mg.randn(3, 10, 1, 1)).shape == (3, 1, 28, 28)


def test_update_ema_averages_weights_by_a_half_life_in_images_and_copies_buffers():
    import copy

    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    G_ema = copy.deepcopy(G)
    old = [p.numpy().copy() for p in G_ema.parameters()]
    for p in G.parameters():
        p.data[...] += 2.0
    G[1].running_mean.data[...] = 5.0
    # long into a run the half-life is the full 10,000 images: a batch of 100 keeps 0.5 ** 0.01
    update_ema(G_ema, G, images_seen=10**6, batch=100)
    beta = 0.5 ** (100 / EMA_HALF_LIFE)
    for before, averaged, current in zip(old, G_ema.parameters(), G.parameters()):
        # float32 rounding at the scale of the operands (about 2): a few 1e-7
        np.testing.assert_allclose(averaged.numpy(), beta * before + (1 - beta) * current.numpy(), atol=1e-6)
    assert np.all(G_ema[1].running_mean.numpy() == 5.0)  # buffers are copied, not averaged
    # after 100 images the half-life is 5 images (EMA_RAMP of them): a batch of 100 keeps
    # 0.5 ** 20 of the average, which all but jumps to G
    assert EMA_RAMP * 100 == 5
    old = [p.numpy().copy() for p in G_ema.parameters()]
    update_ema(G_ema, G, images_seen=100, batch=100)
    for before, averaged, current in zip(old, G_ema.parameters(), G.parameters()):
        expected = current.numpy() + 0.5 ** 20 * (before - current.numpy())
        np.testing.assert_allclose(averaged.numpy(), expected, atol=1e-6)
        assert np.abs(averaged.numpy() - current.numpy()).max() < 1e-5


# --- resuming -----------------------------------------------------------------------------------
def tiny_run(tmp_path, *flags):
    """A Run over a 16-image dataset with a small model, its optimizer and data stream."""
    args = parse("--out", str(tmp_path), "--train-size", "16", *flags)
    run = Run(args)
    mg.manual_seed(args.seed)
    data = run.load_dataset()
    model = nn.Linear(28 * 28, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    stream = forever(data, args.batch_size)
    return run, {"m": model}, {"sgd": opt}, {"real": stream}


def train(run, models, optimizers, streams, start):
    for step in run.steps(start):
        x = next(streams["real"])[0].reshape(run.args.batch_size, -1)
        loss = (models["m"](x) ** 2).mean()
        optimizers["sgd"].zero_grad()
        loss.backward()
        optimizers["sgd"].step()
        run.log(step, loss=loss)
    run.save_checkpoint(run.args.steps, models, optimizers, streams)


def test_a_tiny_run_resumes_bit_for_bit(tmp_path):
    straight = tiny_run(tmp_path / "a", "--steps", "7")
    train(*straight, 0)
    first = tiny_run(tmp_path / "b", "--steps", "3")
    train(*first, 0)
    resumed = tiny_run(tmp_path / "b", "--steps", "7", "--resume")
    start = resumed[0].resume(*resumed[1:])
    assert start == 3
    train(*resumed, start)
    assert resumed[0].history == straight[0].history
    np.testing.assert_array_equal(resumed[1]["m"].weight.numpy(), straight[1]["m"].weight.numpy())


@pytest.fixture
def checkpointed(tmp_path):
    """A tiny run trained for 5 steps, with its checkpoint; returns its directory."""
    run = tiny_run(tmp_path, "--steps", "5")
    train(*run, 0)
    return tmp_path


def refused(tmp_path, *flags):
    """Resume with ``flags``; return the error and whether the model kept its weights."""
    run, models, optimizers, streams = tiny_run(tmp_path, "--resume", *flags)
    before = models["m"].weight.numpy().copy()
    with pytest.raises(SystemExit) as exit_info:
        run.resume(models, optimizers, streams)
    return str(exit_info.value), np.array_equal(models["m"].weight.numpy(), before)


def test_resuming_with_fewer_steps_than_the_checkpoint_is_refused(checkpointed):
    message, unchanged = refused(checkpointed, "--steps", "3")
    assert "checkpoint.npz is at step 5, past --steps 3" in message
    assert "must be >= 5 to resume it" in message and unchanged


@pytest.mark.parametrize("flags, change", [
    (("--batch-size", "4"), "batch_size 8 (now 4)"),
    (("--seed", "1"), "seed 0 (now 1)"),
    (("--train-size", "12"), "train_size 16 (now 12)"),
])
def test_resuming_with_other_settings_is_refused(checkpointed, flags, change):
    message, unchanged = refused(checkpointed, "--steps", "9", *flags)
    assert f"was made with {change}" in message and unchanged


def test_a_lessons_recipe_flag_must_match_to_resume(tmp_path):
    # Run(recipe=...) names a lesson's own flags that change what a step does (lesson 04's
    # --paper-recipe): the checkpoint records them, and a resume with another value is refused
    def recipe_run(sharp, *flags):
        run, models, optimizers, streams = tiny_run(tmp_path, *flags)
        run.args.sharp = sharp
        run.recipe = ("sharp",)
        return run, models, optimizers, streams

    first = recipe_run(True, "--steps", "3")
    train(*first, 0)
    same = recipe_run(True, "--steps", "5", "--resume")
    assert same[0].resume(*same[1:]) == 3
    other = recipe_run(False, "--steps", "5", "--resume")
    with pytest.raises(SystemExit, match="was made with sharp True \\(now False\\)"):
        other[0].resume(*other[1:])
    # a checkpoint from before the lesson had the flag has no record of it: refused, saying so
    plain = tiny_run(tmp_path / "plain", "--steps", "3")
    train(*plain, 0)
    newer = recipe_run(True, "--steps", "5", "--resume", "--out", str(tmp_path / "plain"))
    with pytest.raises(SystemExit, match="sharp unrecorded, by an older version of the lesson \\(now True\\)"):
        newer[0].resume(*newer[1:])
    assert Run(parse("--out", str(tmp_path)), recipe=("seed",)).recipe == ("seed",)


def test_resuming_from_a_damaged_checkpoint_says_why(checkpointed):
    path = checkpointed / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:-30])
    message, unchanged = refused(checkpointed, "--steps", "9")
    assert "cannot resume" in message and "truncated or corrupted" in message and unchanged


def test_resuming_a_checkpoint_of_another_model_says_why(checkpointed):
    run, _, optimizers, streams = tiny_run(checkpointed, "--resume", "--steps", "9")
    with pytest.raises(SystemExit, match="(?s)cannot resume from .*checkpoint.npz: .*size mismatch"):
        run.resume({"m": nn.Linear(28 * 28, 2)}, optimizers, streams)


def test_a_resume_to_as_many_steps_as_the_checkpoint_trains_nothing(checkpointed):
    run, models, optimizers, streams = tiny_run(checkpointed, "--resume", "--steps", "5")
    assert run.resume(models, optimizers, streams) == 5 and len(run.steps(5)) == 0


def test_train_size_larger_than_the_dataset_or_batch_is_refused(tmp_path):
    run = Run(parse("--out", str(tmp_path), "--train-size", "70000"))
    with pytest.raises(SystemExit, match="--train-size 70000 is more than the 60000 images of digits"):
        run.load_dataset()
    run = Run(parse("--out", str(tmp_path), "--train-size", "4", "--batch-size", "8"))
    with pytest.raises(SystemExit, match="--batch-size 8 is more than the 4 images of digits"):
        run.load_dataset()


# --- the end of a run ---------------------------------------------------------------------------
def read_metrics(folder):
    def no_nan(name):
        raise AssertionError(f"metrics.json holds {name}, which is not JSON")
    return json.loads((folder / "metrics.json").read_text(), parse_constant=no_nan)


def test_metrics_name_the_dataset_really_used_after_an_offline_fallback(tmp_path, monkeypatch):
    def offline(self, filenames, download, mirrors):
        raise DatasetUnavailable("MNIST is not available: no network (in this test)")

    monkeypatch.setattr(MNIST, "_ensure_files", offline)
    run = Run(parse("--out", str(tmp_path), "--dataset", "mnist", "--train-size", "32"))
    data = run.load_dataset()
    assert data.name == "digits" and len(data) == 32
    run.finish(np.zeros((4, 1, 28, 28)), np.zeros((10, 1, 28, 28)), plot=False)
    metrics = read_metrics(tmp_path)
    assert (metrics["dataset"], metrics["dataset_requested"], metrics["train_size"]) == \
        ("digits", "mnist", 32)
    assert metrics["diverged"] is False and "nonfinite_fraction" not in metrics


def test_metrics_of_a_run_on_the_dataset_asked_for_have_no_requested_entry(tmp_path):
    run = Run(parse("--out", str(tmp_path)))
    assert run.load_dataset().name == "digits"
    run.finish(np.zeros((4, 1, 28, 28)), np.zeros((10, 1, 28, 28)), plot=False)
    metrics = read_metrics(tmp_path)
    assert metrics["dataset"] == "digits" and "dataset_requested" not in metrics
    assert "train_size" not in metrics


class Diverged(nn.Module):
    """A generator whose weights blew up: every tenth pixel of every image is NaN."""

    def forward(self, z):
        images = mg.tanh(z.reshape(len(z), 1, 1, 1) * mg.ones(1, 1, 28, 28))
        mask = np.zeros((1, 1, 28, 28), dtype=np.float32)
        mask.reshape(-1)[::10] = np.nan
        return images + mg.tensor(mask)


def test_a_diverged_run_still_writes_its_evidence(tmp_path, capsys):
    run = Run(parse("--out", str(tmp_path), "--train-size", "16"))
    data = run.load_dataset()
    run.log(0, loss_d=float("nan"), loss_g=1.0)
    with pytest.warns(RuntimeWarning, match="NaN or infinite; painted magenta"):
        grid, samples, metrics = run.finish_gan(Diverged(), mg.randn(8, 1), data)
    saved = np.load(tmp_path / "samples.npy")
    assert saved.shape == (1000, 1, 28, 28) and np.isnan(saved).sum() == 1000 * 79
    np.testing.assert_array_equal(np.isnan(saved), np.isnan(samples))
    assert (tmp_path / "samples_final.png").is_file() and grid.shape == (8, 1, 28, 28)
    on_disk = read_metrics(tmp_path)
    assert on_disk["diverged"] is True
    assert on_disk["nonfinite_fraction"] == pytest.approx(79 / 784)
    assert on_disk["final_loss_d"] is None and on_disk["final_loss_g"] == 1.0
    assert not {"feature_distance", "pixel_std", "mean_pairwise_cosine"} & set(on_disk)
    assert metrics["diverged"] is True
    assert "the run diverged: 10.1% of the sample values are NaN or infinite" in \
        capsys.readouterr().err


def test_a_healthy_run_is_compared_with_real_images(tmp_path):
    run = Run(parse("--out", str(tmp_path), "--train-size", "16"))
    data = run.load_dataset()
    G = nn.Sequential(nn.Linear(4, 28 * 28), nn.Tanh())
    _, samples, metrics = run.finish_gan(G, mg.randn(8, 4), data, image_shape=(1, 28, 28),
                                         metrics={"first": 1})
    assert list(metrics)[:2] == ["first", "mean_pairwise_cosine"]
    assert metrics["diverged"] is False and np.isfinite(metrics["feature_distance"])
    assert samples.shape == (1000, 1, 28, 28)
    np.testing.assert_array_equal(np.load(tmp_path / "samples.npy"), samples)
    assert read_metrics(tmp_path)["feature_distance"] == metrics["feature_distance"]


# --- what the samples cover ---------------------------------------------------------------------
def untrained_judge():
    """A judge with lesson 10's network, untrained but fixed by its seed: its readings mean
    nothing, but they are real readings, computed the way a trained judge's are."""
    from minigan.classifier import Classifier, make_classifier
    from minigan.data import DIGIT_CLASSES

    mg.manual_seed(123)
    return Classifier(make_classifier(), "digits", (1, 28, 28), DIGIT_CLASSES)


def watched_run(tmp_path, *flags, judge=None):
    """A tiny GAN-shaped run whose generator's diversity is tracked every 2 steps."""
    run, models, optimizers, streams = tiny_run(tmp_path, "--batch-size", "4", *flags)
    run.judge = judge
    models["G"] = nn.Sequential(nn.Linear(3, 28 * 28), nn.Tanh())
    optimizers["g"] = optim.SGD(models["G"].parameters(), lr=0.5)
    run.track_diversity(models["G"], mg.randn(12, 3), image_shape=(1, 28, 28), every=2)
    return run, models, optimizers, streams


def train_watched(run, models, optimizers, streams, start):
    G = models["G"]
    for step in run.steps(start):
        real = next(streams["real"])[0].reshape(run.args.batch_size, -1)
        fake = G(mg.randn(run.args.batch_size, 3))
        loss = ((fake - real) ** 2).mean()  # not a GAN: any loss that moves G will do
        optimizers["g"].zero_grad()
        loss.backward()
        optimizers["g"].step()
        run.log(step, loss=loss)
    run.save_checkpoint(run.args.steps, models, optimizers, streams)


def test_diversity_is_read_at_the_first_step_and_every_few_steps_and_carried_between(tmp_path):
    run = watched_run(tmp_path, "--steps", "7", judge=untrained_judge())
    train_watched(*run, 0)
    history = run[0].history
    for name in ("coverage", "precision", "recall", "cosine", "pixel_std"):
        assert len(history[name]) == 7, name
    assert 1 <= min(history["coverage"]) and max(history["coverage"]) <= 10
    # G changes every step, so each reading differs from the last: new values appear exactly
    # at the first step and at steps 1, 3, 5 (every 2 steps), and are repeated in between
    cosine = history["cosine"]
    assert [i for i in range(1, 7) if cosine[i] != cosine[i - 1]] == [1, 3, 5]
    assert cosine[1] == cosine[2] and cosine[5] == cosine[6]


def test_readings_draw_no_random_numbers_so_training_is_unchanged(tmp_path):
    watched = watched_run(tmp_path / "a", "--steps", "5", judge=untrained_judge())
    train_watched(*watched, 0)
    plain = watched_run(tmp_path / "b", "--steps", "5", "--no-judge")
    plain[0].tracked = None  # not watched at all
    train_watched(*plain, 0)
    assert watched[0].history["loss"] == plain[0].history["loss"]
    np.testing.assert_array_equal(watched[1]["G"][0].weight.numpy(), plain[1]["G"][0].weight.numpy())


def test_a_watched_run_resumes_bit_for_bit_readings_included(tmp_path):
    straight = watched_run(tmp_path / "a", "--steps", "8", judge=untrained_judge())
    train_watched(*straight, 0)
    first = watched_run(tmp_path / "b", "--steps", "4", judge=untrained_judge())
    train_watched(*first, 0)
    resumed = watched_run(tmp_path / "b", "--steps", "8", "--resume", judge=untrained_judge())
    start = resumed[0].resume(*resumed[1:])
    assert start == 4 and resumed[0].readings
    train_watched(*resumed, start)
    assert resumed[0].history == straight[0].history


def readings_run(tmp_path, *flags):
    """A tiny run that also reads G's mean output on fixed inputs every 3 steps, the way the
    translation lessons read their test translations, and counts the reads."""
    run, models, optimizers, streams = watched_run(tmp_path, "--no-judge", *flags)
    inputs, reads = mg.randn(5, 3), []

    def read():
        reads.append(len(run.history["step"]))
        with mg.no_grad():
            out = models["G"](inputs)
        return {"mean_out": out.mean().item(), "max_out": out.max().item()}

    run.track_readings(read, ("mean_out", "max_out"), "G on fixed inputs", every=3)
    return (run, models, optimizers, streams), reads


def test_track_readings_reads_at_the_first_step_and_every_few_steps(tmp_path):
    watched, reads = readings_run(tmp_path, "--steps", "7")
    train_watched(*watched, 0)
    run = watched[0]
    assert reads == [0, 2, 5]  # the log calls of steps 0, 2 and 5 (every 3 steps)
    mean = run.history["mean_out"]
    assert len(mean) == 7 and mean[0] == mean[1] != mean[2] == mean[3] == mean[4] != mean[5] == mean[6]
    panels = run.reading_panels()
    assert list(panels) == ["G on fixed inputs", "diversity of samples from fixed noise"]
    assert panels["G on fixed inputs"] == {"mean_out": mean, "max_out": run.history["max_out"]}
    run.plot_history()
    assert (tmp_path / "history.png").exists()


def test_metrics_give_the_last_readings_apart_from_the_means_of_logged_numbers(tmp_path):
    # a reading (a few hundred samples at the last reading step) must not pass for a score of
    # the final samples: it goes under last_readings, while logged numbers get final_<name>
    watched, _ = readings_run(tmp_path, "--steps", "7")
    train_watched(*watched, 0)
    run = watched[0]
    metrics = run.finish(mg.zeros(4, 1, 28, 28), np.zeros((4, 1, 28, 28)), plot=False)
    assert metrics["last_readings"] == {name: run.history[name][-1]
                                        for name in ("mean_out", "max_out", "cosine", "pixel_std")}
    assert metrics["final_loss"] == pytest.approx(np.mean(run.history["loss"][-1:]))
    assert not [name for name in metrics if name.startswith("final_") and name != "final_loss"]
    assert read_metrics(tmp_path)["last_readings"] == metrics["last_readings"]


def test_a_reader_that_misses_a_tracked_name_is_refused_with_the_names(tmp_path):
    run, *_ = watched_run(tmp_path, "--no-judge", "--steps", "3")
    run.track_readings(lambda: {"mean_out": 0.5}, ("mean_out", "max_out"), "G on fixed inputs")
    with pytest.raises(KeyError, match="lack max_out .*tracked with mean_out, max_out; it returned mean_out"):
        run.log(0, loss=1.0)


def test_a_run_with_readings_resumes_bit_for_bit(tmp_path):
    straight, _ = readings_run(tmp_path / "a", "--steps", "8")
    train_watched(*straight, 0)
    first, _ = readings_run(tmp_path / "b", "--steps", "4")
    train_watched(*first, 0)
    resumed, reads = readings_run(tmp_path / "b", "--steps", "8", "--resume")
    start = resumed[0].resume(*resumed[1:])
    assert start == 4 and set(resumed[0].readings) >= {"mean_out", "max_out"}
    train_watched(*resumed, start)
    assert reads == [5]  # step 5 only: the readings of step 2 came back with the checkpoint
    assert resumed[0].history == straight[0].history


def test_loading_the_judge_leaves_the_rng_where_it_was(tmp_path, monkeypatch):
    """Building the judge's network draws initial weights, and training it reseeds the RNG:
    neither may reach the run, or a resumed run (which loads the judge at another step)
    would draw other numbers than an uninterrupted one."""
    from minigan import experiment

    def load_or_train(dataset, root=None):
        mg.manual_seed(99)  # as training does
        return untrained_judge()  # builds a network: draws its weights

    monkeypatch.setattr(experiment.classifier, "load_or_train", load_or_train)
    experiment.judge_for.cache_clear()
    run = watched_run(tmp_path, "--steps", "3")
    mg.manual_seed(5)
    expected = mg.randn(4).numpy()
    mg.manual_seed(5)
    assert run[0].load_judge() is not None
    np.testing.assert_array_equal(mg.randn(4).numpy(), expected)
    experiment.judge_for.cache_clear()


def test_seeded_noise_comes_from_its_own_seed_and_leaves_the_rng_alone():
    from minigan.experiment import seeded_noise

    mg.manual_seed(3)
    expected_next = mg.randn(4).numpy()
    mg.manual_seed(11)
    expected_noise = mg.randn(5, 2).numpy()
    mg.manual_seed(3)
    noise = seeded_noise(11, 5, 2)
    np.testing.assert_array_equal(noise.numpy(), expected_noise)
    np.testing.assert_array_equal(mg.randn(4).numpy(), expected_next)


def test_centre_crop_keeps_the_middle_of_larger_images_only():
    from minigan.experiment import centre_crop

    images = np.arange(2 * 3 * 32 * 30).reshape(2, 3, 32, 30)
    np.testing.assert_array_equal(centre_crop(images, (28, 28)), images[:, :, 2:30, 1:29])
    assert centre_crop(images, (32, 30)) is images
    assert centre_crop(images, (64, 64)) is images  # smaller than asked: left to the judge to refuse


def test_a_view_is_read_whole_and_cropped_to_the_judges_input(tmp_path):
    """A generator of 28x28 digits shown padded to 32x32 (as lessons 12 and 13 pad MNIST): the
    judge reads the middle 28x28, so its readings are those of the unpadded images, while
    cosine and spread read the padded images whole."""
    run, models, _, _ = watched_run(tmp_path, "--steps", "3", judge=untrained_judge())
    G, noise = models["G"], mg.randn(12, 3)
    run.track_diversity(G, noise, image_shape=(1, 28, 28))
    plain = run.read_diversity()

    def padded(images):  # G's samples (a tensor) and, as they are, the real 28x28 digits
        images = mg.io.as_numpy(images)
        return images if images.shape[-1] == 32 else np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)),
                                                                  constant_values=-1.0)

    run.track_diversity(G, noise, image_shape=(1, 28, 28), view=padded)
    seen = run.read_diversity()
    for name in ("coverage", "precision", "recall"):
        assert seen[name] == plain[name], name
    whole = padded(mg.experiment.generate(G, noise, image_shape=(1, 28, 28)))
    assert seen["pixel_std"] == pytest.approx(mg.metrics.pixel_std(whole))
    assert seen["pixel_std"] != pytest.approx(plain["pixel_std"])


def test_a_view_turns_the_real_images_too(tmp_path):
    """Real images larger than the judge's input (lesson 11's 64x64 shapes, averaged down to
    its judge's 32x32) go through the view as G's samples do, not cut to their centre: a run
    on digits enlarged to 56x56, read through a view that averages 2x2 blocks of anything
    larger than 28x28 (here: keeps every other pixel, which undoes the enlarging exactly),
    reads what a run on the 28x28 digits reads without a view."""
    from minigan.data import ImageDataset

    run, models, _, _ = watched_run(tmp_path / "a", "--steps", "3", judge=untrained_judge())
    G, noise = models["G"], mg.randn(12, 3)
    run.track_diversity(G, noise, image_shape=(1, 28, 28))
    plain = run.read_diversity()

    def halved(images):
        images = mg.io.as_numpy(images)
        return images[:, :, ::2, ::2] if images.shape[-1] > 28 else images

    big, _, _, _ = watched_run(tmp_path / "b", "--steps", "3", judge=untrained_judge())
    digits = big.dataset
    enlarged = digits.images.repeat(2, axis=2).repeat(2, axis=3)
    big.dataset = ImageDataset(enlarged, digits.labels, digits.classes, name=digits.name)
    big.track_diversity(G, noise, image_shape=(1, 28, 28), view=halved)
    seen = big.read_diversity()
    for name in ("coverage", "precision", "recall"):
        assert seen[name] == plain[name], name


def test_a_generator_that_draws_its_own_noise_is_read_in_a_fork_of_the_rng(tmp_path):
    """StyleGAN's generator draws noise images in its forward pass: reading its samples must
    leave the run's random numbers where they were."""
    class Noisy(nn.Module):
        def forward(self, x):
            return (x + 0.1 * mg.randn(*x.shape)).tanh()

    run, _, _, _ = watched_run(tmp_path, "--steps", "3", "--no-judge")
    run.track_diversity(nn.Sequential(nn.Linear(3, 28 * 28), Noisy()), mg.randn(12, 3), image_shape=(1, 28, 28))
    mg.manual_seed(7)
    expected = mg.randn(5).numpy()
    mg.manual_seed(7)
    first = run.read_diversity()
    np.testing.assert_array_equal(mg.randn(5).numpy(), expected)
    mg.manual_seed(7)
    assert run.read_diversity() == first  # the same noise from the same point of the stream
    mg.randn(1)
    assert run.read_diversity() != first  # and other noise from another


def test_without_a_judge_only_cosine_and_spread_are_read(tmp_path, monkeypatch):
    from minigan import experiment

    def no_training(*args):
        raise AssertionError("--no-judge must not load or train a judge")

    monkeypatch.setattr(experiment, "judge_for", no_training)
    run = watched_run(tmp_path, "--steps", "3", "--no-judge")
    train_watched(*run, 0)
    history = run[0].history
    assert {"cosine", "pixel_std"} <= set(history) and not {"coverage", "recall"} & set(history)
    assert list(run[0].reading_panels()) == ["diversity of samples from fixed noise"]


def test_resuming_with_the_judge_switched_is_refused(tmp_path):
    run = watched_run(tmp_path, "--steps", "3", "--no-judge")
    train_watched(*run, 0)
    resumed = watched_run(tmp_path, "--steps", "5", "--resume", judge=untrained_judge())
    with pytest.raises(SystemExit, match="was made with judge False"):
        resumed[0].resume(*resumed[1:])


def test_the_final_samples_are_scored_by_the_judge_beside_real_images(tmp_path, monkeypatch):
    from minigan import experiment

    load_dataset = experiment.load_dataset

    def small_test_set(name, root=None, train=True):  # 200 test images keep the test quick
        return load_dataset(name, root=root, train=train).first(200)

    monkeypatch.setattr(experiment, "load_dataset", small_test_set)
    run, models, _, _ = watched_run(tmp_path, "--steps", "1", judge=untrained_judge())
    data = run.dataset
    G = models["G"]
    run.log(0, loss=1.0)
    _, samples, metrics = run.finish_gan(G, mg.randn(8, 3), data, image_shape=(1, 28, 28),
                                         plot=False)
    judge = metrics["judge"]
    assert (judge["dataset"], judge["neighbours"]) == ("digits", 3)
    assert set(judge["samples"]) == set(judge["real"]) == {
        "frechet_distance", "inception_score", "coverage", "class_fractions", "precision", "recall"}
    reference = experiment.RealReference(run.judge, small_test_set("digits", train=False).images)
    assert judge["samples"] == reference.score(samples)
    assert judge["real"] == reference.score(data.images)  # all 16 images of the run's data
    assert read_metrics(tmp_path)["judge"] == judge

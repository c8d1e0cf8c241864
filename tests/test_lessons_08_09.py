"""Lessons 08 (spectral norm) and 09 (conditional GANs): their quick runs and files, exact
resume, and the layers they write out — the spectral normalisation and its power iteration, the
class as image channels, the conditional discriminators — against finite differences (first and
second order, float64) and against what they must equal."""
import concurrent.futures
import json

import numpy as np
import pytest

import minigan as mg
from minigan import nn
from helpers import check_grads, load_lesson, random_tensor
from test_lessons import GAN_FILES, assert_identical, finite_numbers, lesson_process, outcome, quick

sngan = load_lesson("08_sngan")
conditional = load_lesson("09_conditional")

def read_samples(path, channels, size):
    samples = np.load(path, allow_pickle=False)
    assert samples.dtype == np.float32 and samples.shape == (1000, channels, size, size)
    assert np.isfinite(samples).all() and samples.min() >= -1 and samples.max() <= 1
    return samples


# --- quick runs ---------------------------------------------------------------------------------
def test_08_quick_trains_both_discriminators_and_writes_the_comparison(tmp_path):
    result = quick("08_sngan", tmp_path)
    for name in ("samples_final.png", "history.png", "metrics.json", "samples.npy", "sigma.png", "samples.png"):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert set(record["summary"]) == {"batchnorm", "spectral"} and record["seeds"] == [0]
    for variant in ("batchnorm", "spectral"):
        folder = tmp_path / f"{variant}_seed0"
        assert all((folder / name).is_file() for name in GAN_FILES + ("evaluations.json",))
        run = json.loads((folder / "metrics.json").read_text())
        assert run["variant"] == variant and run["steps"] == 3 and finite_numbers(run)
        assert {"frechet_distance", "precision", "recall", "coverage"} <= set(run)
        assert [e["step"] for e in run["evaluations"]] == [0]  # 3 steps: before the first multiple of 100
        read_samples(folder / "samples.npy", 1, 28)
        history = mg.io.load(folder / "checkpoint.npz")["history"]
        sigmas = [k for k in history if k.startswith("sigma_")]
        assert len(sigmas) == (9 if variant == "spectral" else 0)  # estimate, largest, second x 3 layers
    read_samples(tmp_path / "samples.npy", 1, 28)
    assert "first step with Fréchet" in result.stdout


@pytest.mark.parametrize("flags, channels, size, classes", [
    ((), 1, 28, 10),
    (("--dataset", "shapes", "--discriminator", "acgan"), 3, 32, 2),
], ids=["digits-channels", "shapes-acgan"])
def test_09_quick_writes_a_class_grid_and_the_agreement(tmp_path, flags, channels, size, classes):
    result = quick("09_conditional", tmp_path, *flags)
    for name in GAN_FILES + ("agreement.png", "evaluations.json", "labels.npy"):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert finite_numbers(record) and 0 <= record["agreement"] <= 1
    assert len(record["agreement_per_class"]) == classes
    assert record["discriminator"] == (flags[-1] if flags else "channels")
    read_samples(tmp_path / "samples.npy", channels, size)
    labels = np.load(tmp_path / "labels.npy")
    assert np.bincount(labels).tolist() == [1000 // classes] * classes
    assert "reads the requested class" in result.stdout
    history = mg.io.load(tmp_path / "checkpoint.npz")["history"]  # what the judge sees, over training
    for name in ("coverage", "precision", "recall", "cosine", "pixel_std"):
        assert len(history[name]) == 3 and all(np.isfinite(history[name])), name
    assert 1 <= min(history["coverage"]) <= max(history["coverage"]) <= classes


# --- exact resume -------------------------------------------------------------------------------
# 40 images in batches of 8: five batches an epoch; stopped mid-epoch, resumed across its end.
SMALL = ("--quick", "--train-size", "40", "--batch-size", "8", "--sample-every", "2")
RESUMES = [
    ("08_sngan", SMALL + ("--variants", "spectral"), 6, 3, "spectral_seed0"),
    ("08_sngan", SMALL + ("--variants", "batchnorm"), 6, 4, "batchnorm_seed0"),
    ("09_conditional", SMALL + ("--discriminator", "projection"), 6, 3, "."),
]


def run_steps(name, out, flags, steps, resume=False):
    arguments = ["--out", str(out), *flags, "--steps", str(steps)] + (["--resume"] if resume else [])
    result = lesson_process(name, *arguments, threads=1, timeout=300)
    assert result.returncode == 0, f"{name} {' '.join(arguments)} failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("name, flags, steps, stop, folder", RESUMES,
                         ids=[f"{r[0]}-{r[4]}-stopped-at-{r[3]}" for r in RESUMES])
def test_a_stopped_and_resumed_run_is_bit_identical_to_an_uninterrupted_one(
        tmp_path, name, flags, steps, stop, folder):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"

    def stop_and_resume():
        run_steps(name, resumed, flags, stop)
        run_steps(name, resumed, flags, steps, resume=True)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for job in [pool.submit(run_steps, name, straight, flags, steps), pool.submit(stop_and_resume)]:
            job.result()
    assert_identical(outcome(resumed / folder), outcome(straight / folder))
    evaluations = json.loads((straight / folder / "evaluations.json").read_text())
    assert [e["step"] for e in evaluations] == [0, 2, 4, 6]
    assert (straight / folder / "evaluations.json").read_bytes() == \
        (resumed / folder / "evaluations.json").read_bytes()


def test_09_refuses_to_resume_with_another_discriminator(tmp_path):
    run_steps("09_conditional", tmp_path, SMALL + ("--discriminator", "projection"), 2)
    result = lesson_process("09_conditional", "--out", str(tmp_path), *SMALL, "--discriminator", "acgan",
                            "--steps", "4", "--resume", threads=1)
    assert result.returncode == 1 and "was made with discriminator 'projection' (now 'acgan')" in result.stderr


# --- lesson 08: spectral normalisation written out ------------------------------------------------
def test_spectral_normalise_matches_finite_differences(float64):
    u = sngan.l2_normalise(random_tensor((4,), seed=1, requires_grad=False))
    v = sngan.l2_normalise(random_tensor((6,), seed=2, requires_grad=False))
    check_grads(lambda W: sngan.spectral_normalise(W, u, v)[0], (4, 6))
    check_grads(lambda W: sngan.spectral_normalise(W, u, v)[1], (4, 6))


def test_power_iteration_finds_the_largest_singular_value(float64):
    rng = np.random.default_rng(0)
    left, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    right, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    singular = np.array([3.0, 2.0, 1.0, 0.5, 0.1])
    W = mg.tensor(left @ np.diag(singular) @ right[:5])
    u = sngan.l2_normalise(mg.tensor(rng.standard_normal(5)))
    for _ in range(40):  # the error shrinks like (2/3)^(2 steps)
        u, v = sngan.power_iteration(W, u)
    sigma = sngan.spectral_normalise(W, u, v)[1].item()
    assert abs(sigma - 3.0) < 1e-9
    assert abs(abs(u.numpy() @ left[:, 0]) - 1) < 1e-9  # u is the top left singular vector


def test_sn_conv_divides_its_kernel_by_sigma_and_equals_the_engines_spectral_norm():
    mg.manual_seed(0)
    ours = sngan.SNConv2d(3, 4, 3, 1, 1)
    mg.manual_seed(0)
    theirs = nn.utils.spectral_norm(nn.Conv2d(3, 4, 3, 1, 1))
    theirs.weight_u.data[...] = ours.u.data  # the same starting vector
    x = mg.randn(2, 3, 5, 5)
    for _ in range(5):  # training mode: one power-iteration step per forward, in both
        np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.u.numpy(), theirs.weight_u.numpy(), rtol=1e-5, atol=1e-6)
    for _ in range(300):
        ours(x)
    largest, second = sngan.singular_values(ours)
    assert second < largest and abs(ours.sigma.item() / largest - 1) < 1e-4
    ours.eval()
    u_before = ours.u.numpy().copy()
    ours(x)
    assert np.array_equal(ours.u.numpy(), u_before)  # eval mode: u stays put


def test_sn_conv_input_gradients_match_finite_differences(float64):
    layer = sngan.SNConv2d(2, 3, 3, 2, 1).eval()  # eval: no power iteration, a fixed function
    check_grads(lambda x: layer(x), (2, 2, 5, 5))


def test_the_sn_conv_u_buffer_is_saved_and_the_optimizer_leaves_it_alone():
    D = sngan.make_discriminator("spectral")
    keys = D.state_dict().keys()
    assert {"0.u", "2.u", "4.u"} <= set(keys)
    assert all(p is not layer.u for layer in sngan.sn_layers(D) for p in D.parameters())
    assert not any("running" in key for key in keys)
    assert "3.running_mean" in sngan.make_discriminator("batchnorm").state_dict()


def test_hinge_losses_are_zero_beyond_the_margin():
    class Fixed(nn.Module):
        def forward(self, x):
            return x.reshape(len(x))

    D = Fixed()
    loss, _, _ = sngan.discriminator_loss(D, mg.tensor([1.5, 2.0]), mg.tensor([-1.0, -3.0]))
    assert loss.item() == 0
    loss, _, _ = sngan.discriminator_loss(D, mg.tensor([0.0, 0.5]), mg.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx((1 + 0.5) / 2 + (1 + 2) / 2)
    assert sngan.generator_loss(D, mg.tensor([1.0, 3.0])).item() == -2.0


# --- lesson 09: the class as an input -----------------------------------------------------------
def test_label_channels_copy_the_class_embedding_to_every_pixel():
    layer = conditional.LabelChannels(3, 2)
    images, labels = mg.randn(4, 1, 5, 6), mg.tensor([2, 0, 2, 1])
    out = layer(images, labels).numpy()
    assert out.shape == (4, 3, 5, 6)
    np.testing.assert_array_equal(out[:, :1], images.numpy())
    rows = layer.embed.weight.numpy()[labels.numpy()]
    np.testing.assert_array_equal(out[:, 1:], np.broadcast_to(rows[:, :, None, None], (4, 2, 5, 6)))


def test_label_channels_match_finite_differences(float64):
    layer = conditional.LabelChannels(3, 2)
    labels = mg.tensor([2, 0, 2])  # class 2 twice: its embedding row gathers two gradients
    check_grads(lambda x, weight: layer(x, labels), (3, 1, 3, 2), layer.embed.weight)


def test_generator_input_appends_a_one_hot_class():
    z = mg.randn(3, conditional.LATENT)
    x = conditional.generator_input(z, mg.tensor([1, 0, 3]), 4).numpy()
    assert x.shape == (3, conditional.LATENT + 4, 1, 1)
    np.testing.assert_array_equal(x[:, :conditional.LATENT, 0, 0], z.numpy())
    np.testing.assert_array_equal(x[:, conditional.LATENT:, 0, 0], np.eye(4)[[1, 0, 3]])


@pytest.mark.parametrize("size, channels, smallest", [(28, 1, 7), (32, 3, 4)])
def test_the_models_fit_digits_and_shapes(size, channels, smallest):
    G = conditional.make_generator(2, channels, size)
    labels = mg.tensor([0, 1, 1])
    images = G(conditional.generator_input(mg.randn(3, conditional.LATENT), labels, 2))
    assert images.shape == (3, channels, size, size)
    for variant in conditional.VARIANTS:
        D = conditional.ConditionalDiscriminator(variant, 2, channels, size)
        assert D.head.kernel_size == (smallest, smallest)  # D's last features see the whole image
        assert D(images, labels)[0].shape == (3,)


@pytest.mark.parametrize("variant", conditional.VARIANTS)
def test_conditional_discriminators_match_finite_differences(float64, variant):
    D = conditional.ConditionalDiscriminator(variant, 3, 1, 8).eval()  # eval: spectral norm's u fixed
    labels = mg.tensor([0, 2])
    scores, classes = D(mg.randn(2, 1, 8, 8), labels)
    assert scores.shape == (2,) and (classes.shape == (2, 3) if variant == "acgan" else classes is None)
    check_grads(lambda x: D(x, labels)[0], (2, 1, 8, 8))
    if variant == "acgan":
        check_grads(lambda x: D(x, labels)[1], (2, 1, 8, 8))


@pytest.mark.parametrize("variant", ("channels", "projection"))
def test_the_conditioned_score_depends_on_the_class(variant):
    mg.manual_seed(0)
    D = conditional.ConditionalDiscriminator(variant, 3, 1, 8).eval()
    images = mg.randn(1, 1, 8, 8).expand(3, 1, 8, 8)
    scores, _ = D(images, mg.tensor([0, 1, 2]))
    assert len(set(np.round(scores.numpy(), 6))) == 3


def test_projection_adds_the_inner_product_of_the_class_embedding_and_the_features():
    mg.manual_seed(0)
    D = conditional.ConditionalDiscriminator("projection", 3, 1, 8).eval()
    x, labels = mg.randn(2, 1, 8, 8), mg.tensor([1, 2])
    with mg.no_grad():
        h = D.body(x)
        plain = D.head(h).flatten(1)[:, 0].numpy()
        embedding = D.project(labels).numpy()
        expected = plain + (embedding * h.flatten(1).numpy()).sum(axis=1)
        np.testing.assert_allclose(D(x, labels)[0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_agreement_counts_the_judges_readings_per_requested_class():
    class Judge:
        def predict(self, samples):
            return np.array([0, 1, 2, 1, 0, 2])

    share, per_class = conditional.agreement(Judge(), None, np.array([0, 1, 2, 0, 1, 2]), 3)
    assert share == pytest.approx(4 / 6) and per_class == [0.5, 0.5, 1.0]
    assert conditional.balanced_labels(7, 3).numpy().tolist() == [0, 1, 2, 0, 1, 2, 0]

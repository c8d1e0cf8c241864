"""Lessons 11 (colour DCGAN), 12 (progressive growing) and 13 (StyleGAN): the pieces each writes
out, checked against what they must compute and against finite differences (first and second
order, float64); their extra quick runs; and exact resume, with the progressive run's stage and
alpha and StyleGAN's w_avg and EMA generator in the checkpoint."""
import concurrent.futures
import json
import math

import numpy as np
import pytest

import minigan as mg
from minigan import io
from helpers import check_grads, load_lesson, random_tensor
from test_lessons import assert_identical, lesson_process, outcome

dcgan = load_lesson("11_dcgan_color")
progressive = load_lesson("12_progressive")
stylegan = load_lesson("13_stylegan")


def run_lesson(name, out, *flags):
    result = lesson_process(name, "--out", str(out), *flags, threads=1, timeout=300)
    assert result.returncode == 0, f"{name} {' '.join(flags)} failed:\n{result.stderr[-3000:]}"
    return result


# --- 11: the colour DCGAN -------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_11_networks_map_noise_to_images_and_images_to_one_logit(size, upsample):
    G = dcgan.make_generator(3, 4, size, upsample)
    D = dcgan.make_discriminator(3, 4, size)
    images = G(mg.randn(2, dcgan.LATENT, 1, 1))
    assert images.shape == (2, 3, size, size) and D(images).shape == (2,)
    assert G[0].out_channels == 8 * 4  # ConvTranspose2d(latent, 8 ngf, 4, 1, 0) first
    ups = sum(type(m).__name__ == ("ConvTranspose2d" if upsample == "transposed" else "Upsample") for m in G)
    assert ups == (4 if size == 64 else 3) + (upsample == "transposed")


def test_11_tutorial_widths():
    """ngf = 64: 512 -> 256 -> 128 -> 3 at 32x32; the 64x64 one adds a 64-channel stage."""
    widths = [m.out_channels for m in dcgan.make_generator(3, 64, 32) if hasattr(m, "out_channels")]
    assert widths == [512, 256, 128, 3]
    widths = [m.out_channels for m in dcgan.make_generator(3, 64, 64) if hasattr(m, "out_channels")]
    assert widths == [512, 256, 128, 64, 3]


def test_11_checkerboard_energy_finds_the_highest_frequency():
    checkerboard = np.indices((8, 8)).sum(axis=0) % 2 * 2.0 - 1
    assert dcgan.checkerboard_energy(checkerboard[None, None]) == pytest.approx(1.0)
    ramp = np.tile(np.linspace(-1, 1, 8), (8, 1))
    assert dcgan.checkerboard_energy(ramp[None, None]) < 0.05


def test_11_one_transposed_layer_makes_a_checkerboard_and_resize_convolution_does_not():
    responses = {name: r.numpy()[0, 0, 2:-2, 2:-2] for name, r in dcgan.one_layer_responses().items()}
    names = list(responses)
    assert responses[names[0]].std() > 0.5        # kernel 3, stride 2: uneven overlap
    assert responses[names[1]].std() < 1e-6      # kernel 4, stride 2, equal weights: flat inside
    assert dcgan.checkerboard_energy(responses[names[2]][None, None]) > 0.5  # random weights
    assert responses[names[3]].std() < 1e-5      # nearest upsampling + one kernel: flat


def test_11_channel_statistics_and_the_judges_view():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (10, 3, 4, 4))
    stats = dcgan.channel_statistics(images, images)
    assert set(stats) == {"red", "green", "blue"} and all(s["wasserstein"] == 0 for s in stats.values())
    assert dcgan.channel_statistics(images + 0.5, images)["green"]["wasserstein"] == pytest.approx(0.5)
    big = rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(dcgan.judge_view(big, grey=False)[0, 1, 3, 5], big[0, 1, 6:8, 10:12].mean(), rtol=1e-6)
    grey = np.zeros((2, 1, 32, 32), np.uint8)
    assert dcgan.judge_view(grey, grey=True).shape == (2, 1, 28, 28)


def test_11_quick_64x64_run_writes_the_colour_and_checkerboard_figures(tmp_path):
    flags = {"--image-size": "64", "--ngf": "4", "--ndf": "4", "--upsample": "resize"}
    run_lesson("11_dcgan_color", tmp_path, "--quick", *(x for item in flags.items() for x in item))
    for name in ("colour_histograms.png", "checkerboard.png", "spectra.png", "real.png", "samples_final.png"):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["image_size"] == 64 and record["upsample"] == "resize"
    assert set(record["channels"]) == {"red", "green", "blue"}
    assert record["judge"]["samples"]["coverage"] >= 0 and len(record["judge"]["real"]["class_fractions"]) == 12
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (1000, 3, 64, 64)
    # the history reads the judge at every grid, on the 64x64 samples averaged down to its 32x32
    history = mg.io.load(tmp_path / "checkpoint.npz")["history"]
    for key in ("coverage", "precision", "recall", "cosine", "pixel_std"):
        assert len(history[key]) == record["steps"] and all(map(math.isfinite, history[key])), key
    assert 0 <= min(history["coverage"]) and max(history["coverage"]) <= 12
    # the architecture's flags are in the checkpoint: a resume with another is refused, naming it
    for flag, value, change in (("--upsample", "transposed", "upsample 'resize' (now 'transposed')"),
                                ("--ngf", "8", "ngf 4 (now 8)")):
        other = {**flags, flag: value}
        result = lesson_process("11_dcgan_color", "--out", str(tmp_path), "--quick", "--steps", "5", "--resume",
                                *(x for item in other.items() for x in item), threads=1)
        assert result.returncode == 1 and f"was made with {change}" in result.stderr, result.stderr[-2000:]


def test_11_quick_grey_run_reads_the_padded_images_the_judge_sees(tmp_path):
    """A grey dataset (here Fashion-MNIST's files, filled with built-in digits) is padded to 32x32
    and enlarged to 64x64 for G; the history's readings take the real images the same way as G's
    (averaged down, cropped to the judge's 28x28), so they are numbers, not a shape error."""
    from test_lessons_slow import write_digit_files

    write_digit_files(tmp_path / "data" / "fashion-mnist", 1000, 200)  # 1,000: the final comparison's count
    out = tmp_path / "run"
    run_lesson("11_dcgan_color", out, "--quick", "--dataset", "fashion-mnist", "--data-root",
               str(tmp_path / "data"), "--image-size", "64", "--ngf", "4", "--ndf", "4")
    record = json.loads((out / "metrics.json").read_text())
    assert record["dataset"] == "fashion-mnist" and len(record["judge"]["real"]["class_fractions"]) == 10
    history = mg.io.load(out / "checkpoint.npz")["history"]
    for key in ("coverage", "precision", "recall", "cosine", "pixel_std"):
        assert len(history[key]) == record["steps"] and all(map(math.isfinite, history[key])), key
    assert 1 <= min(history["coverage"]) and max(history["coverage"]) <= 10


# --- 12: progressive growing ----------------------------------------------------------------------
def test_12_schedule_grows_through_every_side_with_fades():
    phase = 4
    stages = [progressive.schedule(step, phase) for step in range(8 * phase)]
    assert stages[:phase] == [(0, 1.0)] * phase
    assert stages[phase:2 * phase] == [(1, 0.0), (1, 0.25), (1, 0.5), (1, 0.75)]
    assert stages[2 * phase:3 * phase] == [(1, 1.0)] * phase
    assert stages[5 * phase] == (3, 0.0) and stages[7 * phase - 1] == (3, 1.0)
    assert progressive.schedule(10 ** 6, phase) == (3, 1.0)


def small_progressive(monkeypatch, channels=2):
    monkeypatch.setattr(progressive, "CHANNELS", dict.fromkeys(progressive.SIDES, channels))
    return progressive.Generator(progressive.CHANNELS, 1), progressive.Discriminator(progressive.CHANNELS, 1)


def test_12_fading_in_blends_the_skip_path_and_the_new_block(monkeypatch):
    G, D = small_progressive(monkeypatch)
    z = mg.randn(4, progressive.LATENT)
    for stage, side in enumerate(progressive.SIDES):
        progressive.set_stage((G, D), stage, 1.0)
        assert G(z).shape == (4, 1, side, side) and D(G(z)).shape == (4,)
    progressive.set_stage((G, D), 2, 0.0)  # alpha 0: exactly the 8x8 network's image, enlarged
    old = G(z).numpy()
    progressive.set_stage((G, D), 1, 1.0)
    np.testing.assert_allclose(old, progressive.upsample(G(z)).numpy(), rtol=1e-6, atol=1e-6)
    progressive.set_stage((G, D), 2, 0.3)
    middle = G(z).numpy()
    progressive.set_stage((G, D), 2, 1.0)
    new = G(z).numpy()
    np.testing.assert_allclose(middle, 0.7 * old + 0.3 * new, rtol=1e-5, atol=1e-6)


def test_12_real_images_fade_the_same_way():
    x = mg.tensor(np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32))
    at8 = progressive.real_at(x, 1, 1.0).numpy()
    np.testing.assert_allclose(at8, x.numpy().reshape(2, 1, 8, 4, 8, 4).mean(axis=(3, 5)), rtol=1e-5, atol=1e-6)
    faded = progressive.real_at(x, 1, 0.25).numpy()
    blurred = progressive.upsample(mg.tensor(x.numpy().reshape(2, 1, 4, 8, 4, 8).mean(axis=(3, 5)))).numpy()
    np.testing.assert_allclose(faded, 0.75 * blurred + 0.25 * at8, rtol=1e-5, atol=1e-6)


def test_12_fade_in_gradients(float64):
    check_grads(lambda alpha, old, new: progressive.fade_in(alpha, old, new), (1,), (2, 1, 2, 2), (2, 1, 2, 2))


def test_12_growing_networks_have_exact_first_and_second_derivatives_while_fading(float64, monkeypatch):
    """The penalty differentiates D's gradient, so D mid-fade (both paths, minibatch stddev) is
    checked to second order in its input, and G mid-fade in its noise."""
    G, D = small_progressive(monkeypatch, channels=1)
    progressive.set_stage((G, D), 1, 0.4)
    check_grads(D, random_tensor((4, 1, 8, 8), seed=2))
    monkeypatch.setattr(progressive, "LATENT", 3)
    G = progressive.Generator(progressive.CHANNELS, 1)
    progressive.set_stage((G,), 1, 0.4)
    check_grads(G, random_tensor((2, 3), seed=3))


def test_12_the_penalty_reaches_the_critic_through_a_fading_block(monkeypatch):
    G, D = small_progressive(monkeypatch)
    progressive.set_stage((G, D), 2, 0.5)
    real, fake = mg.randn(4, 1, 16, 16), mg.randn(4, 1, 16, 16)
    loss, _, penalty = progressive.critic_loss(D, real, fake)
    (grads,) = mg.grad(penalty, [D.from_rgb[1].weight])
    assert np.abs(grads.numpy()).sum() > 0  # the skip path's fromRGB gets the penalty's gradient


# --- 13: StyleGAN ---------------------------------------------------------------------------------
def test_13_styles_mix_from_a_crossover_layer_on():
    G = stylegan.Generator(1)
    mixed = 0
    for seed in range(12):
        mg.manual_seed(seed)
        ws = stylegan.training_styles(G, 3).numpy()
        assert ws.shape == (3, stylegan.LAYERS, stylegan.W_DIM)
        changes = [i for i in range(1, stylegan.LAYERS) if not np.array_equal(ws[:, i], ws[:, i - 1])]
        assert len(changes) <= 1  # one w up to the crossover, another after it
        mixed += bool(changes)
    assert 6 <= mixed <= 12  # 90% of batches mix


def test_13_the_generator_draws_in_the_data_range_and_saturates_to_the_background():
    G = stylegan.Generator(1)
    G.synthesis.to_rgb.bias.data[...] = -50.0  # a strongly negative pre-activation is background
    with mg.no_grad():
        images = G(mg.randn(3, stylegan.LATENT)).numpy()
    assert images.shape == (3, 1, 32, 32)
    np.testing.assert_allclose(images, -1.0, atol=1e-6)
    G.synthesis.to_rgb.bias.data[...] = 0.0
    with mg.no_grad():
        images = G(mg.randn(3, stylegan.LATENT)).numpy()
    assert np.abs(images).max() <= 1 and images.std() > 0.01


def test_13_truncation_pulls_w_towards_w_avg():
    G = stylegan.Generator(1)
    w = G.mapping(mg.randn(4, stylegan.LATENT))
    stylegan.update_w_avg(G, w)
    expected = (1 - stylegan.W_AVG_DECAY) * w.numpy().mean(axis=0)
    np.testing.assert_allclose(G.w_avg.numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(G.truncate(w, 0.0).numpy(), np.broadcast_to(expected, (4, stylegan.W_DIM)), rtol=1e-6)
    np.testing.assert_allclose(G.truncate(w, 0.5).numpy(), (expected + w.numpy()) / 2, rtol=1e-5, atol=1e-7)
    assert G.truncate(w, 1.0) is w


def test_13_ema_averages_the_weights_and_copies_w_avg():
    import copy

    from minigan.experiment import EMA_HALF_LIFE, EMA_RAMP

    G = stylegan.Generator(1)
    G_ema = copy.deepcopy(G)
    before = [p.numpy().copy() for p in G_ema.parameters()]
    for p in G.parameters():
        p.data[...] += 1.0
    G.w_avg.data[...] = 3.0
    stylegan.update_ema(G_ema, G, images_seen=2 * EMA_HALF_LIFE / EMA_RAMP, batch=16)
    beta = 0.5 ** (16 / EMA_HALF_LIFE)
    for old, p_ema, p in zip(before, G_ema.parameters(), G.parameters()):
        np.testing.assert_allclose(p_ema.numpy(), beta * old + (1 - beta) * p.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(G_ema.w_avg.numpy() == 3.0)
    stylegan.update_ema(G_ema, G, images_seen=16, batch=16)  # the ramp: early on, follow G closely
    np.testing.assert_allclose(G_ema.mapping.net[1].weight.numpy(), G.mapping.net[1].weight.numpy(), atol=1e-4)


def test_13_a_styled_layer_has_exact_first_and_second_derivatives(float64, monkeypatch):
    monkeypatch.setattr(stylegan, "W_DIM", 3)
    layer = stylegan.StyledLayer(2, 2, up=True)
    layer.noise.weight.data[...] = 0.5
    check_grads(lambda x, w, noise: layer(x, w, noise), (2, 2, 2, 2), (2, 3), (2, 1, 4, 4))


def test_13_r1_is_the_squared_gradient_norm_at_real_images():
    D = stylegan.Discriminator(1)
    real, fake = mg.randn(4, 1, 32, 32), mg.randn(4, 1, 32, 32)
    loss, logits, r1 = stylegan.discriminator_loss(D, real, fake, regularise=True)
    x = real.detach().requires_grad_(True)
    (grad,) = mg.grad(D(x).sum(), x)
    assert float(r1.item()) == pytest.approx(float((grad * grad).sum().item()) / 4, rel=1e-4)
    plain, _, zero = stylegan.discriminator_loss(D, real, fake, regularise=False)
    expected = stylegan.R1_EVERY * stylegan.R1_GAMMA / 2 * float(r1.item())
    assert float(loss.item()) - float(plain.item()) == pytest.approx(expected, rel=1e-3)
    assert float(zero.item()) == 0


@pytest.mark.usefixtures("float64")  # the sources and the cells are batches of different sizes
def test_13_mixing_grid_takes_the_chosen_layers_from_b():
    G = stylegan.Generator(1).eval()
    w = G.mapping(mg.randn(5, stylegan.LATENT))
    grid = stylegan.mixing_grid(G, w[:3], w[3:], layers=list(range(stylegan.LAYERS)))
    assert grid.shape == (3 * 4, 1, 32, 32)
    np.testing.assert_allclose(grid[4:8], np.repeat(grid[4:5], 4, axis=0), atol=1e-10)  # all of B's styles: B


# --- exact resume ---------------------------------------------------------------------------------
SMALL = ("--train-size", "40", "--batch-size", "8")


def stop_and_resume(name, tmp_path, flags, steps, stop):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"

    def both_ways():
        run_lesson(name, resumed, *flags, "--steps", str(stop))
        saved = io.load(resumed / "checkpoint.npz")
        run_lesson(name, resumed, *flags, "--steps", str(steps), "--resume")
        return saved

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(run_lesson, name, straight, *flags, "--steps", str(steps)), pool.submit(both_ways)]
        jobs[0].result()
        saved = jobs[1].result()
    assert_identical(outcome(resumed), outcome(straight))
    return saved


def test_12_a_progressive_run_resumes_exactly_mid_fade(tmp_path):
    flags = SMALL + ("--phase-steps", "2", "--quick")
    saved = stop_and_resume("12_progressive", tmp_path, flags, steps=16, stop=4)
    assert saved["step"] == 4
    for model in ("G", "D"):  # the checkpoint is taken after step 3: 8x8, half faded in
        assert int(saved["models"][model]["stage"]) == 1
        assert float(saved["models"][model]["alpha"]) == 0.5
    refused = lesson_process("12_progressive", "--out", str(tmp_path / "resumed"), *SMALL, "--quick",
                             "--phase-steps", "3", "--steps", "20", "--resume", threads=1)
    assert refused.returncode != 0 and "--phase-steps" in refused.stderr


def test_13_a_stylegan_run_resumes_exactly_with_its_ema_and_w_avg(tmp_path):
    saved = stop_and_resume("13_stylegan", tmp_path, SMALL + ("--quick",), steps=6, stop=3)
    models = saved["models"]
    assert set(models) == {"G", "G_ema", "D"}
    assert np.abs(models["G"]["w_avg"]).sum() > 0
    np.testing.assert_array_equal(models["G_ema"]["w_avg"], models["G"]["w_avg"])
    differs = [k for k in models["G"] if k != "w_avg" and not np.array_equal(models["G"][k], models["G_ema"][k])]
    assert differs  # an average of G's weights, not a copy


def test_quick_runs_report_lesson_10s_numbers(tmp_path):
    for name in ("12_progressive", "13_stylegan"):
        run_lesson(name, tmp_path / name, "--quick", *SMALL)
        record = json.loads((tmp_path / name / "metrics.json").read_text())
        judge = record["judge"]
        assert judge["dataset"] == "digits" and len(judge["samples"]["class_fractions"]) == 10
        assert all(math.isfinite(judge["samples"][k]) for k in ("frechet_distance", "precision", "recall"))
        assert np.load(tmp_path / name / "samples.npy").shape == (1000, 1, 32, 32)
        # the history reads the judge at every grid: 32x32 samples (12's early stages enlarged)
        # cropped to the judge's 28x28, so its readings are numbers, not a shape error
        history = mg.io.load(tmp_path / name / "checkpoint.npz")["history"]
        for key in ("coverage", "precision", "recall", "cosine", "pixel_std"):
            assert len(history[key]) == record["steps"] and all(map(math.isfinite, history[key])), (name, key)

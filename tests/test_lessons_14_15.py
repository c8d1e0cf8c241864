"""Lessons 14 (Pix2Pix) and 15 (CycleGAN): their quick runs and files, exact resume (the history
buffer included), and the blocks they write out — the U-Net, the PatchGAN and its receptive
field, the ResNet generator and its residual block, the losses — against finite differences
(first and second order, float64) and against what they must do; the history buffer's rule."""
import concurrent.futures
import json

import numpy as np
import pytest

import minigan as mg
from minigan import io
from helpers import check_grads, check_module_grads, load_lesson, random_tensor
from test_lessons import GAN_FILES, assert_identical, finite_numbers, lesson_process, outcome, quick

pix2pix = load_lesson("14_pix2pix")
cyclegan = load_lesson("15_cyclegan")

def read_samples(path, n, channels):
    samples = np.load(path, allow_pickle=False)
    assert samples.dtype == np.float32 and samples.shape == (n, channels, 32, 32)
    assert np.isfinite(samples).all() and samples.min() >= -1 and samples.max() <= 1
    return samples


# --- quick runs ---------------------------------------------------------------------------------
def test_14_quick_trains_the_three_losses_and_draws_the_ablation(tmp_path):
    result = quick("14_pix2pix", tmp_path)
    assert "7x7 verdicts per image, each on a 22x22 patch" in result.stdout
    for name in ("ablation.png", "samples_final.png", "metrics.json", "samples.npy"):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["receptive_field"] == 22 and record["patches"] == 7 and record["lambda"] == 100
    assert set(record["runs"]) == {"l1", "gan", "both"} and finite_numbers(record)
    for losses, numbers in record["runs"].items():
        folder = tmp_path / losses
        assert all((folder / name).is_file() for name in GAN_FILES), losses
        assert {"l1", "mask_iou", "saturation", "colour_spread", "dropout_change"} <= set(numbers)
        run = json.loads((folder / "metrics.json").read_text())
        assert run["losses"] == losses and run["steps"] == 3 and finite_numbers(run)
        history = io.load(folder / "checkpoint.npz")["history"]
        assert ("loss_d" in history) == (losses != "l1") and ("loss_gan" in history) == (losses != "l1")
        for name in ("l1", "mask_iou", "saturation", "colour_spread"):  # the test pairs, read as it trains
            assert len(history[name]) == 3 and 0 <= min(history[name]) <= max(history[name]) <= 1, name
        read_samples(folder / "samples.npy", 64, 3)
    assert record["targets"]["l1"] == 0 and record["targets"]["mask_iou"] == 1
    read_samples(tmp_path / "samples.npy", 64, 3)


def test_15_quick_translates_both_ways_and_measures_it(tmp_path):
    result = quick("15_cyclegan", tmp_path)
    for name in GAN_FILES + ("translations.png",):
        assert (tmp_path / name).is_file(), name
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["domains"] == ["circle", "square"] and finite_numbers(record)
    for key in ("in_target_ab", "in_target_ba", "cycle_ab", "cycle_ba", "shape_ab", "shape_ba",
                "shape_unchanged", "colour_ab", "colour_ba", "colour_random", "judge_on_real",
                "domain_classifier_accuracy"):
        assert 0 <= record[key] <= 1, key
    state = io.load(tmp_path / "checkpoint.npz")
    for name in ("in_target_ab", "in_target_ba", "shape_ab", "shape_ba", "colour_ab", "colour_ba"):
        values = state["history"][name]  # the test pairs, read as it trains
        assert len(values) == 3 and 0 <= min(values) <= max(values) <= 1, name
    pools = state["streams"]
    assert pools["pool_a"]["images"].shape == (24, 3, 32, 32)  # 3 steps of 8 fakes, not yet full
    read_samples(tmp_path / "samples.npy", 64, 3)
    assert "read as square" in result.stdout


# --- exact resume -------------------------------------------------------------------------------
def run_steps(name, out, flags, steps, resume=False):
    arguments = ["--out", str(out), *flags, "--steps", str(steps)] + (["--resume"] if resume else [])
    result = lesson_process(name, *arguments, threads=1, timeout=300)
    assert result.returncode == 0, f"{name} {' '.join(arguments)} failed:\n{result.stderr[-3000:]}"


def run_and_resume(name, tmp_path, flags, steps, stop):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"

    def stop_and_resume():
        run_steps(name, resumed, flags, stop)
        run_steps(name, resumed, flags, steps, resume=True)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(run_steps, name, straight, flags, steps), pool.submit(stop_and_resume)]
        for job in jobs:
            job.result()
    return straight, resumed


def test_14_stopped_and_resumed_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    # 40 pairs in batches of 8: five batches an epoch, so the resumed run crosses an epoch's end
    flags = ("--quick", "--losses", "both", "--train-size", "40", "--batch-size", "8",
             "--sample-every", "2")
    straight, resumed = run_and_resume("14_pix2pix", tmp_path, flags, 8, 3)
    assert_identical(outcome(resumed / "both"), outcome(straight / "both"))
    top = [json.loads((out / "metrics.json").read_text()) for out in (straight, resumed)]
    for record in top:
        record.pop("seconds")
    assert_identical(top[1], top[0])


def test_15_stopped_and_resumed_is_bit_identical_the_history_buffer_included(tmp_path):
    # a pool of 6 fills in the second step, so the resumed steps swap images in and out of it
    flags = ("--quick", "--train-size", "20", "--batch-size", "4", "--pool-size", "6",
             "--sample-every", "2")
    straight, resumed = run_and_resume("15_cyclegan", tmp_path, flags, 6, 3)
    assert_identical(outcome(resumed), outcome(straight))
    pools = io.load(straight / "checkpoint.npz")["streams"]
    assert pools["pool_a"]["images"].shape == pools["pool_b"]["images"].shape == (6, 3, 32, 32)


def test_15_refuses_to_resume_with_another_pool_size(tmp_path):
    flags = ("--quick", "--train-size", "20", "--batch-size", "4", "--pool-size", "6")
    run_steps("15_cyclegan", tmp_path, flags, 2)
    for other in ("5", "7"):  # a smaller pool could not hold the saved one, a larger one changes the steps
        result = lesson_process("15_cyclegan", "--out", str(tmp_path), *flags[:-1], other, "--steps", "3",
                                "--resume", threads=1)
        assert result.returncode == 1 and f"was made with pool_size 6 (now {other})" in result.stderr


# --- lesson 14's blocks -------------------------------------------------------------------------
def reseeded(model):
    """model(x) with the same dropout masks at every call (finite differences call it often)."""
    def forward(*inputs):
        mg.manual_seed(0)
        return model(*inputs)
    return forward


def test_unet_matches_finite_differences_with_batchnorm_and_dropout_in_train_mode(float64):
    G = pix2pix.UNet(1, 2, widths=(1, 2)).apply(pix2pix.dcgan_init)
    params = list(G.parameters())
    check_grads(lambda x, *p: reseeded(G)(x), (2, 1, 4, 4), *params)
    assert G(random_tensor((2, 1, 4, 4))).shape == (2, 2, 4, 4)


def test_unet_hands_each_decoder_block_the_encoder_map_of_its_side():
    G = pix2pix.UNet(1, 3).eval()
    shapes = []
    for block in list(G.up) + [G.out]:
        block.register_forward_hook(lambda module, inputs, output: shapes.append(inputs[0].shape[1:]))
    assert G(mg.randn(2, 1, 32, 32)).shape == (2, 3, 32, 32)
    # 64 channels at 1x1, then each decoder output (64, 64, 32, 16) beside the encoder's map
    assert shapes == [(64, 1, 1), (128, 2, 2), (128, 4, 4), (64, 8, 8), (32, 16, 16)]


def test_translate_keeps_dropout_on_fixes_its_masks_by_seed_and_leaves_the_rng_alone():
    mg.manual_seed(3)
    G = pix2pix.UNet(1, 3)
    x = mg.randn(4, 1, 32, 32)
    state = mg.get_rng_state()
    first, again, other = (pix2pix.translate(G, x, seed=s).numpy() for s in (0, 0, 1))
    assert np.array_equal(first, again) and not np.allclose(first, other)
    assert G.training and mg.is_grad_enabled()
    assert mg.get_rng_state() == state


def test_patchgan_matches_finite_differences(float64):
    check_module_grads(pix2pix.make_discriminator(2, width=1), (1, 2, 8, 8))


def test_receptive_field_is_the_patch_one_verdict_reads():
    D = pix2pix.make_discriminator(4).eval()  # eval: no batch statistics mixing positions in
    field = pix2pix.receptive_field(D)
    assert field == 22 and pix2pix.receptive_field(cyclegan.make_discriminator(3)) == 16
    x = mg.randn(1, 4, 32, 32, requires_grad=True)
    (g,) = mg.grad(D(x)[0, 0, 3, 3], x)
    rows, cols = np.nonzero(np.abs(g.numpy()[0]).sum(axis=0))
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field
    # back through each layer: padding 1, then stride 2 and padding 1, twice
    assert rows.min() == cols.min() == ((3 - 1) * 2 - 1) * 2 - 1


def test_pix2pix_losses_match_finite_differences(float64):
    D = pix2pix.make_discriminator(2, width=1)
    inputs, targets = random_tensor((1, 1, 8, 8), requires_grad=False), random_tensor((1, 1, 8, 8), 1)
    check_grads(lambda fake: pix2pix.generator_losses(D, inputs, targets, fake, "both")[0],
                (1, 1, 8, 8), seed=2)
    fake = random_tensor((1, 1, 8, 8), seed=3, requires_grad=False)
    check_grads(lambda x, y: pix2pix.discriminator_loss(D, x, y, fake)[0], (1, 1, 8, 8), (1, 1, 8, 8))


def test_l1_only_leaves_the_discriminator_out_and_lambda_weighs_l1():
    D = pix2pix.make_discriminator(4, width=2)
    x, y, fake = mg.randn(2, 1, 32, 32), mg.randn(2, 3, 32, 32), mg.randn(2, 3, 32, 32)
    l1_only, parts = pix2pix.generator_losses(D, x, y, fake, "l1")
    assert set(parts) == {"loss_l1"}
    assert abs(l1_only.item() - 100 * (fake - y).abs().mean().item()) < 1e-3
    both, parts = pix2pix.generator_losses(D, x, y, fake, "both")
    gan, _ = pix2pix.generator_losses(D, x, y, fake, "gan")
    assert abs(both.item() - l1_only.item() - gan.item()) < 1e-3


def test_measure_reads_colour_and_shape():
    pairs = pix2pix.OutlinedShapes(200, seed=5)
    targets = pix2pix.to_tanh_range(pairs.targets)
    grey = targets.mean(axis=1, keepdims=True).repeat(3, axis=1)  # the right shapes, no colour
    same, greyed = pix2pix.measure(targets, targets), pix2pix.measure(grey, targets)
    assert same["l1"] == 0 and same["mask_iou"] == 1 and same["saturation"] > 0.3
    assert greyed["saturation"] < 0.01 and greyed["colour_spread"] < same["colour_spread"]
    shifted = pix2pix.measure(np.roll(targets, 6, axis=3), targets)
    assert shifted["mask_iou"] < 0.7


# --- lesson 15's blocks -------------------------------------------------------------------------
def test_residual_block_matches_finite_differences(float64):
    check_module_grads(cyclegan.ResidualBlock(2), (2, 2, 4, 4))


def test_resnet_generator_matches_finite_differences(float64):
    G = cyclegan.make_generator(1, width=1, blocks=1).apply(cyclegan.gaussian_init)
    check_grads(lambda x: G(x), (1, 1, 8, 8))
    assert G(random_tensor((2, 1, 8, 8))).shape == (2, 1, 8, 8)


def test_cyclegan_discriminator_and_losses_match_finite_differences(float64):
    check_module_grads(cyclegan.make_discriminator(1, width=1), (1, 1, 6, 6))
    mg.manual_seed(0)
    G, F_ = (mg.nn.Sequential(mg.nn.ReflectionPad2d(1), mg.nn.Conv2d(1, 1, 3), mg.nn.Tanh())
             for _ in range(2))
    D_a, D_b = (cyclegan.make_discriminator(1, width=1) for _ in range(2))
    check_grads(lambda a, b: cyclegan.generator_loss(G, F_, D_a, D_b, a, b)[0], (1, 1, 6, 6), (1, 1, 6, 6))
    check_grads(lambda real, fake: cyclegan.discriminator_loss(D_a, real, fake), (1, 1, 6, 6), (1, 1, 6, 6))


def test_least_squares_and_the_generator_loss_parts():
    v = mg.tensor([[0.5, 2.0], [1.0, -1.0]])
    assert cyclegan.least_squares(v, 1.0).item() == pytest.approx((0.25 + 1 + 0 + 4) / 4)
    G = F_ = mg.nn.Identity()
    D = cyclegan.make_discriminator(3, width=2)
    a, b = mg.randn(2, 3, 32, 32), mg.randn(2, 3, 32, 32)
    total, parts, fake_b, fake_a = cyclegan.generator_loss(G, F_, D, D, a, b)
    assert parts["loss_cycle"].item() == 0 and parts["loss_identity"].item() == 0  # identities
    assert total.item() == pytest.approx(parts["loss_gan"].item())
    assert np.array_equal(fake_b.numpy(), a.numpy()) and np.array_equal(fake_a.numpy(), b.numpy())


def test_cyclegan_measures_read_place_size_and_colour():
    pairs = cyclegan.CirclesToSquares(300, seed=4)
    circles, squares = (pix2pix.to_tanh_range(x) for x in (pairs.inputs, pairs.targets))
    assert cyclegan.overlap(squares, squares) == 1
    assert 0.7 < cyclegan.overlap(circles, squares) < 0.85  # pi / 4, give or take the edges
    assert cyclegan.overlap(np.roll(squares, 8, axis=2), squares) < 0.5
    true = cyclegan.colours(circles)
    assert np.abs(cyclegan.colours(squares) - true).mean() < 0.02
    assert np.abs(cyclegan.colours(squares[::-1]) - true).mean() > 0.15


# --- the history buffer -------------------------------------------------------------------------
def images(n, start):
    """n distinct (1, 2, 2) images, numbered from ``start`` (every pixel holds the number)."""
    return mg.tensor(np.arange(start, start + n, dtype=np.float32)[:, None, None, None]
                     * np.ones((1, 1, 2, 2), np.float32))


def numbers(batch):
    return [int(v) for v in batch.numpy()[:, 0, 0, 0]]


def test_the_pool_returns_new_images_while_it_fills():
    pool = cyclegan.ImagePool(5)
    assert numbers(pool.query(images(3, 0))) == [0, 1, 2]
    assert numbers(pool.query(images(3, 3))) == [3, 4, 5]  # 5 goes back but is not stored
    assert numbers(mg.cat(pool.images)) == [0, 1, 2, 3, 4]


def test_a_full_pool_swaps_about_half_the_new_images_for_stored_ones():
    mg.manual_seed(0)
    pool = cyclegan.ImagePool(50)
    pool.query(images(50, 0))
    swapped = 0
    for step in range(40):
        before = numbers(mg.cat(pool.images))
        new = numbers(images(10, 1000 + 10 * step))
        out = numbers(pool.query(images(10, 1000 + 10 * step)))
        after = numbers(mg.cat(pool.images))
        # nothing is lost or made up: each image is either stored or handed back, once
        assert sorted(before + new) == sorted(after + out) and len(after) == 50
        for i, (fresh, returned) in enumerate(zip(new, out)):
            if returned != fresh:  # a stored image came back (one stored earlier in this batch too)
                assert returned in before + new[:i]
                swapped += 1
    assert 150 < swapped < 250, swapped  # 400 queries, each swapped with probability 1/2


def test_a_restored_pool_answers_as_the_original(tmp_path):
    mg.manual_seed(1)
    pool = cyclegan.ImagePool(8)
    pool.query(images(8, 0))
    state = pool.state_dict()
    io.save(state, tmp_path / "pool.npz")  # through a file, as in a checkpoint
    saved = io.load(tmp_path / "pool.npz")
    copy = cyclegan.ImagePool(8)
    copy.load_state_dict(saved)
    rng = mg.get_rng_state()
    first = numbers(pool.query(images(6, 100)))
    mg.set_rng_state(rng)
    assert numbers(copy.query(images(6, 100))) == first
    assert numbers(mg.cat(copy.images)) == numbers(mg.cat(pool.images))
    empty = cyclegan.ImagePool(8)
    empty.load_state_dict(cyclegan.ImagePool(8).state_dict())
    assert empty.images == []
    with pytest.raises(ValueError, match="a pool of 4 cannot take 8 images"):
        cyclegan.ImagePool(4).load_state_dict(state)

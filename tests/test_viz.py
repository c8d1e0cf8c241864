import os

import matplotlib.image
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan
from minigan.progress import progress
from minigan.viz import (
    GRID_PAD_VALUE, ema, make_grid, plot_history, save_grid, save_image_rows, save_interpolation,
)


def grid_size(n, nrow, height, width, padding):
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    return nrows * (height + padding) + padding, ncol * (width + padding) + padding


@given(n=st.integers(1, 20), nrow=st.integers(1, 9), padding=st.integers(0, 3),
       channels=st.sampled_from([1, 3]))
def test_grid_size_follows_the_formula(n, nrow, padding, channels):
    grid = make_grid(np.zeros((n, channels, 5, 4)), nrow=nrow, padding=padding)
    expected = grid_size(n, nrow, 5, 4, padding)
    assert grid.shape == (expected if channels == 1 else expected + (3,))


@pytest.mark.parametrize("channels", [1, 3])
def test_save_grid_writes_a_png_one_pixel_per_grid_pixel(tmp_path, channels):
    images = np.linspace(-1, 1, 10 * channels * 28 * 28).reshape(10, channels, 28, 28)
    path = tmp_path / "grid.png"
    save_grid(images, path, nrow=4, padding=2)
    pixels = matplotlib.image.imread(path)
    height, width = grid_size(10, 4, 28, 28, 2)
    assert pixels.shape == ((height, width) if channels == 1 else (height, width, 3))
    assert os.listdir(tmp_path) == ["grid.png"]


def test_grid_maps_minus_one_to_black_one_to_white_and_pads_in_grey(tmp_path):
    images = minigan.tensor(np.stack([-np.ones((1, 3, 3)), np.ones((1, 3, 3))]))  # Tensors work
    save_grid(images, tmp_path / "g.png", nrow=2, padding=1)
    pixels = np.rint(matplotlib.image.imread(tmp_path / "g.png") * 255)
    assert pixels[1:4, 1:4].max() == 0 and pixels[1:4, 5:8].min() == 255
    assert pixels[0, 0] == np.rint(GRID_PAD_VALUE * 255)


def test_grid_rejects_images_that_are_not_grey_or_rgb():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\) or \(N, 3, H, W\)"):
        make_grid(np.zeros((2, 2, 4, 4)))


def test_image_rows_put_each_batch_on_its_own_row(tmp_path):
    grey = -np.ones((5, 1, 6, 6))
    colour = np.ones((5, 3, 6, 6))
    save_image_rows([grey, colour], tmp_path / "rows.png", padding=2)
    pixels = matplotlib.image.imread(tmp_path / "rows.png")
    assert pixels.shape == grid_size(10, 5, 6, 6, 2) + (3,)
    assert pixels[2:8, 2:8].max() == 0 and pixels[10:16, 2:8].min() == 1
    with pytest.raises(ValueError, match="different lengths"):
        save_image_rows([grey, colour[:4]], tmp_path / "bad.png")


def test_interpolation_runs_from_z0_to_z1(tmp_path):
    def generator(z):  # a "generator" whose image is its latent vector, reshaped
        return z.reshape(z.shape[0], 1, 2, 2)

    z0 = -np.ones((2, 4), np.float32)
    z1 = np.ones((2, 4), np.float32)
    save_interpolation(generator, z0, minigan.tensor(z1), tmp_path / "walk.png", steps=5, padding=0)
    pixels = matplotlib.image.imread(tmp_path / "walk.png")
    assert pixels.shape == (4, 10)
    np.testing.assert_allclose(pixels[0, ::2], [0, 0.25, 0.5, 0.75, 1], atol=1 / 255)
    save_interpolation(generator, z0[0], z1[0], tmp_path / "one.png", steps=3, padding=0)
    assert matplotlib.image.imread(tmp_path / "one.png").shape == (2, 6)


@pytest.mark.parametrize("with_steps", [True, False])
def test_plot_history_writes_a_png(tmp_path, with_steps):
    rng = np.random.default_rng(0)
    history = {name: list(rng.random(50)) for name in ("loss_d", "loss_g", "d_real", "d_fake")}
    if with_steps:
        history["step"] = list(range(0, 500, 10))
    plot_history(history, tmp_path / "history.png")
    pixels = matplotlib.image.imread(tmp_path / "history.png")
    assert pixels.shape[0] > pixels.shape[1] / 2  # two panels, one above the other
    plot_history({"loss": [1.0, 0.5]}, tmp_path / "losses_only.png")
    assert os.path.getsize(tmp_path / "losses_only.png") > 0


def test_held_panels_draw_their_readings_as_they_are_and_others_smoothed(tmp_path, monkeypatch):
    import matplotlib.axes

    from minigan.viz import plot_panels

    drawn, plot = [], matplotlib.axes.Axes.plot

    def recording_plot(self, x, y, **kwargs):
        drawn.append((self, list(y)))
        return plot(self, x, y, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
    losses, readings = list(np.linspace(1, 0, 40)), [0.1] * 10 + [0.9] * 30
    plot_panels({"losses": {"loss": losses}, "readings": {"recall": readings}}, tmp_path / "p.png",
                held=["readings"])
    first, second = drawn[0][0], drawn[-1][0]
    assert [y for ax, y in drawn if ax is first] == [losses, ema(losses, 2)]  # raw, then smoothed
    assert [y for ax, y in drawn if ax is second] == [readings]  # drawn once, as it is
    assert (tmp_path / "p.png").exists()


def test_ema_removes_the_start_up_bias():
    assert ema([3.0] * 5, window=10) == pytest.approx([3.0] * 5)
    assert ema([1.0, 2.0, 3.0], window=1) == [1.0, 2.0, 3.0]
    smoothed = ema([0.0] * 10 + [1.0] * 10, window=4)
    assert all(a <= b for a, b in zip(smoothed, smoothed[1:])) and 0.9 < smoothed[-1] < 1


def test_progress_is_quiet_off_a_terminal_and_counts_steps(capsys):
    bar = progress(3, desc="train")  # pytest's captured stderr is not a terminal
    assert bar.disable and list(bar) == [0, 1, 2]
    shown = progress(["a", "b"], desc="train", disable=False)
    for _ in shown:
        shown.set_postfix(loss_d=0.5)
    shown.close()
    err = capsys.readouterr().err
    assert "train" in err and "loss_d=0.5" in err


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_painted_magenta_with_a_warning(tmp_path, channels, bad):
    images = np.zeros((2, channels, 3, 3))
    images[1, 0, 1, 2] = bad  # one pixel of the second image (its first channel)
    with pytest.warns(RuntimeWarning, match="save_grid: 1 of the grid's pixels are NaN or infinite"):
        save_grid(images, tmp_path / "g.png", nrow=2, padding=1)
    pixels = np.rint(matplotlib.image.imread(tmp_path / "g.png")[..., :3] * 255)
    assert pixels.shape == (5, 9, 3)  # a grey grid becomes RGB to show the marker
    magenta = np.all(pixels == (255, 0, 255), axis=-1)
    assert magenta.sum() == 1 and magenta[2, 7]  # row 1 + 1, column 1 + (3 + 1) + 2
    assert np.all(pixels[~magenta] == pixels[~magenta][:, :1])  # everything else stays grey


def test_finite_images_are_written_without_a_warning(tmp_path, recwarn):
    save_grid(np.full((2, 1, 3, 3), 7.0), tmp_path / "g.png")  # out of range: clipped, quietly
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert np.rint(matplotlib.image.imread(tmp_path / "g.png") * 255)[2, 2] == 255


def test_make_grid_keeps_non_finite_pixels_as_nan():
    images = np.zeros((1, 1, 2, 2))
    images[0, 0, 0, 0] = np.inf
    grid = make_grid(images, padding=0)
    assert np.isnan(grid[0, 0]) and np.isfinite(grid[1:, :]).all() and grid[0, 1] == 0.5

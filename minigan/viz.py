"""Pictures of training: image grids, loss and score curves, latent interpolations.

Images are taken in the range a tanh generator produces, [-1, 1], shaped (N, 1, H, W) for grey
or (N, 3, H, W) for colour, as NumPy/CuPy arrays or minigan Tensors. Figures are drawn with
matplotlib's Agg canvas directly (no pyplot, no display needed), and every file is written
atomically, so a viewer refreshing a PNG during training never sees half of one.
"""
import math
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from . import no_grad, tensor
from .io import as_numpy, atomic_open

GRID_PAD_VALUE = 0.5  # mid grey: visible between white-on-black digits and on dark backgrounds
NON_FINITE_COLOUR = (1.0, 0.0, 1.0)  # magenta: no digit or shape here is drawn in it


def to_unit_range(images):
    """Float (N, C, H, W) NumPy images in [0, 1] from [-1, 1] data; (N, H, W) gains an axis.

    Values outside [-1, 1] are clipped; NaN and infinite values come back as NaN, so that
    pictures can show them (``save_grid`` paints them magenta) instead of a plausible colour."""
    images = as_numpy(images).astype(np.float32)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images shaped (N, 1, H, W) or (N, 3, H, W), got {images.shape}")
    with np.errstate(invalid="ignore"):
        unit = np.clip((images + 1) / 2, 0, 1)
    unit[~np.isfinite(images)] = np.nan
    return unit


def make_grid(images, nrow=8, padding=2):
    """Tile images into one (H, W) grey or (H, W, 3) colour array in [0, 1].

    ``nrow`` images per row (fewer when there are fewer images); ``padding`` pixels of grey
    around every tile, so the grid is ncol * (w + padding) + padding pixels wide. Non-finite
    pixels are NaN in the grid.
    """
    images = to_unit_range(images)
    n, channels, height, width = images.shape
    ncol = max(1, min(nrow, n))
    nrows = max(1, math.ceil(n / ncol))
    grid = np.full(
        (channels, nrows * (height + padding) + padding, ncol * (width + padding) + padding),
        GRID_PAD_VALUE,
        dtype=np.float32,
    )
    for i, image in enumerate(images):
        top = padding + (i // ncol) * (height + padding)
        left = padding + (i % ncol) * (width + padding)
        grid[:, top: top + height, left: left + width] = image
    return grid[0] if channels == 1 else grid.transpose(1, 2, 0)


def save_grid(images, path, nrow=8, padding=2):
    """Write a PNG of ``make_grid(images, nrow, padding)``, one file pixel per grid pixel.

    NaN or infinite pixels (a diverged generator) are painted magenta, which no real digit or
    shape is, with a RuntimeWarning that says how many there were."""
    grid = make_grid(images, nrow, padding)
    bad = np.isnan(grid)
    if bad.any():
        pixels = bad if grid.ndim == 2 else bad.any(axis=-1)
        warnings.warn(f"save_grid: {int(pixels.sum())} of the grid's pixels are NaN or infinite; "
                      f"painted magenta in {path}", RuntimeWarning, stacklevel=2)
        grid = np.repeat(grid[..., None], 3, axis=-1) if grid.ndim == 2 else grid
        grid[pixels] = NON_FINITE_COLOUR
    _write_png(grid, path)


def save_image_rows(rows, path, padding=2):
    """Write a PNG with one row per batch in ``rows`` (e.g. real images above generated ones).

    Batches must have the same number of images; grey rows are shown as RGB when mixed with colour.
    """
    rows = [to_unit_range(row) * 2 - 1 for row in rows]
    if len({len(row) for row in rows}) != 1:
        lengths = [len(row) for row in rows]
        raise ValueError(f"save_image_rows: rows have different lengths {lengths}")
    if len({row.shape[1] for row in rows}) > 1:
        rows = [np.repeat(row, 3 // row.shape[1], axis=1) for row in rows]
    save_grid(np.concatenate(rows), path, nrow=len(rows[0]), padding=padding)


def save_interpolation(generator_fn, z0, z1, path, steps=10, padding=2):
    """Walk the latent space in a straight line from z0 to z1 and save what the generator draws.

    ``z0`` and ``z1`` are one latent vector each, or batches (rows, *latent_shape) giving one
    row of ``steps`` images per pair. ``generator_fn`` maps a Tensor of latents to images.
    """
    z0, z1 = as_numpy(z0), as_numpy(z1)
    if z0.ndim == 1:
        z0, z1 = z0[None], z1[None]
    if z0.shape != z1.shape:
        raise ValueError(f"save_interpolation: z0 {z0.shape} and z1 {z1.shape} differ in shape")
    t = np.linspace(0, 1, steps, dtype=z0.dtype).reshape((1, steps) + (1,) * (z0.ndim - 1))
    path_points = (1 - t) * z0[:, None] + t * z1[:, None]  # (rows, steps, *latent_shape)
    with no_grad():
        images = generator_fn(tensor(path_points.reshape((-1,) + z0.shape[1:])))
    save_grid(images, path, nrow=steps, padding=padding)


def _write_png(grid, path):
    pixels = np.rint(grid * 255).astype(np.uint8)
    with atomic_open(path) as file:
        Image.fromarray(pixels).save(file, format="PNG")


def ema(values, window):
    """Exponential moving average with the start-up bias removed (no drag towards zero)."""
    decay = 1 - 1 / max(window, 1)
    smoothed, average = [], 0.0
    for i, value in enumerate(values, 1):
        average = decay * average + (1 - decay) * value
        smoothed.append(average / (1 - decay**i))
    return smoothed


def plot_history(history, path, window=None):
    """Plot a training history: losses in one panel, discriminator scores in another.

    ``history`` maps names to lists of numbers (``loss_*`` go to the loss panel, the rest, e.g.
    ``d_real`` / ``d_fake``, to the score panel); an optional ``step`` list gives the x axis.
    Each curve is drawn raw (faint) and smoothed (EMA over ``window`` points, by default a
    twentieth of the run).
    """
    curves = {name: values for name, values in history.items() if name != "step" and len(values)}
    panels = {
        "losses": {n: v for n, v in curves.items() if "loss" in n},
        "discriminator scores": {n: v for n, v in curves.items() if "loss" not in n},
    }
    plot_panels(panels, path, steps=history.get("step"), window=window)


def plot_panels(panels, path, steps=None, window=None, held=()):
    """Curves in stacked panels sharing the x axis: ``panels`` maps a title to {label: values}.

    Each curve is drawn raw (faint) and smoothed (EMA over ``window`` points, by default a
    twentieth of its length); ``steps`` gives the x axis (default 0, 1, 2, ...). The panels
    titled in ``held`` hold readings taken every few steps and repeated in between: their
    curves are drawn as they are, since smoothing would smear each new reading over the next
    steps."""
    panels = [(title, group) for title, group in panels.items() if group]
    figure = Figure(figsize=(8, 3 * max(len(panels), 1)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(max(len(panels), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, group) in zip(axes, panels):
        for name, values in group.items():
            x = (steps if steps is not None else range(len(values)))[: len(values)]
            if title in held:
                ax.plot(x, values, linewidth=1.5, label=name)
                continue
            line, = ax.plot(x, values, alpha=0.25, linewidth=0.8)
            smoothed = ema(values, window or max(1, len(values) // 20))
            ax.plot(x, smoothed, color=line.get_color(), linewidth=1.5, label=name)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    with atomic_open(path) as file:
        figure.savefig(file, format="png")


def plot_functions(x, curves, path, title=None):
    """Plot several functions of one variable on shared axes (``curves`` maps label -> values)."""
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for label, values in curves.items():
        ax.plot(as_numpy(x), as_numpy(values), label=label, linewidth=1.6)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if title:
        ax.set_title(title)
    figure.tight_layout()
    with atomic_open(path) as file:
        figure.savefig(file, format="png")


def plot_images(panels, path, ncols=None, title=None, cmap="gray"):
    """Show several 2-D arrays side by side, each with its title and its own colour scale.

    ``panels`` maps titles to (H, W) grey or (H, W, 3) colour arrays of any range (an
    unfold matrix, a feature map, an image grid from ``make_grid``); ``ncols`` panels per row.
    """
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    figure = Figure(figsize=(3.2 * ncols, 3.2 * nrows), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, image) in zip(axes, panels.items()):
        ax.imshow(as_numpy(image), cmap=cmap, interpolation="nearest", aspect="auto")
        ax.set_title(name, fontsize="small")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.set_axis_off()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_open(path) as file:
        figure.savefig(file, format="png")


def plot_histograms(groups, path, bins=40, reference=None, xlabel=None, title=None, columns=4,
                    limits=None):
    """Histograms of several sets of values, one small panel per set (``groups`` maps a label,
    e.g. "step 500", to values), ``columns`` panels to a row, all on one shared x range:
    ``limits`` (low, high), values outside counted in the end bins, or else the data's range.
    ``reference`` draws a dashed vertical line at that value in every panel (e.g. 1 for
    gradient norms)."""
    groups = {label: as_numpy(values).ravel() for label, values in groups.items()}
    if not groups:
        raise ValueError("plot_histograms: no groups to plot")
    if limits is None:
        extra = [np.array([reference], dtype=np.float64)] if reference is not None else []
        every = np.concatenate([v.astype(np.float64) for v in groups.values()] + extra)
        limits = float(every.min()), float(every.max())
    low, high = limits
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    ncol = min(columns, len(groups))
    nrow = math.ceil(len(groups) / ncol)
    figure = Figure(figsize=(2.6 * ncol + 0.4, 2.2 * nrow + (0.4 if title else 0)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrow, ncol, sharex=True, squeeze=False).ravel()
    for ax, (label, values) in zip(axes, groups.items()):
        ax.hist(np.clip(values, edges[0], edges[-1]), bins=edges, color="tab:blue", alpha=0.8)
        if reference is not None:
            ax.axvline(reference, color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(label, fontsize="medium")
        ax.set_yticks([])
        ax.tick_params(labelbottom=True)
        if xlabel:
            ax.set_xlabel(xlabel, fontsize="small")
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_open(path) as file:
        figure.savefig(file, format="png")

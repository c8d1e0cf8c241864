"""Digits: the built-in offline dataset of MNIST-like 28x28 digits, drawn from matplotlib's fonts."""
import functools
import os
import sys
import zipfile
import zlib

import numpy as np

from ..io import atomic_open
from .dataset import DIGIT_CLASSES, ImageDataset, cache_dir

# Bump when the generator changes, so cached .npz files from an older version are not reused.
DIGITS_VERSION = 2

_FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf", "cmb10.ttf",
)
_CANVAS = 64  # base glyphs live on a 64x64 canvas, about twice the final resolution
_FONT_PIXELS = 56  # digits come out about 40 px tall
_STROKE_WIDTHS = (3.0, 4.5, 6.0, 7.5)  # target stroke widths on the canvas (final: about half)
_SIZE = 28
_BATCH = 4096  # images warped at once: big enough to amortise numpy calls, small enough for cache


def _render(font, char):
    """One anti-aliased glyph in [0, 1], centred on the canvas."""
    font.set_size(_FONT_PIXELS, 72)
    font.set_text(char)
    font.draw_glyphs_to_bitmap(antialiased=True)
    ink = np.asarray(font.get_image(), dtype=np.float32) / 255
    rows, cols = np.nonzero(ink > 0)
    ink = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    canvas = np.zeros((_CANVAS, _CANVAS), np.float32)
    top, left = (_CANVAS - ink.shape[0]) // 2, (_CANVAS - ink.shape[1]) // 2
    canvas[top: top + ink.shape[0], left: left + ink.shape[1]] = ink
    return canvas


def _stroke_width(glyph):
    """Mean stroke width: a long thin stroke of width w has area ~ w * perimeter / 2."""
    mask = glyph > 0.5
    steps = mask.astype(np.int8)
    edges = np.abs(np.diff(steps, axis=0)).sum() + np.abs(np.diff(steps, axis=1)).sum()
    # The count runs along pixel edges, about 4/pi times a smooth outline's length.
    return 2 * mask.sum() / (edges * np.pi / 4)


def _thicken(glyph, steps):
    """Dilate by one pixel per step (grey-level maximum over a plus-shaped neighbourhood)."""
    for _ in range(steps):
        p = np.pad(glyph, 1)
        neighbours = [p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]]
        glyph = np.maximum.reduce(neighbours)
    return glyph


def _gaussian_blur(images, sigma):
    """Separable Gaussian blur over the last two axes (zero padding)."""
    radius = int(3 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    images = _convolve_last_axis(images, kernel)
    return _convolve_last_axis(images.swapaxes(-1, -2), kernel).swapaxes(-1, -2)


def _convolve_last_axis(images, kernel):
    radius = len(kernel) // 2
    padded = np.pad(images, [(0, 0)] * (images.ndim - 1) + [(radius, radius)])
    size = images.shape[-1]
    return sum(weight * padded[..., i: i + size] for i, weight in enumerate(kernel))


def _outline_points(glyph):
    """The leftmost and rightmost ink pixel of every row, as (x, y) pixel centres.

    Every ink pixel lies between two of these, so after any affine map the bounding box of
    these points is the bounding box of the glyph: cheap to warp, exact to measure.
    """
    mask = glyph > 0.5
    rows = np.nonzero(mask.any(axis=1))[0]
    left = mask[rows].argmax(axis=1)
    right = _CANVAS - 1 - mask[rows, ::-1].argmax(axis=1)
    points = np.concatenate([np.stack([left, rows], 1), np.stack([right, rows], 1)]) + 0.5
    return np.concatenate([points, np.repeat(points[:1], 2 * _CANVAS - len(points), axis=0)])


@functools.lru_cache(maxsize=1)
def _glyph_bank():
    """All base glyphs (font x stroke width x digit) with their outline points and centres of mass.

    Returns glyphs (G, 64, 64), outline points (G, 128, 2) and centres (G, 2), with
    G = fonts * widths * 10 and glyph (font, width, digit) at (font * widths + width) * 10 + digit.
    """
    from matplotlib import font_manager, ft2font

    fonts_dir = os.path.join(os.path.dirname(font_manager.__file__), "mpl-data", "fonts", "ttf")
    glyphs = []
    for font_file in _FONT_FILES:
        font = ft2font.FT2Font(os.path.join(fonts_dir, font_file))
        plain = [_render(font, str(d)) for d in range(10)]
        # One width estimate per font, so all its digits get the same treatment. Only ever
        # thicken: thinning breaks the hairlines of serif fonts.
        font_width = np.median([_stroke_width(g) for g in plain])
        for width in _STROKE_WIDTHS:
            glyphs += [_thicken(g, max(0, round((width - font_width) / 2))) for g in plain]
    glyphs = np.stack(glyphs)
    points = np.stack([_outline_points(g) for g in glyphs]).astype(np.float32)
    # Soften before sampling at about half the resolution, so edges do not alias.
    glyphs = _gaussian_blur(glyphs, sigma=0.7).astype(np.float32)
    grid = np.arange(_CANVAS, dtype=np.float32) + 0.5
    mass = glyphs.sum(axis=(1, 2))
    centre_x = (glyphs.sum(1) * grid).sum(1) / mass
    centre_y = (glyphs.sum(2) * grid).sum(1) / mass
    return glyphs, points, np.stack([centre_x, centre_y], 1).astype(np.float32)


def _bilinear_weights(points, size):
    """(size, points) matrix spreading `points` evenly spaced values linearly over `size` pixels."""
    position = np.arange(size) * (points - 1) / (size - 1)
    weights = np.maximum(0, 1 - np.abs(position[:, None] - np.arange(points)[None, :]))
    return weights.astype(np.float32)


def _digit_params(n, rng, fonts, widths):
    """Every random choice for n digits, drawn up front so results do not depend on batching."""
    labels = rng.permutation(np.arange(n) % 10)
    return {
        "labels": labels,
        "glyph": (rng.integers(0, fonts, n) * widths + rng.integers(0, widths, n)) * 10 + labels,
        "angle": np.clip(rng.normal(0, 0.14, n), -0.4, 0.4),
        "shear": rng.uniform(-0.3, 0.3, n),
        "aspect": np.exp(rng.normal(0, 0.12, n)),
        "box": rng.uniform(17.5, 20.5, n),  # MNIST fits each digit's longer side to 20 px
        "shift": rng.normal(0, 0.4, (n, 2)),
        # Smooth wobble: random displacements at 4x4 control points, interpolated over the image.
        "wobble": rng.normal(0, 1, (n, 2, 4, 4)) * rng.uniform(0, 0.6, (n, 1, 1, 1)),
        "blur": rng.uniform(0, 0.6, n),
        "gain": rng.uniform(1.2, 1.7, n),
    }


def _linear_maps(p):
    """Per-digit 2x2 maps: rotation @ shear @ horizontal stretch."""
    cos, sin = np.cos(p["angle"]), np.sin(p["angle"])
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear = np.zeros_like(rotation)
    shear[:, 0, 0], shear[:, 0, 1], shear[:, 1, 1] = p["aspect"], p["shear"], 1
    return rotation @ shear


def _draw_digits(bank, p):
    """Render one batch: warp each base glyph straight into a 28x28 image by inverse mapping.

    The forward map sends a glyph point x to scale * L (x - centre_of_mass) + (14, 14) + shift,
    with scale chosen so the warped glyph's longer side is `box` pixels. Each output pixel
    looks up where it came from and samples the glyph bilinearly.
    """
    glyphs, points, centres = bank
    index, linear = p["glyph"], _linear_maps(p)
    centre = centres[index]
    warped = (points[index] - centre[:, None]) @ linear.transpose(0, 2, 1)
    scale = p["box"] / (warped.max(1) - warped.min(1)).max(1)
    inverse = (np.linalg.inv(linear) / scale[:, None, None]).astype(np.float32)

    grid = np.arange(_SIZE, dtype=np.float32) + 0.5 - _SIZE / 2
    spread = _bilinear_weights(4, _SIZE)
    wobble = spread @ p["wobble"].astype(np.float32) @ spread.T  # (B, 2, 28, 28)
    shift = p["shift"].astype(np.float32)
    dx = grid[None, None, :] + wobble[:, 0] - shift[:, 0, None, None]
    dy = grid[None, :, None] + wobble[:, 1] - shift[:, 1, None, None]
    # Source position in glyph-canvas index coordinates (pixel centres sit at +0.5).
    m = inverse[:, :, :, None, None]
    sx = centre[:, 0, None, None] - 0.5 + m[:, 0, 0] * dx + m[:, 0, 1] * dy
    sy = centre[:, 1, None, None] - 0.5 + m[:, 1, 0] * dx + m[:, 1, 1] * dy
    images = _sample_bilinear(glyphs, index, sx, sy)

    images += p["blur"][:, None, None] * (_gaussian_blur(images, sigma=0.7) - images)
    # Cut the faint halo that blurring leaves, then stretch: MNIST strokes have crisp edges.
    images = np.clip((images - 0.1) * p["gain"][:, None, None], 0, 1)
    return np.rint(images * 255).astype(np.uint8)


def _sample_bilinear(glyphs, index, sx, sy):
    """glyphs[index] read at fractional positions (sx, sy); outside the canvas reads as zero."""
    x0 = np.clip(np.floor(sx), 0, _CANVAS - 2)
    y0 = np.clip(np.floor(sy), 0, _CANVAS - 2)
    fx = np.clip(sx - x0, 0, 1).astype(np.float32)
    fy = np.clip(sy - y0, 0, 1).astype(np.float32)
    flat = glyphs.reshape(-1)
    base = (index[:, None, None] * _CANVAS + y0.astype(np.int64)) * _CANVAS + x0.astype(np.int64)
    top = flat[base] * (1 - fx) + flat[base + 1] * fx
    bottom = flat[base + _CANVAS] * (1 - fx) + flat[base + _CANVAS + 1] * fx
    return top * (1 - fy) + bottom * fy


def generate_digits(n, seed=0):
    """n MNIST-like digits (uint8 (n, 28, 28)) and labels (int64, balanced), the same for a seed."""
    bank = _glyph_bank()
    params = _digit_params(n, np.random.default_rng(seed), len(_FONT_FILES), len(_STROKE_WIDTHS))
    images = np.empty((n, _SIZE, _SIZE), np.uint8)
    for start in range(0, n, _BATCH):
        batch = {key: value[start: start + _BATCH] for key, value in params.items()}
        images[start: start + _BATCH] = _draw_digits(bank, batch)
    return images, params["labels"].astype(np.int64)


class Digits(ImageDataset):
    """The built-in offline dataset: n MNIST-like grey 28x28 digits with labels 0-9.

    Made from the fonts matplotlib ships (DejaVu, STIX and Computer Modern, regular to bold
    italic), each drawn at four stroke widths, then varied per sample by rotation, shear,
    stretch, a smooth elastic wobble and blur. Like MNIST, each digit is white on black with its
    longer side about 20 px and its centre of mass at the image centre. Deterministic for a
    seed; cached as ``<cache_dir(root)>/digits/digits-v<version>-n<n>-seed<seed>.npz``.
    """

    name = "digits"

    def __init__(self, n=60000, seed=0, root=None):
        name = f"digits-v{DIGITS_VERSION}-n{n}-seed{seed}.npz"
        path = os.path.join(cache_dir(root), "digits", name)
        cached = _read_cached_digits(path, n)
        if cached is None:
            cached = generate_digits(n, seed)
            _write_cached_digits(path, *cached)
        images, labels = cached
        super().__init__(images[:, None], labels, DIGIT_CLASSES)


def _read_cached_digits(path, n):
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error):
        # Missing or damaged: make it again (and overwrite it atomically).
        return None
    if images.shape != (n, _SIZE, _SIZE) or labels.shape != (n,):
        return None
    return images, labels


def _write_cached_digits(path, images, labels):
    try:
        with atomic_open(path) as file:
            np.savez_compressed(file, images=images, labels=labels)
    except OSError as exc:  # a read-only cache only costs the time to generate again
        print(f"minigan: could not cache Digits at {path} ({exc})", file=sys.stderr)


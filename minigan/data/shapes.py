"""Shapes: a small RGB dataset of coloured circles and squares."""
import numpy as np

from .dataset import ImageDataset

_BATCH = 4096  # images drawn at once


class Shapes(ImageDataset):
    """n RGB images of one coloured circle (label 0) or square (label 1) on a dark background.

    Colour, size and position are random; edges are anti-aliased. Deterministic for a seed.
    """

    name = "shapes"

    def __init__(self, n=10000, size=32, seed=0):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 2, n)
        radius = rng.uniform(0.15, 0.35, n) * size  # circle radius or half the square's side
        centre = rng.uniform(radius[:, None] + 1, size - radius[:, None] - 1, (n, 2))
        hue = rng.uniform(0.2, 1.0, (n, 3))
        colour = hue / hue.max(axis=1, keepdims=True) * rng.uniform(0.7, 1.0, (n, 1))
        background = rng.uniform(0.0, 0.15, (n, 1)) * rng.uniform(0.6, 1.0, (n, 3))
        images = np.empty((n, 3, size, size), np.uint8)
        for start in range(0, n, _BATCH):
            part = slice(start, start + _BATCH)
            cover = _shape_coverage(labels[part], radius[part], centre[part], size)[:, None]
            back, front = background[part, :, None, None], colour[part, :, None, None]
            images[part] = np.rint((back + cover * (front - back)) * 255).astype(np.uint8)
        super().__init__(images, labels, ("circle", "square"))


def _shape_coverage(labels, radius, centre, size):
    """How much of each pixel the shape covers, in [0, 1], with a one-pixel soft edge."""
    grid = np.arange(size) + 0.5
    dx = grid[None, None, :] - centre[:, 0, None, None]
    dy = grid[None, :, None] - centre[:, 1, None, None]
    circle = np.sqrt(dx**2 + dy**2)
    square = np.maximum(np.abs(dx), np.abs(dy))
    distance = np.where(labels[:, None, None] == 1, square, circle)
    return np.clip(radius[:, None, None] - distance + 0.5, 0, 1)


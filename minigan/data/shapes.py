"""Shapes: a small RGB dataset of coloured shapes on a dark background.

By default one circle or square of one colour per image. ``kinds`` adds triangles and rings,
``fills`` colour gradients and stripes, so that a generator must learn form, colour and texture
at once (lesson 11):

    >>> from minigan.data import Shapes
    >>> Shapes(8).classes
    ('circle', 'square')
    >>> rich = Shapes(8, kinds=("circle", "triangle"), fills=("flat", "stripes"))
    >>> rich.classes
    ('flat circle', 'striped circle', 'flat triangle', 'striped triangle')
    >>> rich.name
    'shapes-circle+triangle-flat+stripes'
"""
import numpy as np

from .dataset import ImageDataset

_BATCH = 4096  # images drawn at once
KINDS = ("circle", "square", "triangle", "ring")
FILLS = ("flat", "gradient", "stripes")
_FILL_NAMES = {"flat": "flat", "gradient": "gradient", "stripes": "striped"}
_EXTENT = {"circle": 1.0, "square": 1.0, "triangle": 1.2, "ring": 1.0}  # reach over the radius


class Shapes(ImageDataset):
    """n RGB images of one coloured shape each on a dark background, with a label per
    (kind, fill) pair.

    kinds   any of "circle", "square", "triangle" (point up) and "ring";
    fills   "flat" (one colour), "gradient" (one colour blending into a second across the
            shape, in a random direction), "stripes" (the two colours in stripes of a random
            angle, about one radius apart).

    Colours, size and position are random, edges anti-aliased; the same seed gives the same
    images. With the defaults (circles and squares, flat) the labels are 0 = circle and
    1 = square and ``name`` is "shapes"; otherwise the classes are "<fill> <kind>" (label =
    kind index * len(fills) + fill index) and the name lists the options, so a classifier
    cached for one set is not used for another."""

    name = "shapes"

    def __init__(self, n=10000, size=32, seed=0, kinds=("circle", "square"), fills=("flat",)):
        kinds, fills = _checked(kinds, KINDS, "kinds"), _checked(fills, FILLS, "fills")
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, len(kinds) * len(fills), n)
        kind, fill = labels // len(fills), labels % len(fills)
        radius = rng.uniform(0.15, 0.35, n) * size  # circle radius or half the square's side
        reach = radius * np.array([_EXTENT[k] for k in kinds])[kind]
        centre = rng.uniform(reach[:, None] + 1, size - reach[:, None] - 1, (n, 2))
        hue = rng.uniform(0.2, 1.0, (n, 3))
        colour = hue / hue.max(axis=1, keepdims=True) * rng.uniform(0.7, 1.0, (n, 1))
        background = rng.uniform(0.0, 0.15, (n, 1)) * rng.uniform(0.6, 1.0, (n, 3))
        # drawn after everything above, so the default images do not depend on them
        second = np.stack([np.roll(c, s) for c, s in zip(colour, rng.integers(1, 3, n))])
        angle = rng.uniform(0, 2 * np.pi, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        images = np.empty((n, 3, size, size), np.uint8)
        kind_names, fill_names = np.array(kinds), np.array(fills)
        for start in range(0, n, _BATCH):
            part = slice(start, start + _BATCH)
            cover = _coverage(kind_names[kind[part]], radius[part], centre[part], size)[:, None]
            mix = _mix(fill_names[fill[part]], radius[part], centre[part], angle[part],
                       phase[part], size)[:, None]
            first, other = colour[part, :, None, None], second[part, :, None, None]
            front = first + mix * (other - first)
            back = background[part, :, None, None]
            images[part] = np.rint((back + cover * (front - back)) * 255).astype(np.uint8)
        if (kinds, fills) == (("circle", "square"), ("flat",)):
            classes, name = kinds, None
        else:
            classes = tuple(f"{_FILL_NAMES[f]} {k}" for k in kinds for f in fills)
            name = f"shapes-{'+'.join(kinds)}-{'+'.join(fills)}"
        super().__init__(images, labels, classes, name=name)


def _checked(options, allowed, what):
    options = tuple(options)
    unknown = [o for o in options if o not in allowed]
    if not options or unknown or len(set(options)) != len(options):
        raise ValueError(f"Shapes: {what} must be distinct names from {allowed}, got {options}")
    return options


def _offsets(centre, size):
    """Each pixel centre's offset from each shape's centre: dx, dy shaped (N, size, size)."""
    grid = np.arange(size) + 0.5
    return grid[None, None, :] - centre[:, 0, None, None], grid[None, :, None] - centre[:, 1, None, None]


def _coverage(kinds, radius, centre, size):
    """How much of each pixel the shape covers, in [0, 1], with a one-pixel soft edge: the
    shape's signed distance (negative inside) turned into coverage by clip(0.5 - d, 0, 1)."""
    dx, dy = _offsets(centre, size)
    r = radius[:, None, None]
    circle = np.sqrt(dx**2 + dy**2)
    distance = circle - r
    square = np.maximum(np.abs(dx), np.abs(dy)) - r
    distance = np.where((kinds == "square")[:, None, None], square, distance)
    # point-up triangle: the largest distance past its three edges, whose outward normals point
    # down, up-left and up-right (y grows downwards); inradius = half the circumradius 1.2 r
    triangle = np.maximum(dy, np.abs(dx) * np.sqrt(3) / 2 - dy / 2) - 0.6 * r
    distance = np.where((kinds == "triangle")[:, None, None], triangle, distance)
    ring = np.abs(circle - 0.7 * r) - 0.3 * r
    distance = np.where((kinds == "ring")[:, None, None], ring, distance)
    return np.clip(0.5 - distance, 0, 1)


def _mix(fills, radius, centre, angle, phase, size):
    """How much of the second colour each pixel shows, in [0, 1]: 0 for a flat fill, a ramp
    across the shape for a gradient, a crisp wave for stripes (period 0.9 radius)."""
    dx, dy = _offsets(centre, size)
    r = radius[:, None, None]
    along = dx * np.cos(angle)[:, None, None] + dy * np.sin(angle)[:, None, None]
    gradient = np.clip(0.5 + along / (2 * r), 0, 1)
    stripes = np.clip(0.5 + 1.5 * np.cos(2 * np.pi * along / (0.9 * r) + phase[:, None, None]), 0, 1)
    mix = np.where((fills == "gradient")[:, None, None], gradient, 0.0)
    return np.where((fills == "stripes")[:, None, None], stripes, mix)

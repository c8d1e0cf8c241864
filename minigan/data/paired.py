"""Image-to-image translation data, made offline: pairs (input, target) for paired translation,
and two domains without pairs for unpaired translation.

A ``PairedImages`` dataset keeps each input beside its target, stacked along the channels of
``.images`` (input channels first), so ``batches``/``forever`` serve both halves of a pair
together, in one order, and a stream's checkpoint covers both; ``split`` cuts a batch back in
two.

    pairs = OutlinedShapes(20000)              # outline (1 channel) -> filled shape (3 channels)
    stream = forever(pairs, 16)
    outline, shape = pairs.split(next(stream)[0])

- ``OutlinedShapes``: a circle or square drawn as a thin white outline -> the same shape filled
  with a colour on a dark background (the outline says nothing about the colour).
- ``CirclesToSquares``: a coloured circle -> the square around it (side = the circle's
  diameter), with the same colour, position and background.
- ``DigitSkeletons(digits)``: a digit thinned to a one-pixel line -> the digit.
- ``ThinToBold(digits)``: a digit written with a thin pen -> the same digit with a broad one.

The digit datasets are made from any digit dataset (``Digits``, ``MNIST``), padded from 28x28
to 32x32 so that four halvings reach 2x2. ``unpaired(pairs)`` makes two domains from a paired
dataset: the inputs of its first half and the targets of its second half, so no image in one
domain has its partner in the other.
"""
import numpy as np

from .dataset import ImageDataset

SHAPE_CLASSES = ("circle", "square")
_BATCH = 2048  # shapes drawn at once, so the work stays in cache
PAD = 2  # 28x28 digits -> 32x32


class PairedImages(ImageDataset):
    """Pairs of uint8 images: ``inputs`` (N, Ci, H, W) and ``targets`` (N, Ct, H, W), stored
    as one (N, Ci + Ct, H, W) array in ``images`` with the input channels first."""

    def __init__(self, inputs, targets, labels, classes, name=None):
        if inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
            raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} do not pair up")
        super().__init__(np.concatenate([inputs, targets], axis=1), labels, classes, name)
        self.input_channels = inputs.shape[1]

    @property
    def inputs(self):
        return self.images[:, :self.input_channels]

    @property
    def targets(self):
        return self.images[:, self.input_channels:]

    @property
    def target_channels(self):
        return self.images.shape[1] - self.input_channels

    def split(self, batch):
        """A batch of stacked pairs (N, Ci + Ct, H, W) -> (inputs, targets)."""
        return batch[:, :self.input_channels], batch[:, self.input_channels:]

    def first(self, n):
        """The first ``n`` pairs, as a PairedImages of the same name."""
        part = super().first(n)
        c = self.input_channels
        return PairedImages(part.images[:, :c], part.images[:, c:], part.labels, self.classes,
                            self.name)

    def __repr__(self):
        n, _, h, w = self.images.shape
        return (f"{type(self).__name__}(n={n}, input_channels={self.input_channels}, "
                f"target_channels={self.target_channels}, size={h}x{w})")


def unpaired(pairs):
    """Two domains from a paired dataset, without pairs: A = the inputs of the first half,
    B = the targets of the second half (ImageDatasets named "<name>-a" and "<name>-b")."""
    half = len(pairs) // 2
    if half == 0:
        raise ValueError(f"unpaired: {len(pairs)} pair(s) cannot make two domains")
    a = ImageDataset(np.ascontiguousarray(pairs.inputs[:half]), pairs.labels[:half],
                     pairs.classes, f"{pairs.name}-a")
    b = ImageDataset(np.ascontiguousarray(pairs.targets[half:2 * half]),
                     pairs.labels[half:2 * half], pairs.classes, f"{pairs.name}-b")
    return a, b


# --- shapes ---------------------------------------------------------------------------------------
def _shape_parameters(n, size, seed):
    """Kind (0 circle, 1 square), radius (or half the side), centre, colour and background of n
    shapes, drawn as ``Shapes`` draws them, up front (so batching does not change them)."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 2, n)
    radius = rng.uniform(0.15, 0.35, n) * size
    centre = rng.uniform(radius[:, None] + 1, size - radius[:, None] - 1, (n, 2))
    hue = rng.uniform(0.2, 1.0, (n, 3))
    colour = hue / hue.max(axis=1, keepdims=True) * rng.uniform(0.7, 1.0, (n, 1))
    background = rng.uniform(0.0, 0.15, (n, 1)) * rng.uniform(0.6, 1.0, (n, 3))
    return kinds, *(x.astype(np.float32) for x in (radius, centre, colour, background))


def _in_batches(n, draw):
    """``draw(part)`` for slices of _BATCH items, each returning a tuple of arrays; the parts
    joined along the first axis."""
    parts = [draw(slice(start, start + _BATCH)) for start in range(0, n, _BATCH)]
    return [np.concatenate(arrays) for arrays in zip(*parts)]


def _distance(kinds, centre, size):
    """Each pixel centre's distance from the shape's centre: Euclidean for a circle, the
    largest coordinate difference for a square (whose level sets are squares)."""
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = grid[None, None, :] - centre[:, 0, None, None]
    dy = grid[None, :, None] - centre[:, 1, None, None]
    return np.where(kinds[:, None, None] == 1, np.maximum(np.abs(dx), np.abs(dy)),
                    np.sqrt(dx ** 2 + dy ** 2))


def _filled(distance, radius):
    """How much of each pixel lies inside the shape, in [0, 1]: a one-pixel soft edge."""
    return np.clip(radius[:, None, None] - distance + 0.5, 0, 1)


def _outline(distance, radius, width=1.0):
    """A line ``width`` pixels wide along the shape's edge, with soft sides."""
    return np.clip(width / 2 + 0.5 - np.abs(distance - radius[:, None, None]), 0, 1)


def _paint(cover, colour, background):
    """Colour where ``cover`` is 1, background where it is 0: uint8 (N, 3, H, W)."""
    back, front = background[:, :, None, None], colour[:, :, None, None]
    return np.rint((back + cover[:, None] * (front - back)) * 255).astype(np.uint8)


def _grey(cover):
    return np.rint(cover[:, None] * 255).astype(np.uint8)


class OutlinedShapes(PairedImages):
    """n pairs: a circle or square as a one-pixel white outline on black (1 channel) -> the
    same shape filled with a random colour on a random dark background (3 channels), 32x32.

    Shape, size and position come from the outline; colour and background do not, so a
    translator can only guess them. Labels: 0 circle, 1 square. Deterministic for a seed."""

    name = "outlines"

    def __init__(self, n=10000, size=32, seed=0):
        kinds, radius, centre, colour, background = _shape_parameters(n, size, seed)

        def draw(part):
            distance = _distance(kinds[part], centre[part], size)
            return (_grey(_outline(distance, radius[part])),
                    _paint(_filled(distance, radius[part]), colour[part], background[part]))

        super().__init__(*_in_batches(n, draw), kinds, SHAPE_CLASSES)


class CirclesToSquares(PairedImages):
    """n pairs: a coloured circle -> the square drawn around it (side = the circle's diameter),
    in the same colour, at the same place, on the same background; both RGB 32x32.

    ``unpaired`` of it gives a domain of circles and a domain of squares whose colours, sizes
    and positions are drawn alike but separately. Labels: 0, the class of every input."""

    name = "circles-squares"

    def __init__(self, n=10000, size=32, seed=0):
        _, radius, centre, colour, background = _shape_parameters(n, size, seed)

        def draw(part):
            r, c, ink, back = radius[part], centre[part], colour[part], background[part]
            circles = _filled(_distance(np.zeros(len(r), np.int64), c, size), r)
            squares = _filled(_distance(np.ones(len(r), np.int64), c, size), r)
            return _paint(circles, ink, back), _paint(squares, ink, back)

        super().__init__(*_in_batches(n, draw), np.zeros(n, np.int64), SHAPE_CLASSES)


# --- digits ---------------------------------------------------------------------------------------
# Zhang & Suen's neighbours P2 ... P9 of a pixel, clockwise from north, as (row, column) offsets
_CLOCKWISE = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _removable(first_half):
    """For each of the 256 neighbourhoods (bit i set: neighbour P(i + 2) is foreground), whether
    Zhang & Suen's half-step removes the pixel in the middle."""
    table = np.zeros(256, bool)
    for code in range(256):
        p = [bool(code >> i & 1) for i in range(8)]  # p[0] = P2 (north) ... p[7] = P9
        count = sum(p)
        crossings = sum(not a and b for a, b in zip(p, p[1:] + p[:1]))
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        if first_half:  # the south-east boundary and the north-west corner
            sides = not (p2 and p4 and p6) and not (p4 and p6 and p8)
        else:           # the north-west boundary and the south-east corner
            sides = not (p2 and p4 and p8) and not (p2 and p6 and p8)
        table[code] = 2 <= count <= 6 and crossings == 1 and sides
    return table


_REMOVABLE = (_removable(True), _removable(False))


def thin(mask):
    """The skeleton of boolean masks (N, H, W): Zhang & Suen's parallel thinning (1984).

    A pass peels, in two half-steps, the foreground pixels that lie on the boundary (2 to 6
    foreground neighbours) and whose removal does not cut a line (exactly one background ->
    foreground change going round the neighbours): first from the south-east sides, then from
    the north-west ones. Passes repeat until none removes anything; what is left is a line one
    pixel wide. Whether a pixel goes depends only on its 8 neighbours, so both rules are
    tabulated once for all 256 neighbourhoods (``_REMOVABLE``) and read through an 8-bit code."""
    mask = np.asarray(mask).astype(bool).copy()
    active = np.arange(len(mask))  # the images the last pass changed
    while len(active):
        part = mask[active]
        before = part.copy()
        for table in _REMOVABLE:
            part &= ~table[_neighbourhood_codes(part)]
        mask[active] = part
        active = active[(part != before).any(axis=(1, 2))]
    return mask


def _neighbourhood_codes(mask):
    """For every pixel of (N, H, W) masks, its 8 neighbours as the bits of a uint8 (bit i:
    P(i + 2); outside the image counts as background)."""
    h, w = mask.shape[1:]
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    code = np.zeros(mask.shape, np.uint8)
    for bit, (dy, dx) in enumerate(_CLOCKWISE):
        code |= padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w].astype(np.uint8) << bit
    return code


def _dilate(mask, radius):
    """Grow boolean masks (N, H, W) by a disc of ``radius`` pixels."""
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
               if dy * dy + dx * dx <= radius * radius + radius]
    p = np.pad(mask, ((0, 0), (radius, radius), (radius, radius)))
    h, w = mask.shape[1:]
    grown = np.zeros_like(mask)
    for dy, dx in offsets:
        grown |= p[:, radius + dy:radius + dy + h, radius + dx:radius + dx + w]
    return grown


def _soften(mask):
    """Boolean masks (N, H, W) -> uint8 (N, 1, H, W) with edges softened by a 3x3 blur
    ([1 2 1] / 4 each way, then doubled, so a line one pixel wide keeps its middle white), as a
    pen's ink spreads."""
    x = np.pad(mask.astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    x = (x[:, :-2] + 2 * x[:, 1:-1] + x[:, 2:]) / 4
    x = (x[:, :, :-2] + 2 * x[:, :, 1:-1] + x[:, :, 2:]) / 4
    return np.rint(np.minimum(x * 2, 1) * 255).astype(np.uint8)[:, None]


def _padded_digits(digits):
    """The digits' images (N, 1, 28, 28) padded with black to (N, 1, 32, 32)."""
    images = np.asarray(digits.images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected grey digits shaped (N, 1, H, W), got {images.shape}")
    return np.pad(images, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))


class DigitSkeletons(PairedImages):
    """Pairs made from a digit dataset (``Digits``, ``MNIST``): the digit thinned to a line one
    pixel wide (white on black, ``thin``) -> the digit itself; both 32x32 grey (28x28 padded
    by 2). The skeleton keeps the digit's shape and drops its stroke width, which a translator
    must guess. Labels: the digits' classes. Deterministic: no randomness at all."""

    def __init__(self, digits):
        targets = _padded_digits(digits)
        skeleton = thin(targets[:, 0] > 127)
        super().__init__(_grey(skeleton.astype(np.float32)), targets, digits.labels,
                         digits.classes, f"{digits.name}-skeletons")


class ThinToBold(PairedImages):
    """Pairs made from a digit dataset: the digit's skeleton drawn with a thin pen (the
    one-pixel line, softened: about 2 pixels wide) -> the same skeleton drawn with a broad one
    (grown by a pixel all round first: about 4 pixels wide); both 32x32 grey. Labels: the
    digits' classes. ``unpaired`` of it gives a thin-stroke and a bold-stroke domain."""

    def __init__(self, digits):
        skeleton = thin(_padded_digits(digits)[:, 0] > 127)
        super().__init__(_soften(skeleton), _soften(_dilate(skeleton, 1)), digits.labels,
                         digits.classes, f"{digits.name}-strokes")

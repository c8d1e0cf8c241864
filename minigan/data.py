"""Datasets for the lessons and a shuffling batch iterator.

Every dataset holds its images as uint8 arrays shaped (N, C, H, W) in ``.images`` and int64
labels in ``.labels``; ``batches`` turns them into float tensors in [-1, 1], the range a tanh
generator produces.

- ``MNIST`` / ``FashionMNIST``: the real thing, read from the four IDX files. Missing files are
  downloaded from public mirrors, checked against known MD5 digests and written atomically to
  the cache (``root``, else ``$MINIGAN_DATA``, else ``~/.cache/minigan``).
- ``Digits``: the offline default. MNIST-like 28x28 digits made on the spot from the fonts
  matplotlib ships, bent by random affine warps, elastic wobble, stroke width and blur.
- ``Shapes``: coloured circles and squares on a dark background, for RGB experiments.

``load_dataset(name)`` maps the lessons' ``--dataset`` flag to these, and falls back from
MNIST to Digits (saying so on stderr) when the files cannot be had.
"""
import functools
import gzip
import hashlib
import http.client
import math
import os
import sys
import urllib.request
import zipfile
import zlib

import numpy as np

from . import backend
from .autograd import tensor
from .io import atomic_open

DOWNLOAD_TIMEOUT_S = 30

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
FASHION_MNIST_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
ALL_FILES = SPLIT_FILES["train"] + SPLIT_FILES["test"]

DIGIT_CLASSES = tuple(str(d) for d in range(10))


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on disk and could not be downloaded."""


class ChecksumError(DatasetUnavailable):
    """A download finished but its MD5 digest is not the published one."""


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file of the expected kind."""


def cache_dir(root=None):
    """Where datasets live: ``root``, else ``$MINIGAN_DATA``, else ``~/.cache/minigan``."""
    root = root or os.environ.get("MINIGAN_DATA") or os.path.join("~", ".cache", "minigan")
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


class ImageDataset:
    """Images as uint8 (N, C, H, W) with int64 labels and class names."""

    def __init__(self, images, labels, classes):
        if images.ndim != 4 or images.dtype != np.uint8:
            found = f"{images.dtype} {images.shape}"
            raise ValueError(f"images must be uint8 shaped (N, C, H, W), not {found}")
        if labels.shape != (len(images),):
            raise ValueError(f"{len(images)} images but labels shaped {labels.shape}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = tuple(classes)

    @property
    def channels(self):
        return self.images.shape[1]

    @property
    def image_size(self):
        """Side length in pixels (every dataset here has square images)."""
        return self.images.shape[2]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __repr__(self):
        n, c, h, w = self.images.shape
        name, classes = type(self).__name__, len(self.classes)
        return f"{name}(n={n}, channels={c}, size={h}x{w}, classes={classes})"


# --- IDX files ----------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw, name="<bytes>"):
    """Decode the bytes of an (uncompressed) IDX file into an array.

    Layout: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
    dimension, then the values. The value count must match the dimensions exactly.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise IDXFormatError(f"{name}: bad IDX magic number {raw[:4].hex() or '(empty)'}")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXFormatError(f"{name}: file ends inside the header ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise IDXFormatError(
            f"{name}: header says shape {shape} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header_size} bytes; it is truncated or corrupt"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def read_idx(path, magic):
    """Read a gzipped IDX file and check its magic number (2051 images, 2049 labels)."""
    try:
        with gzip.open(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: not a readable .gz file ({exc})") from None
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise IDXFormatError(f"{path}: magic number {found}, expected {magic}")
    return parse_idx(raw, path)


# --- downloads ----------------------------------------------------------------------------------


def download_file(url, path, md5):
    """Fetch ``url`` into ``path``; the file appears only if all of it came, with the right MD5."""
    response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)
    with response, atomic_open(path) as file:
        expected_size = response.headers.get("Content-Length")
        digest = hashlib.md5()
        received = 0
        for chunk in iter(lambda: response.read(1 << 16), b""):
            file.write(chunk)
            digest.update(chunk)
            received += len(chunk)
        if expected_size is not None and received != int(expected_size):
            raise ConnectionError(f"connection closed after {received} of {expected_size} bytes")
        if digest.hexdigest() != md5:
            raise ChecksumError(f"{url}: MD5 {digest.hexdigest()} does not match the known {md5}")


def _fetch_from_mirrors(filename, folder, mirrors, md5):
    """Try each mirror in turn; returns the reasons each one failed (empty on success)."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        print(f"minigan: downloading {url}", file=sys.stderr)
        try:
            download_file(url, os.path.join(folder, filename), md5)
            return []
        except ChecksumError as exc:
            failures.append(exc)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            failures.append(DatasetUnavailable(f"{url}: {getattr(exc, 'reason', exc)}"))
    return failures


# --- MNIST and Fashion-MNIST -------------------------------------------------------------------


class MNIST(ImageDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey.

    Files are looked for in ``<cache_dir(root)>/mnist/``; missing ones are downloaded (when
    ``download``) from ``mirrors`` (default: ``MNIST_MIRRORS``) and checked against ``md5``.
    """

    folder_name = "mnist"
    display_name = "MNIST"
    default_mirrors = MNIST_MIRRORS
    md5 = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    class_names = DIGIT_CLASSES

    def __init__(self, root=None, train=True, download=True, mirrors=None):
        self.folder = os.path.join(cache_dir(root), self.folder_name)
        image_file, label_file = SPLIT_FILES["train" if train else "test"]
        self._ensure_files((image_file, label_file), download, mirrors)
        images = read_idx(os.path.join(self.folder, image_file), magic=2051)
        labels = read_idx(os.path.join(self.folder, label_file), magic=2049)
        self._check_contents(images, labels, image_file, label_file)
        super().__init__(images[:, None], labels, self.class_names)

    def _ensure_files(self, filenames, download, mirrors):
        missing = [f for f in filenames if not os.path.exists(os.path.join(self.folder, f))]
        if missing and not download:
            reason = f"{', '.join(missing)} missing and download=False"
            raise DatasetUnavailable(self._unavailable_message(reason))
        mirrors = self.default_mirrors if mirrors is None else mirrors
        for filename in missing:
            failures = _fetch_from_mirrors(filename, self.folder, mirrors, self.md5[filename])
            if failures or not mirrors:
                self._raise_download_failure(filename, failures)

    def _raise_download_failure(self, filename, failures):
        reasons = "\n".join(f"  - {failure}" for failure in failures) or "  - no mirrors given"
        corrupt = any(isinstance(failure, ChecksumError) for failure in failures)
        error = ChecksumError if corrupt else DatasetUnavailable
        raise error(self._unavailable_message(f"could not download {filename}:\n{reasons}"))

    def _unavailable_message(self, reason):
        files = "\n".join(f"  {self.folder}{os.sep}{f}" for f in ALL_FILES)
        return (
            f"{self.display_name} is not available: {reason}\n"
            f"To use a local copy, place these four files in {self.folder}:\n{files}\n"
            f"(or point root= or the MINIGAN_DATA environment variable at a folder holding "
            f"{self.folder_name}{os.sep}).\n"
            "To work offline, use the built-in dataset instead: --dataset digits, or "
            "minigan.data.Digits()."
        )

    def _check_contents(self, images, labels, image_file, label_file):
        if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1:] != (28, 28):
            found = f"{images.dtype} {images.shape}"
            raise IDXFormatError(f"{image_file}: expected uint8 images of 28x28, found {found}")
        if labels.ndim != 1 or len(labels) != len(images):
            found = f"{labels.shape} labels for {len(images)} images"
            raise IDXFormatError(f"{label_file}: {found} in {image_file}")
        if len(labels) and labels.max() >= len(self.class_names):
            found = f"label {labels.max()}"
            raise IDXFormatError(f"{label_file}: {found} but only {len(self.class_names)} classes")


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: same format and sizes as MNIST, ten kinds of clothing."""

    folder_name = "fashion-mnist"
    display_name = "Fashion-MNIST"
    default_mirrors = FASHION_MNIST_MIRRORS
    md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )


# --- Digits: the built-in offline dataset ------------------------------------------------------

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


# --- Shapes: a small RGB dataset ---------------------------------------------------------------


class Shapes(ImageDataset):
    """n RGB images of one coloured circle (label 0) or square (label 1) on a dark background.

    Colour, size and position are random; edges are anti-aliased. Deterministic for a seed.
    """

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


# --- batches ------------------------------------------------------------------------------------


def batches(dataset, batch_size, shuffle=True, drop_last=True, seed=None):
    """One epoch of (x, y): x float in [-1, 1] shaped (B, C, H, W), y int64 labels, as Tensors.

    Shuffling draws from minigan's one RNG (so ``minigan.manual_seed`` fixes the order) unless
    ``seed`` is given, in which case the order comes from its own generator.
    """
    order = _order(len(dataset), shuffle, None if seed is None else np.random.default_rng(seed))
    yield from _epoch(dataset, batch_size, order, drop_last)


def forever(dataset, batch_size, shuffle=True, seed=None):
    """Batches without end, reshuffling every epoch: for loops counted in steps, not epochs."""
    if len(dataset) < batch_size:
        size = f"batch_size {batch_size} is larger than the dataset ({len(dataset)} images)"
        raise ValueError(f"forever: {size}")
    rng = None if seed is None else np.random.default_rng(seed)
    while True:
        yield from _epoch(dataset, batch_size, _order(len(dataset), shuffle, rng), drop_last=True)


def _order(n, shuffle, rng):
    if not shuffle:
        return np.arange(n)
    return backend.permutation(n) if rng is None else rng.permutation(n)


def _epoch(dataset, batch_size, order, drop_last):
    dtype = np.dtype(backend.get_default_dtype().name)
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        index = order[start: start + batch_size]
        x = dataset.images[index].astype(dtype) * dtype.type(2 / 255) - dtype.type(1)
        yield tensor(x), tensor(dataset.labels[index])


# --- the lessons' --dataset flag ----------------------------------------------------------------

DATASETS = ("digits", "mnist", "fashion-mnist", "shapes")


def load_dataset(name, root=None, train=True):
    """The dataset behind ``--dataset name``; MNIST-like names fall back to Digits when offline."""
    if name == "digits":
        return Digits(60000 if train else 10000, seed=0 if train else 1, root=root)
    if name == "shapes":
        return Shapes(20000 if train else 4000, seed=0 if train else 1)
    if name in ("mnist", "fashion-mnist"):
        kind = MNIST if name == "mnist" else FashionMNIST
        try:
            return kind(root=root, train=train)
        except DatasetUnavailable as exc:
            print(f"{exc}\nFalling back to the built-in Digits dataset.", file=sys.stderr)
            return load_dataset("digits", root=root, train=train)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

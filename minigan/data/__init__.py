"""Datasets for the lessons, and batches from them.

Every dataset holds its images as uint8 arrays shaped (N, C, H, W) in ``.images`` and int64
labels in ``.labels``, and says which dataset it is in ``.name``. ``batches`` (one epoch) and
``forever`` (an endless stream that can save its place in a checkpoint) turn them into float
Tensors in [-1, 1], the range a tanh generator produces; ``to_tanh_range`` does the same to a
NumPy array of pixels.

- ``MNIST`` / ``FashionMNIST`` (``mnist.py``): the real thing, read from the four IDX files.
  Missing files are downloaded from public mirrors, checked against known MD5 digests and
  written atomically to the cache (``root``, else ``$MINIGAN_DATA``, else ``~/.cache/minigan``).
- ``Digits`` (``digits.py``): the offline default. MNIST-like 28x28 digits made on the spot from
  the fonts matplotlib ships, bent by random affine warps, elastic wobble, stroke width and blur.
- ``Shapes`` (``shapes.py``): coloured circles and squares on a dark background, for RGB.
- ``PairedImages`` and the translation data made from shapes and digits (``paired.py``):
  ``OutlinedShapes``, ``CirclesToSquares``, ``DigitSkeletons``, ``ThinToBold``; ``unpaired``
  cuts a paired dataset into two domains without pairs.

``load_dataset(name)`` maps the lessons' ``--dataset`` flag to these, and falls back from
MNIST to Digits (saying so on stderr) when the files cannot be had.
"""
import sys

from .batches import BatchStream, batches, forever, to_tanh_range
from .dataset import DIGIT_CLASSES, ImageDataset, cache_dir
from .digits import (
    DIGITS_VERSION,
    Digits,
    _glyph_bank,  # noqa: F401  (benchmarks/digits_generation.py warms it up)
    generate_digits,
)
from .mnist import (
    ALL_FILES,
    FASHION_MNIST_MIRRORS,
    MNIST,
    MNIST_MIRRORS,
    SPLIT_FILES,
    ChecksumError,
    DatasetUnavailable,
    FashionMNIST,
    IDXFormatError,
    download_file,
    parse_idx,
    read_idx,
)
from .paired import (
    CirclesToSquares, DigitSkeletons, OutlinedShapes, PairedImages, ThinToBold, thin, unpaired,
)
from .shapes import Shapes

__all__ = [
    "ALL_FILES", "DATASETS", "DIGITS_VERSION", "DIGIT_CLASSES", "FASHION_MNIST_MIRRORS",
    "MNIST", "MNIST_MIRRORS", "SPLIT_FILES", "BatchStream", "ChecksumError", "DatasetUnavailable",
    "Digits", "FashionMNIST", "IDXFormatError", "ImageDataset", "Shapes", "batches", "cache_dir",
    "download_file", "forever", "generate_digits", "load_dataset", "parse_idx", "read_idx",
    "to_tanh_range",
    "CirclesToSquares", "DigitSkeletons", "OutlinedShapes", "PairedImages", "ThinToBold", "thin",
    "unpaired",
]

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

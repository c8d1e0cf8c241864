"""MNIST and Fashion-MNIST from their four gzipped IDX files, downloaded when missing.

Downloads come from public mirrors, are checked against the published MD5 digests and are
written atomically to the cache, so an interrupted or corrupted download never leaves a file
that looks valid.
"""
import gzip
import hashlib
import http.client
import math
import os
import sys
import urllib.request
import zlib

import numpy as np

from ..io import atomic_open
from .dataset import DIGIT_CLASSES, ImageDataset, cache_dir

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


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on disk and could not be downloaded."""


class ChecksumError(DatasetUnavailable):
    """A download finished but its MD5 digest is not the published one."""


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file of the expected kind."""


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

    name = "mnist"
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

    name = "fashion-mnist"
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


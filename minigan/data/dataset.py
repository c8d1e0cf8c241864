"""What every dataset is: uint8 images (N, C, H, W) with int64 labels, and where files are cached."""
import os

import numpy as np

DIGIT_CLASSES = tuple(str(d) for d in range(10))


def cache_dir(root=None):
    """Where datasets live: ``root``, else ``$MINIGAN_DATA``, else ``~/.cache/minigan``."""
    root = root or os.environ.get("MINIGAN_DATA") or os.path.join("~", ".cache", "minigan")
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


class ImageDataset:
    """Images as uint8 (N, C, H, W) with int64 labels and class names.

    ``name`` says which dataset the images are ("digits", "mnist", ...), the name the lessons'
    --dataset flag uses for it; runs record it, so a fallback to another dataset shows.
    """

    name = "images"

    def __init__(self, images, labels, classes, name=None):
        if images.ndim != 4 or images.dtype != np.uint8:
            found = f"{images.dtype} {images.shape}"
            raise ValueError(f"images must be uint8 shaped (N, C, H, W), not {found}")
        if labels.shape != (len(images),):
            raise ValueError(f"{len(images)} images but labels shaped {labels.shape}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = tuple(classes)
        if name is not None:
            self.name = name

    @property
    def channels(self):
        return self.images.shape[1]

    @property
    def image_size(self):
        """Side length in pixels (every dataset here has square images)."""
        return self.images.shape[2]

    def first(self, n):
        """A dataset of the first ``n`` images (all of them when there are fewer), same name."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"first: n must be a positive integer, got {n!r}")
        return ImageDataset(self.images[:n], self.labels[:n], self.classes, name=self.name)

    def padded(self, border):
        """A dataset of the same images inside a black frame ``border`` pixels wide, same name
        (MNIST's 28x28 padded by 2 is 32x32, the power of two lessons 11-13 double up to)."""
        if isinstance(border, bool) or not isinstance(border, int) or border < 0:
            raise ValueError(f"padded: border must be an integer >= 0, got {border!r}")
        images = np.pad(self.images, ((0, 0), (0, 0), (border, border), (border, border)))
        return ImageDataset(images, self.labels, self.classes, name=self.name)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __repr__(self):
        n, c, h, w = self.images.shape
        name, classes = type(self).__name__, len(self.classes)
        return f"{name}(n={n}, channels={c}, size={h}x{w}, classes={classes})"


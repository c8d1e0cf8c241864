"""The image-translation data of minigan/data/paired.py: shapes, ranges and determinism, that
each input belongs to its target, the unpaired split, the skeleton against Zhang & Suen's rule
applied pixel by pixel, and that nothing reaches for the network."""
import socket

import numpy as np
import pytest

from minigan.data import (
    CirclesToSquares, DigitSkeletons, ImageDataset, OutlinedShapes, PairedImages, ThinToBold,
    batches, forever, thin, to_tanh_range, unpaired,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the translation datasets must not open a socket")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def ink(images, threshold=127):
    return np.asarray(images)[:, 0] > threshold


def bounding_box(mask):
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max(), cols.min(), cols.max()


def fill_mask(rgb):
    """Pixels of an RGB shape image (3, H, W) mostly covered by the shape: far from the
    background (the corner pixel) in some channel. Colours have a channel >= 0.7 and
    backgrounds are <= 0.15, so a half-covered edge pixel is > 0.27 away."""
    distance = np.abs(rgb.astype(np.int16) - rgb[:, :1, :1].astype(np.int16)).max(axis=0)
    return distance > 0.3 * 255


# --- shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, channels", [(OutlinedShapes, (1, 3)), (CirclesToSquares, (3, 3))])
def test_shape_pairs_have_their_shapes_range_and_are_deterministic_for_a_seed(kind, channels):
    pairs = kind(300, seed=4)
    assert isinstance(pairs, PairedImages) and len(pairs) == 300
    assert pairs.inputs.shape == (300, channels[0], 32, 32)
    assert pairs.targets.shape == (300, channels[1], 32, 32)
    assert pairs.images.dtype == np.uint8 and pairs.labels.dtype == np.int64
    assert pairs.input_channels == channels[0] and pairs.target_channels == channels[1]
    assert pairs.classes == ("circle", "square")
    for images in (pairs.inputs, pairs.targets):
        assert images.max() > 200 and images.min() < 10
    same, other = kind(300, seed=4), kind(300, seed=5)
    assert np.array_equal(same.images, pairs.images) and np.array_equal(same.labels, pairs.labels)
    assert not np.array_equal(other.images, pairs.images)
    # drawn in batches of 2048, the same images as drawn in one
    assert np.array_equal(kind(2100, seed=1).images[2048:2050], _redrawn(kind, 2100, 1)[2048:2050])


def _redrawn(kind, n, seed):
    """The same dataset drawn in one batch (batching must not change an image)."""
    import minigan.data.paired as paired

    batch, paired._BATCH = paired._BATCH, n
    try:
        return kind(n, seed=seed).images
    finally:
        paired._BATCH = batch


def test_an_outline_traces_the_edge_of_its_filled_shape():
    pairs = OutlinedShapes(200, seed=0)
    for outline, shape, label in zip(pairs.inputs, pairs.targets, pairs.labels):
        line, fill = outline[0] > 127, fill_mask(shape)
        assert np.abs(np.subtract(bounding_box(line), bounding_box(fill))).max() <= 1
        top, bottom, left, right = bounding_box(fill)
        share = fill.sum() / ((bottom - top + 1) * (right - left + 1))
        # a square fills its bounding box; a circle about pi/4 of it
        assert share > 0.93 if label == 1 else 0.6 < share < 0.86, (label, share)
        assert not (line & _eroded(fill, 2)).any(), "the outline runs along the edge only"
    assert set(pairs.labels.tolist()) == {0, 1}


def _eroded(mask, steps):
    for _ in range(steps):
        p = np.pad(mask, 1)
        mask = mask & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask


def test_a_circle_and_its_square_share_colour_background_and_place():
    pairs = CirclesToSquares(200, seed=2)
    assert (pairs.labels == 0).all()
    for circle, square in zip(pairs.inputs, pairs.targets):
        disc, box = fill_mask(circle), fill_mask(square)
        assert not (disc & ~box).any(), "the circle must lie inside its square"
        assert np.abs(np.subtract(bounding_box(disc), bounding_box(box))).max() <= 1
        assert box.sum() > 1.1 * disc.sum()
        assert np.array_equal(circle[:, 0, 0], square[:, 0, 0])        # background
        centre = tuple(int(np.mean(np.nonzero(disc)[i])) for i in range(2))
        assert np.array_equal(circle[:, centre[0], centre[1]], square[:, centre[0], centre[1]])


# --- pairs in batches, and domains without pairs ------------------------------------------------
def test_split_gives_each_batch_inputs_and_their_targets():
    pairs = OutlinedShapes(40, seed=0)
    x, _ = next(batches(pairs, 8, shuffle=False))
    inputs, targets = pairs.split(x)
    assert inputs.shape == (8, 1, 32, 32) and targets.shape == (8, 3, 32, 32)
    np.testing.assert_array_equal(inputs.numpy(), to_tanh_range(pairs.inputs[:8]))
    np.testing.assert_array_equal(targets.numpy(), to_tanh_range(pairs.targets[:8]))
    stream = forever(pairs, 8, seed=3)
    x, y = next(stream)
    order = stream.state_dict()["order"][:8]
    np.testing.assert_array_equal(pairs.split(x)[1].numpy(), to_tanh_range(pairs.targets[order]))
    np.testing.assert_array_equal(y.numpy(), pairs.labels[order])


def test_first_keeps_the_pairs():
    part = OutlinedShapes(30, seed=0).first(10)
    assert isinstance(part, PairedImages) and part.input_channels == 1 and len(part) == 10
    assert part.name == "outlines"
    assert np.array_equal(part.targets, OutlinedShapes(30, seed=0).targets[:10])


def test_unpaired_domains_come_from_different_pairs():
    pairs = CirclesToSquares(101, seed=0)
    a, b = unpaired(pairs)
    assert isinstance(a, ImageDataset) and (len(a), len(b)) == (50, 50)
    assert (a.name, b.name) == ("circles-squares-a", "circles-squares-b")
    assert np.array_equal(a.images, pairs.inputs[:50]) and np.array_equal(b.images, pairs.targets[50:100])
    assert a.images.flags.c_contiguous and b.images.flags.c_contiguous
    partners = pairs.targets[:50]
    assert not any(np.array_equal(square, partner) for square in b.images for partner in partners)
    with pytest.raises(ValueError, match="cannot make two domains"):
        unpaired(pairs.first(1))


def test_paired_images_refuse_inputs_and_targets_that_do_not_pair_up():
    with pytest.raises(ValueError, match="do not pair up"):
        PairedImages(np.zeros((3, 1, 8, 8), np.uint8), np.zeros((4, 3, 8, 8), np.uint8),
                     np.zeros(3), ("x",))
    with pytest.raises(ValueError, match="do not pair up"):
        PairedImages(np.zeros((3, 1, 8, 8), np.uint8), np.zeros((3, 3, 8, 9), np.uint8),
                     np.zeros(3), ("x",))


# --- thinning -----------------------------------------------------------------------------------
def zhang_suen_by_hand(mask):
    """Zhang & Suen (1984), pixel by pixel as the paper states it: each sub-iteration marks
    the pixels to delete on the image as it was, then deletes them all."""
    image = np.pad(mask.astype(int), 1)
    while True:
        deleted = 0
        for step in (1, 2):
            marked = []
            for r in range(1, image.shape[0] - 1):
                for c in range(1, image.shape[1] - 1):
                    if not image[r, c]:
                        continue
                    p = [image[r - 1, c], image[r - 1, c + 1], image[r, c + 1], image[r + 1, c + 1],
                         image[r + 1, c], image[r + 1, c - 1], image[r, c - 1], image[r - 1, c - 1]]
                    b = sum(p)
                    a = sum(1 for i in range(8) if p[i] == 0 and p[(i + 1) % 8] == 1)
                    p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
                    if step == 1:
                        ok = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
                    else:
                        ok = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
                    if 2 <= b <= 6 and a == 1 and ok:
                        marked.append((r, c))
            for r, c in marked:
                image[r, c] = 0
            deleted += len(marked)
        if not deleted:
            return image[1:-1, 1:-1].astype(bool)


def blobs(n, size, seed):
    """Random thick strokes: a few discs and bars per image."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), bool)
    for mask in masks:
        for _ in range(rng.integers(1, 4)):
            r, c, radius = rng.uniform(2, size - 2), rng.uniform(2, size - 2), rng.uniform(1.5, 4)
            mask |= (rows - r) ** 2 + (cols - c) ** 2 <= radius ** 2
        r0, c0 = rng.integers(0, size - 4, 2)
        mask[r0:r0 + rng.integers(2, 5), c0:c0 + rng.integers(3, size - c0)] = True
    return masks


def components(mask):
    """8-connected foreground components of one (H, W) mask."""
    seen, count = np.zeros_like(mask), 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            r, c = stack.pop()
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    q = (r + dr, c + dc)
                    if 0 <= q[0] < mask.shape[0] and 0 <= q[1] < mask.shape[1] and mask[q] and not seen[q]:
                        seen[q] = True
                        stack.append(q)
    return count


def test_thin_is_zhang_suen_and_keeps_each_stroke_connected():
    masks = blobs(12, 16, seed=0)
    skeletons = thin(masks)
    for mask, skeleton in zip(masks, skeletons):
        np.testing.assert_array_equal(skeleton, zhang_suen_by_hand(mask))
        assert not (skeleton & ~mask).any() and skeleton.sum() < mask.sum()
        assert components(skeleton) == components(mask)
    assert np.array_equal(thin(skeletons), skeletons), "a skeleton is its own skeleton"


def test_thin_reduces_a_thick_bar_to_a_line_one_pixel_wide():
    bar = np.zeros((1, 9, 20), bool)
    bar[0, 2:7, 2:18] = True
    skeleton = thin(bar)[0]
    rows, cols = np.nonzero(skeleton)
    assert (rows == 4).all(), "the line runs along the bar's middle row"
    assert len(cols) >= 10 and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols)))


# --- digits -------------------------------------------------------------------------------------
def strokes(n, size, seed):
    """A ring and a bar per image, 2 to 4 pixels thick, like the strokes of a digit."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size] + 0.5
    masks = np.zeros((n, size, size), bool)
    for mask in masks:
        r, c, radius = rng.uniform(9, size - 9), rng.uniform(9, size - 9), rng.uniform(4, 7)
        mask |= np.abs(np.hypot(rows - r, cols - c) - radius) <= rng.uniform(1, 2)
        top, left = rng.integers(2, size - 6), rng.integers(2, 10)
        mask[top:top + rng.integers(2, 5), left:left + rng.integers(8, size - 12)] = True
    return masks


def fake_digits(n=16, seed=0):
    """Thick strokes standing in for 28x28 digits, with a name and ten classes."""
    images = np.rint(strokes(n, 28, seed) * 255).astype(np.uint8)[:, None]
    return ImageDataset(images, np.arange(n) % 10, tuple("0123456789"), name="digits")


def test_digit_skeletons_pair_each_digit_with_its_skeleton():
    digits = fake_digits()
    pairs = DigitSkeletons(digits)
    assert pairs.name == "digits-skeletons" and pairs.classes == digits.classes
    assert pairs.inputs.shape == pairs.targets.shape == (16, 1, 32, 32)
    assert np.array_equal(pairs.targets[:, :, 2:30, 2:30], digits.images)
    assert not pairs.targets[:, :, :2].any() and not pairs.targets[:, :, :, 30:].any()
    assert set(np.unique(pairs.inputs)) <= {0, 255}
    assert np.array_equal(ink(pairs.inputs), thin(ink(pairs.targets)))
    assert np.array_equal(pairs.labels, digits.labels)
    assert np.array_equal(DigitSkeletons(digits).images, pairs.images)


def test_thin_and_bold_strokes_follow_one_skeleton():
    digits = fake_digits()
    pairs = ThinToBold(digits)
    assert pairs.name == "digits-strokes" and pairs.inputs.shape == (16, 1, 32, 32)
    thin_ink, bold_ink = pairs.inputs[:, 0] > 0, pairs.targets[:, 0] > 0
    assert not (thin_ink & ~bold_ink).any()
    width = bold_ink.sum(axis=(1, 2)) / thin_ink.sum(axis=(1, 2))
    assert (width > 1.4).all(), width
    skeleton = thin(np.pad(digits.images[:, 0], ((0, 0), (2, 2), (2, 2))) > 127)
    assert (pairs.inputs[:, 0][skeleton] >= 128).all() and (pairs.targets[:, 0][skeleton] == 255).all()


def test_digit_pairs_refuse_colour_images():
    colour = ImageDataset(np.zeros((2, 3, 28, 28), np.uint8), np.zeros(2), ("x",))
    with pytest.raises(ValueError, match="grey digits"):
        DigitSkeletons(colour)

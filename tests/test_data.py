import gzip
import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan
from minigan import data, io
from minigan.data import (
    ALL_FILES,
    MNIST,
    ChecksumError,
    DatasetUnavailable,
    Digits,
    FashionMNIST,
    IDXFormatError,
    ImageDataset,
    Shapes,
    batches,
    forever,
    generate_digits,
    load_dataset,
    parse_idx,
    read_idx,
)

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array):
    """An IDX file for ``array``, written by hand from the format's description."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def synthetic_split(n=5, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    return images, labels


def gz_files(n=5):
    """The four MNIST files for a tiny synthetic dataset, as {name: gzipped bytes}."""
    train, test = synthetic_split(n, 0), synthetic_split(n, 1)
    arrays = dict(zip(ALL_FILES, [train[0], train[1], test[0], test[1]]))
    return {name: gzip.compress(idx_bytes(array), mtime=0) for name, array in arrays.items()}


def md5(raw):
    return hashlib.md5(raw).hexdigest()


def write_files(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, raw in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(raw)


# --- IDX ----------------------------------------------------------------------------------------


@given(hnp.arrays(dtype=st.sampled_from(sorted(IDX_CODES, key=str)),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
def test_idx_round_trips_every_value_type(array):
    parsed = parse_idx(idx_bytes(array))
    assert parsed.shape == array.shape and parsed.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(parsed, array)


def test_idx_images_and_labels_read_from_gz(tmp_path):
    images, labels = synthetic_split()
    (tmp_path / "i.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(tmp_path / "i.gz", magic=2051), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "l.gz", magic=2049), labels)
    with pytest.raises(IDXFormatError, match="magic number 2049, expected 2051"):
        read_idx(tmp_path / "l.gz", magic=2051)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda raw: b"\x01" + raw[1:], "magic"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "magic"),
        (lambda raw: b"", "magic"),
        (lambda raw: raw[:-1], "truncated"),
        (lambda raw: raw[:10], "header"),
        (lambda raw: raw + b"\x00", "holds"),
    ],
    ids=["nonzero-lead", "unknown-type", "empty", "truncated-data", "truncated-header", "trailing"],
)
def test_malformed_idx_is_rejected(mangle, message):
    raw = idx_bytes(synthetic_split()[0])
    with pytest.raises(IDXFormatError, match=message):
        parse_idx(mangle(raw), "images")


def test_truncated_gzip_is_rejected(tmp_path):
    raw = gzip.compress(idx_bytes(synthetic_split()[0]))
    (tmp_path / "cut.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXFormatError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz", magic=2051)


# --- MNIST from local files ---------------------------------------------------------------------


def test_mnist_reads_local_files_as_uint8_nchw(tmp_path):
    write_files(tmp_path / "mnist", gz_files(n=7))
    train = MNIST(root=tmp_path, download=False)
    test = MNIST(root=tmp_path, train=False, download=False)
    assert train.images.shape == (7, 1, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (7,) and train.labels.dtype == np.int64
    assert (len(train), train.channels, train.image_size) == (7, 1, 28)
    assert train.classes == tuple("0123456789")
    np.testing.assert_array_equal(train.images[:, 0], synthetic_split(7, 0)[0])
    np.testing.assert_array_equal(test.labels, synthetic_split(7, 1)[1])


def test_fashion_mnist_has_its_own_folder_and_class_names(tmp_path):
    write_files(tmp_path / "fashion-mnist", gz_files())
    dataset = FashionMNIST(root=tmp_path, download=False)
    assert dataset.classes[0] == "T-shirt/top" and len(dataset.classes) == 10


def test_cache_directory_comes_from_root_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "env"))
    assert data.cache_dir() == str(tmp_path / "env")
    assert data.cache_dir(tmp_path / "root") == str(tmp_path / "root")
    monkeypatch.delenv("MINIGAN_DATA")
    assert data.cache_dir() == os.path.expanduser(os.path.join("~", ".cache", "minigan"))
    write_files(tmp_path / "env" / "mnist", gz_files())
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "env"))
    assert len(MNIST(download=False)) == 5


def test_image_and_label_counts_must_agree(tmp_path):
    files = gz_files(n=5)
    files["train-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.zeros(4, np.uint8)))
    write_files(tmp_path / "mnist", files)
    with pytest.raises(IDXFormatError, match="4.*labels for 5 images"):
        MNIST(root=tmp_path, download=False)


def test_missing_files_without_download_explain_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailable) as error:
        MNIST(root=tmp_path, download=False)
    assert_offline_message(str(error.value), tmp_path / "mnist")


def assert_offline_message(message, folder):
    assert str(folder) in message
    for name in ALL_FILES:
        assert name in message
    assert "--dataset digits" in message and "Digits()" in message


# --- downloads from a local HTTP server ---------------------------------------------------------


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 serving ``server.files``; names in ``server.drop`` get a
    Content-Length twice their size and the connection is closed after half of the body."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            folder, _, name = self.path.rpartition("/")
            if folder != "/mnist" or name not in state.files:
                self.send_error(404)
                return
            body = state.files[name]
            self.send_response(200)
            dropped = name in state.drop
            self.send_header("Content-Length", str(2 * len(body) if dropped else len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if dropped else body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state = type("Server", (), {})()
    state.files, state.drop = {}, set()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/mnist/"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(data.mnist, "DOWNLOAD_TIMEOUT_S", 2)


@pytest.fixture
def synthetic_digests(monkeypatch):
    files = gz_files()
    monkeypatch.setattr(MNIST, "md5", {name: md5(raw) for name, raw in files.items()})
    return files


@pytest.mark.usefixtures("short_timeout")
def test_download_fetches_verifies_and_caches(tmp_path, server, synthetic_digests):
    server.files = synthetic_digests
    dataset = MNIST(root=tmp_path, mirrors=[server.url])
    assert len(dataset) == 5
    assert sorted(os.listdir(tmp_path / "mnist")) == sorted(ALL_FILES[:2])
    server.files = {}  # a second load reads the cache and needs no server
    assert len(MNIST(root=tmp_path, mirrors=[server.url])) == 5


@pytest.mark.usefixtures("short_timeout")
def test_download_moves_on_to_the_next_mirror(tmp_path, server, synthetic_digests):
    server.files = synthetic_digests
    not_found = server.url.replace("/mnist/", "/elsewhere/")
    dataset = MNIST(root=tmp_path, train=False, mirrors=[closed_port_url(), not_found, server.url])
    assert len(dataset) == 5


@pytest.mark.usefixtures("short_timeout")
def test_corrupted_download_raises_and_leaves_nothing(tmp_path, server, synthetic_digests):
    server.files = dict(synthetic_digests)
    server.files["train-images-idx3-ubyte.gz"] = b"not the file you are looking for"
    with pytest.raises(ChecksumError, match="does not match"):
        MNIST(root=tmp_path, mirrors=[server.url])
    assert os.listdir(tmp_path / "mnist") == []


@pytest.mark.usefixtures("short_timeout")
def test_connection_dropped_half_way_leaves_nothing(tmp_path, server, synthetic_digests):
    server.files = synthetic_digests
    server.drop = {"train-images-idx3-ubyte.gz"}
    with pytest.raises(DatasetUnavailable, match="closed after"):
        MNIST(root=tmp_path, mirrors=[server.url])
    assert os.listdir(tmp_path / "mnist") == []


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.mark.usefixtures("short_timeout")
def test_no_server_at_all_gives_the_offline_message(tmp_path):
    with pytest.raises(DatasetUnavailable) as error:
        MNIST(root=tmp_path, mirrors=[closed_port_url()])
    assert_offline_message(str(error.value), tmp_path / "mnist")
    assert not (tmp_path / "mnist").exists() or os.listdir(tmp_path / "mnist") == []


@pytest.mark.usefixtures("short_timeout")
def test_load_dataset_falls_back_to_digits_when_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(MNIST, "default_mirrors", [closed_port_url()])
    dataset = load_dataset("mnist", root=tmp_path, train=False)
    assert isinstance(dataset, Digits) and len(dataset) == 10000
    err = capsys.readouterr().err
    assert "Falling back to the built-in Digits dataset" in err and "MNIST is not available" in err


def test_load_dataset_names():
    assert isinstance(load_dataset("shapes", train=False), Shapes)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


# --- Digits -------------------------------------------------------------------------------------


def test_digits_are_deterministic_for_a_seed_and_cached(tmp_path):
    first = Digits(n=300, seed=3, root=tmp_path)
    cached = tmp_path / "digits" / f"digits-v{data.DIGITS_VERSION}-n300-seed3.npz"
    assert cached.exists()
    again = Digits(n=300, seed=3, root=tmp_path)  # from the cache
    fresh = generate_digits(300, seed=3)  # generated again
    np.testing.assert_array_equal(first.images[:, 0], fresh[0])
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, fresh[1])
    other = generate_digits(300, seed=4)
    assert not np.array_equal(other[0], fresh[0])


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not really a zip", b"\x93NUMPY"])
def test_a_damaged_digits_cache_is_made_again(tmp_path, damage):
    cached = tmp_path / "digits" / f"digits-v{data.DIGITS_VERSION}-n50-seed0.npz"
    cached.parent.mkdir()
    cached.write_bytes(damage)
    np.testing.assert_array_equal(Digits(n=50, root=tmp_path).images[:, 0], generate_digits(50)[0])
    assert len(Digits(n=50, root=tmp_path)) == 50


def test_digits_look_like_mnist():
    images, labels = generate_digits(1000, seed=0)
    assert images.shape == (1000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [100] * 10
    ink = images.astype(np.float64)
    rows, cols = np.arange(28) + 0.5, np.arange(28) + 0.5
    mass = ink.sum(axis=(1, 2))
    centre_y = (ink.sum(2) * rows).sum(1) / mass
    centre_x = (ink.sum(1) * cols).sum(1) / mass
    assert np.all(np.abs(centre_y - 14) < 2.5) and np.all(np.abs(centre_x - 14) < 2.5)
    assert np.mean(images[:, [0, -1], :] > 0) < 0.01 and np.mean(images[:, :, [0, -1]] > 0) < 0.01
    assert 0.08 < np.mean(images > 128) < 0.25  # white strokes on black, like MNIST (0.13)
    assert images.max() == 255


def test_digit_classes_are_distinct_enough_for_a_linear_classifier():
    """Softmax regression on 10,000 digits must score over 90% on 2,000 unseen ones."""
    images, labels = generate_digits(12000, seed=0)
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    x_train, y_train, x_test, y_test = x[:10000], labels[:10000], x[10000:], labels[10000:]
    weights, bias = np.zeros((784, 10), np.float32), np.zeros(10, np.float32)
    targets = np.eye(10, dtype=np.float32)[y_train]
    rng = np.random.default_rng(0)
    for _ in range(5):
        for index in np.array_split(rng.permutation(len(x_train)), 100):
            logits = x_train[index] @ weights + bias
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            grad = (probs - targets[index]) / len(index)
            weights -= 0.5 * x_train[index].T @ grad
            bias -= 0.5 * grad.sum(0)
    accuracy = np.mean((x_test @ weights + bias).argmax(1) == y_test)
    assert accuracy > 0.9


# --- Shapes -------------------------------------------------------------------------------------


def test_shapes_are_coloured_circles_and_squares_on_dark():
    shapes = Shapes(200, size=32, seed=0)
    assert shapes.images.shape == (200, 3, 32, 32)
    assert shapes.channels == 3 and shapes.image_size == 32
    assert set(np.unique(shapes.labels)) == {0, 1} and shapes.classes == ("circle", "square")
    corners = shapes.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() <= 0.15 * 255 + 1
    assert np.all(shapes.images.max(axis=(1, 2, 3)) >= 0.7 * 255 - 1)
    np.testing.assert_array_equal(Shapes(200, seed=0).images, shapes.images)


def test_a_square_fills_its_bounding_box_and_a_circle_does_not():
    shapes = Shapes(400, size=32, seed=1)
    bright = shapes.images.max(axis=1) > 128
    rows, cols = bright.any(axis=2), bright.any(axis=1)
    box_area = rows.sum(1) * cols.sum(1)
    fill = bright.sum(axis=(1, 2)) / box_area
    assert np.all(fill[shapes.labels == 1] > 0.97) and np.all(fill[shapes.labels == 0] < 0.9)


def test_the_default_shapes_are_the_same_images_as_ever():
    """The options below draw their extra random numbers after the default ones, so the
    default dataset (lesson 09's) does not change: these are its first 64 images' bytes."""
    images = Shapes(64, seed=0).images
    assert hashlib.sha256(images.tobytes()).hexdigest() == \
        "f2cc39979b993371053a33999f4494d6804f82047f7dd1456df87a1241396fc8"


def test_shapes_with_more_kinds_and_fills_label_every_pair():
    shapes = Shapes(600, seed=2, kinds=("circle", "square", "triangle", "ring"),
                    fills=("flat", "gradient", "stripes"))
    assert len(shapes.classes) == 12 and shapes.classes[:3] == ("flat circle", "gradient circle", "striped circle")
    assert shapes.name == "shapes-circle+square+triangle+ring-flat+gradient+stripes"
    assert set(np.unique(shapes.labels)) == set(range(12))
    corners = shapes.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() <= 0.15 * 255 + 1
    np.testing.assert_array_equal(Shapes(600, seed=2, kinds=("circle", "square", "triangle", "ring"),
                                         fills=("flat", "gradient", "stripes")).images, shapes.images)


def kind_masks(kind, n=200, seed=0):
    shapes = Shapes(n, size=32, seed=seed, kinds=(kind,))
    return shapes.images.max(axis=1) > 128


def test_a_triangle_is_wider_at_the_bottom_and_a_ring_is_empty_in_the_middle():
    triangle = kind_masks("triangle")
    for mask in triangle:
        rows = np.flatnonzero(mask.any(axis=1))
        top, bottom = mask[rows[0] + 1].sum(), mask[rows[-1] - 1].sum()
        assert bottom > top
    for mask in kind_masks("ring"):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        centre = (rows[0] + rows[-1]) // 2, (cols[0] + cols[-1]) // 2
        assert not mask[centre]


def test_flat_fills_are_one_colour_and_stripes_and_gradients_are_not():
    spreads = {}
    for fill in ("flat", "gradient", "stripes"):
        shapes = Shapes(200, size=32, seed=3, kinds=("square",), fills=(fill,))
        inside = [image[:, mask] for image, mask in zip(shapes.images, shapes.images.max(axis=1) > 160)]
        # the spread of colours over each square's inner pixels, averaged over the squares
        spreads[fill] = np.mean([pixels.astype(float).std(axis=1).mean() for pixels in inside if pixels.shape[1] > 9])
    assert spreads["flat"] < 8 < min(spreads["gradient"], spreads["stripes"])


def test_shapes_refuse_unknown_or_repeated_options():
    with pytest.raises(ValueError, match="kinds must be distinct names"):
        Shapes(4, kinds=("circle", "hexagon"))
    with pytest.raises(ValueError, match="fills must be distinct names"):
        Shapes(4, fills=("flat", "flat"))


# --- batches ------------------------------------------------------------------------------------


def tiny_dataset(n=10):
    images = np.arange(n, dtype=np.uint8).repeat(4).reshape(n, 1, 2, 2)
    images[0], images[-1] = 0, 255
    return ImageDataset(images, np.arange(n), classes=[str(i) for i in range(n)])


def test_batches_are_tensors_in_the_tanh_range():
    x, y = next(batches(tiny_dataset(), 4, shuffle=False))
    assert isinstance(x, minigan.Tensor) and x.shape == (4, 1, 2, 2)
    assert x.dtype == minigan.get_default_dtype() and y.dtype == np.int64
    assert x.numpy()[0].min() == -1.0
    assert y.numpy().tolist() == [0, 1, 2, 3]
    last_x, _ = list(batches(tiny_dataset(), 5, shuffle=False))[-1]
    assert last_x.numpy()[-1].max() == 1.0


def test_batches_drop_or_keep_the_last_partial_batch():
    assert [len(y.numpy()) for _, y in batches(tiny_dataset(10), 4)] == [4, 4]
    assert [len(y.numpy()) for _, y in batches(tiny_dataset(10), 4, drop_last=False)] == [4, 4, 2]


def epoch_labels(**kwargs):
    return np.concatenate([y.numpy() for _, y in batches(tiny_dataset(10), 5, **kwargs)])


def test_shuffling_follows_the_engine_rng_or_its_own_seed():
    minigan.manual_seed(1)
    first = epoch_labels()
    minigan.manual_seed(1)
    assert epoch_labels().tolist() == first.tolist()
    assert sorted(first.tolist()) == list(range(10)) and first.tolist() != list(range(10))
    minigan.manual_seed(2)
    seeded = epoch_labels(seed=7)
    minigan.manual_seed(3)
    assert epoch_labels(seed=7).tolist() == seeded.tolist()


def test_forever_keeps_going_and_reshuffles_each_epoch():
    stream = forever(tiny_dataset(10), 5, seed=0)
    labels = [next(stream)[1].numpy() for _ in range(6)]
    epochs = [np.concatenate(labels[i: i + 2]) for i in (0, 2, 4)]
    assert all(sorted(epoch.tolist()) == list(range(10)) for epoch in epochs)
    assert epochs[0].tolist() != epochs[1].tolist()
    with pytest.raises(ValueError, match="larger than the dataset"):
        next(forever(tiny_dataset(3), 4))


def test_to_tanh_range_maps_0_to_minus_1_and_255_to_1_as_batches_do():
    pixels = np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8)
    values = data.to_tanh_range(pixels)
    assert values.dtype == np.dtype(minigan.get_default_dtype().name)
    assert values[0] == -1 and values[-1] == 1 and np.all(np.diff(values) > 0)
    np.testing.assert_allclose(values, pixels / 127.5 - 1, rtol=0, atol=1e-6)
    x, _ = next(batches(tiny_dataset(), 10, shuffle=False))
    np.testing.assert_array_equal(x.numpy(), data.to_tanh_range(tiny_dataset().images))
    assert data.to_tanh_range(pixels, np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="to_tanh_range: expected uint8 pixels.*float32"):
        data.to_tanh_range(values)


@pytest.mark.parametrize("batch_size", [0, -5, 2.5, True, None])
def test_a_batch_size_that_is_not_a_positive_int_is_refused_at_once(batch_size):
    for make, name in ((batches, "batches"), (forever, "forever")):
        with pytest.raises(ValueError, match=f"{name}: batch_size must be a positive integer, "
                                             f"got {batch_size!r}"):
            make(tiny_dataset(), batch_size)  # no next(): the call itself refuses


def test_datasets_say_which_dataset_they_are_and_first_keeps_the_name():
    assert (Digits.name, MNIST.name, FashionMNIST.name, Shapes.name) == \
        ("digits", "mnist", "fashion-mnist", "shapes")
    shapes = Shapes(n=20, size=8)
    head = shapes.first(5)
    assert head.name == "shapes" and len(head) == 5 and head.classes == shapes.classes
    np.testing.assert_array_equal(head.images, shapes.images[:5])
    np.testing.assert_array_equal(head.labels, shapes.labels[:5])
    assert len(shapes.first(100)) == 20
    with pytest.raises(ValueError, match="first: n must be a positive integer, got 0"):
        shapes.first(0)


def test_padded_frames_the_images_in_black_and_keeps_labels_and_name():
    digits = Digits(n=6, seed=3)
    framed = digits.padded(2)
    assert framed.name == "digits" and framed.images.shape == (6, 1, 32, 32) and framed.images.dtype == np.uint8
    np.testing.assert_array_equal(framed.images[:, :, 2:30, 2:30], digits.images)
    inner = np.zeros((32, 32), bool)
    inner[2:30, 2:30] = True
    assert framed.images[:, :, ~inner].max() == 0 and framed.images.max() == digits.images.max()
    np.testing.assert_array_equal(framed.labels, digits.labels)
    assert framed.classes == digits.classes and digits.padded(0).images.shape == digits.images.shape
    with pytest.raises(ValueError, match="padded: border must be an integer >= 0, got -1"):
        digits.padded(-1)


def saved_and_loaded(state, folder):
    """``state`` after a trip through an .npz file, as a checkpoint stores it."""
    io.save(state, folder / "state.npz")
    return io.load(folder / "state.npz")


def stream_labels(stream, n):
    return [next(stream)[1].numpy().tolist() for _ in range(n)]


@pytest.mark.parametrize("seed", [None, 3])
@pytest.mark.parametrize("stop", [0, 1, 2, 3, 5, 7])  # 10 images, batches of 3: 3 per epoch
def test_a_stream_restored_from_its_state_gives_the_batches_that_were_next(seed, stop, tmp_path):
    minigan.manual_seed(0)
    straight = stream_labels(forever(tiny_dataset(10), 3, seed=seed), 9)

    minigan.manual_seed(0)
    stream = forever(tiny_dataset(10), 3, seed=seed)
    first = stream_labels(stream, stop)
    saved, rng = saved_and_loaded(stream.state_dict(), tmp_path), minigan.get_rng_state()
    stream_labels(stream, 4)  # wander off, as the rest of an interrupted run would
    minigan.manual_seed(99)

    resumed = forever(tiny_dataset(10), 3, seed=seed)
    resumed.load_state_dict(saved)
    minigan.set_rng_state(rng)
    assert first + stream_labels(resumed, 9 - stop) == straight
    assert resumed.epoch == 3


def test_a_stream_restarted_without_its_state_would_not_match():
    """What the state is for: a fresh stream starts a new epoch, so the batches differ."""
    minigan.manual_seed(0)
    stream = forever(tiny_dataset(10), 3)
    stream_labels(stream, 2)  # stopped in the middle of the first epoch
    rng = minigan.get_rng_state()
    later = stream_labels(stream, 3)
    minigan.set_rng_state(rng)
    assert stream_labels(forever(tiny_dataset(10), 3), 3) != later


def test_stream_state_is_compact_and_names_its_parts():
    stream = forever(tiny_dataset(10), 3)
    assert stream.state_dict()["order"] is None and stream.state_dict()["epoch"] == 0
    next(stream)
    state = stream.state_dict()
    assert state["order"].dtype == np.uint8 and sorted(state["order"]) == list(range(10))
    assert (state["dataset_size"], state["batch_size"], state["shuffle"], state["epoch"],
            state["position"], state["generator"]) == (10, 3, True, 1, 3, None)


def bad_states():
    minigan.manual_seed(0)
    stream = forever(tiny_dataset(10), 3, seed=1)
    next(stream)
    good = stream.state_dict()
    order = good["order"].copy()
    order[0] = order[1]
    return [
        ("missing keys", {"epoch": 1}, "the state has no dataset_size"),
        ("other dataset size", dict(good, dataset_size=12), "dataset_size 12, this stream has 10"),
        ("other batch size", dict(good, batch_size=4), "batch_size 4, this stream has 3"),
        ("other shuffling", dict(good, shuffle=False), "shuffle False, this stream has True"),
        ("position past the end", dict(good, position=11), "0 <= position <= 10"),
        ("negative epoch", dict(good, epoch=-1), "must be integers"),
        ("float position", dict(good, position=3.0), "must be integers"),
        ("repeated index", dict(good, order=order), "permutation of 0..9"),
        ("short order", dict(good, order=good["order"][:5]), "permutation of 0..9"),
        ("position without an order", dict(good, order=None), "no order"),
        ("no generator", dict(good, generator=None), "this stream has its own generator"),
        ("broken generator", dict(good, generator={"bit_generator": "MT19937"}),
         "generator state does not load"),
    ]


@pytest.mark.parametrize("name, state, message", bad_states(), ids=[c[0] for c in bad_states()])
def test_a_state_that_does_not_fit_is_refused_and_changes_nothing(name, state, message):
    stream = forever(tiny_dataset(10), 3, seed=1)
    stream_labels(stream, 2)
    before = stream.state_dict()
    with pytest.raises(ValueError, match=f"BatchStream.load_state_dict: .*{message}"):
        stream.load_state_dict(state)
    after = stream.state_dict()
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[k], before[k]) if k == "order" else after[k] == before[k]
               for k in before)


def test_a_stream_state_that_is_not_a_dict_is_a_type_error():
    with pytest.raises(TypeError, match="BatchStream.load_state_dict: expected a dict, got list"):
        forever(tiny_dataset(10), 3).load_state_dict([1, 2])

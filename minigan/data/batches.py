"""Batches of float Tensors in [-1, 1] from a dataset: one epoch (``batches``), or an endless
stream of them that can save its place and continue from it (``forever``).

    stream = forever(dataset, 64)      # reshuffled every epoch
    x, y = next(stream)                # x: (64, C, H, W) in [-1, 1], y: int64 labels
    saved = stream.state_dict()        # this epoch's order and the position in it
    stream.load_state_dict(saved)      # back there: the same batches come next
"""
import numbers

import numpy as np

from .. import backend, tensor


def to_tanh_range(images, dtype=None):
    """uint8 pixels as floats in [-1, 1] (0 -> -1, 255 -> 1), the range a tanh generator
    produces. NumPy in, NumPy out, in ``dtype`` (default: minigan's default float dtype)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_tanh_range: expected uint8 pixels (0-255), got {images.dtype}")
    dtype = np.dtype(backend.get_default_dtype().name if dtype is None else dtype)
    return images.astype(dtype) * dtype.type(2 / 255) - dtype.type(1)


def batches(dataset, batch_size, shuffle=True, drop_last=True, seed=None):
    """One epoch of (x, y): x float in [-1, 1] shaped (B, C, H, W), y int64 labels, as Tensors.

    Shuffling draws from minigan's one RNG (so ``minigan.manual_seed`` fixes the order) unless
    ``seed`` is given, in which case the order comes from its own generator. The order is drawn
    when the first batch is asked for.
    """
    _check_batch_size("batches", batch_size)
    rng = None if seed is None else np.random.default_rng(seed)

    def epoch():
        order = _order(len(dataset), shuffle, rng)
        stop = len(order) - len(order) % batch_size if drop_last else len(order)
        for start in range(0, stop, batch_size):
            yield _batch(dataset, order[start: start + batch_size])

    return epoch()


def forever(dataset, batch_size, shuffle=True, seed=None):
    """Batches without end, reshuffled every epoch, for loops counted in steps: a BatchStream."""
    return BatchStream(dataset, batch_size, shuffle=shuffle, seed=seed)


class BatchStream:
    """Endless full batches of ``dataset``, reshuffled every epoch, that can save their place.

    Each epoch's order is drawn when its first batch is asked for, from minigan's RNG (or from
    the stream's own generator when ``seed`` is given); images left over at the end of an epoch
    (fewer than a batch) are skipped, as ``batches(drop_last=True)`` does.

    ``state_dict()`` holds the current epoch's order, the position in it, the number of epochs
    begun and the own generator's state, so a checkpoint that stores it (with minigan's RNG)
    continues with exactly the batches an uninterrupted run would have seen.
    ``load_state_dict()`` checks everything before changing anything.
    """

    def __init__(self, dataset, batch_size, shuffle=True, seed=None):
        _check_batch_size("forever", batch_size)
        if batch_size > len(dataset):
            raise ValueError(f"forever: batch_size {batch_size} is larger than the dataset "
                             f"({len(dataset)} images)")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.epoch = 0  # epochs begun
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._order = None
        self._position = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._order is None or self._position + self.batch_size > len(self._order):
            self._order = _order(len(self.dataset), self.shuffle, self._rng)
            self._position = 0
            self.epoch += 1
        index = self._order[self._position: self._position + self.batch_size]
        self._position += self.batch_size
        return _batch(self.dataset, index)

    def state_dict(self):
        """{"dataset_size", "batch_size", "shuffle", "epoch", "position", "order", "generator"}:
        ``order`` is this epoch's permutation (None before the first batch), ``position`` how
        many of its images have been served, ``generator`` the own generator's state (None when
        shuffling draws from minigan's RNG)."""
        n = len(self.dataset)
        order = None
        if self._order is not None:  # stored in the smallest unsigned type that holds n - 1
            order = self._order.astype(np.min_scalar_type(max(n - 1, 0)))
        return {
            "dataset_size": n,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "epoch": self.epoch,
            "position": self._position,
            "order": order,
            "generator": None if self._rng is None else self._rng.bit_generator.state,
        }

    def load_state_dict(self, state):
        """Continue from ``state`` (from ``state_dict()`` of a stream over a dataset of the same
        size, with the same batch size and shuffling). Raises ValueError, naming what does not
        match, and leaves the stream as it was, when ``state`` does not fit this stream
        (TypeError when it is not a dict at all)."""
        where = "BatchStream.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{where}: expected a dict, got {type(state).__name__}")
        missing = [key for key in self.state_dict() if key not in state]
        if missing:
            raise ValueError(f"{where}: the state has no {', '.join(missing)}")
        n = len(self.dataset)
        for key, expected in (("dataset_size", n), ("batch_size", self.batch_size),
                              ("shuffle", self.shuffle)):
            if _plain(state[key]) != expected or type(_plain(state[key])) is not type(expected):
                raise ValueError(f"{where}: the state has {key} {state[key]!r}, this stream "
                                 f"has {expected!r}")
        epoch, position = _plain(state["epoch"]), _plain(state["position"])
        if not (_is_int(epoch) and epoch >= 0 and _is_int(position) and 0 <= position <= n):
            raise ValueError(f"{where}: epoch {state['epoch']!r} and position "
                             f"{state['position']!r} must be integers, 0 <= position <= {n}")
        order = _checked_order(state["order"], n, where)
        if order is None and (position or epoch):
            raise ValueError(f"{where}: epoch {epoch}, position {position} but no order")
        generator = self._checked_generator(state["generator"], where)
        self.epoch, self._position, self._order = epoch, position, order
        if generator is not None:
            self._rng = np.random.Generator(generator)

    def _checked_generator(self, saved, where):
        """A bit generator in the saved state, or None; made aside, so a bad state changes nothing."""
        if (saved is None) != (self._rng is None):
            own = "draws from minigan's RNG" if self._rng is None else "has its own generator"
            raise ValueError(f"{where}: the state's generator is {saved!r:.40}, but this stream {own}")
        if saved is None:
            return None
        generator = type(self._rng.bit_generator)()
        try:
            generator.state = saved
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{where}: the generator state does not load ({exc})") from None
        return generator

    def __repr__(self):
        return (f"BatchStream({self.dataset!r}, batch_size={self.batch_size}, "
                f"epoch={self.epoch}, position={self._position})")


def _checked_order(order, n, where):
    if order is None:
        return None
    if not (isinstance(order, np.ndarray) and order.dtype.kind in "iu" and order.shape == (n,)
            and np.array_equal(np.sort(order), np.arange(n))):
        found = f"{getattr(order, 'dtype', type(order).__name__)} {getattr(order, 'shape', '')}"
        raise ValueError(f"{where}: the order must be a permutation of 0..{n - 1}, got {found}")
    return order.astype(np.int64)


def _plain(value):
    """A NumPy scalar or 0-d array as the Python value it holds; anything else as it is."""
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        return value.item()
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_batch_size(function, batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"{function}: batch_size must be a positive integer, got {batch_size!r}")


def _order(n, shuffle, rng):
    if not shuffle:
        return np.arange(n)
    return backend.permutation(n) if rng is None else rng.permutation(n)


def _batch(dataset, index):
    return tensor(to_tanh_range(dataset.images[index])), tensor(dataset.labels[index])

"""Padding with PyTorch's ``F.pad``: constant, reflect, replicate and circular borders.

``pad`` lists sizes from the last axis backwards, two per axis: (left, right) for the last,
then (top, bottom) for the one before, and so on. A negative size crops (constant mode).

    >>> import minigan as mg
    >>> from minigan import F
    >>> x = mg.tensor([[[1.0, 2.0, 3.0]]])
    >>> F.pad(x, (2, 1), mode="reflect").tolist()
    [[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]
    >>> F.pad(x, (1, 1), value=9.0).tolist()
    [[[9.0, 1.0, 2.0, 3.0, 9.0]]]
"""
from ..autograd import _as_tensor
from ..ops import padding
from . import reference
from ._checks import _is_int

MODES = ("constant", "reflect", "replicate", "circular")


def _widths(who, x, pad):
    """PyTorch's flat pad list as one (before, after) pair per axis of x."""
    try:
        pad = tuple(pad)
    except TypeError:
        pad = (pad,)
    if len(pad) % 2 or len(pad) // 2 > x.ndim or not all(_is_int(n) for n in pad):
        raise ValueError(
            f"{who}: expected an even number of integer sizes, at most 2 per dimension of the "
            f"{x.ndim}-D input (shape {x.shape}), got {pad}")
    pairs = [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(len(pad) // 2)]
    return ((0, 0),) * (x.ndim - len(pairs)) + tuple(reversed(pairs))


def _check_mode(who, x, widths, mode, pairs):
    """What each mode can pad: constant any axes (a negative size crops); the others the last 1
    to 3 dimensions of an unbatched (C, ...) or batched (N, C, ...) input, by at most the size
    of the dimension (reflect: less than it, as the edge pixel is not repeated)."""
    padded = [(axis, n, w) for axis, (n, w) in enumerate(zip(x.shape, widths)) if w != (0, 0)]
    if mode == "constant":
        for axis, n, (before, after) in padded:
            if n + before + after < 0:
                raise ValueError(f"{who}: padding {(before, after)} would leave dimension {axis} "
                                 f"of input shape {x.shape} with a negative size")
        return
    if not 1 <= pairs <= 3 or x.ndim not in (pairs + 1, pairs + 2):
        raise ValueError(
            f"{who}: mode {mode!r} pads the last 1, 2 or 3 dimensions of a (C, ...) or (N, C, ...) "
            f"input: {pairs} pairs of sizes need a {pairs + 1}-D or {pairs + 2}-D input, got "
            f"input shape {x.shape}")
    for axis, n, (before, after) in padded:
        if min(before, after) < 0:
            raise ValueError(f"{who}: mode {mode!r} takes no negative padding, got "
                             f"{(before, after)} for dimension {axis}")
        largest = {"reflect": n - 1, "replicate": None, "circular": n}[mode]
        if n == 0 or largest is not None and max(before, after) > largest:
            rule = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"{who}: mode {mode!r} needs padding {rule} the size of the dimension it pads, "
                f"got padding {(before, after)} for dimension {axis} of size {n} (input shape "
                f"{x.shape})")


def pad(input, pad, mode="constant", value=None):
    """Pad the trailing dimensions of ``input``; ``pad`` = (left, right[, top, bottom[, front,
    back]]) as in PyTorch. Modes: 'constant' (``value``, default 0), 'reflect' (mirror about
    the edge pixel; each size smaller than its dimension), 'replicate' (repeat the edge pixel)
    and 'circular' (wrap around; each size at most its dimension). Runs the fused Pad op;
    ``reference.pad`` is the definition it agrees with."""
    input = _as_tensor(input, None)
    if mode not in MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if value is not None and mode != "constant":
        raise ValueError(f"pad: value is only used by mode 'constant', got mode {mode!r}")
    value = 0.0 if value is None else value
    widths = _widths("pad", input, pad)
    _check_mode("pad", input, widths, mode, len(tuple(pad)) // 2)
    if any(min(w) < 0 for w in widths):  # crop first: negative constant padding
        input = input[tuple(slice(-min(b, 0), n + min(a, 0)) for n, (b, a) in zip(input.shape, widths))]
        widths = tuple((max(b, 0), max(a, 0)) for b, a in widths)
    if all(w == (0, 0) for w in widths):
        return input
    if reference.enabled():
        return reference.pad(input, widths, mode, value)
    return padding.pad(input, widths, mode, value)

"""Saving and loading state: nested dicts of arrays in ``.npz`` files, without pickle.

``pickle`` can run arbitrary code when a file is loaded, so a checkpoint downloaded from
somewhere must never be unpickled. Instead, ``save`` splits a nested structure in two: every
array goes into the ``.npz`` archive under a generated name ("a0", "a1", ...), and the shape of
the structure (dict keys with their types, lists, tuples, numbers, strings, bools, None) goes
into one JSON document stored as a uint8 array. ``load`` reads it back with
``np.load(..., allow_pickle=False)`` after checking that no entry holds Python objects.

Python ints of any size survive (JSON has no integer limit), which is what the PCG64 generator
state needs: its 128-bit state does not fit in an int64 array.

Every file is written atomically: to a temporary file in the same folder, flushed to disk, then
moved over the target with ``os.replace``. A crash mid-write leaves the old file, never half a
new one.

>>> save({"step": 3, "w": np.zeros(2)}, "state.npz")            # doctest: +SKIP
>>> load("state.npz")                                          # doctest: +SKIP
{'step': 3, 'w': array([0., 0.])}
"""
import contextlib
import json
import os
import secrets
import zipfile

import numpy as np

from . import backend

FORMAT = "minigan-state"
FORMAT_VERSION = 1
_STRUCTURE_KEY = "__structure__"


class UnsafeFileError(ValueError):
    """The file holds pickled Python objects, which minigan refuses to load."""


@contextlib.contextmanager
def atomic_open(path):
    """Open ``path`` for binary writing so that it appears complete or not at all.

    Writes go to a hidden temporary file beside ``path``; on success it is fsynced and renamed
    over ``path``, on any error it is removed.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    # os.open with mode 0o666 lets the umask decide permissions, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_tensor(obj):
    """True for minigan Tensors (and anything else that wraps a backend array in ``.data``)."""
    return not backend.is_array(obj) and backend.is_array(getattr(obj, "data", None))


def as_numpy(obj):
    """A host NumPy array from a numpy/cupy array, a minigan Tensor, or array-like data."""
    if is_tensor(obj):
        obj = obj.data
    if backend.is_array(obj):
        return backend.to_numpy(obj)
    return np.asarray(obj)


def save(state, path):
    """Write a nested structure of dicts, lists, tuples, arrays, Tensors and scalars to ``path``.

    Dict keys must be str or int. Arrays must not have object dtype. Written atomically.
    """
    arrays = {}
    structure = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "root": _encode(state, arrays, "state"),
    }
    text = json.dumps(structure, separators=(",", ":"))
    arrays[_STRUCTURE_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with atomic_open(path) as file:
        np.savez(file, **arrays)


def _encode(value, arrays, where):
    """JSON for one node; arrays are moved into ``arrays`` and referenced by name.

    Scalars are stored as plain JSON values; containers and arrays as one-key objects
    ({"dict": [[key, node], ...]}, {"list": [...]}, {"tuple": [...]}, {"array": name}), so
    the two can never be confused and int dict keys stay ints.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, dict):
        return {"dict": [_encode_item(key, item, arrays, where) for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]}
    if backend.is_array(value) or is_tensor(value) or isinstance(value, np.generic):
        array = as_numpy(value)
        if array.dtype.hasobject:
            raise TypeError(f"save: {where} is an object array, which needs pickle to store")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"array": name}
    raise TypeError(f"save: {where} has type {type(value).__name__}, which minigan.io cannot store")


def _encode_item(key, item, arrays, where):
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise TypeError(f"save: {where} has a key {key!r}; only str and int keys can be stored")
    return [key, _encode(item, arrays, f"{where}[{key!r}]")]


def load(path):
    """Read what ``save`` wrote; arrays come back as host NumPy arrays.

    Raises UnsafeFileError for files that hold pickled objects, ValueError for anything else
    that is not a minigan state file.
    """
    _refuse_pickles(path)
    with np.load(path, allow_pickle=False) as archive:
        if _STRUCTURE_KEY not in archive.files:
            raise ValueError(f"{path} is an .npz archive but not a minigan state file")
        structure = json.loads(archive[_STRUCTURE_KEY].tobytes().decode("utf-8"))
        if structure.get("format") != FORMAT or structure.get("version", 0) > FORMAT_VERSION:
            found = f"{structure.get('format')!r} version {structure.get('version')!r}"
            raise ValueError(f"{path}: unknown format {found}")
        return _decode(structure["root"], archive)


def _decode(node, archive):
    if not isinstance(node, dict):
        return node
    (kind, content), = node.items()
    if kind == "dict":
        return {key: _decode(item, archive) for key, item in content}
    if kind == "list":
        return [_decode(item, archive) for item in content]
    if kind == "tuple":
        return tuple(_decode(item, archive) for item in content)
    return archive[content]


def _refuse_pickles(path):
    """Look at every entry's header, before loading anything, for object (pickled) dtypes."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            head = file.read(2)
        if head[:1] == b"\x80":
            raise UnsafeFileError(f"{path} is a pickle; minigan never unpickles (it can run code)")
        raise ValueError(f"{path} is not an .npz archive written by minigan.io.save")
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as entry:
                if _header_dtype(entry).hasobject:
                    raise UnsafeFileError(
                        f"{path}: entry {member!r} holds pickled Python objects; minigan "
                        "refuses to unpickle files (loading a pickle can run arbitrary code)"
                    )


def _header_dtype(entry):
    version = np.lib.format.read_magic(entry)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(entry)[2]
    return np.lib.format.read_array_header_2_0(entry)[2]


def save_checkpoint(path, *, models, optimizers, step, history, extra=None):
    """Store everything a run needs to continue exactly where it stopped.

    ``models`` and ``optimizers`` map names to objects with ``state_dict()``; the global RNG
    state goes in too, so noise and shuffling after a resume match an uninterrupted run.
    """
    save(
        {
            "step": int(step),
            "models": {name: model.state_dict() for name, model in models.items()},
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "history": history,
            "rng": backend.get_rng_state(),
            "extra": extra,
        },
        path,
    )


def load_checkpoint(path, *, models, optimizers):
    """Restore models, optimizers and the RNG from ``path``; returns (step, history, extra)."""
    state = load(path)
    _restore(state["models"], models, "model", path)
    _restore(state["optimizers"], optimizers, "optimizer", path)
    backend.set_rng_state(state["rng"])
    return state["step"], state["history"], state["extra"]


def _restore(saved, targets, what, path):
    missing = sorted(set(targets) - set(saved))
    if missing:
        names, present = ", ".join(missing), ", ".join(sorted(saved)) or "none"
        raise KeyError(f"{path} has no {what} named {names} (it has: {present})")
    for name, target in targets.items():
        target.load_state_dict(saved[name])

"""Saving and loading state: nested dicts of arrays in ``.npz`` files, without pickle.

``pickle`` can run arbitrary code when a file is loaded, so a checkpoint downloaded from
somewhere must never be unpickled. Instead, ``save`` splits a nested structure in two: every
array goes into the ``.npz`` archive under a generated name ("a0", "a1", ...), and the shape of
the structure (dict keys with their types, lists, tuples, numbers, strings, bools, None) goes
into one JSON document stored as a uint8 array. ``load`` checks every entry's header (no
Python objects, a size that matches its data) and the structure before it reads any array,
and never unpickles.

Python ints of any size survive (JSON has no integer limit), which is what the PCG64 generator
state needs: its 128-bit state does not fit in an int64 array.

Every file is written atomically: to a temporary file in the same folder, flushed to disk, then
moved over the target with ``os.replace``. A crash mid-write leaves the old file, never half a
new one; the temporary file it leaves behind is removed by a later write to the same path
(once its writer is gone and it is a minute old).

>>> save({"step": 3, "w": np.zeros(2)}, "state.npz")            # doctest: +SKIP
>>> load("state.npz")                                          # doctest: +SKIP
{'step': 3, 'w': array([0., 0.])}
"""
import contextlib
import json
import math
import os
import secrets
import time
import zipfile
import zlib
from io import BytesIO

import numpy as np

from . import backend

FORMAT = "minigan-state"
FORMAT_VERSION = 1
_STRUCTURE_KEY = "__structure__"


class UnsafeFileError(ValueError):
    """The file holds pickled Python objects, which minigan refuses to load."""


class StateFileError(ValueError):
    """The file is not a complete minigan state file: empty, truncated, damaged or foreign."""


@contextlib.contextmanager
def atomic_open(path):
    """Open ``path`` for binary writing so that it appears complete or not at all.

    Writes go to a hidden temporary file beside ``path`` (``.<name>.<pid>.<random>.tmp``); on
    success it is fsynced and renamed over ``path``, on any error it is removed. Temporary files
    of ``path`` left by a process that was killed mid-write (its PID no longer runs, and the file
    has not changed for a minute) are removed first.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(path)
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


STALE_AFTER_S = 60


def remove_stale_temporaries(path):
    """Delete the hidden temporary files of ``path`` whose writer is gone; returns their names.

    A file counts as stale when the PID in its name is not a running process (checked on POSIX
    only; elsewhere nothing is removed) and it has not been written to for ``STALE_AFTER_S``
    seconds, so a writer in another PID namespace that is still busy keeps its file.
    """
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    prefix, removed = f".{name}.", []
    if os.name != "posix":
        return removed
    for entry in os.listdir(directory):
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid, _, token = entry[len(prefix):-len(".tmp")].partition(".")
        if not (pid.isdigit() and len(token) == 8 and "." not in token):
            continue
        if int(pid) == os.getpid() or _process_exists(int(pid)):
            continue
        full = os.path.join(directory, entry)
        with contextlib.suppress(FileNotFoundError):
            if time.time() - os.stat(full).st_mtime >= STALE_AFTER_S:
                os.unlink(full)
                removed.append(entry)
    return removed


def _process_exists(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a name we did not write
        return True
    return True


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


def load(path, map_location=None, weights_only=True):
    """Read what ``save`` wrote; arrays come back as host NumPy arrays.

    ``map_location`` and ``weights_only`` are accepted so that ``torch.load`` calls run: the
    device is checked against the backend, and arrays and plain values are all a file can hold.

    Everything is checked before it is used, so every bad file raises a ValueError that names
    the file and what is wrong with it: UnsafeFileError for files that hold pickled objects
    (nothing is unpickled), and StateFileError saying "truncated or corrupted" for a file cut
    short or with damaged bytes (every entry's CRC is verified) or "not a minigan state file"
    for foreign or crafted archives (wrong structure, missing arrays, array headers that do not
    match their data). A missing file raises FileNotFoundError.
    """
    if isinstance(map_location, str):
        backend.check_device(map_location, "load")
    path = os.fspath(path)
    with open(path, "rb") as file:
        head = file.read(4)
        file.seek(0)
        if not zipfile.is_zipfile(file):
            raise _not_an_archive(path, head)
        try:
            with zipfile.ZipFile(file) as archive:
                members = _checked_members(path, archive)
                structure = _read_structure(path, archive, members)
                used = set()
                _check_node(path, structure["root"], members, used, "state")
                arrays = {name: _read_array(archive, members[name]) for name in sorted(used)}
        except (UnsafeFileError, StateFileError):
            raise
        except RecursionError:
            raise StateFileError(f"{path} is not a minigan state file: nested too deeply") from None
        except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError,
                RuntimeError, OSError) as exc:  # RuntimeError: an entry flagged as encrypted
            raise StateFileError(f"{path} is truncated or corrupted ({exc})") from None
    return _decode(structure["root"], arrays)


def _not_an_archive(path, head):
    if head[:1] == b"\x80":
        return UnsafeFileError(f"{path} is a pickle; minigan never unpickles (it can run code)")
    if not head:
        return StateFileError(f"{path} is empty (truncated or corrupted)")
    if b"PK\x03\x04".startswith(head):  # the first bytes of a zip archive, or all four
        return StateFileError(f"{path} is truncated or corrupted: it starts like an .npz "
                              "archive but its directory is missing or damaged")
    return StateFileError(f"{path} is not an .npz archive written by minigan.io.save")


def _checked_members(path, archive):
    """{array name: ZipInfo} after reading every entry's header, before loading anything:
    object (pickled) dtypes are refused, and each header must describe exactly the bytes its
    entry holds (so a crafted shape cannot make us allocate more than the file contains)."""
    members = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise StateFileError(f"{path} is not a minigan state file: entry {info.filename!r} is "
                             "not a .npy array")
        with archive.open(info) as entry:
            try:
                dtype, shape, size = _read_header(entry)
            except (ValueError, SyntaxError, TypeError, OverflowError) as exc:
                raise StateFileError(f"{path} is truncated or corrupted: entry {info.filename!r} "
                                 f"has no valid array header ({exc})") from None
        if dtype.hasobject:
            raise UnsafeFileError(
                f"{path}: entry {info.filename!r} holds pickled Python objects; minigan "
                "refuses to unpickle files (loading a pickle can run arbitrary code)"
            )
        expected = size + math.prod(shape) * dtype.itemsize
        if expected != info.file_size:
            raise StateFileError(f"{path} is truncated or corrupted: entry {info.filename!r} "
                             f"declares {shape} {dtype} ({expected} bytes with its header) "
                             f"but holds {info.file_size} bytes")
        members[info.filename[:-len(".npy")]] = info
    return members


def _read_header(entry):
    """(dtype, shape, header size in bytes) of the .npy file open in ``entry``."""
    version = np.lib.format.read_magic(entry)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(entry)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(entry)
    return dtype, shape, entry.tell()


def _read_structure(path, archive, members):
    if _STRUCTURE_KEY not in members:
        raise StateFileError(f"{path} is an .npz archive but not a minigan state file")
    raw = _read_array(archive, members.pop(_STRUCTURE_KEY))
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise StateFileError(f"its structure entry is {raw.dtype} {raw.shape}, not bytes")
        structure = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise StateFileError(f"{path} is not a minigan state file: {exc}") from None
    if not isinstance(structure, dict) or "root" not in structure:
        raise StateFileError(f"{path} is not a minigan state file: its structure is not a "
                         "{format, version, root} object")
    version = structure.get("version")
    if structure.get("format") != FORMAT or not _is_int(version) or version > FORMAT_VERSION:
        found = f"{structure.get('format')!r} version {version!r}"
        raise StateFileError(f"{path}: unknown format {found}")
    return structure


def _check_node(path, node, members, used, where):
    """Walk the structure as ``_encode`` writes it; collect the array names it refers to."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return
    problem = None
    if not isinstance(node, dict) or len(node) != 1:
        problem = f"is {type(node).__name__} {str(node)[:60]}, not one node"
    else:
        (kind, content), = node.items()
        if kind == "array":
            if not isinstance(content, str) or content not in members:
                problem = f"refers to array {content!r}, which the file does not hold"
            else:
                used.add(content)
        elif kind == "dict" and isinstance(content, list):
            for item in content:
                if not (isinstance(item, list) and len(item) == 2 and _is_key(item[0])):
                    problem = f"has a dict item {str(item)[:60]}, not a [str or int key, node] pair"
                    break
                _check_node(path, item[1], members, used, f"{where}[{item[0]!r}]")
        elif kind in ("list", "tuple") and isinstance(content, list):
            for i, item in enumerate(content):
                _check_node(path, item, members, used, f"{where}[{i}]")
        else:
            problem = f"is a node of kind {kind!r} holding {type(content).__name__}"
    if problem:
        raise StateFileError(f"{path} is not a minigan state file: {where} {problem}")


def _is_key(key):
    return isinstance(key, str) or _is_int(key)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _read_array(archive, info):
    """The array in one entry; reading all of its bytes first makes zipfile verify the CRC."""
    raw = archive.read(info)
    return np.lib.format.read_array(BytesIO(raw), allow_pickle=False)


def _decode(node, arrays):
    if not isinstance(node, dict):
        return node
    (kind, content), = node.items()
    if kind == "dict":
        return {key: _decode(item, arrays) for key, item in content}
    if kind == "list":
        return [_decode(item, arrays) for item in content]
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in content)
    return arrays[content]


def save_checkpoint(path, *, models, optimizers, step, history, streams=None, extra=None):
    """Store everything a run needs to continue exactly where it stopped.

    ``models``, ``optimizers`` and ``streams`` map names to objects with ``state_dict()``: a
    data stream (``minigan.data.BatchStream``) saves its epoch's order and its position in it.
    minigan's RNG state goes in too. Restoring all of it with ``load_checkpoint`` and repeating
    the same computations gives the same numbers, bit for bit, as a run that never stopped.
    ``history`` and ``extra`` are stored as they are (anything ``save`` takes).
    """
    save(
        {
            "step": int(step),
            "models": {name: model.state_dict() for name, model in models.items()},
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "streams": {name: stream.state_dict() for name, stream in (streams or {}).items()},
            "history": history,
            "rng": backend.get_rng_state(),
            "extra": extra,
        },
        path,
    )


def load_checkpoint(path, *, models, optimizers, streams=None):
    """Restore models, optimizers, streams and the RNG from ``path``; returns
    (step, history, extra). All or nothing, as ``restore_checkpoint``."""
    return restore_checkpoint(load(path), models=models, optimizers=optimizers, streams=streams,
                              source=os.fspath(path))


def restore_checkpoint(state, *, models, optimizers, streams=None, source="the checkpoint"):
    """Restore a checkpoint already read with ``load`` (so its step can be looked at first).

    All or nothing: the checkpoint's layout and the names asked for are checked first (a name
    it lacks raises KeyError); then each object's state is kept aside before it is loaded, and
    if any load fails, every object restored so far, and the RNG, go back to what they were
    before the error is re-raised. Returns (step, history, extra).
    """
    _check_checkpoint(state, source)
    parts = [("model", state["models"], models), ("optimizer", state["optimizers"], optimizers),
             ("stream", state.get("streams", {}), streams or {})]
    for what, saved, targets in parts:
        _check_names(saved, targets, what, source)
    undo, rng_before = [], backend.get_rng_state()
    try:
        for _, saved, targets in parts:
            for name, target in targets.items():
                undo.append((target, _copied(target.state_dict())))
                target.load_state_dict(saved[name])
        backend.set_rng_state(state["rng"])
    except BaseException:
        for target, before in reversed(undo):
            target.load_state_dict(before)
        backend.set_rng_state(rng_before)
        raise
    return state["step"], state["history"], state["extra"]


_CHECKPOINT_PARTS = {"step": int, "models": dict, "optimizers": dict, "history": dict,
                     "rng": dict, "extra": object}


def _check_checkpoint(state, source):
    if not isinstance(state, dict):  # what a file holds: a ValueError, as for any bad file
        raise ValueError(  # noqa: TRY004
            f"{source} is not a checkpoint: it holds {type(state).__name__}, not a dict")
    missing = [key for key in _CHECKPOINT_PARTS if key not in state]
    if missing:
        raise ValueError(f"{source} is not a checkpoint: it has no {', '.join(missing)}")
    for key, kind in dict(_CHECKPOINT_PARTS, streams=dict).items():
        value = state.get(key, {})
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{source} is not a checkpoint: its {key} is "
                             f"{type(value).__name__}, not {kind.__name__}")
    if state["step"] < 0:
        raise ValueError(f"{source} is not a checkpoint: its step is {state['step']}")


def _check_names(saved, targets, what, source):
    missing = sorted(set(targets) - set(saved))
    if missing:
        names, present = ", ".join(missing), ", ".join(map(str, sorted(saved))) or "none"
        raise KeyError(f"{source} has no {what} named {names} (it has: {present})")


def _copied(value):
    """A deep copy of a state dict, arrays and Tensors as host NumPy copies."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(item) for item in value)
    if backend.is_array(value) or is_tensor(value) or isinstance(value, np.ndarray):
        return np.array(as_numpy(value), copy=True)
    return value

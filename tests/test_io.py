import json
import os
import pathlib
import pickle
import subprocess
import sys
import time
import zipfile
from io import BytesIO

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan
from minigan import backend
from minigan.data import forever
from minigan.io import (
    StateFileError,
    UnsafeFileError,
    as_numpy,
    atomic_open,
    load,
    load_checkpoint,
    remove_stale_temporaries,
    save,
    save_checkpoint,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def assert_same(loaded, original):
    """Equal values and equal types, all the way down (arrays: same dtype, shape and bits)."""
    if isinstance(original, np.ndarray):
        assert isinstance(loaded, np.ndarray)
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        np.testing.assert_array_equal(loaded, original)
    elif isinstance(original, dict):
        assert type(loaded) is dict and list(loaded) == list(original)
        for key in original:
            assert type(key) is type(next(k for k in loaded if k == key))
            assert_same(loaded[key], original[key])
    elif isinstance(original, (list, tuple)):
        assert type(loaded) is type(original) and len(loaded) == len(original)
        for a, b in zip(loaded, original):
            assert_same(a, b)
    elif isinstance(original, float) and original != original:
        assert isinstance(loaded, float) and loaded != loaded
    else:
        assert type(loaded) is type(original) and loaded == original


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint8, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
states = st.recursive(
    scalars | arrays,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(state=states)
def test_any_nested_state_round_trips(tmp_path_factory, state):
    path = tmp_path_factory.mktemp("io") / "state.npz"
    save(state, path)
    assert_same(load(path), state)


def test_round_trip_of_a_typical_state(tmp_path):
    state = {
        "step": 7,
        "big": 2**127 + 5,  # PCG64 state words do not fit in int64
        "lr": 1e-3,
        "name": "adam",
        "flags": [True, None],
        "betas": (0.5, 0.999),
        "state": {0: {"step": 3, "exp_avg": np.arange(6, dtype=np.float32).reshape(2, 3)}},
        "scalar": np.array(2.5),
    }
    save(state, tmp_path / "s.npz")
    assert_same(load(tmp_path / "s.npz"), state)


def test_tensors_and_numpy_scalars_are_stored_as_host_values(tmp_path):
    weight = minigan.tensor([[1.0, 2.0]])
    save({"w": weight, "loss": np.float32(0.25), "n": np.int64(3)}, tmp_path / "t.npz")
    loaded = load(tmp_path / "t.npz")
    assert isinstance(loaded["w"], np.ndarray) and loaded["w"].dtype == np.float32
    np.testing.assert_array_equal(loaded["w"], weight.numpy())
    assert loaded["loss"] == 0.25 and loaded["n"] == 3


@pytest.mark.parametrize(
    "state, message",
    [
        ({"x": object()}, "object"),
        ({"x": np.array([{}], dtype=object)}, "object array"),
        ({(1, 2): 3}, "key"),
        ({True: 3}, "key"),
    ],
)
def test_save_refuses_what_it_cannot_store_without_pickle(tmp_path, state, message):
    with pytest.raises(TypeError, match=message):
        save(state, tmp_path / "bad.npz")
    assert os.listdir(tmp_path) == []


def test_an_npz_holding_a_pickled_object_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(str(marker))
    np.savez(tmp_path / "trap.npz", weights=np.zeros(3), trap=trap)  # numpy pickles object arrays
    with pytest.raises(UnsafeFileError, match="pickle"):
        load(tmp_path / "trap.npz")
    assert not marker.exists()


def test_a_plain_pickle_file_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    (tmp_path / "trap.npz").write_bytes(pickle.dumps(_Trap(str(marker))))
    with pytest.raises(UnsafeFileError, match="pickle"):
        load(tmp_path / "trap.npz")
    assert not marker.exists()


class _Trap:
    """Creates a file when unpickled, so a test can tell whether unpickling happened."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_an_npz_that_is_not_a_minigan_state_is_rejected(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a minigan state"):
        load(tmp_path / "plain.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not an .npz"):
        load(tmp_path / "text.npz")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.npz"
    save({"version": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_open(target) as file:
            file.write(b"half a file")
            raise RuntimeError("crash mid-write")
    assert os.listdir(tmp_path) == ["state.npz"]
    assert load(target) == {"version": 1}


class ArrayModel:
    """Stand-in for a Module: a state dict of NumPy arrays, trained by random steps."""

    def __init__(self):
        self.weight = backend.to_numpy(backend.randn((3, 2))).copy()

    def state_dict(self):
        return {"weight": self.weight.copy()}

    def load_state_dict(self, state):
        self.weight = np.array(state["weight"])


class MomentumOptimizer:
    """Stand-in for an optimizer: int-keyed state (a step count and a buffer), tuple settings."""

    def __init__(self, model):
        self.model, self.state = model, {}
        self.param_groups = [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]

    def step(self):
        entry = self.state.setdefault(0, {"step": 0, "buffer": np.zeros_like(self.model.weight)})
        noise = backend.to_numpy(backend.randn(self.model.weight.shape))
        entry["buffer"] = 0.9 * entry["buffer"] + noise
        entry["step"] += 1
        self.model.weight = self.model.weight - self.param_groups[0]["lr"] * entry["buffer"]

    def state_dict(self):
        state = {k: dict(v) for k, v in self.state.items()}
        return {"state": state, "param_groups": self.param_groups}

    def load_state_dict(self, state):
        assert isinstance(state["param_groups"][0]["betas"], tuple)
        self.state = {k: dict(v) for k, v in state["state"].items()}
        self.param_groups = state["param_groups"]


def test_checkpoint_resume_matches_an_uninterrupted_run_with_stand_ins(tmp_path):
    def start():
        minigan.manual_seed(0)
        model = ArrayModel()
        return model, MomentumOptimizer(model)

    model, opt = start()
    for _ in range(20):
        opt.step()
    uninterrupted = model.weight

    model, opt = start()
    history = {"loss": []}
    for step in range(10):
        opt.step()
        history["loss"].append(float(model.weight.sum()))
    save_checkpoint(tmp_path / "ckpt.npz", models={"m": model}, optimizers={"opt": opt},
                    step=10, history=history, extra={"note": "halfway"})

    minigan.manual_seed(123)  # disturb everything the checkpoint must restore
    model = ArrayModel()
    opt = MomentumOptimizer(model)
    step, restored_history, extra = load_checkpoint(
        tmp_path / "ckpt.npz", models={"m": model}, optimizers={"opt": opt}
    )
    assert (step, restored_history, extra) == (10, history, {"note": "halfway"})
    assert opt.state[0]["step"] == 10
    for _ in range(10):
        opt.step()
    np.testing.assert_array_equal(model.weight, uninterrupted)


def test_checkpoint_names_a_missing_model(tmp_path):
    minigan.manual_seed(0)
    save_checkpoint(
        tmp_path / "c.npz", models={"g": ArrayModel()}, optimizers={}, step=0, history={}
    )
    with pytest.raises(KeyError, match="no model named d"):
        load_checkpoint(tmp_path / "c.npz", models={"d": ArrayModel()}, optimizers={})


def test_checkpoint_resume_is_bit_identical_for_a_real_model_and_adam(tmp_path):
    from minigan import nn, optim

    def start(seed=0):
        minigan.manual_seed(seed)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        return model, optim.Adam(model.parameters(), lr=1e-2)

    def train(model, opt, steps):
        for _ in range(steps):
            x, y = minigan.randn(16, 4), minigan.randn(16, 1)
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    model, opt = start()
    train(model, opt, 20)
    uninterrupted = [p.numpy() for p in model.parameters()]

    model, opt = start()
    train(model, opt, 10)
    save_checkpoint(tmp_path / "ckpt.npz", models={"model": model}, optimizers={"adam": opt},
                    step=10, history={})
    model, opt = start(seed=99)
    load_checkpoint(tmp_path / "ckpt.npz", models={"model": model}, optimizers={"adam": opt})
    train(model, opt, 10)
    for resumed, expected in zip(model.parameters(), uninterrupted):
        np.testing.assert_array_equal(resumed.numpy(), expected)


# --- bad files: every one a ValueError that says what is wrong ---------------------------------

def typical_state():
    return {"step": 3, "w": np.arange(12, dtype=np.float32).reshape(3, 4), "name": "run",
            "groups": [{"lr": 1e-3, "betas": (0.5, 0.999)}], "counts": np.array([1, 2, 3])}


@pytest.fixture
def saved_bytes(tmp_path):
    save(typical_state(), tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


def test_a_file_cut_short_anywhere_is_called_truncated_or_corrupted(tmp_path, saved_bytes):
    path = tmp_path / "cut.npz"
    # every 4th length (each write costs a file system round trip), and all of the last 64,
    # where the zip directory is
    for length in sorted(set(range(0, len(saved_bytes), 4)) | set(range(len(saved_bytes) - 64,
                                                                       len(saved_bytes)))):
        path.write_bytes(saved_bytes[:length])
        with pytest.raises(StateFileError, match="truncated or corrupted"):
            load(path)


def test_a_flipped_byte_anywhere_is_refused_or_changes_nothing(tmp_path, saved_bytes):
    """Every byte of the file, inverted in turn: either load refuses the file with a ValueError
    or (a byte zip does not check, such as a timestamp) returns exactly what was saved. Every
    byte of an array's data and of the structure is refused (each entry has a CRC)."""
    path, refused = tmp_path / "flipped.npz", set()
    weights = saved_bytes.find(typical_state()["w"].tobytes())
    structure = saved_bytes.find(b'{"format"')
    assert weights > 0 and structure > 0
    data_bytes = set(range(weights, weights + 48))
    structure_bytes = set(range(structure, saved_bytes.find(b"}}", structure) + 2))
    # every 3rd byte of the file (each write costs a file system round trip), all of the data
    for position in sorted(set(range(0, len(saved_bytes), 3)) | data_bytes | structure_bytes):
        damaged = bytearray(saved_bytes)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            loaded = load(path)
        except ValueError:
            refused.add(position)
            continue
        assert_same(loaded, typical_state())
    assert data_bytes <= refused and structure_bytes <= refused


def crafted(path, structure, **arrays):
    """An .npz with the given structure (dict -> JSON, bytes as they are) and arrays."""
    text = structure if isinstance(structure, bytes) else json.dumps(structure).encode()
    np.savez(path, __structure__=np.frombuffer(text, dtype=np.uint8), **arrays)
    return path


def state_of(root):
    return {"format": "minigan-state", "version": 1, "root": root}


CRAFTED = [
    ("root refers to a missing array", state_of({"array": "a9"}), {}, "array 'a9'.*does not hold"),
    ("array name not a string", state_of({"array": 3}), {}, "array 3"),
    ("dict item not a pair", state_of({"dict": [["k"]]}), {}, "not a \\[str or int key"),
    ("float dict key", state_of({"dict": [[1.5, 2]]}), {}, "not a \\[str or int key"),
    ("dict content not a list", state_of({"dict": "x"}), {}, "kind 'dict' holding str"),
    ("unknown node kind", state_of({"weird": []}), {}, "kind 'weird'"),
    ("node with two keys", state_of({"list": [], "tuple": []}), {}, "not one node"),
    ("bare JSON list", state_of([1, 2]), {}, "is list"),
    ("nested bad node", state_of({"list": [1, {"dict": [["a", {"array": None}]]}]}), {},
     r"state\[1\]\['a'\] refers to array None"),
    ("structure not an object", [1, 2], {}, "not a {format, version, root} object"),
    ("structure without root", {"format": "minigan-state", "version": 1}, {},
     "not a {format, version, root} object"),
    ("structure not JSON", b"\xff\xfe{", {}, "not a minigan state file"),
    ("version not a number", {"format": "minigan-state", "version": "1", "root": 1}, {},
     "unknown format 'minigan-state' version '1'"),
    ("newer version", {"format": "minigan-state", "version": 99, "root": 1}, {}, "version 99"),
    ("other format", {"format": "other", "version": 1, "root": 1}, {}, "unknown format 'other'"),
]


@pytest.mark.parametrize("name, structure, arrays, message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_structures_are_refused_with_what_is_wrong(tmp_path, name, structure, arrays,
                                                           message):
    path = crafted(tmp_path / "crafted.npz", structure, **arrays)
    with pytest.raises(StateFileError, match=message):
        load(path)


def test_a_structure_nested_too_deeply_is_refused(tmp_path):
    text = ('{"list": [' * 100_000 + "1" + "]}" * 100_000).encode()
    path = crafted(tmp_path / "deep.npz", b'{"format": "minigan-state", "version": 1, "root": '
                   + text + b"}")
    with pytest.raises(StateFileError, match="nested too deeply|not a minigan state file"):
        load(path)


def test_a_structure_entry_that_is_not_bytes_is_refused(tmp_path):
    np.savez(tmp_path / "f.npz", __structure__=np.zeros(3))
    with pytest.raises(StateFileError, match="structure entry is float64"):
        load(tmp_path / "f.npz")


def test_an_entry_that_is_not_an_array_is_refused(tmp_path):
    save({"a": np.zeros(2)}, tmp_path / "s.npz")
    with zipfile.ZipFile(tmp_path / "s.npz", "a") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(StateFileError, match="entry 'notes.txt' is not a .npy array"):
        load(tmp_path / "s.npz")


def test_a_header_that_claims_more_data_than_the_entry_holds_is_refused(tmp_path):
    """A crafted shape must not make load allocate what the file does not contain."""
    header = BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:
        archive.writestr("a0.npy", header.getvalue() + b"\0" * 16)
        archive.writestr("__structure__.npy", npy_bytes(
            np.frombuffer(json.dumps(state_of({"array": "a0"})).encode(), np.uint8)))
    with pytest.raises(StateFileError, match="truncated or corrupted: entry 'a0.npy' declares"):
        load(tmp_path / "big.npz")


def npy_bytes(array):
    buffer = BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_an_empty_file_is_called_empty(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(StateFileError, match="is empty"):
        load(tmp_path / "empty.npz")


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere.npz")


# --- checkpoints: all or nothing ----------------------------------------------------------------

def small_training(seed):
    from minigan import nn, optim

    minigan.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    stream = forever(ImageDatasetOf(12), 4)
    for _ in range(2):
        x = next(stream)[0].reshape(4, 3)
        loss = (model(x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt, stream


def ImageDatasetOf(n):
    from minigan.data import ImageDataset

    images = (np.arange(n * 3) % 256).astype(np.uint8).reshape(n, 1, 1, 3)
    return ImageDataset(images, np.zeros(n, dtype=np.int64), ["x"])


def snapshot(model, opt, stream):
    """Everything restore_checkpoint may touch, as plain copies."""
    return {"model": {k: v.numpy().copy() for k, v in model.state_dict().items()},
            "opt": opt.state_dict(), "stream": stream.state_dict(),
            "rng": minigan.get_rng_state()}


def assert_unchanged(before, after):
    assert before["model"].keys() == after["model"].keys()
    for key in before["model"]:
        np.testing.assert_array_equal(after["model"][key], before["model"][key])
    assert before["opt"]["param_groups"] == after["opt"]["param_groups"]
    assert before["opt"]["state"].keys() == after["opt"]["state"].keys()
    for index, entry in before["opt"]["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(as_numpy(after["opt"]["state"][index][name]),
                                          as_numpy(value))
    assert before["stream"]["position"] == after["stream"]["position"]
    np.testing.assert_array_equal(before["stream"]["order"], after["stream"]["order"])
    assert before["rng"] == after["rng"]


@pytest.fixture
def checkpoint(tmp_path):
    model, opt, stream = small_training(seed=0)
    save_checkpoint(tmp_path / "ckpt.npz", models={"m": model}, optimizers={"adam": opt},
                    streams={"data": stream}, step=2, history={"loss": [1.0, 0.5]})
    return tmp_path / "ckpt.npz"


def test_a_checkpoint_with_its_stream_restores_everything(checkpoint):
    model, opt, stream = small_training(seed=5)
    step, history, _ = load_checkpoint(checkpoint, models={"m": model}, optimizers={"adam": opt},
                                       streams={"data": stream})
    saved = load(checkpoint)
    assert (step, history) == (2, {"loss": [1.0, 0.5]})
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved["models"]["m"][key])
    assert stream.state_dict()["position"] == saved["streams"]["data"]["position"]
    assert minigan.get_rng_state() == saved["rng"]


def failing_parts():
    """(name, how to spoil the loaded checkpoint or the targets, the error expected)."""
    from minigan import optim

    def other_optimizer(model, opt, stream, state):
        return model, optim.Adam(list(model.parameters())[:2], lr=1e-2), stream, state

    def other_stream(model, opt, stream, state):
        return model, opt, forever(ImageDatasetOf(16), 4), state

    def broken_rng(model, opt, stream, state):
        return model, opt, stream, dict(state, rng={"bit_generator": "PCG64", "state": "x"})

    def bad_weight_shape(model, opt, stream, state):
        state["models"]["m"]["2.weight"] = np.zeros((2, 2), np.float32)
        return model, opt, stream, state

    return [("optimizer with other parameters", other_optimizer, ValueError),
            ("stream over another dataset", other_stream, ValueError),
            ("broken RNG state", broken_rng, (TypeError, ValueError, KeyError)),
            ("model weight of another shape", bad_weight_shape, RuntimeError)]


@pytest.mark.parametrize("name, spoil, error", failing_parts(), ids=[p[0] for p in failing_parts()])
def test_when_any_part_fails_to_load_nothing_changes(checkpoint, name, spoil, error):
    from minigan.io import restore_checkpoint

    model, opt, stream = small_training(seed=5)
    model, opt, stream, state = spoil(model, opt, stream, load(checkpoint))
    before = snapshot(model, opt, stream)
    with pytest.raises(error):
        restore_checkpoint(state, models={"m": model}, optimizers={"adam": opt},
                           streams={"data": stream})
    assert_unchanged(before, snapshot(model, opt, stream))


def test_a_missing_stream_is_named_before_anything_changes(checkpoint):
    model, opt, stream = small_training(seed=5)
    before = snapshot(model, opt, stream)
    with pytest.raises(KeyError, match="no stream named other \\(it has: data\\)"):
        load_checkpoint(checkpoint, models={"m": model}, optimizers={"adam": opt},
                        streams={"other": stream})
    assert_unchanged(before, snapshot(model, opt, stream))


@pytest.mark.parametrize("state, message", [
    ([1, 2], "it holds list, not a dict"),
    ({"step": 1}, "it has no models, optimizers, history, rng, extra"),
    ({"step": "1", "models": {}, "optimizers": {}, "history": {}, "rng": {}, "extra": None},
     "its step is str, not int"),
    ({"step": -1, "models": {}, "optimizers": {}, "history": {}, "rng": {}, "extra": None},
     "its step is -1"),
    ({"step": 1, "models": [], "optimizers": {}, "history": {}, "rng": {}, "extra": None},
     "its models is list, not dict"),
])
def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path, state, message):
    save(state, tmp_path / "c.npz")
    with pytest.raises(ValueError, match=f"c.npz is not a checkpoint: {message}"):
        load_checkpoint(tmp_path / "c.npz", models={}, optimizers={})


# --- temporary files left by a killed writer ----------------------------------------------------

def killed_writer(target):
    """Run a process that starts an atomic write of ``target`` and dies half way."""
    code = ("import os, sys; from minigan.io import atomic_open; "
            "cm = atomic_open(sys.argv[1]); f = cm.__enter__(); f.write(b'x' * 4096); f.flush(); "
            "os._exit(9)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code, str(target)], env=env, check=False, timeout=60)
    (leftover,) = [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    return leftover


def age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.mark.skipif(os.name != "posix", reason="stale temporaries are recognised on POSIX only")
def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "checkpoint.npz"
    leftover = killed_writer(target)
    assert leftover.name.startswith(".checkpoint.npz.") and leftover.stat().st_size == 4096
    save({"step": 1}, target)
    assert leftover.exists()  # it has just been written to: its writer might be elsewhere
    age(leftover, 120)
    save({"step": 2}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
    assert load(target) == {"step": 2}


@pytest.mark.skipif(os.name != "posix", reason="stale temporaries are recognised on POSIX only")
def test_temporaries_of_live_writers_and_of_other_files_are_kept(tmp_path):
    target = tmp_path / "checkpoint.npz"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [tmp_path / f".checkpoint.npz.{sleeper.pid}.0123abcd.tmp",   # a live writer
                tmp_path / f".checkpoint.npz.{os.getpid()}.0123abcd.tmp",   # this process
                tmp_path / ".checkpoint.npz.backup.123.0123abcd.tmp",      # another file's
                tmp_path / ".other.npz.999999999.0123abcd.tmp"]
        for path in kept:
            path.write_bytes(b"partial")
            age(path, 120)
        assert remove_stale_temporaries(target) == []
        save({"step": 1}, target)
        assert all(path.exists() for path in kept)
    finally:
        sleeper.kill()
        sleeper.wait()

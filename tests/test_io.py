import os
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan
from minigan import backend
from minigan.io import UnsafeFileError, atomic_open, load, load_checkpoint, save, save_checkpoint


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

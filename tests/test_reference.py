"""Each fused op equals its definition in minigan.functional.reference: the forward values, the
first derivatives and the second derivatives (float64, hypothesis-drawn geometries and shapes),
and the reference switch itself."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigan as mg
from minigan import functional as F
from helpers import conv_cases, random_array

pytestmark = pytest.mark.usefixtures("float64")

seeds = st.integers(0, 2**16)
RTOL, ATOL = 1e-10, 1e-12


def _derivatives(fn, arrays, seed):
    """fn's output, its vector-Jacobian products along a random v and the Hessian-vector
    products along random u, for leaves made from ``arrays`` (None: a leaf is left out)."""
    leaves = [None if a is None else mg.tensor(a, requires_grad=True) for a in arrays]
    used = [t for t in leaves if t is not None]
    out = fn(*leaves)
    v = mg.tensor(random_array(out.shape, seed + 1))
    grads = mg.grad((out * v).sum(), used, create_graph=True, allow_unused=True)
    total = 0.0
    for i, g in enumerate(grads):
        if g is not None and g.requires_grad:
            total = total + (g * mg.tensor(random_array(g.shape, seed + 2 + i))).sum()
    second = (mg.grad(total, used, allow_unused=True) if isinstance(total, mg.Tensor)
              else [None] * len(used))
    return out.numpy(), _numpy(grads), _numpy(second)


def _numpy(tensors):
    return [None if t is None else t.numpy() for t in tensors]


def assert_fast_equals_reference(fn, arrays, seed):
    fast = _derivatives(fn, arrays, seed)
    with mg.use_reference():
        assert F.reference.enabled()
        slow = _derivatives(fn, arrays, seed)
    for what, a, b in zip(("values", "first derivatives", "second derivatives"), fast, slow):
        a, b = (a, b) if isinstance(a, list) else ([a], [b])
        for i, (x, y) in enumerate(zip(a, b)):
            if x is None or y is None:  # a derivative that is identically zero on one path
                assert (x is None or not np.any(x)) and (y is None or not np.any(y)), (what, i)
                continue
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f"{what} of input {i}")


@given(case=conv_cases(budget=None), bias=st.booleans(), seed=seeds)
def test_conv2d_equals_unfold_matmul(case, bias, seed):
    xs, ws, stride, padding, _, dilation = case
    arrays = [random_array(xs, seed), random_array(ws, seed + 1),
              random_array(ws[0], seed + 2) if bias else None]
    assert_fast_equals_reference(
        lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), arrays, seed)


@given(case=conv_cases(transposed=True, budget=None), bias=st.booleans(), seed=seeds)
def test_conv_transpose2d_equals_matmul_fold(case, bias, seed):
    xs, ws, stride, padding, output_padding, dilation = case
    arrays = [random_array(xs, seed), random_array(ws, seed + 1),
              random_array(ws[1], seed + 2) if bias else None]
    assert_fast_equals_reference(
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, dilation),
        arrays, seed)


@given(batch=st.lists(st.integers(1, 4), min_size=1, max_size=2), fan_in=st.integers(1, 6),
       fan_out=st.integers(1, 6), bias=st.booleans(), seed=seeds)
def test_linear_equals_matmul_add(batch, fan_in, fan_out, bias, seed):
    arrays = [random_array((*batch, fan_in), seed), random_array((fan_out, fan_in), seed + 1),
              random_array(fan_out, seed + 2) if bias else None]
    assert_fast_equals_reference(F.linear, arrays, seed)


@given(n=st.integers(1, 4), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 4), max_size=2),
       training=st.booleans(), affine=st.booleans(), seed=seeds)
def test_batch_norm_equals_mean_sub_mul_rsqrt(n, c, spatial, training, affine, seed):
    shape = (n, c, *spatial)
    if training and np.prod(shape) // c < 2:
        shape = (n + 1, c, *spatial)
    stats = [mg.tensor(random_array(c, seed + 3)), mg.tensor(random_array(c, seed + 4, 0.5, 2.0))]
    arrays = [random_array(shape, seed), random_array(c, seed + 1) if affine else None,
              random_array(c, seed + 2) if affine else None]
    # each path moves its own copy of the running statistics; they must move alike
    copies = {}

    def fn(x, w, b):
        key = F.reference.enabled()
        running = copies.setdefault(key, [mg.tensor(s.numpy()) for s in stats])
        return F.batch_norm(x, running[0], running[1], w, b, training=training)

    assert_fast_equals_reference(fn, arrays, seed)
    for fast, slow in zip(copies[False], copies[True]):
        np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=RTOL, atol=ATOL)


def test_the_switch_nests_and_restores():
    assert not F.reference.enabled()
    with mg.use_reference():
        assert F.reference.enabled()
        with mg.use_reference(False):
            assert not F.reference.enabled()
        assert F.reference.enabled()
    assert not F.reference.enabled()


def test_layers_run_through_the_reference_inside_the_switch():
    # the definitions are compositions: their graphs show primitives, not the fused ops
    layer = mg.nn.Conv2d(2, 3, 3, padding=1)
    x = mg.randn(2, 2, 5, 5)
    assert layer(x).node.label == "conv2d"
    with mg.use_reference():
        assert layer(x).node.label != "conv2d"


def test_lesson_04_gives_the_same_numbers_through_the_reference(tmp_path):
    # the documented switch, as a learner uses it: MINIGAN_REFERENCE=1 in the environment
    import json
    import os
    import subprocess
    import sys

    lesson = os.path.join(os.path.dirname(__file__), "..", "lessons", "04_dcgan.py")
    runs = {}
    for name, switch in (("fast", "0"), ("reference", "1")):
        env = dict(os.environ, MINIGAN_REFERENCE=switch, MPLBACKEND="Agg")
        subprocess.run([sys.executable, lesson, "--quick", "--out", str(tmp_path / name)],
                       check=True, env=env, capture_output=True)
        with open(tmp_path / name / "metrics.json") as f:
            runs[name] = (json.load(f), np.load(tmp_path / name / "samples.npy"))
    (fast, fast_samples), (slow, slow_samples) = runs["fast"], runs["reference"]
    numbers = [k for k, v in fast.items() if isinstance(v, float) and k != "seconds"]
    assert len(numbers) >= 5
    for key in numbers:  # float32 training: equal to float32 rounding, not bit for bit
        assert slow[key] == pytest.approx(fast[key], rel=1e-5, abs=1e-6), key
    np.testing.assert_allclose(slow_samples, fast_samples, atol=1e-5)

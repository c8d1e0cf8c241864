"""Each fused op equals its definition in minigan.functional.reference: the forward values, the
first derivatives and the second derivatives (float64, hypothesis-drawn geometries and shapes),
and the reference switch itself."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigan as mg
from minigan import functional as F
from helpers import conv_cases, load_lesson, random_array

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


@pytest.fixture(params=["one block", "a block per row"])
def row_blocks(request):
    """The convolutions gather their columns a row block at a time; a budget of one byte makes
    every output row its own block, so the block seams are tested on small images too."""
    from minigan import kernels

    saved = kernels.BLOCK_BYTES
    kernels.BLOCK_BYTES = saved if request.param == "one block" else 1
    yield
    kernels.BLOCK_BYTES = saved


@pytest.fixture(params=["either side by channels", "input side", "output side"])
def copy_side(request):
    """Each convolution kernel has a twin that copies windows of the narrow-channel side
    instead of the input side; forcing either one tests both on every drawn geometry (dilated
    geometries always take the input side)."""
    from minigan import kernels

    saved = kernels.COPY_SIDE
    kernels.COPY_SIDE = {"input side": "input", "output side": "output"}.get(request.param)
    yield
    kernels.COPY_SIDE = saved


@pytest.mark.usefixtures("row_blocks", "copy_side")
@given(case=conv_cases(budget=None), bias=st.booleans(), seed=seeds)
def test_conv2d_equals_unfold_matmul(case, bias, seed):
    xs, ws, stride, padding, _, dilation = case
    arrays = [random_array(xs, seed), random_array(ws, seed + 1),
              random_array(ws[0], seed + 2) if bias else None]
    assert_fast_equals_reference(
        lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation), arrays, seed)


@pytest.mark.usefixtures("row_blocks", "copy_side")
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


@pytest.mark.parametrize("paper, dtype, rounding", [(False, "float32", 2e-6), (True, "float64", 1e-12)],
                         ids=["r1", "paper_recipe"])
def test_a_lesson_04_train_step_has_the_same_gradients_through_the_reference(paper, dtype, rounding):
    # lesson 04's own models and losses, with the R1 penalty's double backward (the lesson's
    # float32) or with the paper's BatchNorm D: every loss and every parameter's gradient agree
    # to rounding at the scale of that tensor. The BatchNorm D's backward subtracts means, and
    # one weight gradient there comes out at ~17 units of rounding of its largest entry in
    # float32 and float64 alike, so that path is checked in float64, where a wrong op still
    # shows as a difference of its own size.
    lesson = load_lesson("04_dcgan")
    mg.set_default_dtype(dtype)
    results = {}
    for path in ("fast", "reference"):
        mg.manual_seed(3)
        G = lesson.make_generator().apply(lesson.dcgan_init)
        D = lesson.make_discriminator(batchnorm=paper).apply(lesson.dcgan_init)
        real, z = mg.rand(16, 1, 28, 28) * 2 - 1, mg.randn(16, lesson.LATENT, 1, 1)
        with mg.use_reference(path == "reference"):
            fake = G(z)
            loss_d, _, _, r1 = lesson.discriminator_loss(D, real, fake, r1_weight=0.0 if paper else 4.0)
            loss_d.backward()
            loss_g = lesson.generator_loss(D, fake)
            loss_g.backward()
        grads = {f"{name} {p}": q.grad.numpy() for name, net in (("G", G), ("D", D))
                 for p, q in net.named_parameters()}
        results[path] = (loss_d.item(), loss_g.item(), r1.item(), grads)
    (d_fast, g_fast, r1_fast, fast), (d_ref, g_ref, r1_ref, ref) = results["fast"], results["reference"]
    assert d_ref == pytest.approx(d_fast, rel=1e-6) and g_ref == pytest.approx(g_fast, rel=1e-6)
    assert (r1_fast == 0) == paper and r1_ref == pytest.approx(r1_fast, rel=1e-5)
    # every weight, bias and BatchNorm scale and shift of G (8) and D (6, or 7 with BatchNorm)
    assert len(fast) == (15 if paper else 14)
    for name in fast:
        scale = np.abs(fast[name]).max()
        assert np.abs(fast[name] - ref[name]).max() <= rounding * scale, name


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
    # Three float32 Adam steps: the train step's gradients agree to float32 rounding (the test
    # above), but Adam's first steps divide each gradient by its own size, so an element whose
    # sum cancels to rounding level moves by up to a learning rate (2e-4) either way, and a
    # BatchNorm scale moved so shifts every sample a little. Summing in another order (the fast
    # convolutions gather columns in row blocks) therefore moves single sample values by
    # 1e-5 to 1e-3 depending on the seed, the metrics by ~1e-5 relative, and the samples as a
    # whole by ~1e-3 of their size; a wrong op moves them by their whole size.
    for key in numbers:
        assert slow[key] == pytest.approx(fast[key], rel=1e-4, abs=1e-6), key
    relative = np.linalg.norm(slow_samples - fast_samples) / np.linalg.norm(fast_samples)
    assert relative < 1e-2, relative

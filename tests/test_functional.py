"""minigan.functional: first and second derivatives of every function against finite
differences (float64) over hypothesis-drawn configurations, closed forms and reference values
that need no PyTorch, numerical stability at extreme logits, and the error messages."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigan as mg
from minigan import functional as F
from helpers import check_grads, conv_cases, random_array, random_tensor

pytestmark = pytest.mark.usefixtures("float64")

seeds = st.integers(0, 2**16)
# --- reference implementations (NumPy loops), so correctness needs no PyTorch ----------------
def reference_conv2d(x, w, stride, padding, dilation):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return out


def reference_conv_transpose2d(x, w, stride, padding, output_padding, dilation):
    """Scatter every input pixel's kernel-weighted copy, then crop the padding."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    full = np.zeros((n, o, (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw] += \
                np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    oh = full.shape[2] - 2 * ph
    ow = full.shape[3] - 2 * pw
    return full[:, :, ph:ph + oh, pw:pw + ow]


@given(case=conv_cases(), seed=seeds)
def test_conv2d_matches_a_direct_loop(case, seed):
    xs, ws, stride, padding, _, dilation = case
    x, w = random_array(xs, seed), random_array(ws, seed + 1)
    out = F.conv2d(mg.tensor(x), mg.tensor(w), stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(out.numpy(), reference_conv2d(x, w, stride, padding, dilation), atol=1e-12)


@given(case=conv_cases(transposed=True), seed=seeds)
def test_conv_transpose2d_matches_a_direct_loop(case, seed):
    xs, ws, stride, padding, output_padding, dilation = case
    x, w = random_array(xs, seed), random_array(ws, seed + 1)
    out = F.conv_transpose2d(mg.tensor(x), mg.tensor(w), None, stride, padding, output_padding, dilation)
    expected = reference_conv_transpose2d(x, w, stride, padding, output_padding, dilation)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


@given(case=conv_cases(), seed=seeds)
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case, seed):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> when the sizes line up."""
    xs, ws, stride, padding, _, dilation = case
    x, w = random_tensor(xs, seed), random_tensor(ws, seed + 1)
    y_shape = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape
    y = random_tensor(y_shape, seed + 2)
    # the rows conv2d's last window skips come back as output_padding (always < stride)
    leftover = tuple(xs[2 + i] + 2 * padding[i] - dilation[i] * (ws[2 + i] - 1) - 1
                     - (y_shape[2 + i] - 1) * stride[i] for i in range(2))
    back = F.conv_transpose2d(y, w, stride=stride, padding=padding, output_padding=leftover,
                              dilation=dilation)
    assert back.shape == x.shape
    lhs = (F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation) * y).sum().item()
    assert math.isclose(lhs, (x * back).sum().item(), rel_tol=1e-10, abs_tol=1e-10)


# --- first and second derivatives --------------------------------------------------------------
@given(case=conv_cases(), bias=st.booleans(), seed=seeds)
def test_conv2d_derivatives(case, bias, seed):
    xs, ws, stride, padding, _, dilation = case
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    check_grads(lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding, dilation=dilation),
                *shapes, seed=seed)


@given(case=conv_cases(transposed=True), bias=st.booleans(), seed=seeds)
def test_conv_transpose2d_derivatives(case, bias, seed):
    xs, ws, stride, padding, output_padding, dilation = case
    shapes = [xs, ws] + ([(ws[1],)] if bias else [])
    check_grads(lambda x, w, *b: F.conv_transpose2d(x, w, *b, stride=stride, padding=padding,
                                                    output_padding=output_padding, dilation=dilation),
                *shapes, seed=seed)


@given(batch=st.lists(st.integers(1, 3), max_size=2), fan_in=st.integers(1, 5),
       fan_out=st.integers(1, 4), bias=st.booleans(), seed=seeds)
def test_linear_derivatives(batch, fan_in, fan_out, bias, seed):
    # batch [] is a 1-D input, two entries a 3-D one: both go through the 2-D Linear op reshaped
    shapes = [(*batch, fan_in), (fan_out, fan_in)] + ([(fan_out,)] if bias else [])
    check_grads(lambda x, w, *b: F.linear(x, w, *b), *shapes, seed=seed)


@st.composite
def norm_inputs(draw):
    """A 2-D (N, C) or 4-D (N, C, H, W) shape with at least 2 values per channel."""
    c = draw(st.integers(1, 4))
    if draw(st.booleans()):
        shape = (draw(st.integers(2, 4)), c)
    else:
        shape = (draw(st.integers(1, 3)), c, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    assume(math.prod(shape) // c >= 2)
    return shape


@given(shape=norm_inputs(), training=st.booleans(), affine=st.booleans(), seed=seeds)
def test_batch_norm_derivatives(shape, training, affine, seed):
    c = shape[1]
    running_mean = random_tensor((c,), seed + 7, requires_grad=False)
    running_var = random_tensor((c,), seed + 8, 0.5, 2.0, requires_grad=False)
    params = [random_tensor((c,), seed + 9, 0.5, 1.5), random_tensor((c,), seed + 10)] if affine else []
    check_grads(lambda x, *wb: F.batch_norm(x, running_mean, running_var, *wb, training=training),
                shape, *params, seed=seed)


@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       normalized=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       affine=st.booleans(), seed=seeds)
def test_layer_norm_derivatives(lead, normalized, affine, seed):
    assume(math.prod(normalized) >= 2)
    norm = tuple(normalized)
    params = [random_tensor(norm, seed + 1, 0.5, 1.5), random_tensor(norm, seed + 2)] if affine else []
    check_grads(lambda x, *wb: F.layer_norm(x, norm, *wb), tuple(lead) + norm, *params, seed=seed)


ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "softplus": F.softplus,
    "softplus_beta": lambda x: F.softplus(x, beta=2.5),
    "log_softmax": lambda x: F.log_softmax(x, -1),
    "softmax": lambda x: F.softmax(x, 0),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_activation_derivatives(name, shape, seed):
    # times x, so the piecewise-linear ones have a second derivative worth checking too
    fn = ACTIVATIONS[name]
    check_grads(lambda x: fn(x * 3.0) * x, shape, seed=seed)


def test_softplus_has_the_sigmoid_slope_at_zero():
    x = mg.tensor([0.0, 0.0], requires_grad=True)
    (g,) = mg.grad(F.softplus(x).sum(), x, create_graph=True)
    (h,) = mg.grad(g.sum(), x)
    np.testing.assert_allclose(g.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(h.numpy(), [0.25, 0.25])


@given(p=st.sampled_from([0.0, 0.3, 0.5, 1.0]), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       seed=seeds)
def test_dropout_derivatives_with_a_fixed_mask(p, shape, seed):
    def fn(x):
        mg.manual_seed(seed)  # the same mask on every evaluation
        return F.dropout(x, p) * x

    check_grads(fn, shape, seed=seed)


def test_dropout_keeps_and_scales():
    mg.manual_seed(0)
    x = mg.ones(200, 50)
    out = F.dropout(x, 0.25).numpy()
    assert set(np.unique(out)) <= {0.0, 1.0 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.02
    assert F.dropout(x, 0.25, training=False) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), weighted=st.booleans(),
       seed=seeds)
def test_binary_cross_entropy_derivatives(reduction, shape, weighted, seed):
    target = random_tensor(shape, seed + 1, 0.0, 1.0, requires_grad=False)
    weight = [random_tensor(shape[-1:], seed + 2, 0.5, 2.0, requires_grad=False)] if weighted else []
    x = random_tensor(shape, seed, 0.05, 0.95)
    check_grads(lambda x: F.binary_cross_entropy(x, target, *weight, reduction=reduction), x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), weighted=st.booleans(),
       pos_weighted=st.booleans(), seed=seeds)
def test_binary_cross_entropy_with_logits_derivatives(reduction, shape, weighted, pos_weighted, seed):
    target = random_tensor(shape, seed + 1, 0.0, 1.0, requires_grad=False)
    weight = random_tensor(shape, seed + 2, 0.5, 2.0, requires_grad=False) if weighted else None
    pos_weight = random_tensor(shape[-1:], seed + 3, 0.5, 3.0, requires_grad=False) if pos_weighted else None
    x = random_tensor(shape, seed, -4.0, 4.0)
    check_grads(lambda x: F.binary_cross_entropy_with_logits(
        x, target, weight, reduction=reduction, pos_weight=pos_weight), x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_mse_loss_derivatives(reduction, shape, seed):
    check_grads(lambda x, t: F.mse_loss(x, t, reduction=reduction), shape, shape, seed=seed)


@st.composite
def classification(draw):
    """(scores shape, class-index target) with classes on axis 1, or axis 0 unbatched."""
    classes = draw(st.integers(1, 4))
    if draw(st.integers(0, 4)) == 0:
        shape = (classes,)
    else:
        shape = (draw(st.integers(1, 4)), classes) + tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = np.random.default_rng(draw(seeds)).integers(0, classes, target_shape)
    return shape, target


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=classification(), weighted=st.booleans(), seed=seeds)
def test_cross_entropy_derivatives_with_class_indices(reduction, case, weighted, seed):
    shape, target = case
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = random_tensor((classes,), seed + 1, 0.5, 2.0, requires_grad=False) if weighted else None
    check_grads(lambda x: F.cross_entropy(x, mg.tensor(target), weight, reduction), shape, seed=seed)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=classification(), weighted=st.booleans(), seed=seeds)
def test_cross_entropy_derivatives_with_class_probabilities(reduction, case, weighted, seed):
    shape, _ = case
    axis = 0 if len(shape) == 1 else 1
    probs = F.softmax(random_tensor(shape, seed + 3, requires_grad=False), axis)
    weight = random_tensor((shape[axis],), seed + 1, 0.5, 2.0, requires_grad=False) if weighted else None
    check_grads(lambda x: F.cross_entropy(x, probs, weight, reduction), shape, seed=seed)


def test_cross_entropy_closed_form():
    scores = mg.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    loss = F.cross_entropy(scores, mg.tensor([2, 0]), reduction="none").numpy()
    expected = [math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3, math.log(3)]
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    weighted = F.cross_entropy(scores, mg.tensor([2, 0]), weight=mg.tensor([1.0, 1.0, 3.0])).item()
    assert math.isclose(weighted, (3 * expected[0] + expected[1]) / 4, rel_tol=1e-12)


@given(rows=st.integers(1, 5), dim=st.integers(1, 3),
       indices=st.lists(st.integers(0, 4), min_size=1, max_size=6), seed=seeds)
def test_embedding_derivatives_add_up_repeated_rows(rows, dim, indices, seed):
    index = mg.tensor([i % rows for i in indices])
    check_grads(lambda w: F.embedding(index, w) * F.embedding(index, w), (rows, dim), seed=seed)
    w = random_tensor((rows, dim), seed)
    F.embedding(index, w).sum().backward()
    counts = np.bincount(index.numpy(), minlength=rows)
    np.testing.assert_allclose(w.grad.numpy(), np.repeat(counts[:, None], dim, axis=1))


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
       pads=st.lists(st.integers(0, 2), min_size=2, max_size=4), value=st.sampled_from([0.0, -1.5]),
       seed=seeds)
def test_pad_derivatives_and_values(shape, pads, value, seed):
    assume(len(pads) % 2 == 0 and len(pads) // 2 <= len(shape))
    check_grads(lambda x: F.pad(x, pads, value=value) * F.pad(x, pads, value=value), shape, seed=seed)
    x = random_array(shape, seed)
    widths = [(0, 0)] * len(shape)
    for i in range(len(pads) // 2):
        widths[len(shape) - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    np.testing.assert_array_equal(F.pad(mg.tensor(x), pads, value=value).numpy(),
                                  np.pad(x, widths, constant_values=value))


def test_one_hot():
    out = F.one_hot(mg.tensor([[0, 2], [1, 1]]), 3)
    assert out.dtype == mg.int64 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 1, 0]]])
    assert F.one_hot(mg.tensor([0, 4])).shape == (2, 5)


# --- numerics at the extremes (float32 and float64) -------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_with_logits_is_stable_at_100(dtype):
    x = mg.tensor([100.0, -100.0, 100.0, -100.0, 0.0], dtype=dtype, requires_grad=True)
    t = mg.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, 100.0, 100.0, math.log(2)], atol=1e-6)
    loss.sum().backward()
    sig = 1 / (1 + np.exp(-np.array([100.0, -100.0, 100.0, -100.0, 0.0])))
    np.testing.assert_allclose(x.grad.numpy(), sig - t.numpy(), atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softplus_and_softmax_survive_huge_inputs(dtype):
    x = mg.tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype=dtype)
    np.testing.assert_allclose(F.softplus(x).numpy(), np.logaddexp(0, x.numpy().astype(float)),
                               rtol=1e-6)
    scores = mg.tensor([[1000.0, 0.0, -1000.0]], dtype=dtype)
    assert np.isfinite(F.log_softmax(scores, 1).numpy()).all()
    np.testing.assert_allclose(F.softmax(scores, 1).numpy(), [[1.0, 0.0, 0.0]])
    assert math.isclose(F.cross_entropy(scores, mg.tensor([0])).item(), 0.0, abs_tol=1e-6)


def test_binary_cross_entropy_of_a_saturated_sigmoid_is_finite():
    x = mg.tensor([40.0, -40.0, -120.0], dtype="float32", requires_grad=True)
    p = F.sigmoid(x)  # [1.0 exactly, 4.2e-18, 0.0 exactly] in float32
    loss = F.binary_cross_entropy(p, mg.tensor([0.0, 1.0, 1.0], dtype="float32"), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 40.0, 100.0], rtol=1e-6)
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


# --- errors that say what went wrong -----------------------------------------------------------
ERRORS = [
    (lambda: F.conv2d(mg.zeros(2, 4, 8, 8), mg.zeros(16, 3, 3, 3)),
     "conv2d: expected input with 3 channels, got 4 (input shape (2, 4, 8, 8))"),
    (lambda: F.conv2d(mg.zeros(4, 8, 8), mg.zeros(16, 4, 3, 3)),
     "conv2d: expected a 4-D input (N, C, H, W), got a 3-D input of shape (4, 8, 8)"),
    (lambda: F.conv2d(mg.zeros(1, 1, 4, 4), mg.zeros(1, 1, 5, 5), padding=0),
     "conv2d: kernel 5x5 (dilation 1x1) is larger than the padded input 4x4 (input shape (1, 1, 4, 4), padding 0x0)"),
    (lambda: F.conv2d(mg.zeros(1, 1, 4, 4), mg.zeros(1, 1, 3, 3), stride=0),
     "conv2d: stride must be an int >= 1 or a pair of them, got 0"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 2, 4, 4), mg.zeros(3, 1, 3, 3)),
     "conv_transpose2d: expected input with 3 channels, got 2 (input shape (1, 2, 4, 4))"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 1, 4, 4), mg.zeros(1, 1, 3, 3), stride=2, output_padding=2),
     "conv_transpose2d: output_padding (2, 2) must be smaller than stride (2, 2) or dilation (1, 1)"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 1, 1, 1), mg.zeros(1, 1, 1, 1), padding=1),
     "conv_transpose2d: the output would be -1x-1 for input shape (1, 1, 1, 1)"),
    (lambda: F.linear(mg.zeros(2, 3), mg.zeros(4, 5)),
     "linear: expected input with 5 features in its last dimension, got input shape (2, 3)"),
    (lambda: F.linear(mg.zeros(2, 3), mg.zeros(4, 3), mg.zeros(3)),
     "linear: expected a 2-D weight and a bias of shape (out_features,), got weight (4, 3) and bias (3,)"),
    (lambda: F.batch_norm(mg.zeros(1, 3), None, None, training=True),
     "batch_norm: expected more than 1 value per channel when training, got input shape (1, 3)"),
    (lambda: F.mse_loss(mg.zeros(4, 1), mg.zeros(4)),
     "mse_loss: target shape (4,) differs from input shape (4, 1)"),
    (lambda: F.mse_loss(mg.zeros(4), mg.zeros(4), reduction="avg"),
     "mse_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.binary_cross_entropy(mg.tensor([1.5]), mg.tensor([1.0])),
     "binary_cross_entropy: input must hold probabilities in [0, 1]"),
    (lambda: F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 3])),
     "nll_loss: indices must lie in [0, 3), got values from 0 to 3"),
    (lambda: F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 1, 2])),
     "nll_loss: expected target shape (2,) for input shape (2, 3), got (3,)"),
    (lambda: F.embedding(mg.tensor([5]), mg.zeros(3, 2)),
     "embedding: indices must lie in [0, 3), got values from 5 to 5"),
    (lambda: F.embedding(mg.tensor([0.0]), mg.zeros(3, 2)),
     "embedding: expected integer indices, got dtype float64"),
    (lambda: F.dropout(mg.zeros(3), 1.5), "dropout: p must be between 0 and 1, got 1.5"),
    (lambda: F.layer_norm(mg.zeros(2, 3), (4,)),
     "layer_norm: expected input whose trailing dimensions are (4,), got input shape (2, 3)"),
    (lambda: F.pad(mg.zeros(2, 3), (1,)), "pad: expected an even number of integer sizes"),
]


@pytest.mark.parametrize("call, message", ERRORS, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_problem(call, message):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert message in str(info.value)


def test_log1p_primitive_derivatives():
    check_grads(lambda x: mg.ops.log1p(x) * x, random_tensor((3, 2), 0, -0.5, 2.0))
    tiny = mg.tensor([1e-20])
    assert mg.ops.log1p(tiny).item() == 1e-20

"""Every primitive op: first and second derivatives against central finite differences in float64,
over shapes, broadcasting patterns and axes drawn by hypothesis."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import minigan as mg
from minigan import kernels, ops

pytestmark = pytest.mark.usefixtures("float64")

small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**31 - 1)


def make(shape, seed, low=-2.0, high=2.0, away_from_zero=False):
    values = np.random.default_rng(seed).uniform(low, high, shape)
    if away_from_zero:
        values = np.where(np.abs(values) < 0.2, 0.5, values)
    return mg.tensor(values, requires_grad=True)


def check_both(fn, *inputs):
    assert mg.gradcheck(fn, list(inputs))
    assert mg.gradgradcheck(fn, list(inputs))


# Unary ops: (function, low, high, keep away from zero). Second derivatives are checked on
# x -> op(x) * x so ops whose own second derivative is zero still pass through create_graph.
UNARY = {
    "neg": (lambda x: -x, -2, 2, False),
    "exp": (mg.exp, -2, 2, False),
    "log": (mg.log, 0.2, 3, False),
    "sqrt": (mg.sqrt, 0.2, 3, False),
    "abs": (mg.abs, -2, 2, True),
    "tanh": (mg.tanh, -2, 2, False),
    "sigmoid": (mg.sigmoid, -4, 4, False),
    "relu": (mg.relu, -2, 2, True),
    "leaky_relu": (lambda x: mg.leaky_relu(x, 0.2), -2, 2, True),
    "leaky_relu_steep": (lambda x: mg.leaky_relu(x, 1.5), -2, 2, True),  # slope > 1: another path
    "leaky_relu_negative": (lambda x: mg.leaky_relu(x, -0.3), -2, 2, True),
    "clamp": (lambda x: mg.clamp(x, -1.0, 1.0), -2, 2, True),
    "pow_scalar": (lambda x: x ** 3, -2, 2, False),
    "pow_fraction": (lambda x: x ** 1.5, 0.2, 3, False),
    "rpow": (lambda x: 2.0 ** x, -2, 2, False),
    "cast_roundtrip": (lambda x: x.float().double(), -2, 2, False),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=small_shapes, seed=seeds)
def test_unary_op_derivatives(name, shape, seed):
    fn, low, high, away = UNARY[name]
    x = make(shape, seed, low, high, away)
    if name == "clamp":  # keep clear of the kinks at +-1 where the derivative jumps
        x = mg.tensor(np.where(np.abs(np.abs(x.numpy()) - 1) < 0.1, 0.5, x.numpy()), requires_grad=True)
    if name == "cast_roundtrip":  # float32 rounding is not differentiable to 1e-5; check the value path only
        assert np.allclose(fn(x).numpy(), x.numpy(), atol=1e-6)
        return
    check_both(lambda x: fn(x) * x, x)


@given(slope=st.floats(0.0, 1.0, width=32), seed=seeds)
def test_leaky_relu_is_exact_in_float32(slope, seed):
    # the fast forward (max of a and slope * a) and backward (mask * (1 - slope) + slope) must
    # give exactly a / slope * a, and exactly 1 / slope as the derivative, like the definition
    a = np.random.default_rng(seed).standard_normal(1000).astype(np.float32)
    x = mg.tensor(a, dtype="float32", requires_grad=True)
    y = mg.leaky_relu(x, slope)
    y.sum().backward()
    s32 = np.float32(slope)
    np.testing.assert_array_equal(y.numpy(), np.where(a > 0, a, a * s32))
    np.testing.assert_array_equal(x.grad.numpy(), np.where(a > 0, np.float32(1), s32))
    assert y.dtype == x.grad.dtype == np.float32


def test_relu_and_leaky_relu_keep_nan_like_pytorch():
    x = mg.tensor([float("nan"), -1.0, 2.0], dtype="float32")
    assert np.isnan(mg.relu(x).numpy()[0]) and np.isnan(mg.leaky_relu(x, 0.2).numpy()[0])
    np.testing.assert_array_equal(mg.relu(x).numpy()[1:], [0.0, 2.0])


BINARY = {
    "add": (lambda a, b: a + b, False),
    "sub": (lambda a, b: a - b, False),
    "mul": (lambda a, b: a * b, False),
    "div": (lambda a, b: a / b, True),
    "pow": (lambda a, b: a ** b, True),
    "where": (lambda a, b: mg.where(a.data > 0, a, b), False),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), seed=seeds)
def test_binary_op_derivatives_with_broadcasting(name, shapes, seed):
    fn, positive = BINARY[name]
    sa, sb = shapes.input_shapes
    low = 0.3 if positive else -2.0
    a, b = make(sa, seed, low, 2.0), make(sb, seed + 1, low, 2.0)
    if name == "where":
        a = mg.tensor(np.where(np.abs(a.numpy()) < 0.1, 0.5, a.numpy()), requires_grad=True)
    check_both(lambda a, b: fn(a, b) * fn(a, b), a, b)
    assert fn(a, b).shape == shapes.result_shape


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data(), seed=seeds)
def test_reductions_over_drawn_axes(shape, data, seed):
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)))
    keepdims = data.draw(st.booleans())
    x = make(shape, seed)
    check_both(lambda x: mg.sum(x * x, axis, keepdims), x)
    check_both(lambda x: mg.mean(x * x, axis, keepdims), x)
    check_both(lambda x: mg.amax(x, axis, keepdims) ** 2, x)
    count = int(np.prod([shape[a] for a in ops.reductions.normalize_axes(axis, len(shape))]))
    if count > 1:
        check_both(lambda x: mg.var(x, axis, keepdim=keepdims), x)
        expected = np.var(x.numpy(), axis=axis, keepdims=keepdims, ddof=1)
        assert np.allclose(mg.var(x, axis, keepdim=keepdims).numpy(), expected)
    assert np.allclose(mg.amax(x, axis, keepdims).numpy(), np.max(x.numpy(), axis=axis, keepdims=keepdims))


def test_max_shares_gradient_between_ties():
    x = mg.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.5, 0.5]


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), seed=seeds, data=st.data())
def test_shape_ops(shape, seed, data):
    x = make(shape, seed)
    perm = data.draw(st.permutations(range(len(shape))))
    check_both(lambda x: mg.permute(x, *perm) ** 2, x)
    check_both(lambda x: x.reshape(-1) ** 2, x)
    check_both(lambda x: mg.flatten(x, 1 if len(shape) > 1 else 0) ** 2, x)
    check_both(lambda x: mg.transpose(x, 0, -1) ** 2, x)
    check_both(lambda x: mg.unsqueeze(x, 1).squeeze(1) ** 2, x)
    target = (2,) + tuple(1 if n == 1 else n for n in shape)
    check_both(lambda x: x.broadcast_to(target) ** 2, x)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=5), seed=seeds, data=st.data())
def test_getitem_basic_and_advanced(shape, seed, data):
    x = make(shape, seed)
    start = data.draw(st.integers(0, shape[0] - 1))
    step = data.draw(st.integers(1, 2))
    check_both(lambda x: x[start::step] ** 2, x)
    check_both(lambda x: x[..., 0] ** 2, x)
    picks = data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5))
    check_both(lambda x: x[picks] ** 2, x)  # repeated indices must add up in backward
    mask = x.data > 0
    assume(mask.any())
    check_both(lambda x: x[mask] ** 2, x)


@given(shapes=st.lists(st.integers(1, 3), min_size=1, max_size=3), rest=hnp.array_shapes(max_dims=2, max_side=3),
       seed=seeds, data=st.data())
def test_cat_and_stack(shapes, rest, seed, data):
    axis = data.draw(st.integers(0, len(rest)))
    parts = [make(rest[:axis] + (n,) + rest[axis:], seed + i) for i, n in enumerate(shapes)]
    check_both(lambda *ps: mg.cat(ps, axis) ** 2, *parts)
    same = [make(rest, seed + i) for i in range(len(shapes))]
    check_both(lambda *ps: mg.stack(ps, axis) ** 2, *same)


@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
       m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4), seed=seeds)
def test_batched_matmul(batch, m, k, n, seed):
    ba, bb = batch.input_shapes
    a, b = make(ba + (m, k), seed), make(bb + (k, n), seed + 1)
    check_both(lambda a, b: mg.tanh(a @ b), a, b)
    assert np.allclose((a @ b).numpy(), a.numpy() @ b.numpy())


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 2, 3), (3,))])
def test_matmul_with_vectors(sa, sb):
    a, b = make(sa, 0), make(sb, 1)
    check_both(lambda a, b: mg.tanh(a @ b), a, b)
    assert np.allclose((a @ b).numpy(), a.numpy() @ b.numpy())


conv_geometry = st.fixed_dictionaries({
    "n": st.integers(1, 2), "c": st.integers(1, 2), "h": st.integers(1, 9), "w": st.integers(1, 9),
    "k": st.tuples(st.integers(1, 5), st.integers(1, 5)), "stride": st.integers(1, 3),
    "padding": st.integers(0, 2), "dilation": st.integers(1, 2),
})


def _fits(g):
    return all(ops.conv_output_size(size, k, g["stride"], g["padding"], g["dilation"]) > 0
               for size, k in zip((g["h"], g["w"]), g["k"]))


@given(g=conv_geometry, seed=seeds)
def test_unfold_fold_derivatives(g, seed):
    assume(_fits(g))
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
    x = make((g["n"], g["c"], g["h"], g["w"]), seed)
    check_both(lambda x: mg.unfold(x, g["k"], **geo) ** 2, x)
    cols = mg.unfold(x, g["k"], **geo)
    y = make(cols.shape, seed + 1)
    check_both(lambda y: mg.fold(y, (g["h"], g["w"]), g["k"], **geo) ** 2, y)


@given(g=conv_geometry, seed=seeds)
def test_unfold_and_fold_are_adjoint(g, seed):
    assume(_fits(g))
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
    x = make((g["n"], g["c"], g["h"], g["w"]), seed)
    cols = mg.unfold(x, g["k"], **geo)
    y = make(cols.shape, seed + 1)
    left = float((cols * y).sum().item())
    right = float((x * mg.fold(y, (g["h"], g["w"]), g["k"], **geo)).sum().item())
    assert abs(left - right) <= 1e-10 * max(1.0, abs(left))


@given(g=conv_geometry, seed=seeds)
def test_batch_last_im2col_of_the_conv_ops_equals_im2col(g, seed):
    # the convolution ops gather windows from stride-phase planes with the batch innermost;
    # the columns must be exactly the plain im2col's, reordered (C, kh, kw, OH, OW, N)
    assume(_fits(g))
    (kh, kw), s, p, d = g["k"], g["stride"], g["padding"], g["dilation"]
    x = np.random.default_rng(seed).uniform(-1, 1, (g["n"], g["c"], g["h"], g["w"]))
    expected = ops.im2col(mg.tensor(x), (kh, kw), s, p, d).numpy()
    actual = kernels.im2col(x, (kh, kw), (s, s), (p, p), (d, d))
    c, _, _, oh, ow, n = actual.shape
    np.testing.assert_array_equal(actual.transpose(0, 1, 2, 5, 3, 4).reshape(c * kh * kw, -1), expected)


@given(g=conv_geometry, seed=seeds)
def test_batch_last_fold_of_the_conv_ops_equals_fold(g, seed):
    # the convolution ops sum their columns with _fold_batch_last (columns (C, kh, kw, OH, OW, N),
    # one contiguous plane per stride phase); it must give exactly what the plain fold gives
    assume(_fits(g))
    (kh, kw), s, p, d = g["k"], g["stride"], g["padding"], g["dilation"]
    oh = ops.conv_output_size(g["h"], kh, s, p, d)
    ow = ops.conv_output_size(g["w"], kw, s, p, d)
    cols = np.random.default_rng(seed).uniform(-1, 1, (g["c"], kh, kw, g["n"], oh, ow))
    expected = ops.col2im(mg.tensor(cols.reshape(g["c"] * kh * kw, -1)), g["n"], (g["h"], g["w"]),
                         (kh, kw), s, p, d).numpy()
    actual = kernels.fold(np.ascontiguousarray(cols.transpose(0, 1, 2, 4, 5, 3)),
                                  (g["h"], g["w"]), (s, s), (p, p), (d, d))
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels, out_channels", [(1, 8), (2, 2), (3, 1), (4, 2)],
                         ids=["columns shorter", "equal", "columns longer", "both over one"])
def test_the_weight_gradient_kernel_equals_the_plain_product_in_either_orientation(channels, out_channels):
    # conv_weight_grad builds its sum as rows @ cols.T or, when the columns are the longer side,
    # as (cols @ rows.T).T: both must be the plain unfold product g (O, N*L) @ unfold(x).T
    rng = np.random.default_rng(channels * 10 + out_channels)
    x = rng.uniform(-1, 1, (3, channels, 6, 5))
    geometry = ((3, 2), (2, 1), (1, 0), (1, 1))
    oh, ow = kernels.positions((6, 5), geometry)
    g = rng.uniform(-1, 1, (3, out_channels, oh, ow))
    cols = ops.im2col(mg.tensor(x), (3, 2), (2, 1), (1, 0), 1).numpy()  # (C*kh*kw, N*L)
    expected = (g.transpose(1, 0, 2, 3).reshape(out_channels, -1) @ cols.T).reshape(out_channels, channels, 3, 2)
    actual = kernels.conv_weight_grad(kernels.planes(x, geometry), (6, 5), g, geometry)
    assert actual.shape == expected.shape and actual.flags.c_contiguous
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, padding, dilation", [((3, 3), (1, 1), (1, 1)), ((3, 2), (0, 1), (1, 1)),
                                                     ((3, 3), (2, 1), (2, 1)), ((1, 1), (0, 0), (1, 1)),
                                                     ((4, 4), (3, 0), (1, 1))])
def test_a_stride_1_transposed_convolution_by_gathering_equals_the_scattering_kernel(kernel, padding, dilation):
    # at stride 1 conv_transpose2d can run as the convolution of x, padded by d*(k-1) - p, with
    # the flipped kernel: the same numbers as scattering each pixel's kernel-weighted copy
    rng = np.random.default_rng(sum(kernel) + sum(padding))
    x, weight = rng.uniform(-1, 1, (3, 2, 6, 5)), rng.uniform(-1, 1, (2, 4, *kernel))
    geometry = (kernel, (1, 1), padding, dilation)
    size = tuple(m + d * (k - 1) - 2 * p for m, k, p, d in zip((6, 5), kernel, padding, dilation))
    assert kernels.transposed_by_convolution(2, 4, (6, 5), size, geometry)
    actual = kernels.conv_transpose2d_stride1(x, weight, geometry)
    np.testing.assert_allclose(actual, kernels.conv_transpose2d(x, weight, geometry, size), rtol=1e-12, atol=1e-12)


def test_the_gathering_transposed_convolution_is_chosen_only_where_it_applies():
    geometry = ((3, 3), (1, 1), (1, 1), (1, 1))
    assert kernels.transposed_by_convolution(16, 16, (8, 8), (8, 8), geometry)
    assert not kernels.transposed_by_convolution(32, 16, (8, 8), (8, 8), geometry)  # more to gather than to add
    latent = ((7, 7), (1, 1), (0, 0), (1, 1))
    assert not kernels.transposed_by_convolution(100, 256, (1, 1), (7, 7), latent)  # 49 windows of zeros
    assert not kernels.transposed_by_convolution(16, 16, (8, 8), (9, 9), geometry)  # output padding
    assert not kernels.transposed_by_convolution(16, 16, (8, 8), (15, 15), ((3, 3), (2, 2), (1, 1), (1, 1)))
    assert not kernels.transposed_by_convolution(16, 16, (8, 8), (4, 4), ((3, 3), (1, 1), (3, 3), (1, 1)))


def test_the_matmul_kernel_takes_a_one_term_product_as_the_outer_product():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (5, 1)), rng.uniform(-1, 1, (1, 4))
    assert np.array_equal(kernels.matmul(a, b), np.matmul(a, b))
    assert np.array_equal(kernels.matmul(a.T.copy().T, b), np.matmul(a, b))  # a transposed view
    out = np.empty((5, 4))
    assert kernels.matmul(a, b, out=out) is out and np.array_equal(out, np.matmul(a, b))


def test_unfold_matches_a_direct_window_gather():
    x = np.arange(2 * 3 * 5 * 4, dtype=np.float64).reshape(2, 3, 5, 4)
    cols = mg.unfold(mg.tensor(x), (2, 3), stride=(2, 1), padding=1, dilation=1).numpy()
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = (5 + 2 - 2) // 2 + 1, (4 + 2 - 3) + 1
    expected = np.stack([padded[:, :, r * 2:r * 2 + 2, c:c + 3].reshape(2, -1)
                         for r in range(oh) for c in range(ow)], axis=-1)
    assert np.array_equal(cols, expected)


def test_unfold_refuses_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5x5 .* larger than the padded input 4x4"):
        mg.unfold(mg.zeros(1, 1, 2, 2), 5, padding=1)


def test_sigmoid_is_finite_at_extremes():
    x = mg.tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    y = mg.sigmoid(x)
    y.sum().backward()
    assert y.numpy().tolist() == [0.0, 0.5, 1.0]
    assert np.all(np.isfinite(x.grad.numpy()))

"""Pooling (minigan.functional.pooling, minigan.ops.pooling, minigan.nn.pooling): first and
second derivatives against finite differences over drawn geometries, the fused ops equal to
their definitions (pad -> unfold -> max or sum) in values, first and second derivatives, every
output, index and gradient equal to PyTorch's, ties, memory layouts, the modules and the errors."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigan as mg
from minigan import functional as F
from minigan import nn
from helpers import ELEMENT_BUDGET, check_grads, compare_modules, compare_with_torch, random_array
from test_reference import assert_fast_equals_reference

pytestmark = pytest.mark.usefixtures("float64")
seeds = st.integers(0, 2**16)


try:
    import torch
except ImportError:  # the comparisons with PyTorch are skipped
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _positions(n, k, s, p, d, ceil_mode):
    span = d * (k - 1) + 1
    if not ceil_mode:
        return (n + 2 * p - span) // s + 1
    out = -(-(n + 2 * p - span) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


@st.composite
def pool_cases(draw, budget=ELEMENT_BUDGET, dilation=True):
    """(x shape, kernel, stride, padding, dilation, ceil_mode) of a valid pooling whose every
    window holds at least one pixel of the image: batch and channels 1-3, sizes 1-9, kernel
    1-4, stride 1-3, padding up to half the kernel, dilation 1-2."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    for n, k, s, p, d in zip(size, kernel, stride, padding, dil):
        out = _positions(n, k, s, p, d, ceil_mode)
        assume(out >= 1)
        assume(all(any(0 <= y * s - p + i * d < n for i in range(k)) for y in range(out)))
    per_image = max(1, (budget or 3 * 3 * 81) // (size[0] * size[1]))
    c = draw(st.integers(1, min(3, per_image)))
    n = draw(st.integers(1, max(1, min(3, per_image // c))))
    return (n, c, *size), kernel, stride, padding, dil, ceil_mode


# --- derivatives against finite differences ----------------------------------------------------
@given(case=pool_cases(), seed=seeds)
def test_max_pool2d_derivatives(case, seed):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    check_grads(lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode) ** 2,
                shape, seed=seed)


@given(case=pool_cases(dilation=False), count_include_pad=st.booleans(),
       divisor=st.sampled_from([None, 3]), seed=seeds)
def test_avg_pool2d_derivatives(case, count_include_pad, divisor, seed):
    shape, kernel, stride, padding, _, ceil_mode = case
    check_grads(lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad,
                                       divisor) ** 2, shape, seed=seed)


@given(h=st.integers(1, 7), w=st.integers(1, 7), out=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       seed=seeds)
def test_adaptive_avg_pool2d_derivatives(h, w, out, seed):
    check_grads(lambda x: F.adaptive_avg_pool2d(x, out) ** 2, (2, 1, h, w), seed=seed)


# --- the fused ops equal their definitions -----------------------------------------------------
@given(case=pool_cases(budget=None), seed=seeds)
def test_max_pool2d_equals_pad_unfold_max(case, seed):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    assert_fast_equals_reference(
        lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode) ** 2,
        [random_array(shape, seed)], seed)


@given(case=pool_cases(budget=None, dilation=False), count_include_pad=st.booleans(), seed=seeds)
def test_avg_pool2d_equals_pad_unfold_sum(case, count_include_pad, seed):
    shape, kernel, stride, padding, _, ceil_mode = case
    assert_fast_equals_reference(
        lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad) ** 2,
        [random_array(shape, seed)], seed)


@given(h=st.integers(1, 9), w=st.integers(1, 9), out=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       seed=seeds)
def test_adaptive_avg_pool2d_equals_bin_means(h, w, out, seed):
    assert_fast_equals_reference(lambda x: F.adaptive_avg_pool2d(x, out) ** 2,
                                 [random_array((2, 3, h, w), seed)], seed)


def test_return_indices_agree_between_the_two_paths():
    x = mg.tensor(random_array((2, 3, 7, 6)))
    fast = F.max_pool2d(x, 3, 2, 1, 2, True, return_indices=True)
    with mg.use_reference():
        slow = F.max_pool2d(x, 3, 2, 1, 2, True, return_indices=True)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# --- PyTorch ------------------------------------------------------------------------------------
@needs_torch
@given(case=pool_cases(budget=None), seed=seeds)
def test_max_pool2d_matches_torch(case, seed):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    args = (kernel, stride, padding, dilation, ceil_mode)
    compare_with_torch(lambda x: F.max_pool2d(x, *args) ** 2,
                       lambda x: torch.nn.functional.max_pool2d(x, *args) ** 2,
                       random_array(shape, seed), seed=seed)
    x = random_array(shape, seed)
    _, ours = F.max_pool2d(mg.tensor(x), *args, return_indices=True)
    _, theirs = torch.nn.functional.max_pool2d(torch.tensor(x), *args, return_indices=True)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.dtype == mg.int64


@needs_torch
@given(case=pool_cases(budget=None, dilation=False), count_include_pad=st.booleans(),
       divisor=st.sampled_from([None, 2, -5]), seed=seeds)
def test_avg_pool2d_matches_torch(case, count_include_pad, divisor, seed):
    shape, kernel, stride, padding, _, ceil_mode = case
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    compare_with_torch(lambda x: F.avg_pool2d(x, *args) ** 2,
                       lambda x: torch.nn.functional.avg_pool2d(x, *args) ** 2,
                       random_array(shape, seed), seed=seed)


@needs_torch
@given(h=st.integers(1, 12), w=st.integers(1, 12),
       out=st.tuples(st.none() | st.integers(1, 8), st.integers(1, 8)), seed=seeds)
def test_adaptive_avg_pool2d_matches_torch(h, w, out, seed):
    compare_with_torch(lambda x: F.adaptive_avg_pool2d(x, out) ** 2,
                       lambda x: torch.nn.functional.adaptive_avg_pool2d(x, out) ** 2,
                       random_array((2, 3, h, w), seed), seed=seed)


@needs_torch
@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_max_pool2d_gives_tied_windows_gradient_as_torch_does(kernel, stride, padding):
    # small integers: most windows hold their maximum twice or more; the first one gets it all
    x = np.random.default_rng(0).integers(0, 3, (2, 2, 6, 7)).astype(float)
    compare_with_torch(lambda x: F.max_pool2d(x, kernel, stride, padding),
                       lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, padding), x)
    with mg.use_reference():
        compare_with_torch(lambda x: F.max_pool2d(x, kernel, stride, padding),
                           lambda x: torch.nn.functional.max_pool2d(x, kernel, stride, padding), x)


@needs_torch
def test_unbatched_inputs_match_torch():
    x = random_array((3, 5, 6))
    compare_with_torch(lambda x: F.max_pool2d(x, 2, 1), lambda x: torch.nn.functional.max_pool2d(x, 2, 1), x)
    compare_with_torch(lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: torch.nn.functional.avg_pool2d(x, 3, 2, 1), x)
    compare_with_torch(lambda x: F.adaptive_avg_pool2d(x, 2),
                       lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 2), x)


@needs_torch
def test_nan_propagates_through_max_pooling_as_in_torch():
    x = random_array((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    ours = F.max_pool2d(mg.tensor(x), 2).numpy()
    np.testing.assert_array_equal(ours, torch.nn.functional.max_pool2d(torch.tensor(x), 2).numpy())


MODULES = {
    "MaxPool2d": (lambda m: m.MaxPool2d(3, 2, 1), (2, 3, 7, 6)),
    "MaxPool2d_ceil_dilated": (lambda m: m.MaxPool2d((3, 2), (2, 1), (1, 0), 2, ceil_mode=True), (2, 2, 8, 5)),
    "AvgPool2d": (lambda m: m.AvgPool2d(2), (2, 3, 6, 6)),
    "AvgPool2d_options": (lambda m: m.AvgPool2d(3, 2, 1, True, False), (2, 2, 7, 8)),
    "AdaptiveAvgPool2d": (lambda m: m.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)),
    "in_a_model": (lambda m: m.Sequential(m.Conv2d(3, 4, 3, padding=1), m.MaxPool2d(2), m.LeakyReLU(0.2),
                                          m.AvgPool2d(2), m.AdaptiveAvgPool2d(1), m.Flatten(), m.Linear(4, 1)),
                   (2, 3, 8, 8)),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_match_torch(name):
    make, shape = MODULES[name]
    torch.manual_seed(0)
    ours, theirs = make(nn), make(torch.nn).double()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    compare_modules(ours, theirs, random_array(shape), second_order=True)


@needs_torch
def test_max_pool2d_module_returns_indices():
    x = random_array((2, 3, 6, 6))
    out, indices = nn.MaxPool2d(2, return_indices=True)(mg.tensor(x))
    _, expected = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


# --- layouts and dtypes -------------------------------------------------------------------------
def _batch_last(array):
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(array, 0, -1)), -1, 0)


@pytest.mark.parametrize("pool", [lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: F.avg_pool2d(x, 2),
                                  lambda x: F.max_pool2d(x, 2, 1, 0, 2), lambda x: F.adaptive_avg_pool2d(x, 3)])
def test_a_batch_last_input_gives_the_same_numbers_and_stays_batch_last(pool):
    x = random_array((3, 4, 8, 7))
    plain, last = mg.tensor(x, requires_grad=True), mg.tensor(_batch_last(x), requires_grad=True)
    assert last.data.transpose(1, 2, 3, 0).flags.c_contiguous
    out_plain, out_last = pool(plain), pool(last)
    np.testing.assert_allclose(out_last.numpy(), out_plain.numpy(), rtol=1e-14)
    assert out_last.data.transpose(1, 2, 3, 0).flags.c_contiguous
    g = random_array(out_plain.shape, 1)
    (ga,) = mg.grad(out_plain, plain, mg.tensor(g))
    (gb,) = mg.grad(out_last, last, mg.tensor(_batch_last(g)))
    np.testing.assert_allclose(gb.numpy(), ga.numpy(), rtol=1e-14)


def test_float32_stays_float32():
    x = mg.randn(2, 3, 6, 6, dtype=mg.float32, requires_grad=True)
    for out in (F.max_pool2d(x, 2), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                F.adaptive_avg_pool2d(x, 4)):
        assert out.dtype == mg.float32
        (g,) = mg.grad(out.sum(), x)
        assert g.dtype == mg.float32


# --- errors name the problem --------------------------------------------------------------------
ERRORS = [
    (lambda: F.max_pool2d(mg.zeros(1, 1, 4, 4), 2, padding=2), "max_pool2d: padding (2, 2) must be at most half"),
    (lambda: F.max_pool2d(mg.zeros(1, 1, 2, 2), 3), "max_pool2d: kernel (3, 3) (dilation (1, 1)) does not fit"),
    (lambda: F.max_pool2d(mg.zeros(1, 1, 4, 4), 0), "max_pool2d: kernel_size must be an int >= 1"),
    (lambda: F.max_pool2d(mg.zeros(4, 4), 2), "max_pool2d: expected a 3-D or 4-D input"),
    (lambda: F.max_pool2d(mg.zeros(1, 1, 4, 4, dtype=mg.int64), 2), "max_pool2d: expected a floating input"),
    (lambda: F.avg_pool2d(mg.zeros(1, 1, 4, 4), 2, divisor_override=0), "avg_pool2d: divisor_override must be"),
    (lambda: F.avg_pool2d(mg.zeros(1, 1, 4, 4), 2, stride=(1, 0)), "avg_pool2d: stride must be an int >= 1"),
    (lambda: F.adaptive_avg_pool2d(mg.zeros(1, 1, 4, 4), 0), "adaptive_avg_pool2d: output_size must be"),
    (lambda: nn.MaxPool2d(2, padding=3), "MaxPool2d: padding 3 must be at most half the kernel size 2"),
    (lambda: nn.AvgPool2d((2, 2, 2)), "AvgPool2d: kernel_size must be an int >= 1 or a pair"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), "AdaptiveAvgPool2d: output_size must be"),
    (lambda: nn.MaxPool2d(2)(mg.zeros(3, 4)), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, "
                                              "ceil_mode=False): expected a 3-D or 4-D input"),
]


@pytest.mark.parametrize("call, message", ERRORS, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_problem(call, message):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert message in str(info.value)

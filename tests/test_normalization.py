"""Group and instance norm (minigan.functional.normalization, the fused GroupNormTrain op and
minigan.nn.normalization): derivatives against finite differences, the fused op equal to its
definition (values, first and second derivatives, running statistics), PyTorch's values,
gradients, second derivatives and running statistics, state dicts both ways, memory layouts and
the errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigan as mg
from minigan import functional as F
from minigan import nn
from helpers import assert_close, check_grads, compare_modules, compare_with_torch, random_array
from test_reference import assert_fast_equals_reference

try:
    import torch
except ImportError:  # the comparisons with PyTorch are skipped
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

pytestmark = pytest.mark.usefixtures("float64")
seeds = st.integers(0, 2**16)


@st.composite
def grouped(draw, most=48, spatial_dims=(0, 2)):
    """(shape, groups): batch 1-3, groups 1-3 of 1-3 channels, 0-2 spatial axes of 1-4, more
    than one value per group (and per channel, when there are spatial axes: instance norm)."""
    groups, per = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 4), min_size=spatial_dims[0], max_size=spatial_dims[1]))
    n = draw(st.integers(1, 3))
    shape = (n, groups * per, *spatial)
    if np.prod(shape) > most:
        shape = (1, groups * per, *spatial[:1])
    if int(np.prod(shape[2:])) < 2 and (spatial_dims[0] or per < 2):
        shape = shape[:2] + (2,) + shape[3:] if len(shape) > 2 else shape + (2,)
    return shape, groups


@given(case=grouped(), affine=st.booleans(), seed=seeds)
def test_group_norm_derivatives(case, affine, seed):
    shape, groups = case
    params = [(shape[1],), (shape[1],)] if affine else []
    check_grads(lambda x, *wb: F.group_norm(x, groups, *wb) ** 2, shape, *params, seed=seed)


@given(case=grouped(spatial_dims=(1, 2)), affine=st.booleans(), seed=seeds)
def test_instance_norm_derivatives(case, affine, seed):
    shape, _ = case
    params = [(shape[1],), (shape[1],)] if affine else []
    check_grads(lambda x, *wb: F.instance_norm(x, None, None, *wb) ** 2, shape, *params, seed=seed)


@given(case=grouped(most=400), affine=st.booleans(), seed=seeds)
def test_group_norm_equals_its_definition(case, affine, seed):
    shape, groups = case
    arrays = [random_array(shape, seed, -1, 3)]
    if affine:
        arrays += [random_array(shape[1], seed + 1), random_array(shape[1], seed + 2)]
    assert_fast_equals_reference(lambda x, *wb: F.group_norm(x, groups, *wb) ** 2, arrays, seed)


@given(case=grouped(most=400, spatial_dims=(1, 2)), affine=st.booleans(), seed=seeds)
def test_instance_norm_and_its_running_statistics_equal_the_definition(case, affine, seed):
    shape, _ = case
    channels = shape[1]
    stats = [random_array(channels, seed + 3), random_array(channels, seed + 4, 0.5, 2.0)]
    copies = {}

    def fn(x, *wb):
        running = copies.setdefault(F.reference.enabled(), [mg.tensor(s) for s in stats])
        return F.instance_norm(x, *running, *wb) ** 2

    arrays = [random_array(shape, seed, -1, 3)]
    if affine:
        arrays += [random_array(channels, seed + 1), random_array(channels, seed + 2)]
    assert_fast_equals_reference(fn, arrays, seed)
    for fast, slow in zip(copies[False], copies[True]):
        np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-10, atol=1e-12)


def _batch_last(array):
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(array, 0, -1)), -1, 0)


@pytest.mark.parametrize("norm", [lambda x, w, b: F.instance_norm(x, None, None, w, b),
                                  lambda x, w, b: F.group_norm(x, 2, w, b),
                                  lambda x, w, b: F.instance_norm(x)])
def test_a_batch_last_input_gives_the_same_numbers_and_gradients(norm):
    x, w, b = random_array((3, 4, 5, 6)), random_array(4, 1), random_array(4, 2)
    g = random_array(x.shape, 3)
    results = []
    for layout in (lambda a: a, _batch_last):
        leaves = [mg.tensor(layout(x), requires_grad=True), mg.tensor(w, requires_grad=True),
                  mg.tensor(b, requires_grad=True)]
        out = norm(*leaves)
        for g_layout in (lambda a: a, _batch_last):  # the gradient may arrive in either layout
            grads = mg.grad(out, leaves, mg.tensor(g_layout(g)), retain_graph=True, allow_unused=True)
            results.append([out.numpy()] + [None if t is None else t.numpy() for t in grads])
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            assert (a is None) == (b_ is None)
            if a is not None:
                np.testing.assert_allclose(b_, a, rtol=1e-12, atol=1e-12)


# --- PyTorch ------------------------------------------------------------------------------------
@needs_torch
@given(case=grouped(most=200), affine=st.booleans(), seed=seeds)
def test_group_norm_matches_torch(case, affine, seed):
    shape, groups = case
    arrays = [random_array(shape, seed, -1, 3)]
    if affine:
        arrays += [random_array(shape[1], seed + 1), random_array(shape[1], seed + 2)]
    compare_with_torch(lambda x, *wb: F.group_norm(x, groups, *wb) ** 2,
                       lambda x, *wb: torch.nn.functional.group_norm(x, groups, *wb) ** 2, *arrays, seed=seed)


@needs_torch
@given(case=grouped(most=200, spatial_dims=(1, 2)), affine=st.booleans(), seed=seeds)
def test_instance_norm_matches_torch(case, affine, seed):
    shape, _ = case
    arrays = [random_array(shape, seed, -1, 3)]
    if affine:
        arrays += [random_array(shape[1], seed + 1), random_array(shape[1], seed + 2)]
    compare_with_torch(lambda x, *wb: F.instance_norm(x, None, None, *wb) ** 2,
                       lambda x, *wb: torch.nn.functional.instance_norm(x, None, None, *wb) ** 2,
                       *arrays, seed=seed)


MODULES = {
    "InstanceNorm2d": (lambda m: m.InstanceNorm2d(3), (2, 3, 4, 5)),
    "InstanceNorm2d_affine": (lambda m: m.InstanceNorm2d(3, affine=True), (2, 3, 4, 5)),
    "InstanceNorm2d_tracked": (lambda m: m.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 4, 5)),
    "InstanceNorm2d_tracked_eval": (lambda m: m.InstanceNorm2d(3, track_running_stats=True).eval(), (2, 3, 4, 5)),
    "InstanceNorm2d_untracked_eval": (lambda m: m.InstanceNorm2d(3, affine=True).eval(), (2, 3, 4, 5)),
    "InstanceNorm2d_unbatched": (lambda m: m.InstanceNorm2d(3, affine=True), (3, 4, 5)),
    "InstanceNorm1d": (lambda m: m.InstanceNorm1d(4, affine=True), (2, 4, 6)),
    "GroupNorm": (lambda m: m.GroupNorm(2, 4), (3, 4, 3, 2)),
    "GroupNorm_no_affine": (lambda m: m.GroupNorm(3, 6, affine=False), (2, 6, 5)),
    "GroupNorm_no_bias": (lambda m: m.GroupNorm(1, 2, bias=False), (2, 2, 3, 3)),
    "in_a_generator": (lambda m: m.Sequential(m.ReflectionPad2d(1), m.Conv2d(2, 4, 3), m.InstanceNorm2d(4),
                                              m.ReLU(), m.GroupNorm(2, 4), m.Upsample(scale_factor=2),
                                              m.Conv2d(4, 1, 3, padding=1), m.Tanh()), (2, 2, 5, 4)),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_match_torch(name):
    make, shape = MODULES[name]
    torch.manual_seed(0)
    ours, theirs = make(nn), make(torch.nn).double()
    for p in theirs.parameters():  # move the norms' weights off their ones and zeros
        p.data.uniform_(0.5, 1.5)
    for module in theirs.modules():
        if getattr(module, "running_var", None) is not None:
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    assert repr(ours) == repr(theirs)
    compare_modules(ours, theirs, random_array(shape), second_order=True)


@needs_torch
@pytest.mark.parametrize("momentum", [0.1, None])
def test_instance_norm_running_statistics_after_five_steps(momentum):
    ours = nn.InstanceNorm2d(3, momentum=momentum, affine=True, track_running_stats=True)
    theirs = torch.nn.InstanceNorm2d(3, momentum=momentum, affine=True, track_running_stats=True).double()
    for step in range(5):
        x = random_array((4, 3, 3, 5), step, -1.0, 3.0)
        ours(mg.tensor(x))
        theirs(torch.tensor(x))
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key].numpy(), value.numpy(), key)
    x = random_array((4, 3, 3, 5), 99)
    assert_close(ours.eval()(mg.tensor(x)).numpy(), theirs.eval()(torch.tensor(x)).detach().numpy(), "eval")


STATE_DICTS = {
    "InstanceNorm2d": lambda m: m.InstanceNorm2d(3),
    "InstanceNorm2d_affine_tracked": lambda m: m.InstanceNorm2d(3, affine=True, track_running_stats=True),
    "InstanceNorm1d_tracked": lambda m: m.InstanceNorm1d(2, track_running_stats=True),
    "GroupNorm": lambda m: m.GroupNorm(2, 4),
    "GroupNorm_no_bias": lambda m: m.GroupNorm(2, 4, bias=False),
    "model": lambda m: m.Sequential(m.Conv2d(1, 4, 3), m.InstanceNorm2d(4, affine=True), m.GroupNorm(2, 4),
                                    m.BatchNorm2d(4), m.LayerNorm(4)),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(STATE_DICTS))
def test_state_dicts_are_pytorchs_and_load_both_ways(name):
    ours, theirs = STATE_DICTS[name](nn), STATE_DICTS[name](torch.nn).double()
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    for p in theirs.parameters():
        p.data.uniform_(-1, 1)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    back = STATE_DICTS[name](torch.nn).double()
    result = back.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key].numpy(), value.numpy())


# --- errors name the problem --------------------------------------------------------------------
ERRORS = [
    (lambda: F.group_norm(mg.zeros(2, 6, 3), 4), "group_norm: num_groups must be a positive int that divides"),
    (lambda: F.group_norm(mg.zeros(1, 3), 3), "group_norm: expected more than 1 value per group"),
    (lambda: F.group_norm(mg.zeros(2, 4, 3), 2, mg.ones(3)), "group_norm: expected weight of shape (4,)"),
    (lambda: F.instance_norm(mg.zeros(2, 3, 1, 1)), "instance_norm: expected more than 1 spatial element"),
    (lambda: F.instance_norm(mg.zeros(2, 3)), "instance_norm: expected an input of shape (N, C, ...) with"),
    (lambda: F.instance_norm(mg.zeros(2, 3, 4), use_input_stats=False), "instance_norm: use_input_stats=False"),
    (lambda: F.instance_norm(mg.zeros(2, 3, 4), mg.zeros(2), mg.ones(3)), "instance_norm: expected running_mean"),
    (lambda: F.instance_norm(mg.zeros(2, 3, 4, dtype=mg.int64)), "instance_norm: expected a floating input"),
    (lambda: nn.GroupNorm(3, 4), "GroupNorm: num_channels (4) must be divisible by num_groups (3)"),
    (lambda: nn.GroupNorm(2, 4)(mg.zeros(2, 6, 3)), "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True): expected"),
    (lambda: nn.InstanceNorm2d(3, affine=True)(mg.zeros(2, 4, 3, 3)), "expected input with 3 channels, got 4"),
    (lambda: nn.InstanceNorm2d(3)(mg.zeros(2, 3)), "expected a 3-D or 4-D input (N, C, H, W) or (C, H, W)"),
]


@pytest.mark.parametrize("call, message", ERRORS, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_problem(call, message):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert message in str(info.value)


def test_instance_norm_without_affine_warns_on_other_channel_counts_as_torch_does():
    with pytest.warns(UserWarning, match="not num_features=3"):
        out = nn.InstanceNorm2d(3)(mg.tensor(random_array((2, 4, 3, 3))))
    assert out.shape == (2, 4, 3, 3)

"""PyTorch's conventions on minigan tensors and modules: dim=/keepdim=, max/min returning
(values, indices), size()/numel()/dim(), clone/flip/chunk/split/retain_grad, the activations
GELU/SiLU/ELU, Dropout2d, ModuleList/ModuleDict, devices, save/load; each checked against finite
differences (first and second order) and, where torch is installed, against torch."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigan as mg
from minigan import F, nn
from helpers import check_grads, compare_modules, compare_with_torch, random_array, random_tensor

seeds = st.integers(0, 2**16)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


# --- reductions with dim / keepdim ---------------------------------------------------------------
@given(shape=shapes, data=st.data(), seed=seeds)
def test_dim_and_axis_are_one_argument(shape, data, seed):
    x = mg.tensor(random_array(shape, seed))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    for name in ("sum", "mean", "amax", "amin"):
        by_dim = getattr(x, name)(dim=dim, keepdim=keep).numpy()
        by_axis = getattr(x, name)(axis=dim, keepdims=keep).numpy()
        np.testing.assert_array_equal(by_dim, by_axis)
    reference = getattr(np, "sum")(x.numpy(), axis=dim, keepdims=keep)
    np.testing.assert_allclose(x.sum(dim, keep).numpy(), reference, rtol=1e-6)
    with pytest.raises(TypeError, match="give dim or axis"):
        x.sum(dim=0, axis=0)


@given(shape=shapes, data=st.data(), seed=seeds)
def test_max_and_min_over_a_dim_return_values_and_indices(shape, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    x = random_tensor(shape, seed)
    values, indices = x.max(dim, keepdim=keep)
    np.testing.assert_array_equal(values.numpy(), np.max(x.numpy(), axis=dim, keepdims=keep))
    np.testing.assert_array_equal(indices.numpy(), np.argmax(x.numpy(), axis=dim, keepdims=keep))
    assert x.max(dim).values.shape == x.max(dim)[0].shape and indices.dtype == mg.int64
    low = x.min(dim=dim, keepdim=keep)
    np.testing.assert_array_equal(low.values.numpy(), np.min(x.numpy(), axis=dim, keepdims=keep))
    np.testing.assert_array_equal(low.indices.numpy(), np.argmin(x.numpy(), axis=dim, keepdims=keep))
    check_grads(lambda t: t.max(dim, keep).values ** 2 + t.min(dim, keep).values, x)


def test_max_without_dim_is_a_scalar_and_max_of_two_tensors_is_elementwise():
    x = mg.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert x.max().shape == () and x.max().item() == 5.0 and x.min().item() == 1.0
    assert x.max(mg.full((2, 2), 2.5)).tolist() == [[2.5, 5.0], [3.0, 2.5]]
    assert x.argmax().item() == 1 and x.argmax(dim=0).tolist() == [1, 0]


def test_max_over_a_dim_gives_the_gradient_to_the_first_maximum_like_torch():
    torch = pytest.importorskip("torch")
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    x = mg.tensor(data, requires_grad=True)
    x.max(1).values.sum().backward()
    t = torch.tensor(data, requires_grad=True)
    t.max(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("unbiased", [True, False])
def test_var_and_std_take_torch_arguments(unbiased, float64):
    x = random_tensor((3, 4), 1)
    expected = np.var(x.numpy(), axis=1, ddof=int(unbiased))
    np.testing.assert_allclose(x.var(1, unbiased).numpy(), expected)
    np.testing.assert_allclose(x.var(dim=1, correction=int(unbiased)).numpy(), expected)
    np.testing.assert_allclose(x.std(1, unbiased=unbiased).numpy(), np.sqrt(expected))
    check_grads(lambda t: t.std(dim=0, keepdim=True), x)


def test_size_numel_and_dim_are_torch_methods():
    x = mg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and x.dim() == 3
    assert x.view(x.size(0), -1, 1, 1).shape == (2, 12, 1, 1)
    with pytest.raises(IndexError, match="out of range"):
        x.size(3)


# --- shape helpers -----------------------------------------------------------------------------
def test_clone_flip_chunk_split_and_their_gradients(float64):
    x = random_tensor((4, 6), 2)
    c = x.clone()
    assert not np.shares_memory(c.data, x.data) and c.node is not None
    check_grads(lambda t: t.clone() * t.flip(1) + t.flip((0, 1)), x)
    pieces = x.chunk(4, dim=1)
    assert [p.shape for p in pieces] == [(4, 2)] * 3  # ceil(6/4) = 2 per piece: 3 pieces, as torch
    assert [p.shape for p in x.split([1, 5], dim=1)] == [(4, 1), (4, 5)]
    check_grads(lambda t: t.chunk(2, dim=0)[1] * t.split(2, 0)[0], x)
    with pytest.raises(ValueError, match="do not add up to 6"):
        x.split([2, 2], dim=1)


def test_retain_grad_keeps_an_inner_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0] and x.grad.tolist() == [18.0, 36.0]


def test_sign_has_a_zero_derivative():
    x = mg.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    assert x.sign().tolist() == [-1.0, 0.0, 1.0] and not x.sign().requires_grad


# --- activations -------------------------------------------------------------------------------
ACTIVATIONS = {
    "gelu": (F.gelu, "gelu", {}),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), "gelu", {"approximate": "tanh"}),
    "silu": (F.silu, "silu", {}),
    "elu": (lambda x: F.elu(x, 0.7), "elu", {"alpha": 0.7}),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives(name, float64):
    fn = ACTIVATIONS[name][0]
    x = mg.tensor(random_array((3, 5), 3, -4, 4), requires_grad=True)
    check_grads(fn, x)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(name, float64):
    torch = pytest.importorskip("torch")
    fn, torch_name, kwargs = ACTIVATIONS[name]
    compare_with_torch(fn, lambda t: getattr(torch.nn.functional, torch_name)(t, **kwargs),
                       random_array((4, 6), 4, -6, 6))


def test_erf_to_double_precision_against_math_erf(float64):
    import math

    points = np.concatenate([np.linspace(-7, 7, 2801), [0.0, 2.5, -2.5, 40.0]])
    got = mg.tensor(points).data
    got = mg.ops.erf(mg.tensor(points)).numpy()
    assert np.max(np.abs(got - np.array([math.erf(v) for v in points]))) < 1e-13
    check_grads(mg.ops.erf, mg.tensor(random_array((7,), 5, -3, 3), requires_grad=True))


def test_elu_does_not_overflow_for_large_inputs():
    x = mg.tensor([1000.0, -1000.0], requires_grad=True)
    F.elu(x).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy())) and x.grad.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("module, torch_name", [
    (lambda: nn.GELU(), "GELU"), (lambda: nn.SiLU(), "SiLU"), (lambda: nn.ELU(0.5), "ELU"),
    (lambda: nn.Softplus(2.0, 20.0), "Softplus"), (lambda: nn.Softmax(dim=1), "Softmax"),
    (lambda: nn.LogSoftmax(dim=1), "LogSoftmax"),
])
def test_activation_modules_match_torch(module, torch_name, float64):
    torch = pytest.importorskip("torch")
    args = {"ELU": (0.5,), "Softplus": (2.0, 20.0), "Softmax": (1,), "LogSoftmax": (1,)}.get(torch_name, ())
    compare_modules(module(), getattr(torch.nn, torch_name)(*args), random_array((3, 4), 6, -3, 3))
    assert repr(module()) == repr(getattr(torch.nn, torch_name)(*args))


def test_dropout2d_drops_whole_channels_and_scales_the_rest():
    mg.manual_seed(0)
    x = mg.ones(8, 16, 5, 5)
    y = F.dropout2d(x, 0.5).numpy()
    per_channel = y.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7
    layer = nn.Dropout2d(0.5).eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="dropout2d: expected a 3-D"):
        F.dropout2d(mg.ones(4, 5), 0.5)


# --- containers --------------------------------------------------------------------------------
def test_module_list_registers_its_modules_like_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleList([nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert len(ours) == 3 and isinstance(ours[-1], nn.Linear) and len(ours[1:]) == 2
    ours.append(nn.Tanh())
    assert len(list(ours.parameters())) == 4
    with pytest.raises(IndexError, match="out of range"):
        ours[7]


def test_module_dict_registers_its_modules_like_torch():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleDict({"embed": nn.Embedding(4, 2), "head": nn.Linear(2, 1)})
    theirs = torch.nn.ModuleDict({"embed": torch.nn.Embedding(4, 2), "head": torch.nn.Linear(2, 1)})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.keys()) == ["embed", "head"] and "head" in ours
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    with pytest.raises(TypeError, match="keys must be strings"):
        ours[3] = nn.Tanh()


# --- devices, dtypes, save and load ------------------------------------------------------------
def test_devices_are_checked_against_the_backend():
    device = "cuda" if mg.cuda.is_available() else "cpu"
    assert mg.zeros(2, device=device).device == mg.tensor([1.0]).device
    model = nn.Linear(2, 2).to(mg.device(device))
    assert model(mg.randn(3, 2, device=device).to(device)).shape == (3, 2)
    other = "cpu" if mg.cuda.is_available() else "cuda"
    with pytest.raises(RuntimeError, match=f"device '{other}' asked for"):
        mg.ones(2, device=other)
    with pytest.raises(RuntimeError, match="unknown device 'tpu'"):
        mg.ones(1).to("tpu")


def test_module_to_dtype_converts_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).double()
    assert {str(t.dtype) for t in model.state_dict().values() if t.dtype.kind == "f"} == {"float64"}
    assert model.state_dict()["1.num_batches_tracked"].dtype == mg.int64
    assert model(mg.ones(4, 2, dtype=mg.float64)).dtype == mg.float64
    model.float()
    assert model[0].weight.dtype == mg.float32


def test_save_and_load_state_dicts_the_torch_way(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    path = tmp_path / "model.pt"
    mg.save(model.state_dict(), path)
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    other.load_state_dict(mg.load(path, map_location="cpu" if not mg.cuda.is_available() else "cuda"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_inplace_flags_are_accepted_and_change_nothing():
    x = mg.tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(x).tolist() == [0.0, 2.0]
    assert nn.LeakyReLU(0.2, inplace=True)(x).tolist() == [pytest.approx(-0.2), 2.0]
    assert x.tolist() == [-1.0, 2.0]


def test_expand_keeps_axes_given_as_minus_one_and_rsqrt(float64):
    x = random_tensor((1, 3, 1), 7)
    assert x.expand(4, -1, 5).shape == (4, 3, 5) and x.expand(2, 1, 3, 2).shape == (2, 1, 3, 2)
    with pytest.raises(ValueError, match="-1 is only allowed"):
        x.expand(-1, 1, 3, 2)
    check_grads(lambda t: t.expand(2, -1, 4) * 2, x)
    y = mg.tensor(random_array((5,), 8, 0.5, 3.0), requires_grad=True)
    np.testing.assert_allclose(mg.rsqrt(y).numpy(), 1 / np.sqrt(y.numpy()))
    check_grads(mg.rsqrt, y)

"""minigan.nn.utils: clip_grad_norm_ and clip_grad_value_ against torch.nn.utils (norms of every
order, float32 and float64, parameters without gradients), the non-finite cases, the argument
checks, and nn.utils being a real module that also holds spectral_norm."""
import importlib
import math

import numpy as np
import pytest

import minigan as mg
from minigan import nn
from minigan.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def gradients(scale, seed=0):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(shape) for shape in SHAPES]


def both(grads, dtype, without_grad=(1,)):
    """The same parameters in minigan and torch; those in ``without_grad`` have no gradient."""
    torch = pytest.importorskip("torch")
    ours, theirs = [], []
    for i, g in enumerate(grads):
        p = mg.zeros(*g.shape, dtype=dtype, requires_grad=True)
        q = torch.zeros(*g.shape, dtype=getattr(torch, dtype), requires_grad=True)
        if i not in without_grad:
            p.grad, q.grad = mg.tensor(g.astype(dtype)), torch.tensor(g.astype(dtype))
        ours.append(p)
        theirs.append(q)
    return ours, theirs, torch


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-13), ("float32", 1e-6)])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipped, and left alone
def test_clip_grad_norm_matches_torch(dtype, rtol, norm_type, max_norm):
    ours, theirs, torch = both(gradients(2.0), dtype)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, mg.Tensor) and total.shape == () and total.dtype == np.dtype(dtype)
    np.testing.assert_allclose(total.item(), expected.item(), rtol=rtol)
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert p.grad.dtype == np.dtype(dtype)
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=rtol, atol=0)


def test_clip_grad_norm_closed_form():
    a, b = mg.zeros(2, requires_grad=True), mg.zeros(1, requires_grad=True)
    a.grad, b.grad = mg.tensor([3.0, 0.0]), mg.tensor([4.0])
    assert clip_grad_norm_([a, b], 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-6)
    assert clip_grad_norm_(a, 10.0, norm_type="inf").item() == pytest.approx(0.6)  # one Tensor
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-6)  # below max_norm: unchanged


def test_clip_grad_value_matches_torch():
    ours, theirs, torch = both(gradients(2.0), "float64")
    clip_grad_value_(ours, 0.75)
    torch.nn.utils.clip_grad_value_(theirs, 0.75)
    for p, q in zip(ours, theirs):
        if p.grad is not None:
            assert np.array_equal(p.grad.numpy(), q.grad.numpy())
            assert np.abs(p.grad.numpy()).max() == 0.75


def test_clipping_changes_the_gradient_tensor_in_place():
    """The same .grad object, its array changed and its version bumped (so a graph that read
    it, kept by create_graph, knows it changed)."""
    p = mg.zeros(3, requires_grad=True)
    p.grad = grad = mg.tensor([3.0, -4.0, 12.0])
    version = grad._version
    clip_grad_norm_([p], 1.0)
    assert p.grad is grad and grad._version > version
    version = grad._version
    clip_grad_value_([p], 0.1)
    assert p.grad is grad and grad._version > version


def test_a_shared_gradient_is_scaled_once():
    a, b = mg.zeros(2, requires_grad=True), mg.zeros(2, requires_grad=True)
    a.grad = b.grad = mg.tensor([3.0, 4.0])
    clip_grad_norm_([a, b], 1.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.8], rtol=1e-6)


def test_no_gradients_give_a_zero_norm():
    p = mg.zeros(2, requires_grad=True)
    total = clip_grad_norm_([p], 1.0)
    assert total.item() == 0.0 and total.shape == () and p.grad is None
    assert clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 * inf
def test_non_finite_norm(bad):
    torch = pytest.importorskip("torch")
    p, q = mg.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    p.grad, q.grad = mg.tensor([1.0, bad, 2.0]), torch.tensor([1.0, bad, 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_([q], 1.0, error_if_nonfinite=True)
    assert np.array_equal(p.grad.numpy(), q.grad.numpy(), equal_nan=True)  # untouched
    total = clip_grad_norm_([p], 1.0)  # as PyTorch: scaled by the non-finite norm
    expected = torch.nn.utils.clip_grad_norm_([q], 1.0)
    assert np.array_equal(total.numpy(), expected.numpy(), equal_nan=True)
    assert np.array_equal(p.grad.numpy(), q.grad.numpy(), equal_nan=True)


@pytest.mark.parametrize("call, message", [
    (lambda ps: clip_grad_norm_(ps, -1.0), "clip_grad_norm_: invalid max_norm: -1.0"),
    (lambda ps: clip_grad_norm_(ps, math.nan), "clip_grad_norm_: invalid max_norm: nan"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0), "clip_grad_norm_: invalid norm_type: 0"),
    (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=-2.0), "invalid norm_type: -2.0"),
    (lambda ps: clip_grad_value_(ps, -0.5), "clip_grad_value_: invalid clip_value: -0.5"),
    (lambda ps: clip_grad_value_(ps, math.nan), "clip_grad_value_: invalid clip_value: nan"),
])
def test_bad_arguments_raise(call, message):
    p = mg.zeros(2, requires_grad=True)
    p.grad = mg.tensor([1.0, 2.0])
    with pytest.raises(ValueError) as error:
        call([p])
    assert message in str(error.value)
    assert np.array_equal(p.grad.numpy(), [1.0, 2.0])


def test_parameters_must_be_tensors():
    with pytest.raises(TypeError, match="parameter 0 is a ndarray"):
        clip_grad_norm_([np.zeros(2)], 1.0)


def test_nn_utils_is_a_module_with_torchs_names():
    module = importlib.import_module("minigan.nn.utils")
    assert nn.utils is module
    for name in ("clip_grad_norm_", "clip_grad_value_", "spectral_norm", "remove_spectral_norm"):
        assert hasattr(nn.utils, name)
    layer = nn.utils.spectral_norm(nn.Linear(3, 2))
    assert "weight_orig" in layer.state_dict()


def test_clipping_before_a_step_matches_torch():
    """A training step with clipping, in both libraries: the same parameters after it."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, w0 = rng.standard_normal((6, 3)), rng.standard_normal((2, 3))
    w = mg.tensor(w0.copy(), dtype="float64", requires_grad=True)
    v = torch.tensor(w0, requires_grad=True)
    opt, ref = mg.optim.SGD([w], lr=0.1), torch.optim.SGD([v], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ref.zero_grad()
        ((mg.tensor(x) @ w.T) ** 2).sum().backward()
        ((torch.tensor(x) @ v.T) ** 2).sum().backward()
        clip_grad_norm_([w], 0.5)
        torch.nn.utils.clip_grad_norm_([v], 0.5)
        opt.step()
        ref.step()
    np.testing.assert_allclose(w.numpy(), v.detach().numpy(), rtol=1e-12)

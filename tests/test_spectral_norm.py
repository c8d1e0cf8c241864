"""Spectral normalisation: sigma of the normalised weight is 1, forward and gradients match
PyTorch's spectral_norm, finite differences agree through the normalised layer, and the state
dict has PyTorch's keys."""
import numpy as np
import pytest

import minigan as mg
from minigan import nn
from minigan.nn.spectral_norm import remove_spectral_norm, spectral_norm

pytestmark = pytest.mark.usefixtures("float64")

# (layer factory, input shape, matrix rows axis): one line per kind of layer
LAYERS = {
    "linear": (lambda lib: lib.Linear(6, 4), (5, 6), 0),
    "conv2d": (lambda lib: lib.Conv2d(3, 5, 3, stride=2, padding=1), (2, 3, 6, 6), 0),
    "conv_transpose2d": (lambda lib: lib.ConvTranspose2d(4, 3, 3, stride=2, padding=1), (2, 4, 3, 3), 1),
}


def as_matrix(weight, dim):
    """What spectral norm normalises: the weight with axis ``dim`` as rows."""
    weight = np.moveaxis(weight, dim, 0)
    return weight.reshape(weight.shape[0], -1)


def largest_singular_value(weight, dim):
    return np.linalg.svd(as_matrix(weight, dim), compute_uv=False)[0]


@pytest.mark.parametrize("kind", LAYERS)
def test_normalised_weight_has_unit_spectral_norm(kind):
    make, in_shape, dim = LAYERS[kind]
    mg.manual_seed(0)
    layer = spectral_norm(make(nn))
    x = mg.randn(*in_shape)
    for _ in range(100):
        layer(x)
    w = layer.weight_orig.numpy()
    sigma = float(layer.weight_u.numpy() @ as_matrix(w, dim) @ layer.weight_v.numpy())
    assert sigma == pytest.approx(largest_singular_value(w, dim), rel=1e-10)
    assert largest_singular_value(layer.weight.numpy(), dim) == pytest.approx(1.0, rel=1e-10)


def test_many_iterations_in_one_call_converge_too():
    mg.manual_seed(1)
    layer = spectral_norm(nn.Linear(8, 5), n_power_iterations=200)
    layer(mg.randn(2, 8))
    assert largest_singular_value(layer.weight.numpy(), 0) == pytest.approx(1.0, rel=1e-10)


def test_u_and_v_are_normalised_buffers_from_the_generator():
    mg.manual_seed(3)
    a = spectral_norm(nn.Linear(6, 4))
    mg.manual_seed(3)
    b = spectral_norm(nn.Linear(6, 4))
    assert np.array_equal(a.weight_u.numpy(), b.weight_u.numpy())
    assert a.weight_u.shape == (4,) and a.weight_v.shape == (6,)
    assert np.linalg.norm(a.weight_u.numpy()) == pytest.approx(1.0)
    assert np.linalg.norm(a.weight_v.numpy()) == pytest.approx(1.0)
    assert not a.weight_u.requires_grad


def test_state_dict_keys_and_parameters():
    layer = spectral_norm(nn.Linear(3, 2))
    assert list(layer.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [name for name, _ in layer.named_parameters()] == ["bias", "weight_orig"]
    conv = spectral_norm(nn.ConvTranspose2d(4, 3, 3))
    assert conv.weight_u.shape == (3,) and conv.weight_v.shape == (4 * 3 * 3,)


def test_training_updates_u_and_v_and_eval_does_not():
    layer = spectral_norm(nn.Linear(6, 4))
    x = mg.randn(3, 6)
    u0 = layer.weight_u.numpy().copy()
    layer.eval()
    layer(x)
    assert np.array_equal(layer.weight_u.numpy(), u0)
    layer.train()
    layer(x)
    assert not np.array_equal(layer.weight_u.numpy(), u0)


def test_gradient_flows_through_sigma():
    """d/dW of sum(W / sigma(W) * C) = C / sigma - (sum(W * C) / sigma^2) u v^T."""
    layer = spectral_norm(nn.Linear(5, 3)).eval()
    c = np.random.default_rng(0).standard_normal((3, 5))
    layer(mg.randn(1, 5))
    (layer.weight * mg.tensor(c)).sum().backward()
    w, u, v = layer.weight_orig.numpy(), layer.weight_u.numpy(), layer.weight_v.numpy()
    sigma = u @ w @ v
    expected = c / sigma - (w * c).sum() / sigma**2 * np.outer(u, v)
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", LAYERS)
def test_matches_torch(kind):
    torch = pytest.importorskip("torch")
    make, in_shape, _ = LAYERS[kind]
    torch.manual_seed(0)
    theirs = torch.nn.utils.spectral_norm(make(torch.nn).double(), n_power_iterations=2)
    ours = spectral_norm(make(nn), n_power_iterations=2)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})

    rng = np.random.default_rng(5)
    for mode in ("train", "train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        x = rng.standard_normal(in_shape)
        x_ours = mg.tensor(x, requires_grad=True)
        x_theirs = torch.tensor(x, requires_grad=True)
        out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
        np.testing.assert_allclose(out_ours.numpy(), out_theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
        for key in ("weight_u", "weight_v"):
            np.testing.assert_allclose(getattr(ours, key).numpy(), getattr(theirs, key).numpy(),
                                       rtol=1e-12, atol=1e-14, err_msg=key)

        cot = rng.standard_normal(out_ours.shape)
        ours.zero_grad()
        theirs.zero_grad()
        (out_ours * mg.tensor(cot)).sum().backward()
        (out_theirs * torch.tensor(cot)).sum().backward()
        pairs = [(x_ours, x_theirs), (ours.weight_orig, theirs.weight_orig), (ours.bias, theirs.bias)]
        for name, (a, b) in zip(("input", "weight_orig", "bias"), pairs):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{mode}: gradient w.r.t. {name}")


@pytest.mark.parametrize("kind", LAYERS)
def test_gradcheck_through_the_normalised_layer(kind):
    make, in_shape, _ = LAYERS[kind]
    layer = spectral_norm(make(nn))
    x = mg.randn(*in_shape, requires_grad=True)
    for _ in range(3):
        layer(x)  # move u and v away from their random start
    layer.eval()  # u and v fixed: the layer is a smooth function of weight_orig, bias and x
    fn = lambda w, b, x: layer(x)  # noqa: E731 -- gradcheck nudges w and b in place
    assert mg.gradcheck(fn, [layer.weight_orig, layer.bias, x])


def test_gradgradcheck_for_gradient_penalties():
    layer = spectral_norm(nn.Linear(3, 2)).eval()
    x = mg.randn(2, 3, requires_grad=True)
    assert mg.gradgradcheck(lambda w, x: mg.tanh(layer(x)), [layer.weight_orig, x])


def test_two_forwards_before_one_backward():
    """A GAN critic sees real and fake batches before one backward: each forward's gradient
    must use the u, v of that forward, not the ones the next forward updated in place."""
    layer = spectral_norm(nn.Linear(4, 3))
    twin = spectral_norm(nn.Linear(4, 3))
    twin.load_state_dict(layer.state_dict())
    a, b = mg.randn(2, 4), mg.randn(2, 4)
    (layer(a).sum() + layer(b).sum()).backward()
    twin(a).sum().backward()  # backward before the next forward: no room for a mix-up
    twin(b).sum().backward()
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), twin.weight_orig.grad.numpy(), rtol=1e-12)


def test_remove_spectral_norm():
    layer = spectral_norm(nn.Linear(4, 3))
    out = layer(mg.randn(2, 4))
    normalised = layer.weight.numpy().copy()
    remove_spectral_norm(layer)
    assert list(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer.weight, nn.Parameter)
    np.testing.assert_allclose(layer.weight.numpy(), normalised, rtol=1e-12)
    assert layer(mg.randn(2, 4)).shape == out.shape
    with pytest.raises(ValueError, match="not normalised"):
        remove_spectral_norm(layer)


def test_errors():
    layer = spectral_norm(nn.Linear(4, 3))
    with pytest.raises(RuntimeError, match="already"):
        spectral_norm(layer)
    with pytest.raises(ValueError, match="'kernel'"):
        spectral_norm(nn.Linear(4, 3), name="kernel")
    with pytest.raises(ValueError, match="n_power_iterations must be positive, got 0"):
        spectral_norm(nn.Linear(4, 3), n_power_iterations=0)


def test_exported_like_torch_nn_utils():
    assert nn.utils.spectral_norm is spectral_norm
    assert nn.utils.remove_spectral_norm is remove_spectral_norm

"""Parity with PyTorch (skipped when torch is absent): forward values, input and weight
gradients and second derivatives agree to 1e-5 relative in float64 for every function and
layer; BatchNorm's running statistics after training steps; a WGAN-GP gradient penalty; and
DCGAN generator weights moving both ways with identical outputs."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigan as mg
from minigan import functional as F
from minigan import nn
from helpers import (
    Const, assert_close, compare_modules, compare_with_torch, conv_cases, copy_torch_weights, random_array,
)

torch = pytest.importorskip("torch")
TF = torch.nn.functional
tnn = torch.nn

pytestmark = pytest.mark.usefixtures("float64")
seeds = st.integers(0, 2**16)


@pytest.fixture(autouse=True)
def torch_float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def labels(shape, classes, seed=0):
    return np.random.default_rng(seed).integers(0, classes, shape)


# --- functions: one line per case (minigan function, torch function, inputs) --------------------
FUNCTIONS = {
    "linear": (F.linear, TF.linear, [(4, 3), (2, 3), (2,)]),
    "relu": (F.relu, TF.relu, [(3, 4)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), [(3, 4)]),
    "tanh": (F.tanh, torch.tanh, [(3, 4)]),
    "sigmoid": (F.sigmoid, torch.sigmoid, [(3, 4)]),
    "softplus": (F.softplus, TF.softplus, [(3, 4)]),
    "softplus_beta": (lambda x: F.softplus(x * 4.0, beta=0.5), lambda x: TF.softplus(x * 4.0, beta=0.5), [(3, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1), [(3, 4, 2)]),
    "softmax": (lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1), [(3, 4)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 4), w, b), lambda x, w, b: TF.layer_norm(x, (3, 4), w, b),
                   [(2, 3, 4), (3, 4), (3, 4)]),
    "batch_norm_train_2d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                            lambda x, w, b: TF.batch_norm(x, None, None, w, b, True), [(5, 3), (3,), (3,)]),
    "batch_norm_train_4d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                            lambda x, w, b: TF.batch_norm(x, None, None, w, b, True), [(2, 3, 2, 3), (3,), (3,)]),
    "pad": (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5) ** 2, lambda x: TF.pad(x, (1, 2, 0, 1), value=0.5) ** 2,
            [(2, 3, 4)]),
    "mse_loss": (F.mse_loss, TF.mse_loss, [(3, 4), (3, 4)]),
    "mse_loss_none": (lambda a, b: F.mse_loss(a, b, reduction="none"),
                      lambda a, b: TF.mse_loss(a, b, reduction="none"), [(3, 4), (3, 4)]),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                        [(3, 4), Const(random_array((3, 4), 1, 0, 1))]),
    "bce_with_logits_weights": (
        lambda x, t, w, p: F.binary_cross_entropy_with_logits(x * 5.0, t, w, reduction="sum", pos_weight=p),
        lambda x, t, w, p: TF.binary_cross_entropy_with_logits(x * 5.0, t, w, reduction="sum", pos_weight=p),
        [(3, 4), Const(random_array((3, 4), 1, 0, 1)), Const(random_array((3, 4), 2, 0.5, 2)),
         Const(random_array((4,), 3, 0.5, 3))]),
    "cross_entropy_probabilities": (
        lambda x, t: F.cross_entropy(x, F.softmax(t, 1)), lambda x, t: TF.cross_entropy(x, TF.softmax(t, 1)),
        [(3, 4, 2), (3, 4, 2)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_matches_torch(name):
    mg_fn, torch_fn, shapes = FUNCTIONS[name]
    compare_with_torch(mg_fn, torch_fn, *[s if isinstance(s, Const) else random_array(s, i)
                                          for i, s in enumerate(shapes)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_torch(reduction):
    x, t, w = random_array((3, 4), 0, 0.05, 0.95), random_array((3, 4), 1, 0, 1), Const(random_array((4,), 2, 0.5, 2))
    compare_with_torch(lambda x, t, w: F.binary_cross_entropy(x, t, w, reduction),
                       lambda x, t, w: TF.binary_cross_entropy(x, t, w, reduction=reduction), x, t, w)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4,), (5, 4), (5, 4, 3)])
def test_cross_entropy_with_class_indices_matches_torch(reduction, shape):
    target = labels(shape[:1] + shape[2:] if len(shape) > 1 else (), shape[1] if len(shape) > 1 else shape[0])
    compare_with_torch(lambda x, t, w: F.cross_entropy(x * 3.0, t, w, reduction),
                       lambda x, t, w: TF.cross_entropy(x * 3.0, t, w, reduction=reduction),
                       random_array(shape), target,
                       Const(random_array((shape[1] if len(shape) > 1 else shape[0],), 1, 0.5, 2)))


def test_embedding_matches_torch():
    compare_with_torch(lambda i, w: F.embedding(i, w) ** 2, lambda i, w: TF.embedding(i, w) ** 2,
                       labels((3, 4), 5), random_array((5, 2)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logit_losses_at_plus_minus_100_match_torch(dtype):
    logits = np.array([100.0, -100.0, 100.0, -100.0, 30.0, -30.0])
    target = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    x_mg = mg.tensor(logits, dtype=dtype, requires_grad=True)
    x_th = torch.tensor(logits, dtype=getattr(torch, dtype), requires_grad=True)
    loss_mg = F.binary_cross_entropy_with_logits(x_mg, mg.tensor(target, dtype=dtype), reduction="sum")
    loss_th = TF.binary_cross_entropy_with_logits(x_th, torch.tensor(target, dtype=x_th.dtype), reduction="sum")
    loss_mg.backward()
    loss_th.backward()
    rtol = 1e-6 if dtype == "float32" else 1e-12
    assert_close(loss_mg.numpy(), loss_th.detach().numpy(), "losses", rtol=rtol)
    assert_close(x_mg.grad.numpy(), x_th.grad.numpy(), "gradients", rtol=rtol)


# --- convolutions over hypothesis-drawn configurations -----------------------------------------
@given(case=conv_cases(budget=None), seed=seeds)
def test_conv2d_matches_torch(case, seed):
    xs, ws, stride, padding, _, dilation = case
    compare_with_torch(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation),
                       lambda x, w, b: TF.conv2d(x, w, b, stride, padding, dilation),
                       random_array(xs, seed), random_array(ws, seed + 1), random_array(ws[:1], seed + 2),
                       seed=seed)


@given(case=conv_cases(transposed=True, budget=None), seed=seeds)
def test_conv_transpose2d_matches_torch(case, seed):
    xs, ws, stride, padding, output_padding, dilation = case
    compare_with_torch(
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, dilation),
        lambda x, w, b: TF.conv_transpose2d(x, w, b, stride, padding, output_padding, 1, dilation),
        random_array(xs, seed), random_array(ws, seed + 1), random_array(ws[1:2], seed + 2), seed=seed)


# --- layers: PyTorch's weights loaded into minigan, outputs and all gradients compared ----------
@given(case=conv_cases(budget=None), bias=st.booleans(), seed=seeds)
def test_conv2d_layer_matches_torch(case, bias, seed):
    xs, ws, stride, padding, _, dilation = case
    args = (ws[1], ws[0], ws[2:], stride, padding, dilation)
    compare_modules(nn.Conv2d(*args, bias=bias), tnn.Conv2d(*args, bias=bias), random_array(xs, seed),
                    second_order=True, seed=seed)


@given(case=conv_cases(transposed=True, budget=None), bias=st.booleans(), seed=seeds)
def test_conv_transpose2d_layer_matches_torch(case, bias, seed):
    xs, ws, stride, padding, output_padding, dilation = case
    args = (ws[0], ws[1], ws[2:], stride, padding, output_padding)
    compare_modules(nn.ConvTranspose2d(*args, bias=bias, dilation=dilation),
                    tnn.ConvTranspose2d(*args, bias=bias, dilation=dilation),
                    random_array(xs, seed), second_order=True, seed=seed)


LAYERS = {
    "Linear": (lambda m: m.Linear(5, 3), (4, 5)),
    "Linear_no_bias": (lambda m: m.Linear(5, 3, bias=False), (2, 3, 5)),
    "BatchNorm1d_train": (lambda m: m.BatchNorm1d(3), (6, 3)),
    "BatchNorm1d_3d_train": (lambda m: m.BatchNorm1d(3), (2, 3, 4)),
    "BatchNorm2d_train": (lambda m: m.BatchNorm2d(3), (2, 3, 3, 2)),
    "BatchNorm2d_no_affine": (lambda m: m.BatchNorm2d(3, affine=False), (2, 3, 3, 2)),
    "BatchNorm2d_untracked": (lambda m: m.BatchNorm2d(3, track_running_stats=False), (2, 3, 3, 2)),
    "BatchNorm2d_eval": (lambda m: m.BatchNorm2d(3).eval(), (2, 3, 3, 2)),
    "LayerNorm": (lambda m: m.LayerNorm((3, 2)), (4, 3, 2)),
    "ReLU": (lambda m: m.Sequential(m.Linear(4, 4), m.ReLU(), m.Linear(4, 2)), (3, 4)),
    "LeakyReLU": (lambda m: m.Sequential(m.Linear(4, 4), m.LeakyReLU(0.2), m.Linear(4, 2)), (3, 4)),
    "Tanh": (lambda m: m.Sequential(m.Linear(4, 4), m.Tanh()), (3, 4)),
    "Sigmoid": (lambda m: m.Sequential(m.Linear(4, 4), m.Sigmoid()), (3, 4)),
    "Flatten_Unflatten": (lambda m: m.Sequential(m.Flatten(), m.Linear(12, 6), m.Unflatten(1, (2, 3)), m.Tanh()),
                          (2, 3, 4)),
    "Identity_Dropout_eval": (lambda m: m.Sequential(m.Identity(), m.Linear(4, 4), m.Dropout(0.5), m.Tanh()).eval(),
                              (3, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch(name):
    make, shape = LAYERS[name]
    torch.manual_seed(0)
    mg_layer, torch_layer = make(nn), make(tnn)
    for p in torch_layer.parameters():  # move BatchNorm/LayerNorm off their trivial ones/zeros
        p.data.uniform_(0.5, 1.5)
    if hasattr(torch_layer, "running_var") and torch_layer.running_var is not None:
        torch_layer.running_mean.uniform_(-1, 1)
        torch_layer.running_var.uniform_(0.5, 2)
    compare_modules(mg_layer, torch_layer, random_array(shape), second_order=True)


def test_embedding_layer_matches_torch():
    compare_modules(nn.Sequential(nn.Embedding(6, 3), nn.Tanh()), tnn.Sequential(tnn.Embedding(6, 3), tnn.Tanh()),
                    labels((2, 5), 6), second_order=True)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("make, shape", [(lambda m, mom: m.BatchNorm1d(3, momentum=mom), (8, 3)),
                                         (lambda m, mom: m.BatchNorm2d(3, momentum=mom), (4, 3, 2, 3))])
def test_batch_norm_running_statistics_after_five_steps(make, shape, momentum):
    mg_layer, torch_layer = make(nn, momentum), make(tnn, momentum)
    for step in range(5):
        x = random_array(shape, step, -1.0, 3.0)
        mg_layer(mg.tensor(x))
        torch_layer(torch.tensor(x))
    for key, value in torch_layer.state_dict().items():
        assert_close(mg_layer.state_dict()[key].numpy(), value.numpy(), key)
    x = random_array(shape, 99)
    assert_close(mg_layer.eval()(mg.tensor(x)).numpy(), torch_layer.eval()(torch.tensor(x)).detach().numpy(),
                 "eval outputs")


# --- a WGAN-GP gradient penalty: double backward through a small critic ------------------------
def critic(m):
    return m.Sequential(m.Conv2d(2, 4, 3, stride=2, padding=1), m.LeakyReLU(0.2),
                        m.Conv2d(4, 4, 3, padding=1), m.LeakyReLU(0.2), m.Flatten(), m.Linear(4 * 3 * 3, 1))


def test_wgan_gp_gradient_penalty_matches_torch():
    torch.manual_seed(0)
    mg_critic, torch_critic = critic(nn), critic(tnn)
    copy_torch_weights(mg_critic, torch_critic)
    real, fake = random_array((3, 2, 5, 5), 1), random_array((3, 2, 5, 5), 2)
    alpha = random_array((3, 1, 1, 1), 3, 0, 1)
    mixed = alpha * real + (1 - alpha) * fake

    def penalty(lib, model, x):
        scores = model(x)
        grad = lib.autograd.grad(scores.sum(), x, create_graph=True)[0] if lib is torch else \
            mg.grad(scores.sum(), x, create_graph=True)[0]
        norms = (grad.reshape(x.shape[0], -1) ** 2).sum(1) ** 0.5
        return ((norms - 1.0) ** 2).mean() * 10.0

    x_mg, x_th = mg.tensor(mixed, requires_grad=True), torch.tensor(mixed, requires_grad=True)
    gp_mg, gp_th = penalty(mg, mg_critic, x_mg), penalty(torch, torch_critic, x_th)
    assert_close(gp_mg.numpy(), gp_th.detach().numpy(), "penalties")
    gp_mg.backward()
    gp_th.backward()
    for (name, p_mg), (_, p_th) in zip(mg_critic.named_parameters(), torch_critic.named_parameters()):
        # biases reach the input gradient only through LeakyReLU's piecewise-constant slope, so
        # their penalty gradient is zero: None in minigan, zeros (or None) in PyTorch
        expected = np.zeros(p_th.shape) if p_th.grad is None else p_th.grad.numpy()
        assert_close(np.zeros(p_mg.shape) if p_mg.grad is None else p_mg.grad.numpy(), expected,
                     f"penalty gradients of {name}")
        assert name.endswith("bias") or p_mg.grad is not None
    # the critic is piecewise linear, so its input gradient is piecewise constant in the input
    assert x_mg.grad is None and not x_th.grad.any()


# --- the DCGAN generator: same keys, shapes, repr; weights move both ways ----------------------
def dcgan_generator(m):
    return m.Sequential(
        m.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), m.BatchNorm2d(256), m.ReLU(),
        m.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), m.BatchNorm2d(128), m.ReLU(),
        m.ConvTranspose2d(128, 1, 4, 2, 1), m.Tanh(),
    )


@pytest.fixture
def float32_everywhere():
    mg.set_default_dtype("float32")
    torch.set_default_dtype(torch.float32)
    yield  # the float64 fixtures restore their own defaults afterwards


def test_dcgan_generator_state_dict_and_repr_match_torch(float32_everywhere):
    mg_state, torch_state = dcgan_generator(nn).state_dict(), dcgan_generator(tnn).state_dict()
    assert [(k, v.shape) for k, v in mg_state.items()] == [(k, tuple(v.shape)) for k, v in torch_state.items()]
    torch_dtypes = [str(v.dtype).replace("torch.", "") for v in torch_state.values()]
    assert [str(v.dtype) for v in mg_state.values()] == torch_dtypes
    assert repr(dcgan_generator(nn)) == repr(dcgan_generator(tnn))


def _train_a_little(model, z):
    model.train()
    model(z)  # moves the BatchNorm running statistics
    model.eval()


def test_dcgan_weights_move_from_torch_to_minigan(float32_everywhere):
    torch.manual_seed(0)
    source, target = dcgan_generator(tnn), dcgan_generator(nn)
    z = random_array((4, 100, 1, 1)).astype(np.float32)
    with torch.no_grad():
        _train_a_little(source, torch.tensor(z))
        target.load_state_dict({k: v.numpy() for k, v in source.state_dict().items()})
        expected = source(torch.tensor(z)).numpy()
    assert_close(target.eval()(mg.tensor(z)).numpy(), expected, "generated images", rtol=1e-4, atol=1e-5)


def test_dcgan_weights_move_from_minigan_to_torch(float32_everywhere):
    mg.manual_seed(0)
    source, target = dcgan_generator(nn), dcgan_generator(tnn)
    z = random_array((4, 100, 1, 1)).astype(np.float32)
    with mg.no_grad():
        _train_a_little(source, mg.tensor(z))
    result = target.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in source.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        expected = target.eval()(torch.tensor(z)).numpy()
    assert_close(source(mg.tensor(z)).numpy(), expected, "generated images", rtol=1e-4, atol=1e-5)

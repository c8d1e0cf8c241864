"""minigan.nn: the Module contract (registration, traversal, modes, state dicts, repr), every
layer's first and second derivatives against finite differences, BatchNorm's running
statistics, default initialisation, and error messages that name the layer."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigan as mg
from minigan import nn
from helpers import check_module_grads, conv_cases, random_array, random_tensor

seeds = st.integers(0, 2**16)


def dcgan_generator():
    return nn.Sequential(
        nn.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh(),
    )


DCGAN_STATE = [
    ("0.weight", (100, 256, 7, 7)),
    ("1.weight", (256,)), ("1.bias", (256,)), ("1.running_mean", (256,)),
    ("1.running_var", (256,)), ("1.num_batches_tracked", ()),
    ("3.weight", (256, 128, 4, 4)),
    ("4.weight", (128,)), ("4.bias", (128,)), ("4.running_mean", (128,)),
    ("4.running_var", (128,)), ("4.num_batches_tracked", ()),
    ("6.weight", (128, 1, 4, 4)), ("6.bias", (1,)),
]

DCGAN_REPR = """\
Sequential(
  (0): ConvTranspose2d(100, 256, kernel_size=(7, 7), stride=(1, 1), bias=False)
  (1): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
  (2): ReLU()
  (3): ConvTranspose2d(256, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
  (4): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
  (5): ReLU()
  (6): ConvTranspose2d(128, 1, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))
  (7): Tanh()
)"""


# --- the Module contract -----------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.norm = nn.BatchNorm2d(2)
        self.scale = nn.Parameter(mg.ones(1))
        self.register_buffer("calls", mg.zeros((), dtype=mg.int64))
        self.note = "plain attributes stay plain"

    def forward(self, x):
        return self.norm(self.conv(x)) * self.scale


def test_registration_and_traversal_follow_pytorch_order():
    model = nn.Sequential(Block(), nn.Flatten(), nn.Linear(2 * 4 * 4, 1))
    assert [n for n, _ in model.named_parameters()] == [
        "0.scale", "0.conv.weight", "0.conv.bias", "0.norm.weight", "0.norm.bias", "2.weight", "2.bias"]
    assert [n for n, _ in model.named_buffers()] == [
        "0.calls", "0.norm.running_mean", "0.norm.running_var", "0.norm.num_batches_tracked"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "0.conv", "0.norm", "1", "2"]
    assert [type(m).__name__ for m in model.children()] == ["Block", "Flatten", "Linear"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert model[0].note == "plain attributes stay plain"
    assert list(model.state_dict()) == [
        "0.scale", "0.calls", "0.conv.weight", "0.conv.bias", "0.norm.weight", "0.norm.bias",
        "0.norm.running_mean", "0.norm.running_var", "0.norm.num_batches_tracked", "2.weight", "2.bias"]
    assert model(mg.randn(3, 1, 6, 6)).shape == (3, 1)


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_assigning_the_wrong_kind_to_a_parameter_is_refused():
    layer = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="cannot assign a Tensor to parameter 'weight' of Linear"):
        layer.weight = mg.zeros(3, 2)
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    del layer.weight
    assert list(layer.parameters()) == []


def test_attribute_before_init_is_explained():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.zeros(1))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Forgetful()


def test_train_eval_and_zero_grad_reach_every_module():
    model = nn.Sequential(Block(), nn.Dropout(0.5))
    assert model.training and model[0].norm.training
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(mg.randn(2, 1, 5, 5)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_requires_grad_freezes_every_parameter():
    model = Block().requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


def test_apply_visits_children_before_the_parent():
    seen = []
    model = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_dcgan_weight_init_through_apply():
    def weights_init(m):  # the DCGAN paper: N(0, 0.02) for convolutions, N(1, 0.02) for BN scales
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    g = dcgan_generator().apply(weights_init)
    assert abs(float(g[0].weight.numpy().std()) - 0.02) < 0.001
    assert abs(float(g[1].weight.numpy().mean()) - 1.0) < 0.01


def test_forward_hooks():
    layer = nn.Linear(2, 2)
    layer.register_forward_pre_hook(lambda m, args: (args[0] * 0.0,))
    layer.register_forward_hook(lambda m, args, out: out + 1.0)
    np.testing.assert_allclose(layer(mg.ones(1, 2)).numpy(), layer.bias.numpy()[None] + 1.0, rtol=1e-6)


def test_parameter_is_a_trainable_tensor():
    p = nn.Parameter(mg.zeros(2))
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert nn.Parameter([1.0, 2.0]).dtype == mg.get_default_dtype()


def test_sequential_is_a_list_of_modules():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert len(model) == 3 and isinstance(model[-1], nn.Linear) and model[1] is list(model)[1]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head.state_dict()) == ["2.weight", "2.bias"]
    model.append(nn.Tanh())
    assert isinstance(model[3], nn.Tanh)
    with pytest.raises(IndexError, match="Sequential index 4 is out of range for 4 modules"):
        model[4]
    named = nn.Sequential({"fc": nn.Linear(1, 1), "act": nn.ReLU()})
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]


# --- state dicts -------------------------------------------------------------------------------
def test_dcgan_generator_state_dict_keys_and_shapes():
    state = dcgan_generator().state_dict()
    assert [(k, v.shape) for k, v in state.items()] == DCGAN_STATE
    assert state["1.num_batches_tracked"].dtype == mg.int64


def test_dcgan_generator_repr():
    assert repr(dcgan_generator()) == DCGAN_REPR


def test_state_dict_round_trip_gives_identical_outputs():
    mg.manual_seed(1)
    source, target = dcgan_generator(), dcgan_generator()
    source.train()
    z = mg.randn(3, 100, 1, 1)
    source(z)  # move the running statistics away from their initial values
    source.eval()
    result = target.load_state_dict({k: v.numpy() for k, v in source.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    target.eval()
    np.testing.assert_array_equal(source(z).numpy(), target(z).numpy())
    assert int(target[1].num_batches_tracked.item()) == 1


def test_load_state_dict_copies_in_place():
    layer = nn.Linear(2, 2)
    weight = layer.weight
    layer.load_state_dict({"weight": np.ones((2, 2)), "bias": mg.zeros(2)})
    assert layer.weight is weight and np.all(weight.numpy() == 1.0)
    assert weight.dtype == mg.get_default_dtype()


def test_load_state_dict_lists_every_problem():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    del state["0.bias"], state["1.running_var"]
    state["0.weight"] = np.zeros((3, 2))
    state["2.weight"] = np.zeros(1)
    state["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert message.startswith("error(s) loading the state dict into Sequential:")
    assert "missing keys: '0.bias', '1.running_var'" in message
    assert "unexpected keys: '2.weight', 'extra'" in message
    assert "size mismatch for '0.weight': the state dict has shape (3, 2), the model has shape (2, 3)" in message


def test_load_state_dict_not_strict_reports_keys_but_still_checks_shapes():
    model = nn.Linear(3, 2)
    result = model.load_state_dict({"weight": np.zeros((2, 3)), "other": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    with pytest.raises(RuntimeError, match="size mismatch for 'weight'"):
        model.load_state_dict({"weight": np.zeros((3, 3))}, strict=False)


# --- every layer: first and second derivatives (float64) ---------------------------------------
pytest_float64 = pytest.mark.usefixtures("float64")


@pytest_float64
@given(case=conv_cases(), bias=st.booleans(), seed=seeds)
def test_conv2d_layer_derivatives(case, bias, seed):
    xs, ws, stride, padding, _, dilation = case
    layer = nn.Conv2d(ws[1], ws[0], ws[2:], stride, padding, dilation, bias=bias)
    check_module_grads(layer, xs, seed=seed)


@pytest_float64
@given(case=conv_cases(transposed=True), bias=st.booleans(), seed=seeds)
def test_conv_transpose2d_layer_derivatives(case, bias, seed):
    xs, ws, stride, padding, output_padding, dilation = case
    layer = nn.ConvTranspose2d(ws[0], ws[1], ws[2:], stride, padding, output_padding, bias, dilation)
    check_module_grads(layer, xs, seed=seed)


@pytest_float64
@given(batch=st.lists(st.integers(1, 3), min_size=1, max_size=2), fan_in=st.integers(1, 5),
       fan_out=st.integers(1, 4), bias=st.booleans(), seed=seeds)
def test_linear_layer_derivatives(batch, fan_in, fan_out, bias, seed):
    check_module_grads(nn.Linear(fan_in, fan_out, bias), (*batch, fan_in), seed=seed)


@pytest_float64
@given(two_d=st.booleans(), n=st.integers(1, 4), c=st.integers(1, 4), size=st.integers(1, 3),
       training=st.booleans(), affine=st.booleans(), seed=seeds)
def test_batch_norm_layer_derivatives(two_d, n, c, size, training, affine, seed):
    shape = (n, c) if two_d else (n, c, size, size)
    assume(not training or math.prod(shape) // c >= 2)
    layer = (nn.BatchNorm1d if two_d else nn.BatchNorm2d)(c, affine=affine)
    layer.running_mean.data[...] = random_array((c,), seed + 5)
    layer.running_var.data[...] = random_array((c,), seed + 6, 0.5, 2.0)
    if affine:
        layer.weight.data[...] = random_array((c,), seed + 7, 0.5, 1.5)
        layer.bias.data[...] = random_array((c,), seed + 8)
    layer.train(training)
    check_module_grads(layer, shape, seed=seed)


@pytest_float64
@given(n=st.integers(1, 3), features=st.integers(2, 5), affine=st.booleans(), seed=seeds)
def test_layer_norm_layer_derivatives(n, features, affine, seed):
    layer = nn.LayerNorm(features, elementwise_affine=affine)
    if affine:
        layer.weight.data[...] = random_array((features,), seed + 1, 0.5, 1.5)
    check_module_grads(layer, (n, features), seed=seed)


@pytest_float64
@given(rows=st.integers(1, 5), dim=st.integers(1, 3), seed=seeds)
def test_embedding_layer_derivatives(rows, dim, seed):
    index = mg.tensor(np.random.default_rng(seed).integers(0, rows, (2, 3)))
    layer = nn.Embedding(rows, dim)
    check_module_grads(nn.Sequential(layer, nn.Tanh()), index, seed=seed)


SIMPLE_LAYERS = {
    "ReLU": lambda: nn.ReLU(),
    "LeakyReLU": lambda: nn.LeakyReLU(0.2),
    "Tanh": lambda: nn.Tanh(),
    "Sigmoid": lambda: nn.Sigmoid(),
    "Identity": lambda: nn.Identity(),
    "Flatten": lambda: nn.Flatten(),
    "Unflatten": lambda: nn.Unflatten(1, (2, 3)),
    "Dropout_eval": lambda: nn.Dropout(0.5).eval(),
}


@pytest_float64
@pytest.mark.parametrize("name", sorted(SIMPLE_LAYERS))
@given(n=st.integers(1, 3), seed=seeds)
def test_simple_layer_derivatives(name, n, seed):
    # the Linear around it makes second derivatives of the piecewise-linear ones non-trivial
    model = nn.Sequential(SIMPLE_LAYERS[name](), nn.Flatten(), nn.Linear(6, 2), nn.Tanh())
    check_module_grads(model, (n, 6) if name == "Unflatten" else (n, 2, 3), seed=seed)


@pytest_float64
def test_dropout_layer_derivatives_with_a_fixed_mask():
    layer = nn.Dropout(0.3)

    class Reseeded(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4), layer, nn.Tanh())

        def forward(self, x):
            mg.manual_seed(0)
            return self.inner(x)

    check_module_grads(Reseeded(), (3, 4))
    assert layer.eval()(mg.ones(2)).numpy().tolist() == [1.0, 1.0]


# --- BatchNorm's running statistics ------------------------------------------------------------
@pytest_float64
def test_batch_norm_running_statistics_follow_pytorch_conventions():
    layer = nn.BatchNorm2d(3)
    x = random_tensor((4, 3, 2, 2), 0, -2.0, 3.0, requires_grad=False)
    out = layer(x)
    values = x.numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.1 * values.mean(1))
    np.testing.assert_allclose(layer.running_var.numpy(), 0.9 + 0.1 * values.var(1, ddof=1))
    normalised = (values - values.mean(1, keepdims=True)) / np.sqrt(values.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out.numpy().transpose(1, 0, 2, 3).reshape(3, -1), normalised, atol=1e-12)
    assert layer.num_batches_tracked.item() == 1 and layer.num_batches_tracked.dtype == mg.int64
    layer.eval()
    expected = (x.numpy() - layer.running_mean.numpy()[:, None, None]) / np.sqrt(
        layer.running_var.numpy()[:, None, None] + 1e-5)
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-12)
    assert layer.num_batches_tracked.item() == 1


@pytest_float64
def test_batch_norm_cumulative_average_and_untracked_statistics():
    layer = nn.BatchNorm1d(2, momentum=None)
    batches = [random_tensor((5, 2), i, requires_grad=False) for i in range(3)]
    for b in batches:
        layer(b)
    np.testing.assert_allclose(layer.running_mean.numpy(), np.mean([b.numpy().mean(0) for b in batches], 0))
    plain = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert plain.running_mean is None and list(plain.state_dict()) == ["weight", "bias"]
    np.testing.assert_allclose(plain(batches[0]).numpy().mean(0), 0.0, atol=1e-12)


def test_batch_norm_buffers_are_updated_in_place():
    layer = nn.BatchNorm1d(2)
    mean, var = layer.running_mean, layer.running_var
    mean_array = mean.data
    layer(mg.randn(4, 2, requires_grad=True)).sum().backward()
    assert layer.running_mean is mean and layer.running_var is var and mean.data is mean_array
    assert not mean.requires_grad and mean.grad is None



def _arrays_held(t):
    """The arrays a tensor's graph node keeps besides its inputs, until backward."""
    return [v for v in vars(t.node).values() if hasattr(v, "shape") and hasattr(v, "size")]


def test_batch_norm_keeps_only_per_channel_arrays_until_backward():
    """Between forward and backward the fused op holds its input (a graph input, kept anyway)
    and per-channel statistics, nothing the size of the input; the backward remakes the rest
    and its gradient still matches the plain definition's."""
    layer = nn.BatchNorm2d(3)
    x = mg.randn(4, 3, 5, 5, requires_grad=True)
    out = layer(x)
    saved = _arrays_held(out)
    assert saved and all(v.size <= 3 for v in saved), [v.shape for v in saved]
    g = mg.randn(4, 3, 5, 5)
    out.backward(g)
    from minigan.ops.normalization import normalize_batch
    x2 = mg.tensor(x.data, requires_grad=True)
    (normalize_batch(x2, (0, 2, 3), layer.eps) * g).sum().backward()
    assert np.allclose(x.grad.numpy(), x2.grad.numpy(), atol=1e-5)


@pytest.mark.parametrize("layer", [nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 4, 2, 1),
                                   nn.ConvTranspose2d(3, 4, 4, 2, 1)], ids=repr)
def test_convolutions_keep_no_copy_of_their_input_until_backward(layer):
    """A convolution's node keeps no array (no padded copy or phase planes of x): its weight
    gradient remakes them from x, which the graph holds as the op's input."""
    x = mg.randn(2, 3, 6, 6, requires_grad=True)
    out = layer(x)
    assert _arrays_held(out) == []
    out.sum().backward()
    assert x.grad.shape == x.shape and layer.weight.grad.shape == layer.weight.shape


# --- default initialisation --------------------------------------------------------------------
@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(50, 400), 50),
    (lambda: nn.Conv2d(6, 300, 3), 54),
    (lambda: nn.ConvTranspose2d(300, 6, 3), 54),  # fan_in from weight dim 1 (out channels)
])
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    mg.manual_seed(0)
    layer = make()
    bound = 1.0 / math.sqrt(fan_in)
    for values in (layer.weight.numpy(), layer.bias.numpy()):
        assert np.abs(values).max() <= bound
    w = layer.weight.numpy()
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.var() - bound ** 2 / 3) < 0.05 * bound ** 2  # U(-b, b) has variance b^2 / 3


def test_init_functions_fill_in_place_from_the_one_generator():
    w = nn.Parameter(mg.zeros(200, 100))
    mg.manual_seed(3)
    assert nn.init.xavier_uniform_(w) is w
    first = w.numpy().copy()
    assert np.abs(first).max() <= math.sqrt(6 / 300)
    mg.manual_seed(3)
    np.testing.assert_array_equal(nn.init.xavier_uniform_(w).numpy(), first)
    nn.init.kaiming_uniform_(w, a=0.0, nonlinearity="relu")
    assert abs(w.numpy().var() - 2.0 / 100) < 0.002
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2.0 / 100)) < 0.003
    nn.init.normal_(w, 1.0, 0.5)
    assert abs(w.numpy().mean() - 1.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    nn.init.uniform_(w, -3.0, -2.0)
    assert w.numpy().min() >= -3.0 and w.numpy().max() < -2.0
    nn.init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    assert math.isclose(nn.init.calculate_gain("leaky_relu", 0.2), math.sqrt(2 / 1.04))


def test_embedding_and_norm_defaults():
    assert abs(float(nn.Embedding(1000, 20).weight.numpy().std()) - 1.0) < 0.02
    bn = nn.BatchNorm2d(3)
    assert bn.weight.numpy().tolist() == [1, 1, 1] and bn.running_var.numpy().tolist() == [1, 1, 1]
    assert nn.LayerNorm((2, 3)).weight.shape == (2, 3)


# --- errors that name the layer, what it expected and what it got ------------------------------
LAYER_ERRORS = [
    (nn.Conv2d(3, 16, 3), (2, 4, 8, 8),
     "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected input with 3 channels, got 4 "
     "(input shape (2, 4, 8, 8))"),
    (nn.Conv2d(3, 16, 3), (3, 8, 8),
     "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected a 4-D input (N, C, H, W), got a "
     "3-D input of shape (3, 8, 8)"),
    (nn.Conv2d(1, 2, 5, padding=1), (1, 1, 2, 2),
     "Conv2d(1, 2, kernel_size=(5, 5), stride=(1, 1), padding=(1, 1)): kernel 5x5 (dilation 1x1) is "
     "larger than the padded input 4x4 (input shape (1, 1, 2, 2), padding 1x1)"),
    (nn.ConvTranspose2d(8, 4, 4, 2, 1), (2, 3, 4, 4),
     "ConvTranspose2d(8, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1)): expected input with 8 "
     "channels, got 3 (input shape (2, 3, 4, 4))"),
    (nn.ConvTranspose2d(1, 1, 1, padding=2), (1, 1, 2, 2),
     "ConvTranspose2d(1, 1, kernel_size=(1, 1), stride=(1, 1), padding=(2, 2)): the output would be "
     "-2x-2 for input shape (1, 1, 2, 2) (kernel 1x1, stride (1, 1), padding (2, 2)); reduce the padding"),
    (nn.Linear(10, 5), (2, 7),
     "Linear(in_features=10, out_features=5, bias=True): expected input with 10 features in its last "
     "dimension, got input shape (2, 7)"),
    (nn.BatchNorm2d(3), (2, 4, 5, 5),
     "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True): "
     "expected input with 3 channels, got 4 (input shape (2, 4, 5, 5))"),
    (nn.BatchNorm2d(3), (2, 3),
     "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True): "
     "expected a 4-D input (N, C, H, W), got a 2-D input of shape (2, 3)"),
    (nn.BatchNorm1d(3), (2, 3, 4, 4),
     "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True): "
     "expected a 2-D or 3-D input (N, C) or (N, C, L), got a 4-D input of shape (2, 3, 4, 4)"),
    (nn.LayerNorm(4), (2, 3),
     "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True): expected input whose trailing "
     "dimensions are (4,), got input shape (2, 3)"),
    (nn.Unflatten(1, (2, 2)), (3, 5),
     "Unflatten(dim=1, unflattened_size=(2, 2)): dimension 1 of input shape (3, 5) has size 5, which "
     "cannot be split into (2, 2)"),
]


@pytest.mark.parametrize("layer, shape, message", LAYER_ERRORS,
                         ids=[f"{type(layer).__name__}-{i}" for i, (layer, _, _) in enumerate(LAYER_ERRORS)])
def test_layer_errors_name_the_layer_expected_and_actual(layer, shape, message):
    with pytest.raises(ValueError) as info:
        layer(mg.zeros(shape))
    assert str(info.value) == message


def test_embedding_refuses_bad_indices():
    with pytest.raises(ValueError, match=r"Embedding\(4, 2\): indices must lie in \[0, 4\), got values from 0 to 4"):
        nn.Embedding(4, 2)(mg.tensor([0, 4]))
    with pytest.raises(TypeError, match=r"Embedding\(4, 2\): expected integer indices, got dtype float32"):
        nn.Embedding(4, 2)(mg.zeros(2))


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match="Conv2d: stride must be an int >= 1 or a pair of them, got 0"):
        nn.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_padding \(2, 2\) must be smaller"):
        nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="Dropout: p must be between 0 and 1, got 2"):
        nn.Dropout(2)

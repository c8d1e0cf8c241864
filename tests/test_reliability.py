"""The engine never answers silently wrong: stale saved tensors, freed graphs, aliased gradients,
out-of-range dimensions, NaN probabilities and bad arguments each give PyTorch's result or a
clear error naming the function or layer, what it expected and what it got."""
import threading

import numpy as np
import pytest

import minigan as mg
from minigan import F, nn, optim


# --- saved tensors changed in place ------------------------------------------------------------
def test_changing_a_saved_tensor_before_backward_is_detected():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    w.data += 10
    with pytest.raises(RuntimeError, match=r"shape \(2,\) that mul needs .* modified in place"):
        loss.backward()


def test_an_optimizer_step_between_forward_and_backward_is_detected():
    layer = nn.Linear(3, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(mg.ones(4, 3)).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="linear needs for its gradient was modified in place"):
        loss.backward()


def test_changing_a_tensor_no_backward_reads_is_allowed():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (a + 1).sum()  # addition's gradient does not depend on a's values
    a.data += 1
    loss.backward()
    assert a.grad.numpy().tolist() == [1.0, 1.0]


def test_a_changed_output_that_backward_reads_is_detected():
    x = mg.tensor([0.5], requires_grad=True)
    y = mg.exp(x)
    z = y + 2  # addition reads nothing; exp reads its output
    y.data = y.data * 0  # exp's backward reads its own output
    with pytest.raises(RuntimeError, match="exp needs"):
        z.sum().backward()


# --- graphs are freed after backward -----------------------------------------------------------
def test_a_second_backward_through_a_freed_graph_raises_and_says_what_to_do():
    x = mg.tensor([0.5, 2.0], requires_grad=True)
    y = (mg.tanh(x) * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    with pytest.raises(RuntimeError, match="freed"):
        mg.grad(y, x)


def test_retain_graph_and_create_graph_keep_the_graph():
    x = mg.tensor([0.5, 2.0], requires_grad=True)
    y = (mg.tanh(x) * x).sum()
    (g,) = mg.grad(y, x, create_graph=True)  # create_graph implies retain_graph, so
    y.backward(retain_graph=True)             # this backward still finds the graph, and keeps it
    g.sum().backward()                        # for the gradient's own graph, which runs through it
    assert x.grad is not None


def _reachable_array_bytes(t):
    """Bytes of every array a tensor keeps alive through its graph (data, grad, saved state)."""
    seen, total, stack = set(), 0, [t]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (np.ndarray, np.generic)):
            total += obj.nbytes
        elif isinstance(obj, mg.Tensor):
            stack += [obj.data, obj.grad, obj.node]
        elif isinstance(obj, mg.Function):
            stack += list(vars(obj).values())
        elif isinstance(obj, (list, tuple)):
            stack += list(obj)
        elif isinstance(obj, dict):
            stack += list(obj.values())
    return total


def test_a_kept_loss_tensor_holds_its_own_value_not_its_graph():
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 1))
    loss = model(mg.randn(128, 64)).mean()
    assert _reachable_array_bytes(loss) > 100_000  # before backward: the activations
    loss.backward()
    assert _reachable_array_bytes(loss) == loss.data.nbytes


# --- gradients own their arrays ----------------------------------------------------------------
def test_two_leaves_never_share_a_gradient_array():
    a, b = mg.ones(3, requires_grad=True), mg.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data *= 0
    assert b.grad.numpy().tolist() == [1.0, 1.0, 1.0]


def test_a_gradient_never_shares_the_callers_seed():
    x = mg.ones(2, 3, requires_grad=True)
    seed = mg.ones(6)
    x.reshape(6).backward(seed)
    assert not np.shares_memory(x.grad.data, seed.data)


# --- dimensions --------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda x: x.sum(axis=5), lambda x: x.max(axis=7), lambda x: x.squeeze(5),
    lambda x: x.unsqueeze(10), lambda x: F.log_softmax(x, 5), lambda x: x.transpose(0, 5),
    lambda x: x.mean(axis=-3), lambda x: mg.cat([x, x], axis=2), lambda x: x.flatten(0, 4),
], ids=["sum", "max", "squeeze", "unsqueeze", "log_softmax", "transpose", "mean", "cat", "flatten"])
def test_out_of_range_dimensions_raise_instead_of_wrapping(call):
    with pytest.raises(IndexError, match=r"out of range for a \d-D tensor"):
        call(mg.randn(2, 3))


def test_a_repeated_axis_is_refused():
    with pytest.raises(ValueError, match="names an axis twice"):
        mg.randn(2, 3).sum(axis=(0, -2))


# --- numbers -----------------------------------------------------------------------------------
def test_binary_cross_entropy_of_a_nan_probability_is_nan_like_pytorch():
    p = mg.tensor([0.5, float("nan")], requires_grad=True)
    loss = F.binary_cross_entropy(p, mg.tensor([1.0, 0.0]))
    loss.backward()
    assert np.isnan(loss.item())
    assert p.grad.numpy()[0] == pytest.approx(-1.0) and np.isnan(p.grad.numpy()[1])


def test_empty_reductions_and_losses_are_nan_like_pytorch():
    assert np.isnan(mg.zeros(0).mean().item())
    assert np.isnan(F.mse_loss(mg.zeros(0), mg.zeros(0)).item())
    assert np.isnan(mg.zeros(1).var().item())  # one value: no unbiased variance
    with pytest.raises(ValueError, match="empty dimension"):
        mg.zeros(0, 2).max(axis=0)


def test_integer_inputs_to_layers_are_refused_by_name():
    with pytest.raises(TypeError, match=r"Linear\(in_features=2.*expected a float32 input, got dtype int64"):
        nn.Linear(2, 3)(mg.tensor([[1, 2]]))
    with pytest.raises(TypeError, match=r"Conv2d\(1, 2.*float32 input, got dtype int64"):
        nn.Conv2d(1, 2, 3)(mg.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)))
    with pytest.raises(TypeError, match="conv2d: expected a float32 input"):
        F.conv2d(mg.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), mg.zeros(2, 1, 3, 3))
    with pytest.raises(TypeError, match="leaky_relu: expected a floating tensor, got dtype int64"):
        nn.LeakyReLU(0.2)(mg.tensor([1, 2]))


# --- empty batches and zero-sized layers -------------------------------------------------------
def test_convolutions_take_an_empty_batch_forward_and_backward():
    conv, up = nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 3, 4, 2, 1)
    x = mg.zeros(0, 3, 8, 8, requires_grad=True)
    y = up(conv(x))
    assert y.shape == (0, 3, 12, 12)
    y.sum().backward()
    assert x.grad.shape == x.shape and conv.weight.grad.shape == conv.weight.shape
    assert not conv.weight.grad.numpy().any() and up.weight.grad.shape == up.weight.shape


def test_layers_with_zero_inputs_work_like_pytorch():
    layer = nn.Linear(0, 3)
    assert layer(mg.zeros(2, 0)).shape == (2, 3)
    assert nn.Conv2d(0, 2, 3)(mg.zeros(1, 0, 4, 4)).shape == (1, 2, 2, 2)


# --- arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(-1, 3, 3), r"Conv2d: in_channels must be an int >= 0, got -1"),
    (lambda: nn.Linear(2, -4), r"Linear: out_features must be an int >= 0, got -4"),
    (lambda: nn.BatchNorm2d(-2), r"BatchNorm2d: num_features must be an int >= 0, got -2"),
    (lambda: nn.Conv2d(1, 3, 3.0), r"Conv2d: kernel_size must be an int >= 1 .* got 3.0"),
    (lambda: nn.ConvTranspose2d(1, 3, 4, stride=0), r"ConvTranspose2d: stride must be an int >= 1"),
    (lambda: mg.unfold(mg.zeros(1, 1, 4, 4), 3, dilation=0), r"unfold: dilation must be an int >= 1"),
    (lambda: mg.unfold(mg.zeros(1, 1, 4, 4), 0), r"unfold: kernel_size must be an int >= 1"),
    (lambda: mg.unfold(mg.zeros(1, 1, 4, 4), 2, stride=0), r"unfold: stride must be an int >= 1"),
    (lambda: F.conv2d(mg.zeros(1, 1, 4, 4), mg.zeros(2, 1, 3, 3), mg.zeros(3)),
     r"conv2d: expected a bias of shape \(2,\) for weight shape \(2, 1, 3, 3\), got \(3,\)"),
    (lambda: F.conv2d(mg.zeros(1, 1, 4, 4), mg.zeros(2, 1, 3)),
     r"conv2d: expected a 4-D weight, got shape \(2, 1, 3\)"),
    (lambda: F.conv_transpose2d(mg.zeros(1, 2, 4, 4), mg.zeros(2, 1, 3, 3), mg.zeros(2)),
     r"conv_transpose2d: expected a bias of shape \(1,\)"),
    (lambda: F.batch_norm(mg.zeros(2, 3), mg.zeros(2), mg.ones(3)),
     r"batch_norm: expected running_mean of shape \(3,\) for input shape \(2, 3\) .* got \(2,\)"),
    (lambda: F.batch_norm(mg.zeros(2, 3), None, None, mg.ones(4), training=True),
     r"batch_norm: expected weight of shape \(3,\)"),
    (lambda: F.binary_cross_entropy(mg.full((2,), 0.5), mg.zeros(2), weight=mg.ones(2, 1)),
     r"binary_cross_entropy: weight of shape \(2, 1\) does not broadcast to the input's shape \(2,\)"),
    (lambda: F.binary_cross_entropy_with_logits(mg.zeros(2), mg.zeros(2), weight=mg.ones(3)),
     r"binary_cross_entropy_with_logits: weight of shape \(3,\)"),
])
def test_bad_arguments_get_a_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_numpy_integers_are_integers():
    layer = nn.Conv2d(np.int64(1), np.int64(3), np.int64(3), stride=np.int32(2))
    assert layer.kernel_size == (3, 3) and layer.stride == (2, 2)
    assert type(layer.kernel_size[0]) is int


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1])
def test_optimizers_refuse_a_learning_rate_that_is_not_a_finite_non_negative_number(bad):
    with pytest.raises(ValueError, match="invalid lr"):
        optim.Adam([mg.zeros(2, requires_grad=True)], lr=bad)


def test_optimizers_refuse_integer_tensors():
    with pytest.raises(TypeError, match=r"parameter 0 \(shape \(2,\)\) has dtype int64"):
        optim.SGD([mg.tensor([1, 2])], lr=0.1)


# --- grad mode ---------------------------------------------------------------------------------
def test_one_no_grad_object_can_be_entered_again_and_nested():
    x, guard = mg.ones(1, requires_grad=True), mg.no_grad()
    with guard:
        with guard:
            assert not (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with guard:
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_no_grad_works_as_a_decorator():
    @mg.no_grad()
    def double(t):
        return t * 2

    assert not double(mg.ones(1, requires_grad=True)).requires_grad


def test_grad_mode_belongs_to_the_thread_that_sets_it():
    x, seen = mg.ones(1, requires_grad=True), {}
    inside, leave = threading.Event(), threading.Event()

    def other():
        with mg.no_grad():
            inside.set()
            leave.wait(5)
            seen["other"] = (x * 2).requires_grad

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    seen["main"] = (x * 2).requires_grad  # while the other thread is inside no_grad
    leave.set()
    thread.join()
    assert seen == {"main": True, "other": False}


# --- gradcheck ---------------------------------------------------------------------------------
def test_gradcheck_of_a_non_contiguous_input(float64):
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=False)
    leaf = mg.Tensor(x.data.T, requires_grad=True)  # a transposed view: not contiguous
    assert not leaf.data.flags.c_contiguous
    assert mg.gradcheck(lambda t: (t * t).sum(axis=0), [leaf])


def test_gradcheck_names_the_input_whose_gradient_is_wrong(float64):
    class WrongInSecond(mg.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, g):
            a, b = self.inputs
            return g * b, g * b  # the second should be g * a

    a = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = mg.tensor(np.array([3.0, -1.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 1\) \(shape \(2,\)\)"):
        mg.gradcheck(lambda a, b: WrongInSecond.apply(a, b), [a, b])

"""Helpers shared by the tests: random inputs, one-line gradient checks, PyTorch comparisons.

    check_grads(lambda x, w: F.conv2d(x, w), (2, 3, 5, 5), (4, 3, 3, 3))
    compare_with_torch(F.softplus, torch.nn.functional.softplus, random_array((3, 4)))
    compare_modules(nn.Linear(3, 2), torch.nn.Linear(3, 2).double(), random_array((4, 3)))

Values come from a NumPy generator seeded per call, so a failing case reproduces exactly.
The PyTorch helpers skip the calling test when torch is not installed.
"""
import numpy as np
import pytest
from hypothesis import assume, strategies as st

import minigan as mg

RTOL, ATOL = 1e-5, 1e-8  # "agree to 1e-5 relative" in float64; ATOL only absorbs exact zeros


# gradcheck nudges elements one by one, so its configurations are drawn within this budget of
# input (and weight) elements: every range is still reached, one axis at a time
ELEMENT_BUDGET = 96


@st.composite
def conv_cases(draw, transposed=False, budget=ELEMENT_BUDGET):
    """(x shape, weight shape, stride, padding, output_padding, dilation) of a valid conv:
    batch 1-4, channels 1-4, sizes 1-9, kernel 1-5, stride 1-3, padding 0-2, dilation 1-2,
    output_padding < max(stride, dilation). ``budget=None`` lifts the size budget."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if transposed:
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        out = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in
               zip((h, w), (kh, kw), stride, padding, output_padding, dilation)]
        assume(min(out) >= 1)
    else:
        output_padding = (0, 0)
        assume(all(n + 2 * p >= d * (k - 1) + 1 for n, k, p, d in zip((h, w), (kh, kw), padding, dilation)))
    budget = budget or 4 * 4 * 9 * 9
    per_image = max(1, budget // (h * w))
    c = draw(st.integers(1, min(4, per_image)))
    n = draw(st.integers(1, max(1, min(4, per_image // c))))
    o = draw(st.integers(1, max(1, min(4, budget // (c * kh * kw)))))
    weight = (c, o, kh, kw) if transposed else (o, c, kh, kw)
    return (n, c, h, w), weight, stride, padding, output_padding, dilation


def random_array(shape, seed=0, low=-1.0, high=1.0):
    """float64 values uniform in [low, high)."""
    return np.random.default_rng(seed).uniform(low, high, shape)


def random_tensor(shape, seed=0, low=-1.0, high=1.0, requires_grad=True):
    """A float64 minigan tensor of random values (a leaf that requires grad by default)."""
    return mg.tensor(random_array(shape, seed, low, high), requires_grad=requires_grad, dtype=mg.float64)


def _as_input(x, seed):
    return x if isinstance(x, mg.Tensor) else random_tensor(tuple(x), seed)


def check_grads(fn, *shapes_or_tensors, seed=0):
    """First and second derivatives of ``fn`` against finite differences (float64).

    Each argument is a shape (a random tensor requiring grad is made for it) or a Tensor
    (used as given: a Parameter, or a constant with requires_grad=False). Anything else fn
    needs, close over it in a lambda.
    """
    inputs = [_as_input(x, seed + i) for i, x in enumerate(shapes_or_tensors)]
    assert mg.gradcheck(fn, inputs)
    assert mg.gradgradcheck(fn, inputs)


def check_module_grads(module, *shapes_or_tensors, seed=0):
    """check_grads of a module with respect to its inputs and all its parameters."""
    inputs = [_as_input(x, seed + i) for i, x in enumerate(shapes_or_tensors)]
    params = list(module.parameters())
    n = len(inputs)
    check_grads(lambda *args: module(*args[:n]), *inputs, *params)


def assert_close(actual, expected, what="values", rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol,
                               err_msg=f"{what} differ from PyTorch's")


def _torch():
    return pytest.importorskip("torch")


def _compare_graphs(out_mg, out_th, leaves_mg, leaves_th, names, second_order, seed):
    """Forward values, vector-Jacobian products and (optionally) Hessian-vector products."""
    torch = _torch()
    assert_close(out_mg.numpy(), out_th.detach().numpy(), "outputs")
    v = random_array(out_mg.shape, seed + 100)
    grads_mg = mg.grad((out_mg * mg.tensor(v, dtype=out_mg.dtype)).sum(), leaves_mg,
                       create_graph=second_order, allow_unused=True)
    grads_th = torch.autograd.grad((out_th * torch.tensor(v, dtype=out_th.dtype)).sum(), leaves_th,
                                   create_graph=second_order, allow_unused=True)
    for name, leaf, g_mg, g_th in zip(names, leaves_mg, grads_mg, grads_th):
        zeros = np.zeros(leaf.shape)
        assert_close(zeros if g_mg is None else g_mg.numpy(),
                     zeros if g_th is None else g_th.detach().numpy(), f"gradients of {name}")
    if not second_order:
        return
    # second order: differentiate <grads, u> for random directions u, in both libraries
    total_mg, total_th = 0.0, 0.0
    for i, (g_mg, g_th) in enumerate(zip(grads_mg, grads_th)):
        u = random_array(g_mg.shape if g_mg is not None else g_th.shape, seed + 200 + i)
        if g_mg is not None and g_mg.requires_grad:
            total_mg = total_mg + (g_mg * mg.tensor(u, dtype=g_mg.dtype)).sum()
        if g_th is not None and g_th.requires_grad:
            total_th = total_th + (g_th * torch.tensor(u, dtype=g_th.dtype)).sum()
    hvp_mg = (mg.grad(total_mg, leaves_mg, allow_unused=True) if isinstance(total_mg, mg.Tensor)
              else [None] * len(leaves_mg))
    hvp_th = (torch.autograd.grad(total_th, leaves_th, allow_unused=True)
              if isinstance(total_th, torch.Tensor) else [None] * len(leaves_th))
    for name, leaf, h_mg, h_th in zip(names, leaves_mg, hvp_mg, hvp_th):
        zeros = np.zeros(leaf.shape)
        assert_close(zeros if h_mg is None else h_mg.numpy(),
                     zeros if h_th is None else h_th.detach().numpy(), f"second derivatives of {name}")


class Const:
    """Marks a floating array that compare_with_torch passes as a constant (no gradient)."""

    def __init__(self, array):
        self.array = np.asarray(array)


def _leaves(arrays, make):
    """Tensors for the arrays (floating ones differentiable unless wrapped in Const), and the
    positions of the differentiable ones."""
    tensors, wanted = [], []
    for i, a in enumerate(arrays):
        if isinstance(a, Const):
            tensors.append(make(a.array, False))
        else:
            tensors.append(make(a, a.dtype.kind == "f"))
            if a.dtype.kind == "f":
                wanted.append(i)
    return tensors, wanted


def compare_with_torch(mg_fn, torch_fn, *arrays, second_order=True, seed=0):
    """Call both functions on the same NumPy arrays (floating ones become differentiable leaves;
    integer ones and those wrapped in Const are constants) and compare outputs, first and
    second derivatives."""
    torch = _torch()
    leaves_mg, wanted = _leaves(arrays, lambda a, g: mg.tensor(a, requires_grad=g))
    leaves_th, _ = _leaves(arrays, lambda a, g: torch.tensor(a, requires_grad=g))
    out_mg, out_th = mg_fn(*leaves_mg), torch_fn(*leaves_th)
    _compare_graphs(out_mg, out_th, [leaves_mg[i] for i in wanted], [leaves_th[i] for i in wanted],
                    [f"input {i}" for i in wanted], second_order, seed)


def copy_torch_weights(mg_module, torch_module):
    """Load a PyTorch module's state dict into the minigan module (via NumPy)."""
    mg_module.load_state_dict({k: v.detach().cpu().numpy() for k, v in torch_module.state_dict().items()})


def compare_modules(mg_module, torch_module, *arrays, second_order=False, seed=0):
    """Give the minigan module PyTorch's weights, run both on the same inputs and compare the
    outputs and the gradients of every floating input and every parameter."""
    torch = _torch()
    copy_torch_weights(mg_module, torch_module)
    inputs_mg, wanted = _leaves(arrays, lambda a, g: mg.tensor(a, requires_grad=g))
    inputs_th, _ = _leaves(arrays, lambda a, g: torch.tensor(a, requires_grad=g))
    out_mg, out_th = mg_module(*inputs_mg), torch_module(*inputs_th)
    params_mg = dict(mg_module.named_parameters())
    params_th = dict(torch_module.named_parameters())
    assert list(params_mg) == list(params_th)
    names = [f"input {i}" for i in wanted] + list(params_mg)
    _compare_graphs(out_mg, out_th, [inputs_mg[i] for i in wanted] + list(params_mg.values()),
                    [inputs_th[i] for i in wanted] + list(params_th.values()), names,
                    second_order, seed)


def load_lesson(name):
    """Import lessons/<name>.py as a module (lesson files are scripts, not a package)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lessons", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"lesson_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

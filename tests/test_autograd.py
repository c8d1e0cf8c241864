"""The backward walk, grad(), second derivatives with closed forms, and the errors users hit."""
import numpy as np
import pytest

import minigan as mg


def test_second_derivative_of_tanh_matches_closed_form(float64):
    values = np.linspace(-2, 2, 9)
    x = mg.tensor(values, requires_grad=True)
    (dy,) = mg.grad(mg.tanh(x).sum(), x, create_graph=True)
    (d2y,) = mg.grad(dy.sum(), x)
    t = np.tanh(values)
    assert np.allclose(dy.numpy(), 1 - t**2, rtol=1e-12)
    assert np.allclose(d2y.numpy(), -2 * t * (1 - t**2), rtol=1e-12)


def test_hessian_vector_product_matches_closed_form(float64):
    # f(x) = sum(x^3) / 3 + (a . x)^2  ->  H = diag(2x) + 2 a a^T
    rng = np.random.default_rng(0)
    x0, a0, v0 = rng.normal(size=(3, 5))
    x, a, v = mg.tensor(x0, requires_grad=True), mg.tensor(a0), mg.tensor(v0)
    f = (x ** 3).sum() / 3 + (a * x).sum() ** 2
    (g,) = mg.grad(f, x, create_graph=True)
    (hv,) = mg.grad((g * v).sum(), x)
    expected = (np.diag(2 * x0) + 2 * np.outer(a0, a0)) @ v0
    assert np.allclose(hv.numpy(), expected, rtol=1e-12)


def test_gradients_accumulate_across_backward_calls():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    assert x.grad.numpy().tolist() == [2 + 3, 4 + 3]


def test_backward_twice_on_one_graph_gives_exactly_twice_the_gradient():
    x = mg.tensor([0.5, -1.5, 2.0], requires_grad=True)
    h = mg.tanh(x * x)          # inner nodes must not keep stale gradients between calls
    y = (h * h + h).sum()
    y.backward(retain_graph=True)  # a second backward through the same graph needs it kept
    once = x.grad.numpy().copy()
    y.backward()
    assert np.array_equal(x.grad.numpy(), 2 * once)
    assert h.grad is None


def test_a_chain_of_ten_thousand_ops_backpropagates():
    x = mg.tensor([1.0], requires_grad=True, dtype="float64")
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert np.isclose(x.grad.item(), 1.0001 ** 10_000, rtol=1e-9)


def test_grad_leaves_dot_grad_untouched_and_reaches_inner_tensors():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    gx, gh = mg.grad(y, [x, h])
    assert x.grad is None
    assert gh.numpy().tolist() == [6.0, 12.0] and gx.numpy().tolist() == [18.0, 36.0]


def test_grad_of_unused_input():
    x, z = mg.tensor([1.0], requires_grad=True), mg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1 .* was not used"):
        mg.grad((x * 2).sum(), [x, z])
    assert mg.grad((x * 2).sum(), [x, z], allow_unused=True)[1] is None


def test_grad_with_grad_outputs():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (g,) = mg.grad(x * x, x, grad_outputs=mg.tensor([1.0, 10.0]))
    assert g.numpy().tolist() == [2.0, 40.0]


def test_gradient_penalty_style_double_backward_reaches_weights(float64):
    w = mg.tensor(np.array([[0.3, -0.7], [1.1, 0.4]]), requires_grad=True)
    x = mg.tensor(np.array([[0.5, -0.2]]), requires_grad=True)
    out = mg.tanh(x @ w).sum()
    (gx,) = mg.grad(out, x, create_graph=True)
    penalty = ((gx * gx).sum().sqrt() - 1) ** 2
    penalty.backward()
    assert w.grad is not None and np.all(np.isfinite(w.grad.numpy()))

    def penalty_of(w):
        (g,) = mg.grad(mg.tanh(x @ w).sum(), x, create_graph=True)
        return ((g ** 2).sum().sqrt() - 1) ** 2

    assert mg.gradcheck(penalty_of, [w])


def test_no_grad_records_nothing():
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.node is None


def test_nodes_carry_the_label_of_their_op():
    x = mg.tensor([1.0], requires_grad=True)
    assert (x * 2).node.label == "mul" and mg.tanh(x).node.label == "tanh"


def test_backward_on_non_scalar_without_grad_is_refused():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element output, got shape \(2,\)"):
        (x * 2).backward()


def test_backward_with_misshaped_grad_is_refused():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad has shape \(3,\) but the output has shape \(2,\)"):
        (x * 2).backward(mg.ones(3))


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        mg.zeros(2, 3) @ mg.zeros(4, 5)


def test_grad_of_a_tensor_that_does_not_require_grad():
    x = mg.tensor([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward()
    with pytest.raises(RuntimeError, match="input 0 .* does not require grad"):
        mg.grad((x * 2).sum(), x)


def test_mixing_dtypes_is_refused_with_both_names():
    with pytest.raises(TypeError, match="float32 and float64"):
        mg.ones(2) + mg.ones(2, dtype="float64")


def test_python_numbers_take_the_tensor_dtype():
    assert (mg.ones(2) * 0.5).dtype == mg.float32
    assert (2.0 ** mg.ones(2, dtype="float64")).dtype == mg.float64


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating tensors"):
        mg.tensor([1, 2], requires_grad=True)


def test_tensor_basics():
    t = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4 and t.dtype == mg.float32
    assert mg.tensor([1, 2]).dtype == mg.int64
    assert (t > 2).numpy().tolist() == [[False, False], [True, True]]
    assert t[1, 0].item() == 3.0
    assert t.detach().node is None
    assert "tensor(" in repr(t)


def test_tensor_copies_its_data_like_torch_tensor():
    import numpy as np

    host = np.zeros(3, dtype=np.float32)
    t = mg.tensor(host, requires_grad=True)
    t.data += 1
    assert host.tolist() == [0.0, 0.0, 0.0]


def test_abs_builtin_and_retain_graph_are_accepted_like_pytorch():
    x = mg.tensor([-2.0, 3.0], requires_grad=True)
    y = abs(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.numpy().tolist() == [-2.0, 2.0]
    (g,) = mg.grad(abs(x).sum(), x, retain_graph=True)
    assert g.numpy().tolist() == [-1.0, 1.0]

"""Optimizers: trajectories against PyTorch for every option (AdamW, amsgrad, maximize
included), closed-form single steps, state dict round trips, and the contract around gradients
(skipped when None, never mutated) and bad hyper-parameters."""
import numpy as np
import pytest

import minigan as mg
from minigan import optim

RNG = np.random.default_rng(7)
X = RNG.standard_normal((8, 4))
Y = RNG.standard_normal((8, 3))
W0 = RNG.standard_normal((3, 4))
B0 = RNG.standard_normal(3)
for _fixed in (X, Y, W0, B0):
    _fixed.flags.writeable = False  # an optimizer that updated them through a shared array fails

# (optimizer name, keyword arguments): the same call is made on minigan.optim and torch.optim
CASES = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.01, momentum=0.8, weight_decay=0.1)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.0, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.3)),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.1, eps=1e-6)),
    ("AdamW", dict(lr=0.05, weight_decay=0)),
    ("SGD", dict(lr=0.01, maximize=True)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
]
CASE_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CASES]


def loss_fn(w, b, x, y):
    """Half the squared error of a small linear map: a deterministic loss both engines can run."""
    r = x @ w.T + b - y
    return (r * r).sum() * 0.5


def minigan_trajectory(name, kwargs, steps, dtype):
    # copies: mg.tensor shares a NumPy array of its own dtype, and steps update in place
    w = mg.tensor(W0.copy(), dtype=dtype, requires_grad=True)
    b = mg.tensor(B0.copy(), dtype=dtype, requires_grad=True)
    x, y = mg.tensor(X, dtype=dtype), mg.tensor(Y, dtype=dtype)
    opt = getattr(optim, name)([w, b], **kwargs)
    path = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w, b, x, y).backward()
        opt.step()
        path.append((w.numpy().copy(), b.numpy().copy()))
    return path


def torch_trajectory(name, kwargs, steps, dtype):
    torch = pytest.importorskip("torch")
    tdtype = getattr(torch, dtype)
    w = torch.tensor(W0, dtype=tdtype, requires_grad=True)
    b = torch.tensor(B0, dtype=tdtype, requires_grad=True)
    x, y = torch.tensor(X, dtype=tdtype), torch.tensor(Y, dtype=tdtype)
    opt = getattr(torch.optim, name)([w, b], **kwargs)
    path = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(w, b, x, y).backward()
        opt.step()
        path.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return path


def assert_same_path(ours, theirs, rtol, atol):
    for step, (mine, ref) in enumerate(zip(ours, theirs), start=1):
        for got, want in zip(mine, ref):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"step {step}")


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_matches_torch_float64(name, kwargs):
    theirs = torch_trajectory(name, kwargs, 20, "float64")
    ours = minigan_trajectory(name, kwargs, 20, "float64")
    assert_same_path(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_matches_torch_float32(name, kwargs):
    """In float32 both engines are fed the same gradients, so only the update arithmetic is
    compared (each engine's own float32 gradients differ in the last bits, and near a minimum
    Adam's m / sqrt(v) magnifies that). Elements pass through zero, so the error is measured
    against the largest entry of each parameter."""
    torch = pytest.importorskip("torch")
    grads = np.random.default_rng(1)
    ours = [mg.tensor(W0.copy(), dtype="float32", requires_grad=True),
            mg.tensor(B0.copy(), dtype="float32", requires_grad=True)]
    theirs = [torch.tensor(W0, dtype=torch.float32, requires_grad=True),
              torch.tensor(B0, dtype=torch.float32, requires_grad=True)]
    opt, ref = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(1, 21):
        for p, q in zip(ours, theirs):
            g = grads.standard_normal(p.shape).astype(np.float32)
            p.grad, q.grad = mg.tensor(g), torch.tensor(g)
        opt.step()
        ref.step()
        for p, q in zip(ours, theirs):
            want = q.detach().numpy()
            assert p.dtype == np.float32
            error = np.max(np.abs(p.numpy() - want)) / np.max(np.abs(want))
            assert error < 1e-6, f"step {step}: relative error {error:.2e}"


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_is_bit_identical(name, kwargs):
    straight = minigan_trajectory(name, kwargs, 10, "float32")

    w = mg.tensor(W0.copy(), dtype="float32", requires_grad=True)
    b = mg.tensor(B0.copy(), dtype="float32", requires_grad=True)
    x, y = mg.tensor(X, dtype="float32"), mg.tensor(Y, dtype="float32")

    def run(opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(w, b, x, y).backward()
            opt.step()

    first = getattr(optim, name)([w, b], **kwargs)
    run(first, 5)
    saved = first.state_dict()
    # what a checkpoint file gives back: plain NumPy arrays
    saved["state"] = {i: {k: v if k == "step" else v.numpy() for k, v in entry.items()}
                      for i, entry in saved["state"].items()}
    run(first, 1)  # later steps must not leak into the saved copy
    w.data[...] = mg.tensor(straight[4][0]).data
    b.data[...] = mg.tensor(straight[4][1]).data

    second = getattr(optim, name)([w, b], lr=123.0)
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == kwargs["lr"]
    run(second, 5)
    assert np.array_equal(w.numpy(), straight[-1][0])
    assert np.array_equal(b.numpy(), straight[-1][1])


def test_state_dict_layout():
    a = mg.zeros(2, 3, requires_grad=True)
    b = mg.zeros(3, requires_grad=True)
    c = mg.zeros(4, requires_grad=True)
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.1}], betas=(0.5, 0.9))
    a.grad, c.grad = mg.ones(2, 3), mg.ones(4)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert [g["lr"] for g in sd["param_groups"]] == [1e-3, 0.1]
    assert sd["param_groups"][0]["betas"] == (0.5, 0.9)
    assert sorted(sd["state"]) == [0, 2]  # b had no gradient: no state
    assert sd["state"][0]["step"] == 1
    assert isinstance(sd["state"][0]["exp_avg"], mg.Tensor)
    assert sd["state"][2]["exp_avg_sq"].shape == (4,)


def test_load_state_dict_rejects_mismatches():
    a = mg.zeros(2, 3, requires_grad=True)
    b = mg.zeros(3, requires_grad=True)
    opt = optim.Adam([a, b])
    a.grad, b.grad = mg.ones(2, 3), mg.ones(3)
    opt.step()
    sd = opt.state_dict()

    with pytest.raises(ValueError, match="2 parameter"):
        optim.Adam([a]).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter group"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    other = optim.Adam([mg.zeros(3, 2, requires_grad=True), b])
    with pytest.raises(ValueError, match=r"'exp_avg'.*\(2, 3\).*\(3, 2\)"):
        other.load_state_dict(sd)


def test_adam_single_step_closed_form():
    p0 = np.array([1.0, -2.0, 0.5])
    p = mg.tensor(p0.copy(), requires_grad=True)
    opt = optim.Adam([p], lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.5)
    (p * p * p).sum().backward()  # g = 3 p^2
    opt.step()
    g = 3 * p0**2 + 0.5 * p0
    m, v = (1 - 0.8) * g, (1 - 0.9) * g**2
    m_hat, v_hat = m / (1 - 0.8), v / (1 - 0.9)
    # PyTorch puts eps after undoing v's bias, not after the square root of the raw v
    expected = p0 - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-3)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-14)
    assert opt.state[p]["step"] == 1


def test_sgd_momentum_two_steps_closed_form():
    p0 = np.array([1.0, -2.0, 0.5])
    p = mg.tensor(p0.copy(), requires_grad=True)
    lr, mu, damp = 0.1, 0.9, 0.25
    opt = optim.SGD([p], lr=lr, momentum=mu, dampening=damp)
    for _ in range(2):
        opt.zero_grad()
        (p * p).sum().backward()  # g = 2p
        opt.step()
    g1 = 2 * p0
    p1 = p0 - lr * g1  # the first buffer is the gradient itself, undampened
    buf = mu * g1 + (1 - damp) * 2 * p1
    np.testing.assert_allclose(p.numpy(), p1 - lr * buf, rtol=1e-14)


def test_param_groups_use_their_own_hyper_parameters():
    a = mg.tensor([1.0], requires_grad=True)
    b = mg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = mg.tensor([1.0]), mg.tensor([1.0])
    opt.step()
    assert a.numpy()[0] == pytest.approx(0.9)
    assert b.numpy()[0] == pytest.approx(0.5)


def test_zero_grad():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad()
    assert p.grad is None
    (p * p).sum().backward()
    old = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is not old and np.array_equal(p.grad.numpy(), [0.0, 0.0])
    assert np.array_equal(old.numpy(), [2.0, 4.0])


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_params_without_grad_are_skipped(name, kwargs):
    used = mg.tensor([1.0, -1.0], requires_grad=True)
    unused = mg.tensor([3.0, 4.0], requires_grad=True)
    frozen = mg.tensor([5.0])  # does not require grad at all
    opt = getattr(optim, name)([used, unused, frozen], **kwargs)
    for _ in range(3):
        opt.zero_grad()
        (used * used).sum().backward()
        opt.step()
    assert np.array_equal(unused.numpy(), [3.0, 4.0])
    assert np.array_equal(frozen.numpy(), [5.0])
    assert unused not in opt.state and frozen not in opt.state
    assert not np.array_equal(used.numpy(), [1.0, -1.0])


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_gradients_are_never_mutated(name, kwargs):
    a = mg.tensor([1.0, -2.0], requires_grad=True)
    b = mg.tensor([0.5, 3.0], requires_grad=True)
    shared = mg.tensor([0.25, -0.75])
    a.grad = b.grad = shared  # one gradient array behind two parameters
    opt = getattr(optim, name)([a, b], **kwargs)
    for _ in range(3):
        opt.step()
    assert np.array_equal(shared.numpy(), np.array([0.25, -0.75], dtype=np.float32))


def test_step_records_no_graph_and_keeps_dtype():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    data = p.data
    opt = optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.data is data and p.is_leaf and p.dtype == np.float32
    assert opt.state[p]["exp_avg"].dtype == np.float32


def test_closure_is_called_and_its_loss_returned():
    p = mg.tensor([2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0 and p.numpy()[0] == 1.0


@pytest.mark.parametrize("make, value", [
    (lambda p: optim.SGD(p, lr=-0.1), "-0.1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "-0.5"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-4), "-0.0001"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "momentum=0"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (lambda p: optim.Adam(p, lr=-1e-3), "-0.001"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "beta1: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "beta2: -0.1"),
    (lambda p: optim.Adam(p, eps=-1e-8), "-1e-08"),
    (lambda p: optim.RMSprop(p, alpha=-0.9), "-0.9"),
    (lambda p: optim.RMSprop(p, momentum=-0.1), "-0.1"),
    (lambda p: optim.Adam([{"params": p[:1]}, {"params": p[1:], "lr": -2.0}]), "-2.0"),
    (lambda p: optim.AdamW(p, weight_decay=float("nan")), "AdamW: invalid weight_decay: nan"),
    (lambda p: optim.Adam(p, lr=float("inf")), "Adam: invalid lr: inf"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=float("-inf")), "SGD: invalid momentum: -inf"),
    (lambda p: optim.AdamW(p, betas=(0.9, float("nan"))), "AdamW: invalid beta2: nan"),
    (lambda p: optim.AdamW(p, betas=(0.9,)), r"AdamW: invalid betas: (0.9,)"),
    (lambda p: optim.RMSprop(p, alpha=1.5), "RMSprop: invalid alpha: 1.5"),
    (lambda p: optim.RMSprop(p, eps=float("nan")), "RMSprop: invalid eps: nan"),
])
def test_bad_hyper_parameters_raise(make, value):
    params = [mg.zeros(2, requires_grad=True), mg.zeros(1, requires_grad=True)]
    with pytest.raises(ValueError, match=value.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        make(params)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr="0.1"), "SGD: invalid lr: '0.1' (expected a number)"),
    (lambda p: optim.Adam(p, eps=None), "Adam: invalid eps: None (expected a number)"),
    (lambda p: optim.Adam(p, lr=True), "Adam: invalid lr: True (expected a number)"),
    (lambda p: optim.AdamW(p, amsgrad="yes"), "AdamW: invalid amsgrad: 'yes' (expected True or False)"),
    (lambda p: optim.RMSprop(p, maximize=None), "RMSprop: invalid maximize: None"),
])
def test_hyper_parameters_of_the_wrong_type_raise(make, message):
    with pytest.raises(TypeError) as error:
        make([mg.zeros(2, requires_grad=True)])
    assert message in str(error.value)


def test_bad_params_raise():
    p = mg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="empty"):
        optim.SGD(iter([]), lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([p, p])
    with pytest.raises(ValueError, match="leaf"):
        optim.Adam([p * 2])
    with pytest.raises(TypeError, match="ndarray"):
        optim.Adam([np.zeros(2)])


# --- AdamW, amsgrad, maximize: closed forms ---------------------------------------------------
def test_adamw_single_step_closed_form():
    """The decay multiplies the parameter before the Adam step and never enters the moments."""
    p0 = np.array([1.0, -2.0, 0.5])
    p = mg.tensor(p0.copy(), requires_grad=True)
    opt = optim.AdamW([p], lr=0.1, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.5)
    (p * p * p).sum().backward()  # g = 3 p^2
    opt.step()
    g = 3 * p0**2
    m_hat, v_hat = g, g**2  # one step: the bias corrections undo (1 - beta) exactly
    expected = p0 * (1 - 0.1 * 0.5) - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-3)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-14)
    np.testing.assert_allclose(opt.state[p]["exp_avg"], 0.2 * g, rtol=1e-14)


def test_adamw_defaults_are_pytorchs():
    opt = optim.AdamW([mg.zeros(2, requires_grad=True)])
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 0.01)
    assert group["amsgrad"] is False and group["maximize"] is False


def test_amsgrad_divides_by_the_largest_second_moment_seen():
    """A large gradient then a small one: v falls, but the step is scaled by the larger v."""
    b1, b2, lr, eps = 0.5, 0.5, 0.1, 1e-8
    p = mg.tensor([0.0], requires_grad=True)
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, amsgrad=True)
    for g in (4.0, 1.0):
        p.grad = mg.tensor([g], dtype=p.dtype)
        before = p.numpy()[0]
        opt.step()
    m = b1 * (1 - b1) * 4.0 + (1 - b1) * 1.0
    v = b2 * (1 - b2) * 16.0 + (1 - b2) * 1.0
    v_max = max((1 - b2) * 16.0, v)  # 8.0 from step 1 against 4.5 now
    expected = before - lr / (1 - b1**2) * m / (np.sqrt(v_max) / np.sqrt(1 - b2**2) + eps)
    assert opt.state[p]["max_exp_avg_sq"][0] == v_max and opt.state[p]["exp_avg_sq"][0] == v
    np.testing.assert_allclose(p.numpy()[0], expected, rtol=1e-6)


@pytest.mark.parametrize("name, kwargs", [(n, kw) for n, kw in CASES if not kw.get("maximize")],
                         ids=[i for i, (_, kw) in zip(CASE_IDS, CASES) if not kw.get("maximize")])
def test_maximize_is_descent_on_the_negated_objective(name, kwargs):
    """maximize=True on f moves the parameters exactly as the default does on -f."""
    climbed = mg.tensor(W0.copy(), dtype="float64", requires_grad=True)
    descended = mg.tensor(W0.copy(), dtype="float64", requires_grad=True)
    up = getattr(optim, name)([climbed], maximize=True, **kwargs)
    down = getattr(optim, name)([descended], **kwargs)
    for _ in range(5):
        for p, opt, sign in ((climbed, up, -1.0), (descended, down, 1.0)):
            opt.zero_grad()
            (sign * (p * p * p).sum()).backward()
            opt.step()
    assert np.array_equal(climbed.numpy(), descended.numpy())
    assert not np.array_equal(climbed.numpy(), W0)


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_state_names_are_pytorchs(name, kwargs):
    """Each parameter's state has the entries PyTorch's optimizer keeps; SGD's also counts its
    steps, which PyTorch's SGD does not."""
    torch = pytest.importorskip("torch")
    ours, theirs = mg.tensor(W0.copy(), requires_grad=True), torch.tensor(W0, requires_grad=True)
    opt, ref = getattr(optim, name)([ours], **kwargs), getattr(torch.optim, name)([theirs], **kwargs)
    ours.grad, theirs.grad = mg.tensor(W0.copy()), torch.tensor(W0)
    opt.step()
    ref.step()
    expected = {k for k, v in ref.state_dict()["state"].get(0, {}).items() if v is not None}
    expected |= {"step"} if name == "SGD" else set()
    assert set(opt.state_dict()["state"][0]) == expected
    assert set(opt.param_groups[0]) <= set(ref.param_groups[0])


@pytest.mark.parametrize("name, kwargs", CASES,
                         ids=CASE_IDS)
def test_pytorch_state_dict_loads_and_continues_the_same(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = mg.tensor(W0.copy(), dtype="float64", requires_grad=True)
    theirs = torch.tensor(W0, requires_grad=True)
    ref = getattr(torch.optim, name)([theirs], **kwargs)
    grads = np.random.default_rng(3).standard_normal((6,) + W0.shape)
    for g in grads[:3]:
        theirs.grad = torch.tensor(g)
        ref.step()
    ours.data[...] = theirs.detach().numpy()
    opt = getattr(optim, name)([ours], lr=5.0)
    opt.load_state_dict(ref.state_dict())
    for g in grads[3:]:
        theirs.grad, ours.grad = torch.tensor(g), mg.tensor(g)
        ref.step()
        opt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_state_dict_without_the_newer_options_loads():
    """A state dict saved before amsgrad/maximize existed keeps this optimizer's values."""
    p = mg.zeros(2, requires_grad=True)
    opt = optim.Adam([p], amsgrad=True, maximize=True)
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        del group["amsgrad"], group["maximize"]
    saved["param_groups"][0]["lr"] = 0.5
    opt.load_state_dict(saved)
    group = opt.param_groups[0]
    assert group["lr"] == 0.5 and group["amsgrad"] is True and group["maximize"] is True


def test_load_state_dict_is_all_or_nothing():
    a, b = mg.zeros(2, requires_grad=True), mg.zeros(1, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    saved = opt.state_dict()
    saved["param_groups"][0]["lr"] = 0.5
    saved["param_groups"][1]["lr"] = float("nan")
    with pytest.raises(ValueError, match="SGD: invalid lr: nan"):
        opt.load_state_dict(saved)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.1]

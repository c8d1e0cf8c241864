"""Learning-rate schedulers: the sequence of rates equals PyTorch's number for number (every
scheduler, several groups, a resumed last_epoch), state dicts have PyTorch's keys and load both
ways, and a run checkpointed with its scheduler resumes bit for bit."""
import math

import numpy as np
import pytest

import minigan as mg
from minigan import io, optim
from minigan.optim import lr_scheduler

# (scheduler name, keyword arguments): the same call is made on minigan and torch
CASES = [
    ("StepLR", dict(step_size=3)),
    ("StepLR", dict(step_size=4, gamma=0.37)),
    ("StepLR", dict(step_size=1, gamma=1.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("ExponentialLR", dict(gamma=0.31)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 1.0 / (epoch + 1))),
    ("LambdaLR", dict(lr_lambda=[lambda epoch: 0.95**epoch, lambda epoch: min(1.0, (epoch + 1) / 5)])),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.003)),
    ("CosineAnnealingLR", dict(T_max=1, eta_min=0.01)),
]
CASE_IDS = [f"{name}-{'-'.join(k for k in kw)}-{i}" for i, (name, kw) in enumerate(CASES)]
STEPS = 40  # several cosine periods: the recursion's special case (epoch - 1 = T_max) is reached


def make(lib, name, kwargs, last_epoch=-1, initial=None):
    """An SGD over two parameter groups (lr 0.1 and 0.25) and its scheduler, in ``lib``."""
    params = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    opt = lib.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.25}], lr=0.1)
    if initial is not None:
        for group, lr in zip(opt.param_groups, initial):
            group["initial_lr"] = lr
    return opt, getattr(lib.optim.lr_scheduler, name)(opt, last_epoch=last_epoch, **kwargs)


def rates(opt, sched, steps):
    """get_last_lr() after construction and after each step, checked against the optimizer."""
    seen = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        sched.step()
        seen.append(sched.get_last_lr())
        assert seen[-1] == [group["lr"] for group in opt.param_groups]
    return seen


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that these optimizers never had gradients
        yield torch


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_rates_equal_pytorchs_exactly(torch, name, kwargs):
    ours = rates(*make(mg, name, kwargs), STEPS)
    theirs = rates(*make(torch, name, kwargs), STEPS)
    assert ours == theirs  # the same float operations in the same order: equal, not close


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_continuing_from_last_epoch_equals_pytorch(torch, name, kwargs):
    initial = [0.2, 0.05]
    ours = rates(*make(mg, name, kwargs, last_epoch=6, initial=initial), 15)
    theirs = rates(*make(torch, name, kwargs, last_epoch=6, initial=initial), 15)
    assert ours == theirs


def test_closed_forms():
    """The recursive rates follow the closed forms in the docstrings (to rounding)."""
    for name, kwargs, closed in [
        ("StepLR", dict(step_size=3, gamma=0.5), lambda base, e: base * 0.5 ** (e // 3)),
        ("ExponentialLR", dict(gamma=0.9), lambda base, e: base * 0.9**e),
        ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01),
         lambda base, e: 0.01 + (base - 0.01) * (1 + math.cos(math.pi * e / 6)) / 2),
    ]:
        seen = rates(*make(mg, name, kwargs), 30)
        for epoch, lrs in enumerate(seen):
            np.testing.assert_allclose(lrs, [closed(0.1, epoch), closed(0.25, epoch)], rtol=1e-12,
                                       atol=1e-15, err_msg=f"{name} at epoch {epoch}")


def test_construction_records_initial_lr_and_steps_to_epoch_0():
    opt, sched = make(mg, "LambdaLR", dict(lr_lambda=lambda epoch: 0.5))
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.25]
    assert sched.last_epoch == 0 and sched.base_lrs == [0.1, 0.25]
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.125]
    listed = sched.get_last_lr()
    listed[0] = 99.0
    assert sched.get_last_lr() == [0.05, 0.125]  # a copy


def test_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match=r"param_groups\[0\] has no 'initial_lr'"):
        make(mg, "StepLR", dict(step_size=2), last_epoch=3)


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_state_dict_keys_are_pytorchs(torch, name, kwargs):
    _, ours = make(mg, name, kwargs)
    _, theirs = make(torch, name, kwargs)
    assert set(ours.state_dict()) == set(theirs.state_dict())


@pytest.mark.parametrize("name, kwargs", CASES, ids=CASE_IDS)
def test_state_dicts_load_both_ways(torch, name, kwargs):
    """Five steps in one library, the state moved to the other, ten more steps there: the
    rates equal an uninterrupted run's. The optimizer's rates move with it, as they would
    with the optimizer's own state dict."""
    straight = rates(*make(torch, name, kwargs), 15)
    for first, second in ((torch, mg), (mg, torch)):
        opt, sched = make(first, name, kwargs)
        rates(opt, sched, 5)
        state = sched.state_dict()
        lrs = [(g["lr"], g["initial_lr"]) for g in opt.param_groups]
        opt2, sched2 = make(second, name, kwargs)
        for group, (lr, initial) in zip(opt2.param_groups, lrs):
            group["lr"], group["initial_lr"] = lr, initial
        sched2.load_state_dict(state)
        assert sched2.get_last_lr() == straight[5] and sched2.last_epoch == 5
        assert rates(opt2, sched2, 10)[1:] == straight[6:], f"{first.__name__} -> {second.__name__}"


def train(steps, make_scheduler, start=None, checkpoint=None, restore_scheduler=True):
    """Adam on a small regression with a scheduler; returns the parameters and the last rates.
    With ``start`` the run restores ``start``'s checkpoint first; with ``checkpoint`` it writes
    one (optimizer and scheduler under the optimizers mapping) after ``steps`` steps."""
    mg.manual_seed(0)
    x, y = mg.randn(16, 3), mg.randn(16, 1)
    model = mg.nn.Linear(3, 1)
    opt = optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
    sched = make_scheduler(opt)
    done = 0
    if start is not None:
        restored = {"opt": opt, "sched": sched} if restore_scheduler else {"opt": opt}
        done, _, _ = io.load_checkpoint(start, models={"model": model}, optimizers=restored)
    for _ in range(done, steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        sched.step()
    if checkpoint is not None:
        io.save_checkpoint(checkpoint, models={"model": model},
                           optimizers={"opt": opt, "sched": sched}, step=steps, history={})
    return [p.numpy().copy() for p in model.parameters()], sched.get_last_lr(), sched.last_epoch


SCHEDULERS = {
    "StepLR": lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "ExponentialLR": lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.8),
    "LambdaLR": lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch) ** 0.5),
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-3),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_checkpointed_run_resumes_bit_for_bit(tmp_path, name):
    straight = train(12, SCHEDULERS[name])
    path = tmp_path / "checkpoint.npz"
    train(5, SCHEDULERS[name], checkpoint=path)
    resumed = train(12, SCHEDULERS[name], start=path)
    assert resumed[1:] == straight[1:]
    for ours, theirs in zip(resumed[0], straight[0]):
        assert np.array_equal(ours, theirs)
    # the scheduler's state is what made this work: restored without it, the run goes elsewhere
    forgetful = train(12, SCHEDULERS[name], start=path, restore_scheduler=False)
    assert forgetful[1:] != straight[1:]


def test_scheduler_state_survives_io_save(tmp_path):
    _, sched = make(mg, "CosineAnnealingLR", dict(T_max=5, eta_min=0.003))
    for _ in range(3):
        sched.step()
    io.save({"sched": sched.state_dict()}, tmp_path / "state.npz")
    loaded = io.load(tmp_path / "state.npz")["sched"]
    assert loaded == sched.state_dict()


def test_a_bad_scheduler_state_leaves_the_whole_checkpoint_unloaded(tmp_path):
    path = tmp_path / "checkpoint.npz"
    train(5, SCHEDULERS["StepLR"], checkpoint=path)
    model = mg.nn.Linear(3, 1)
    before = [p.numpy().copy() for p in model.parameters()]
    opt = optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
    other = lr_scheduler.ExponentialLR(opt, gamma=0.5)  # not the scheduler that was saved
    with pytest.raises(ValueError, match="ExponentialLR.load_state_dict"):
        io.load_checkpoint(path, models={"model": model}, optimizers={"opt": opt, "sched": other})
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))
    assert opt.state == {} and opt.param_groups[0]["lr"] == 0.05


def test_lambda_lr_saves_no_functions():
    _, sched = make(mg, "LambdaLR", dict(lr_lambda=lambda epoch: 0.5**epoch))
    state = sched.state_dict()
    assert state["lr_lambdas"] == [None, None]
    with pytest.raises(ValueError, match="lr_lambdas"):
        sched.load_state_dict(dict(state, lr_lambdas=[{"factor": 2}, None]))


def test_load_state_dict_checks_keys_and_groups():
    _, sched = make(mg, "StepLR", dict(step_size=2))
    state = sched.state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['gamma'\]"):
        sched.load_state_dict({k: v for k, v in state.items() if k != "gamma"})
    with pytest.raises(ValueError, match=r"unexpected keys \['T_max'\]"):
        sched.load_state_dict(dict(state, T_max=3))
    with pytest.raises(ValueError, match="base_lrs has 1 value"):
        sched.load_state_dict(dict(state, base_lrs=[0.1]))
    with pytest.raises(ValueError, match="StepLR: invalid step_size: 0"):
        sched.load_state_dict(dict(state, step_size=0))
    assert sched.state_dict() == state  # nothing changed by the failed loads


@pytest.mark.parametrize("build, message", [
    (lambda opt: lr_scheduler.StepLR(opt, step_size=0), "StepLR: invalid step_size: 0"),
    (lambda opt: lr_scheduler.StepLR(opt, step_size=2.5), "StepLR: invalid step_size: 2.5"),
    (lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=float("nan")), "StepLR: invalid gamma: nan"),
    (lambda opt: lr_scheduler.ExponentialLR(opt, gamma=-0.5), "ExponentialLR: invalid gamma: -0.5"),
    (lambda opt: lr_scheduler.ExponentialLR(opt, gamma=float("inf")), "ExponentialLR: invalid gamma: inf"),
    (lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=0), "CosineAnnealingLR: invalid T_max: 0"),
    (lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=-1.0),
     "CosineAnnealingLR: invalid eta_min: -1.0"),
    (lambda opt: lr_scheduler.LambdaLR(opt, [lambda e: 1.0]), "expected 2 lr_lambdas"),
    (lambda opt: lr_scheduler.StepLR(opt, step_size=2, last_epoch=-2), "invalid last_epoch: -2"),
    (lambda opt: lr_scheduler.LambdaLR(opt, lambda e: float("nan")),
     "LambdaLR: the learning rate of group 0 at epoch 0 would be nan"),
])
def test_bad_arguments_raise(build, message):
    opt, _ = make(mg, "StepLR", dict(step_size=1))
    with pytest.raises(ValueError) as error:
        build(opt)
    assert message in str(error.value)


def test_a_non_finite_rate_stops_the_schedule_without_advancing():
    opt, sched = make(mg, "LambdaLR", dict(lr_lambda=lambda epoch: 1.0 if epoch < 2 else -1.0))
    sched.step()
    with pytest.raises(ValueError, match="epoch 2 would be -0.1"):
        sched.step()
    assert sched.last_epoch == 1 and [g["lr"] for g in opt.param_groups] == [0.1, 0.25]
    assert sched.state_dict()["_step_count"] == 2

    def failing(epoch):
        raise ZeroDivisionError("the learner's function")

    sched.lr_lambdas = [failing, failing]
    with pytest.raises(ZeroDivisionError):
        sched.step()
    assert sched.last_epoch == 1


def test_type_errors():
    with pytest.raises(TypeError, match="expected an Optimizer"):
        lr_scheduler.StepLR([mg.zeros(1, requires_grad=True)], step_size=1)
    opt, _ = make(mg, "StepLR", dict(step_size=1))
    with pytest.raises(TypeError, match="callable"):
        lr_scheduler.LambdaLR(opt, 0.5)

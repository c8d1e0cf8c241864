"""Losses: l1_loss, smooth_l1_loss, kl_div, and nll_loss/cross_entropy's ignore_index and
label_smoothing against finite differences (first and second derivatives, float64, drawn
shapes and options) and against PyTorch; every loss module against torch.nn (values,
gradients, second derivatives), with PyTorch's state_dict keys, loaded both ways."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigan as mg
from minigan import functional as F
from minigan import nn
from helpers import Const, check_grads, compare_with_torch, random_array, random_tensor

pytestmark = [pytest.mark.usefixtures("float64"),
              pytest.mark.filterwarnings("ignore:reduction.*'mean' divides:UserWarning")]  # torch's kl_div

seeds = st.integers(0, 2**16)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
REDUCTIONS = ["mean", "sum", "none"]


def probabilities(shape, seed, axis=-1):
    """Rows of positive probabilities summing to 1 along ``axis``."""
    p = np.random.default_rng(seed).uniform(0.05, 1.0, shape)
    return p / p.sum(axis=axis, keepdims=True)


def labels(shape, classes, seed=0, ignored=()):
    """Class indices, with some positions set to ignore_index values."""
    target = np.random.default_rng(seed).integers(0, classes, shape)
    for position, value in ignored:
        target[position] = value
    return target


# --- derivatives against finite differences ----------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=shapes, seed=seeds)
def test_l1_loss_derivatives(reduction, shape, seed):
    check_grads(lambda x, t: F.l1_loss(x, t, reduction=reduction), shape, shape, seed=seed)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=shapes, beta=st.sampled_from([0.0, 0.3, 1.0, 2.5]), seed=seeds)
def test_smooth_l1_loss_derivatives(reduction, shape, beta, seed):
    """Inputs in [-2, 2): both pieces are reached for every beta but 2.5."""
    x, t = random_tensor(shape, seed, -2.0, 2.0), random_tensor(shape, seed + 1, -2.0, 2.0)
    check_grads(lambda x, t: F.smooth_l1_loss(x, t, reduction=reduction, beta=beta), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@given(shape=shapes, seed=seeds)
def test_kl_div_derivatives(reduction, log_target, shape, seed):
    """With respect to the log-probabilities and to the target (positive probabilities)."""
    log_p = mg.tensor(np.log(probabilities(shape, seed)), requires_grad=True)
    q = probabilities(shape, seed + 1)
    target = mg.tensor(np.log(q) if log_target else q, requires_grad=True)
    check_grads(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target), log_p, target)


@st.composite
def classification(draw):
    """(scores shape, class-index target, ignore_index) with classes on axis 1 (axis 0 for one
    sample); some targets (possibly all) are set to ignore_index."""
    classes = draw(st.integers(2, 4))
    if draw(st.integers(0, 4)) == 0:
        shape = (classes,)
    else:
        shape = (draw(st.integers(1, 4)), classes) + tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    ignore_index = draw(st.sampled_from([-100, 1]))
    target = labels(target_shape, classes, draw(seeds))
    if draw(st.booleans()):
        target.flat[draw(st.integers(0, target.size - 1))] = ignore_index
    return shape, target, ignore_index


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=classification(), weighted=st.booleans(), smoothing=st.sampled_from([0.0, 0.2, 1.0]),
       seed=seeds)
def test_cross_entropy_derivatives_with_ignore_index_and_label_smoothing(reduction, case, weighted,
                                                                         smoothing, seed):
    shape, target, ignore_index = case
    if reduction == "mean" and np.all(target == ignore_index):
        target = target.copy()
        target.flat[0] = 0  # all ignored: the mean is 0 / 0 (tested on its own below)
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = random_tensor((classes,), seed + 1, 0.5, 2.0, requires_grad=False) if weighted else None
    check_grads(lambda x: F.cross_entropy(x, mg.tensor(target), weight, reduction,
                                          ignore_index=ignore_index, label_smoothing=smoothing),
                shape, seed=seed)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=classification(), smoothing=st.sampled_from([0.1, 0.5]), seed=seeds)
def test_cross_entropy_derivatives_with_smoothed_probabilities(reduction, case, smoothing, seed):
    shape, _, _ = case
    axis = 0 if len(shape) == 1 else 1
    probs = mg.tensor(probabilities(shape, seed + 3, axis))
    check_grads(lambda x: F.cross_entropy(x, probs, None, reduction, label_smoothing=smoothing),
                shape, seed=seed)


# --- against PyTorch: one line per case (minigan function, torch function, inputs) --------------
torch = pytest.importorskip("torch")
TF = torch.nn.functional
X, T = random_array((4, 5), 0, -2.0, 2.0), random_array((4, 5), 1, -2.0, 2.0)
LOG_P, Q = np.log(probabilities((4, 5), 2)), probabilities((4, 5), 3)
W5 = random_array(5, 4, 0.5, 2.0)
IMAGE_SCORES, IMAGE_LABELS = random_array((2, 3, 2, 2), 5, -2.0, 2.0), labels((2, 2, 2), 3, 6, [((0, 1, 1), -100)])
WITH_IGNORED = labels(4, 5, 7, [(1, 3)])
LABELS_WITH_DEFAULT_IGNORED = labels(4, 5, 8, [(2, -100)])


def cases():
    """(id, minigan function, torch function, arrays, second order checked against torch)."""
    found = []
    for r in REDUCTIONS:
        # PyTorch's second derivative of |x| is a ZeroTensor that cannot leave torch: l1's
        # second order is checked against finite differences above
        found.append((f"l1-{r}", lambda a, b, r=r: F.l1_loss(a, b, reduction=r),
                      lambda a, b, r=r: TF.l1_loss(a, b, reduction=r), (X, T), False))
        for beta in (0.0, 0.5, 1.0, 3.0):
            found.append((f"smooth_l1-{r}-beta{beta}",
                          lambda a, b, r=r, beta=beta: F.smooth_l1_loss(a, b, reduction=r, beta=beta),
                          lambda a, b, r=r, beta=beta: TF.smooth_l1_loss(a, b, reduction=r, beta=beta),
                          (X, T), beta > 0))
    for r in REDUCTIONS + ["batchmean"]:
        for log_target in (False, True):
            q = np.log(Q) if log_target else Q
            found.append((f"kl_div-{r}-log_target{log_target}",
                          lambda a, b, r=r, lt=log_target: F.kl_div(a, b, reduction=r, log_target=lt),
                          lambda a, b, r=r, lt=log_target: TF.kl_div(a, b, reduction=r, log_target=lt),
                          (LOG_P, q), True))
        found.append((f"kl_div-zero-targets-{r}",
                      lambda a, b, r=r: F.kl_div(a, b, reduction=r),
                      lambda a, b, r=r: TF.kl_div(a, b, reduction=r),
                      (LOG_P, Const(np.where(Q > 0.2, Q, 0.0))), True))
    for r in REDUCTIONS:
        for w in (None, W5):
            tw = None if w is None else torch.tensor(w)
            mw = None if w is None else mg.tensor(w)
            found.append((f"nll-ignore-{r}-w{w is not None}",
                          lambda a, b, r=r, w=mw: F.nll_loss(a, b, w, r, ignore_index=3),
                          lambda a, b, r=r, w=tw: TF.nll_loss(a, b, w, reduction=r, ignore_index=3),
                          (LOG_P, WITH_IGNORED), True))
            for s in (0.0, 0.3):
                found.append((f"ce-default-ignore-{r}-w{w is not None}-s{s}",
                              lambda a, b, r=r, w=mw, s=s: F.cross_entropy(a, b, w, r, label_smoothing=s),
                              lambda a, b, r=r, w=tw, s=s: TF.cross_entropy(a, b, w, reduction=r,
                                                                            label_smoothing=s),
                              (X, LABELS_WITH_DEFAULT_IGNORED), True))
                found.append((f"ce-probabilities-{r}-w{w is not None}-s{s}",
                              lambda a, b, r=r, w=mw, s=s: F.cross_entropy(a, b, w, r, label_smoothing=s),
                              lambda a, b, r=r, w=tw, s=s: TF.cross_entropy(a, b, w, reduction=r,
                                                                            label_smoothing=s),
                              (X, Const(Q)), True))
        found.append((f"ce-images-{r}",
                      lambda a, b, r=r: F.cross_entropy(a, b, None, r, ignore_index=-100, label_smoothing=0.1),
                      lambda a, b, r=r: TF.cross_entropy(a, b, reduction=r, label_smoothing=0.1),
                      (IMAGE_SCORES, IMAGE_LABELS), True))
    return found


CASES = cases()


@pytest.mark.parametrize("mg_fn, torch_fn, arrays, second_order", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_functions_match_torch(mg_fn, torch_fn, arrays, second_order):
    compare_with_torch(mg_fn, torch_fn, *arrays, second_order=second_order)


def test_kl_div_target_gradient_matches_torch_where_target_is_positive():
    compare_with_torch(lambda a, b: F.kl_div(a, b, reduction="batchmean"),
                       lambda a, b: TF.kl_div(a, b, reduction="batchmean"), LOG_P, Q)


# --- closed forms and edge cases ---------------------------------------------------------------
def test_smooth_l1_closed_form_and_continuity():
    d = mg.tensor([0.0, 0.5, 1.999999, 2.0, 2.000001, 5.0])
    loss = F.smooth_l1_loss(d, mg.zeros(6), reduction="none", beta=2.0).numpy()
    np.testing.assert_allclose(loss, [0.0, 0.0625, 0.999999, 1.0, 1.000001, 4.0], rtol=1e-6)
    assert np.array_equal(F.smooth_l1_loss(d, mg.zeros(6), beta=0.0).numpy(),
                          F.l1_loss(d, mg.zeros(6)).numpy())


def test_kl_div_of_equal_distributions_is_zero_and_zero_targets_add_nothing():
    q = probabilities((3, 4), 0)
    q[0, 0] = 0.0
    loss = F.kl_div(mg.tensor(np.log(np.where(q > 0, q, 1.0))), mg.tensor(q), reduction="none")
    np.testing.assert_allclose(loss.numpy(), 0.0, atol=1e-16)
    batch = F.kl_div(mg.tensor(np.log(probabilities((3, 4), 1))), mg.tensor(probabilities((3, 4), 2)),
                     reduction="batchmean")
    total = F.kl_div(mg.tensor(np.log(probabilities((3, 4), 1))), mg.tensor(probabilities((3, 4), 2)),
                     reduction="sum")
    assert batch.item() == pytest.approx(total.item() / 3)
    scalar = F.kl_div(mg.tensor(0.5), mg.tensor(0.2), reduction="batchmean")  # 0-d: just the sum
    assert scalar.item() == pytest.approx(TF.kl_div(torch.tensor(0.5), torch.tensor(0.2),
                                                    reduction="batchmean").item())


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 / 0
def test_ignored_targets_add_nothing():
    scores = random_tensor((4, 3), 0)
    target = mg.tensor([0, 2, 1, 2])
    kept = F.cross_entropy(scores[:2], target[:2], reduction="sum")
    ignoring = F.cross_entropy(scores, mg.tensor([0, 2, 7, 7]), ignore_index=7, reduction="sum")
    assert ignoring.item() == pytest.approx(kept.item())
    mean = F.cross_entropy(scores, mg.tensor([0, 2, 7, 7]), ignore_index=7)
    assert mean.item() == pytest.approx(kept.item() / 2)
    everything_ignored = F.nll_loss(scores, mg.tensor([-100, -100, -100, -100]))
    assert math.isnan(everything_ignored.item())  # 0 / 0, as in PyTorch


def test_full_label_smoothing_is_the_uniform_target():
    scores = random_tensor((3, 4), 0)
    smoothed = F.cross_entropy(scores, mg.tensor([0, 3, 1]), label_smoothing=1.0)
    uniform = F.cross_entropy(scores, mg.tensor(np.full((3, 4), 0.25)))
    assert smoothed.item() == pytest.approx(uniform.item(), rel=1e-12)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.smooth_l1_loss(mg.zeros(2), mg.zeros(2), beta=-1.0), ValueError, "beta must be"),
    (lambda: F.smooth_l1_loss(mg.zeros(2), mg.zeros(2), beta=math.nan), ValueError, "beta must be"),
    (lambda: F.l1_loss(mg.zeros(2), mg.zeros(3)), ValueError, "l1_loss: target shape (3,)"),
    (lambda: F.kl_div(mg.zeros(2), mg.zeros(2), reduction="average"), ValueError, "'batchmean'"),
    (lambda: F.kl_div(mg.zeros(2), mg.zeros(1)), ValueError, "kl_div: target shape"),
    (lambda: F.cross_entropy(mg.zeros(2, 3), mg.tensor([0, 1]), label_smoothing=1.5), ValueError,
     "label_smoothing must lie in [0, 1], got 1.5"),
    (lambda: F.cross_entropy(mg.zeros(2, 3), mg.zeros(2, 3), ignore_index=1), ValueError,
     "ignore_index=1 needs class indices"),
    (lambda: F.nll_loss(mg.zeros(2, 3), mg.tensor([0, 3])), ValueError, "[0, 3)"),
    (lambda: F.nll_loss(mg.zeros(2, 3), mg.tensor([0, -100]), ignore_index=-1), ValueError, "[0, 3)"),
    (lambda: F.nll_loss(mg.zeros(2, 3), mg.zeros(2)), TypeError, "integer class indices"),
])
def test_bad_inputs_raise(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)


# --- modules against torch.nn ------------------------------------------------------------------
W3 = random_array(3, 9, 0.5, 2.0)
PROBS = 1 / (1 + np.exp(-X))
BINARY = (random_array((4, 5), 10) > 0).astype(float)


def module_cases():
    """(id, minigan module, torch module, arrays): the same constructor call in both."""
    found = []
    for r in REDUCTIONS:
        found += [
            (f"L1Loss-{r}", nn.L1Loss(reduction=r), torch.nn.L1Loss(reduction=r), (X, T)),
            (f"MSELoss-{r}", nn.MSELoss(reduction=r), torch.nn.MSELoss(reduction=r), (X, T)),
            (f"SmoothL1Loss-{r}", nn.SmoothL1Loss(reduction=r, beta=0.7),
             torch.nn.SmoothL1Loss(reduction=r, beta=0.7), (X, T)),
            (f"BCELoss-{r}", nn.BCELoss(mg.tensor(W5), reduction=r),
             torch.nn.BCELoss(torch.tensor(W5), reduction=r), (PROBS, Const(BINARY))),
            (f"BCEWithLogitsLoss-{r}",
             nn.BCEWithLogitsLoss(mg.tensor(W5), reduction=r, pos_weight=mg.tensor(W5[::-1].copy())),
             torch.nn.BCEWithLogitsLoss(torch.tensor(W5), reduction=r, pos_weight=torch.tensor(W5[::-1].copy())),
             (X, Const(BINARY))),
            (f"NLLLoss-{r}", nn.NLLLoss(mg.tensor(W5), ignore_index=3, reduction=r),
             torch.nn.NLLLoss(torch.tensor(W5), ignore_index=3, reduction=r), (LOG_P, WITH_IGNORED)),
            (f"CrossEntropyLoss-{r}", nn.CrossEntropyLoss(mg.tensor(W3), reduction=r, label_smoothing=0.2),
             torch.nn.CrossEntropyLoss(torch.tensor(W3), reduction=r, label_smoothing=0.2),
             (IMAGE_SCORES, IMAGE_LABELS)),
        ]
    for r in REDUCTIONS + ["batchmean"]:
        found.append((f"KLDivLoss-{r}", nn.KLDivLoss(reduction=r, log_target=True),
                      torch.nn.KLDivLoss(reduction=r, log_target=True), (LOG_P, np.log(Q))))
    found += [
        ("BCELoss-default", nn.BCELoss(), torch.nn.BCELoss(), (PROBS, Const(BINARY))),
        ("BCEWithLogitsLoss-default", nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), (X, Const(BINARY))),
        ("CrossEntropyLoss-default", nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(),
         (X, LABELS_WITH_DEFAULT_IGNORED)),
        ("NLLLoss-default", nn.NLLLoss(), torch.nn.NLLLoss(), (LOG_P, LABELS_WITH_DEFAULT_IGNORED)),
        ("KLDivLoss-default", nn.KLDivLoss(), torch.nn.KLDivLoss(), (LOG_P, Q)),
        ("SmoothL1Loss-default", nn.SmoothL1Loss(), torch.nn.SmoothL1Loss(), (X, T)),
    ]
    return found


MODULES = module_cases()


@pytest.mark.parametrize("ours, theirs, arrays", [c[1:] for c in MODULES], ids=[c[0] for c in MODULES])
def test_modules_match_torch(ours, theirs, arrays):
    second_order = not isinstance(ours, nn.L1Loss)  # PyTorch's ZeroTensor, as above
    compare_with_torch(ours, theirs, *arrays, second_order=second_order)


@pytest.mark.parametrize("ours, theirs", [c[1:3] for c in MODULES], ids=[c[0] for c in MODULES])
def test_module_state_dicts_are_pytorchs_and_load_both_ways(ours, theirs):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict()) == [name for name in ("weight", "pos_weight")
                                       if getattr(theirs, name, None) is not None]
    doubled = {k: 2 * v.detach().numpy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict(doubled)
    for name, value in ours.state_dict().items():
        assert np.array_equal(value.numpy(), doubled[name])
    copy = type(theirs)(**{k: torch.zeros_like(v) for k, v in theirs.state_dict().items()})
    copy.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    for name, value in copy.state_dict().items():
        assert np.array_equal(value.numpy(), doubled[name])


def test_weights_are_buffers_that_follow_the_dtype():
    criterion = nn.CrossEntropyLoss(weight=[1, 2, 3])  # array-likes become floating buffers
    assert [name for name, _ in criterion.named_buffers()] == ["weight"]
    assert criterion.weight.dtype == np.float64
    assert list(criterion.parameters()) == []
    mg.set_default_dtype("float32")
    try:
        criterion = nn.BCEWithLogitsLoss(pos_weight=[2.0])
        assert criterion.pos_weight.dtype == np.float32
        assert criterion.double().pos_weight.dtype == np.float64
    finally:
        mg.set_default_dtype("float64")


def test_pytorch_style_training_code():
    """What a tutorial writes: a criterion made once and called on scores and labels."""
    model = nn.Linear(4, 3)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    loss = criterion(model(mg.tensor(random_array((5, 4), 0))), mg.tensor([0, 2, 1, 1, 0]))
    loss.backward()
    assert loss.shape == () and model.weight.grad.shape == (3, 4)
    assert repr(nn.MSELoss()) == "MSELoss()"


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.MSELoss(reduction="average"), ValueError, "MSELoss: reduction must be one of"),
    (lambda: nn.L1Loss(reduction="batchmean"), ValueError, "L1Loss: reduction must be one of"),
    (lambda: nn.SmoothL1Loss(beta=-0.5), ValueError, "SmoothL1Loss: beta must be"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=-0.1), ValueError, "CrossEntropyLoss: label_smoothing"),
    (lambda: nn.NLLLoss(weight=mg.tensor([1, 2])), TypeError, "NLLLoss: weight must be floating"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=mg.tensor([1, 2])), TypeError, "pos_weight must be floating"),
    (lambda: nn.MSELoss("sum"), TypeError, "positional"),
])
def test_bad_module_arguments_raise(make, error, message):
    with pytest.raises(error) as raised:
        make()
    assert message in str(raised.value)

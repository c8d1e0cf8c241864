"""Tutorial code runs on minigan with only its imports changed.

tests/tutorials/ holds GAN code written the way PyTorch tutorials write it (``import torch``,
``nn.ReLU(inplace=True)``, ``z.view(z.size(0), -1, 1, 1)``, ``torch.ones(B, 1, device=device)``,
``nn.BCELoss()`` after ``nn.Sigmoid()``, ``weights_init`` on ``m.weight.data``, ``torch.save`` ...).
Each file is run twice: on PyTorch as written, and on minigan with the four import lines
rewritten and nothing else. With the same weights and inputs, one train step gives the same
losses, gradients and BatchNorm statistics in both, to float32 rounding."""
import os
import types

import numpy as np
import pytest

import minigan

HERE = os.path.join(os.path.dirname(__file__), "tutorials")
IMPORTS = [  # PyTorch's imports and the minigan ones that replace them, longest first
    ("import torch.nn.functional as F", "import minigan.nn.functional as F"),
    ("import torch.nn as nn", "import minigan.nn as nn"),
    ("import torch.optim as optim", "import minigan.optim as optim"),
    ("import torch\n", "import minigan as torch\n"),
]
TUTORIALS = ["mlp_gan", "dcgan64", "stylegan_block"]


def load(name, engine):
    path = os.path.join(HERE, f"{name}.py")
    with open(path) as f:
        source = f.read()
    if engine == "minigan":
        original = source
        for theirs, ours in IMPORTS:
            source = source.replace(theirs, ours)
        changed = [(a, b) for a, b in zip(original.splitlines(), source.splitlines()) if a != b]
        assert changed and all(a.startswith("import torch") for a, _ in changed)
    module = types.ModuleType(f"tutorial_{name}_{engine}")
    module.__file__ = path
    exec(compile(source, path, "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("name", TUTORIALS)
def test_the_tutorial_runs_on_minigan_with_only_its_imports_changed(name, tmp_path):
    tutorial = load(name, "minigan")
    kwargs = {"path": str(tmp_path / "G.pt")} if name == "mlp_gan" else {}
    result = tutorial.main(**kwargs)
    losses = result[0] if name == "mlp_gan" else result
    assert all(np.isfinite(v) for v in losses)
    if name == "mlp_gan":
        assert result[1].shape == (8, 1, 28, 28)


def _state(model):
    return {k: np.array(v.detach().cpu().numpy() if hasattr(v, "cpu") else v.numpy())
            for k, v in model.state_dict().items()}


def _grads(model):
    return {k: (p.grad.detach().numpy() if hasattr(p.grad, "detach") and hasattr(p.grad, "cpu")
                else p.grad.numpy())
            for k, p in model.named_parameters()}


@pytest.mark.parametrize("name", TUTORIALS)
def test_one_train_step_agrees_with_pytorch(name):
    torch = pytest.importorskip("torch")
    theirs, ours = load(name, "torch"), load(name, "minigan")
    torch.manual_seed(1)
    t_models = theirs.make("cpu")
    m_models = ours.make("cpu")
    for t_net, m_net in zip(t_models[:2], m_models[:2]):  # PyTorch's initial weights, in both
        m_net.load_state_dict(_state(t_net))
    for opt in t_models[2:] + m_models[2:]:
        # a zero learning rate: the step's gradients are compared, not Adam's first step, whose
        # division of each gradient by its own size turns rounding-level gradients into full steps
        for group in opt.param_groups:
            group["lr"] = 0.0
    rng = np.random.default_rng(2)
    shape, z_shape, extra = {
        "mlp_gan": ((16, 1, 28, 28), (16, getattr(theirs, "LATENT", 0)), ["cpu"]),
        "dcgan64": ((4, 3, 64, 64), (4, getattr(theirs, "nz", 0), 1, 1), ["cpu"]),
        "stylegan_block": ((4, 3, 16, 16), (4, getattr(theirs, "nz", 0)),
                           [rng.standard_normal((4, 1, 8, 8)), rng.standard_normal((4, 1, 16, 16))]),
    }[name]
    real = rng.uniform(-1, 1, shape).astype(np.float32)
    z = rng.standard_normal(z_shape).astype(np.float32)

    def inputs(make):
        noises = [make(a.astype(np.float32)) for a in extra if not isinstance(a, str)]
        return [make(real), make(z)] + ([noises] if noises else extra)

    t_out = theirs.train_step(*t_models, *inputs(torch.tensor))
    m_out = ours.train_step(*m_models, *inputs(minigan.tensor))
    np.testing.assert_allclose(m_out, t_out, rtol=2e-5)
    for t_net, m_net in zip(t_models[:2], m_models[:2]):
        t_grads, m_grads = _grads(t_net), _grads(m_net)
        assert list(t_grads) == list(m_grads)
        # float32 rounding at the scale of the network's gradients: a bias followed by
        # BatchNorm has a gradient that is zero but for rounding, in both frameworks
        scale = max(np.abs(g).max() for g in t_grads.values())
        for key in t_grads:
            assert np.abs(t_grads[key] - m_grads[key]).max() <= 2e-5 * scale, key
        t_state, m_state = _state(t_net), _state(m_net)
        for key in t_state:  # BatchNorm's running statistics moved alike
            np.testing.assert_allclose(m_state[key], t_state[key], rtol=1e-5, atol=1e-7, err_msg=key)

"""Code written the way a PyTorch user writes it runs unchanged on minigan and agrees with
PyTorch: each scenario below takes the framework as its argument and is run on both."""
import numpy as np
import pytest

import minigan

torch = pytest.importorskip("torch")


def frameworks():
    import minigan.nn as mg_nn
    import minigan.nn.functional as mg_F
    import minigan.optim as mg_optim

    return {"minigan": (minigan, mg_nn, mg_F, mg_optim),
            "torch": (torch, torch.nn, torch.nn.functional, torch.optim)}


def numbers(value):
    """A result as nested lists of floats, whatever the framework."""
    if isinstance(value, (tuple, list)):
        return [numbers(v) for v in value]
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy(), dtype=np.float64).tolist()
    return float(value) if not isinstance(value, (str, bool)) else value


DATA = np.random.default_rng(0).standard_normal((4, 5, 3)).round(3).tolist()


def tensor_conventions(torch, nn, F, optim):
    x = torch.tensor(DATA)
    values, indices = x.max(dim=1)
    low = x.min(1)[0]
    out = [values, indices.float(), low, x.max(), x.sum(dim=1, keepdim=True), x.mean(dim=(0, 2)),
           x.std(dim=0), x.var(1, keepdim=True), x.amax(dim=-1), x.argmax(dim=2).float(),
           list(x.size()), x.size(1), x.numel(), x.dim(), torch.cat([x, x], dim=1).shape[1],
           torch.stack([x, x], dim=0).shape[0], x.flatten(1).shape[1], x.view(x.size(0), -1, 1).shape[1],
           x.unsqueeze(2).unsqueeze(3).shape[3], x.chunk(2, dim=1)[1], x.flip(0)[0],
           F.log_softmax(x, dim=1), F.softmax(x, dim=-1), x.clone().abs().sqrt()]
    return [list(v) if isinstance(v, tuple) else v for v in out]


def training_loop(torch, nn, F, optim):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 8), nn.Linear(8, 8)])
            self.heads = nn.ModuleDict({"cls": nn.Linear(8, 4), "reg": nn.Linear(8, 1)})

        def forward(self, x):
            for block in self.blocks:
                x = F.relu(block(x))
            return self.heads["cls"](x), self.heads["reg"](x)

    net = Net()
    rng = np.random.default_rng(1)
    for name, p in net.named_parameters():
        p.data = torch.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32))
    opt = optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.01)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ce, mse, l1 = nn.CrossEntropyLoss(), nn.MSELoss(), nn.L1Loss()
    x = torch.tensor(np.asarray(DATA, dtype=np.float32).reshape(20, 3))
    labels = torch.tensor(np.arange(20) % 4)
    target = torch.tensor(np.linspace(-1, 1, 20, dtype=np.float32)).unsqueeze(1)
    history = []
    for step in range(5):
        opt.zero_grad()
        logits, value = net(x)
        loss = ce(logits, labels) + mse(value, target) + 0.1 * l1(value, target)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
        opt.step()
        sched.step()
        history.append([loss.item(), float(norm), sched.get_last_lr()[0]])
    with torch.no_grad():
        accuracy = (net(x)[0].argmax(dim=1) == labels).float().mean()
    return history, accuracy


@pytest.mark.parametrize("scenario", [tensor_conventions, training_loop],
                         ids=["tensor_conventions", "training_loop"])
def test_pytorch_style_code_agrees_on_both_frameworks(scenario):
    results = {name: numbers(scenario(*modules)) for name, modules in frameworks().items()}
    np.testing.assert_allclose(np.asarray(flatten(results["minigan"]), dtype=np.float64),
                               np.asarray(flatten(results["torch"]), dtype=np.float64),
                               rtol=1e-4, atol=1e-5)


def flatten(value):
    if isinstance(value, list):
        return [v for item in value for v in flatten(item)]
    return [value]

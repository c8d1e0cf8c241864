"""benchmarks/train_step.py's per-layer timing runs on every benchmark model, minigan alone
(the timings themselves are not checked: speed is measured by the benchmark, not by tests)."""
import argparse
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def train_step():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import train_step
        yield train_step
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))


@pytest.mark.parametrize("model", ["mlp", "pix2pix"])
def test_layer_rows_cover_stacks_layer_by_layer_and_other_nets_whole(train_step, model):
    from models import MODELS

    args = argparse.Namespace(batch=2, steps=1)
    rows = train_step.layer_rows(model, [train_step.Minigan()], args)
    g, d, _, _ = MODELS[model](train_step.Minigan().nn)
    expected = sum(len(list(net)) if isinstance(net, train_step.Minigan().nn.Sequential) else 1
                   for net in (g, d))
    assert len(rows) == expected
    assert all(fw == "minigan" and fwd >= 0 and bwd is not None for fw, _, _, fwd, bwd in rows)
    if model == "pix2pix":
        assert [name for _, name, _, _, _ in rows] == ["G PairGenerator (whole)", "D PatchDiscriminator (whole)"]
        assert rows[0][2] == (2, 4, 32, 32) and rows[1][2] == (2,)


def test_single_layer_rows_run_every_layer_and_report_each_input_shape(train_step):
    args = argparse.Namespace(batch=2, steps=1)
    rows = train_step.single_layer_rows([train_step.Minigan()], args)
    assert [name for name, _, _ in rows] == [name for name, _, _ in train_step.SINGLE_LAYERS]
    for (_, shape, medians), (_, _, layer_shape) in zip(rows, train_step.SINGLE_LAYERS):
        assert shape == (2, *layer_shape)
        forward, backward = medians["minigan"]
        assert forward > 0 and backward is not None

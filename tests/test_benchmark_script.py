"""The benchmark scripts run and compare like with like: train_step.py's per-layer timing on
every benchmark model, minigan alone, and conv_rearrangements.py's three ways of computing one
convolution (the timings themselves are not checked: speed is measured by the benchmarks, not
by tests)."""
import argparse
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def benchmarks_on_path():
    """The benchmark folder on the import path while a module's tests run (the scripts import
    their neighbours, machine and models, by name)."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    yield
    sys.path.remove(os.path.join(ROOT, "benchmarks"))


@pytest.fixture(scope="module")
def train_step(benchmarks_on_path):
    import train_step
    return train_step


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


@pytest.fixture(scope="module")
def rearrangements(benchmarks_on_path):
    import conv_rearrangements
    return conv_rearrangements


def _direct_conv3x3(x, weight, padding):
    """The definition, in float64: out[o, y, x', n] = sum over c, i, j of w[o, c, i, j] times
    the padded image at (c, y + i, x' + j, n)."""
    import numpy as np

    n, c, h, w = x.shape
    image = np.zeros((n, c, h + 2 * padding, w + 2 * padding))
    image[:, :, padding:padding + h, padding:padding + w] = x
    oh, ow = h + 2 * padding - 2, w + 2 * padding - 2
    out = np.zeros((weight.shape[0], oh, ow, n))
    for i in range(3):
        for j in range(3):
            window = image[:, :, i:i + oh, j:j + ow]  # (N, C, OH, OW)
            out += np.einsum("oc,ncyx->oyxn", weight[:, :, i, j].astype(np.float64), window)
    return out


@pytest.mark.parametrize("n, c, o, h, w, padding", [(3, 2, 5, 7, 6, 1), (2, 4, 3, 5, 9, 0), (1, 1, 1, 3, 3, 1),
                                                    (4, 3, 2, 8, 8, 1)])
def test_benchmarked_rearrangements_compute_the_convolution(rearrangements, n, c, o, h, w, padding):
    """The conv-rearrangement benchmark times three ways of computing the same thing: each
    (odd sizes included, where Winograd's 2x2 tiles overhang the output) equals the direct sum."""
    import numpy as np

    rng = np.random.default_rng(n * 100 + c * 10 + o)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = rng.standard_normal((o, c, 3, 3), dtype=np.float32)
    expected = _direct_conv3x3(x, weight, padding)
    for way in (rearrangements.engine, *rearrangements.WAYS.values()):
        got = way(x, weight, padding)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # several row blocks in the column-shift way
    got = rearrangements.column_shifts(x, weight, padding, block_bytes=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_rearrangement_check_refuses_a_wrong_way(rearrangements, monkeypatch):
    import numpy as np

    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((2, 3, 6, 6), dtype=np.float32), rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    rearrangements.check(x, weight, 1)  # the real ways pass
    monkeypatch.setitem(rearrangements.WAYS, "transposed kernel",
                        lambda x, w, p: rearrangements.engine(x, w.transpose(0, 1, 3, 2).copy(), p))
    with pytest.raises(AssertionError, match="transposed kernel differs"):
        rearrangements.check(x, weight, 1)

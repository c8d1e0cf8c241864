"""The building blocks of progressive GANs and StyleGAN (minigan/nn/gan_blocks.py): what each
computes, first and second derivatives against finite differences (float64), and the same
blocks written in PyTorch's primitives (values, gradients and second derivatives agree)."""
import math

import numpy as np
import pytest

import minigan as mg
from minigan import F, nn, optim
from helpers import (check_grads, check_module_grads, compare_modules, compare_with_torch,
                     random_array, random_tensor)


# --- what each block computes --------------------------------------------------------------------
def test_equalized_layers_keep_unit_weights_and_scale_them_at_run_time():
    mg.manual_seed(0)
    linear = nn.EqualizedLinear(400, 300)
    conv = nn.EqualizedConv2d(16, 32, 3, padding=1)
    for layer, fan_in in ((linear, 400), (conv, 16 * 9)):
        assert abs(float(layer.weight.numpy().std()) - 1) < 0.02
        assert layer.scale == pytest.approx(math.sqrt(2) / math.sqrt(fan_in))
        assert np.all(layer.bias.numpy() == 0)
    x = mg.randn(5, 400)
    expected = F.linear(x, linear.weight * linear.scale, linear.bias)
    np.testing.assert_array_equal(linear(x).numpy(), expected.numpy())
    image = mg.randn(2, 16, 5, 5)
    expected = F.conv2d(image, conv.weight * conv.scale, conv.bias, padding=1)
    np.testing.assert_array_equal(conv(image).numpy(), expected.numpy())


def test_lr_mul_slows_the_effective_weights_by_that_factor():
    """Same effective weights, one Adam step each: the lr_mul = 0.01 layer moves 100 times less."""
    mg.manual_seed(0)
    fast, slow = nn.EqualizedLinear(8, 4), nn.EqualizedLinear(8, 4, lr_mul=0.01, bias_init=0.5)
    assert slow.scale == pytest.approx(0.01 * math.sqrt(2) / math.sqrt(8))
    slow.weight.data[...] = fast.weight.data / 0.01
    slow.bias.data[...] = fast.bias.data / 0.01
    x = mg.randn(16, 8)
    np.testing.assert_allclose(slow(x).numpy(), fast(x).numpy(), rtol=1e-5, atol=1e-6)
    moves = []
    for layer in (fast, slow):
        before = (layer.weight * layer.scale).numpy()
        opt = optim.Adam(layer.parameters(), lr=1e-3)
        (layer(x) ** 2).sum().backward()
        opt.step()
        moves.append(np.abs((layer.weight * layer.scale).numpy() - before).mean())
    assert moves[1] / moves[0] == pytest.approx(0.01, rel=1e-3)


def test_bias_init_is_the_effective_bias():
    layer = nn.EqualizedLinear(3, 2, lr_mul=0.01, bias_init=1.0)
    np.testing.assert_allclose(layer(mg.zeros(1, 3)).numpy(), [[1.0, 1.0]], rtol=1e-6)


def test_pixel_norm_gives_unit_rms_per_pixel_and_ignores_scale():
    x = mg.tensor(random_array((3, 5, 4, 4), seed=1) * 7, dtype=mg.float32)
    y = nn.PixelNorm()(x).numpy()
    np.testing.assert_allclose((y ** 2).mean(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(nn.PixelNorm()(x * 3.0).numpy(), y, rtol=1e-5, atol=1e-6)
    z = nn.PixelNorm()(mg.randn(6, 10)).numpy()  # a latent vector onto the sphere of radius sqrt(10)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), math.sqrt(10), rtol=1e-5)


def minibatch_stddev_by_hand(x, group_size):
    n, c, h, w = x.shape
    g = min(group_size, n)
    out = np.empty((n, 1, h, w))
    for j in range(n // g):
        members = x[j::n // g]  # sample i belongs to group i mod (n / g)
        value = np.sqrt(members.var(axis=0) + 1e-8).mean()
        out[j::n // g] = value
    return np.concatenate([x, out], axis=1)


@pytest.mark.parametrize("n, group_size", [(8, 4), (8, 2), (6, 3), (3, 4), (4, 1)])
def test_minibatch_stddev_appends_the_spread_of_each_group(n, group_size):
    x = random_array((n, 3, 2, 2), seed=n)
    out = nn.MinibatchStdDev(group_size)(mg.tensor(x)).numpy()
    np.testing.assert_allclose(out, minibatch_stddev_by_hand(x, group_size), rtol=1e-10)


def test_minibatch_stddev_is_near_zero_for_a_collapsed_batch_and_refuses_ragged_groups():
    same = mg.tensor(np.repeat(random_array((1, 3, 2, 2)), 4, axis=0))
    assert np.allclose(nn.MinibatchStdDev(4)(same).numpy()[:, 3], 1e-4)
    with pytest.raises(ValueError, match="batch size 6 is not a multiple of the group size 4"):
        nn.MinibatchStdDev(4)(mg.randn(6, 3, 2, 2))


def test_noise_injection_adds_one_noise_image_per_sample_scaled_per_channel():
    layer = nn.NoiseInjection(3)
    x = mg.randn(2, 3, 4, 4)
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())  # strength starts at zero
    layer.weight.data[...] = np.array([1.0, 2.0, -1.0], np.float32).reshape(1, 3, 1, 1)
    mg.manual_seed(3)
    added = layer(x).numpy() - x.numpy()
    np.testing.assert_allclose(added[:, 1], 2 * added[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(added[:, 2], -added[:, 0], rtol=1e-5, atol=1e-6)
    mg.manual_seed(3)
    np.testing.assert_allclose(added[:, :1], mg.randn(2, 1, 4, 4).numpy(), rtol=1e-5, atol=1e-6)
    noise = mg.randn(2, 1, 4, 4)
    np.testing.assert_allclose(layer(x, noise).numpy(), (x + layer.weight * noise).numpy())


def test_adain_sets_each_channels_mean_and_spread_from_the_style():
    mg.manual_seed(0)
    adain = nn.AdaIN(4, w_dim=6)
    np.testing.assert_array_equal(adain.style.bias.numpy(), [1, 1, 1, 1, 0, 0, 0, 0])
    x, w = mg.randn(3, 4, 8, 8) * 5 + 2, mg.randn(3, 6)
    out = adain(x, w).numpy()
    style = adain.style(w).numpy()
    np.testing.assert_allclose(out.mean(axis=(2, 3)), style[:, 4:], atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(2, 3)), np.abs(style[:, :4]), rtol=1e-3)
    # the input's own statistics are gone: rescaling and shifting each channel changes nothing
    gains = mg.tensor(np.array([0.5, 2.0, 3.0, 1.5], np.float32).reshape(1, 4, 1, 1))
    np.testing.assert_allclose(adain(x * gains - 7, w).numpy(), out, rtol=1e-3, atol=1e-3)


def test_blocks_check_their_inputs():
    with pytest.raises(ValueError, match="expected input with 3 features"):
        nn.EqualizedLinear(3, 2)(mg.randn(2, 4))
    with pytest.raises(ValueError, match="AdaIN"):
        nn.AdaIN(3, 4)(mg.randn(2, 5, 4, 4), mg.randn(2, 4))
    with pytest.raises(ValueError, match="expected input of shape"):
        nn.MinibatchStdDev()(mg.randn(4, 3))
    assert "lr_mul=0.01" in repr(nn.EqualizedLinear(3, 2, lr_mul=0.01))
    assert repr(nn.EqualizedConv2d(1, 2, 3, padding=1)).startswith("EqualizedConv2d(1, 2, kernel_size=(3, 3)")


# --- first and second derivatives against finite differences ------------------------------------
def test_equalized_linear_gradients(float64):
    check_module_grads(nn.EqualizedLinear(3, 4, lr_mul=0.1, bias_init=0.2), (2, 3))


def test_equalized_conv2d_gradients(float64):
    check_module_grads(nn.EqualizedConv2d(2, 3, 3, stride=2, padding=1), (2, 2, 4, 4))


def test_pixel_norm_gradients(float64):
    check_grads(nn.PixelNorm(), (2, 3, 2, 2))


@pytest.mark.parametrize("group_size", [2, 4])
def test_minibatch_stddev_gradients(float64, group_size):
    check_grads(nn.MinibatchStdDev(group_size), (4, 2, 2, 2))


def test_noise_injection_gradients(float64):
    layer = nn.NoiseInjection(3)
    layer.weight.data[...] = random_array((1, 3, 1, 1), seed=4)
    check_module_grads(layer, (2, 3, 2, 2), (2, 1, 2, 2))


def test_adain_gradients(float64):
    adain = nn.AdaIN(3, w_dim=4)
    check_module_grads(adain, random_tensor((2, 3, 3, 3), seed=1), (2, 4))


# --- the same blocks in PyTorch's primitives ------------------------------------------------------
def torch_twins():
    torch = pytest.importorskip("torch")

    class EqualizedLinear(torch.nn.Module):
        def __init__(self, n_in, n_out, gain=math.sqrt(2), lr_mul=1.0):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(n_out, n_in, dtype=torch.float64))
            self.bias = torch.nn.Parameter(torch.zeros(n_out, dtype=torch.float64))
            self.scale, self.lr_mul = lr_mul * gain / math.sqrt(n_in), lr_mul

        def forward(self, x):
            return torch.nn.functional.linear(x, self.weight * self.scale, self.bias * self.lr_mul)

    class EqualizedConv2d(torch.nn.Module):
        def __init__(self, c_in, c_out, k, padding):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(c_out, c_in, k, k, dtype=torch.float64))
            self.bias = torch.nn.Parameter(torch.zeros(c_out, dtype=torch.float64))
            self.scale, self.padding = math.sqrt(2) / math.sqrt(c_in * k * k), padding

        def forward(self, x):
            return torch.nn.functional.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    class AdaIN(torch.nn.Module):
        def __init__(self, channels, w_dim):
            super().__init__()
            self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
            self.channels = channels

        def forward(self, x, w):
            style = self.style(w)
            scale, bias = style[:, :self.channels, None, None], style[:, self.channels:, None, None]
            return torch.nn.functional.instance_norm(x) * scale + bias

    class NoiseInjection(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1, channels, 1, 1, dtype=torch.float64))

        def forward(self, x, noise):
            return x + self.weight * noise

    return torch, EqualizedLinear, EqualizedConv2d, AdaIN, NoiseInjection


def randomised(torch_module, seed=0):
    """The PyTorch module with random parameters (zeros would hide errors)."""
    import torch

    with torch.no_grad():
        for i, p in enumerate(torch_module.parameters()):
            p.copy_(torch.tensor(random_array(tuple(p.shape), seed=seed + i)))
    return torch_module


def test_equalized_layers_match_pytorch(float64):
    _, Linear, Conv, _, _ = torch_twins()
    compare_modules(nn.EqualizedLinear(3, 4, lr_mul=0.1), randomised(Linear(3, 4, lr_mul=0.1)),
                    random_array((5, 3)), second_order=True)
    compare_modules(nn.EqualizedConv2d(2, 3, 3, padding=1), randomised(Conv(2, 3, 3, 1)),
                    random_array((2, 2, 5, 5)), second_order=True)


def test_adain_and_noise_injection_match_pytorch(float64):
    _, _, _, AdaIN, Noise = torch_twins()
    compare_modules(nn.AdaIN(3, 4), randomised(AdaIN(3, 4)), random_array((2, 3, 4, 4)),
                    random_array((2, 4), seed=1), second_order=True)
    compare_modules(nn.NoiseInjection(3), randomised(Noise(3)), random_array((2, 3, 4, 4)),
                    random_array((2, 1, 4, 4), seed=1), second_order=True)


def test_pixel_norm_and_minibatch_stddev_match_pytorch(float64):
    torch = torch_twins()[0]

    def pixel_norm(x):
        return x * torch.rsqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)

    def stddev(x, g=2):
        n, c, h, w = x.shape
        y = x.reshape(g, n // g, c, h, w)
        y = y - y.mean(dim=0, keepdim=True)
        s = torch.sqrt((y * y).mean(dim=0) + 1e-8).mean(dim=(1, 2, 3))
        return torch.cat([x, s.reshape(1, n // g, 1, 1, 1).expand(g, n // g, 1, h, w).reshape(n, 1, h, w)], dim=1)

    compare_with_torch(nn.PixelNorm(), pixel_norm, random_array((3, 4, 2, 2)))
    compare_with_torch(nn.MinibatchStdDev(2), stddev, random_array((4, 3, 2, 2)))

"""Building blocks of progressive GANs (Karras, Aila, Laine & Lehtinen 2017) and StyleGAN
(Karras, Laine & Aila 2019), used by lessons 12 and 13.

- ``EqualizedLinear`` / ``EqualizedConv2d``: weights drawn from N(0, 1) and multiplied at every
  forward by He's constant gain / sqrt(fan_in), the *equalised learning rate*.
- ``PixelNorm``: each pixel's feature vector scaled to unit root-mean-square.
- ``MinibatchStdDev``: one extra feature map holding how much the batch varies.
- ``NoiseInjection``: per-pixel Gaussian noise, scaled by a learned strength per channel.
- ``AdaIN``: instance normalisation, then a per-channel scale and bias computed from a style w.

Each is a composition of differentiable primitives, so first and second derivatives (the
gradient penalties of lessons 07 and 12 differentiate through them) come from the engine.

    >>> import minigan as mg
    >>> from minigan import nn
    >>> x = mg.randn(4, 8, 6, 6)
    >>> nn.MinibatchStdDev(group_size=2)(x).shape
    (4, 9, 6, 6)
    >>> y = nn.PixelNorm()(x)
    >>> bool(((y * y).mean(dim=1) - 1).abs().max() < 1e-4)
    True
"""
import math

from .. import functional as F
from ..creation import randn, zeros
from ..functional import _checks as checks
from ..ops import cat
from . import init
from .module import Module, Parameter

HE_GAIN = math.sqrt(2)  # the variance-preserving gain for ReLU-like activations (He et al. 2015)


class EqualizedLinear(Module):
    """y = x @ (c * weight).T + lr_mul * bias, with weight ~ N(0, 1 / lr_mul^2) and the constant
    c = lr_mul * gain / sqrt(in_features) applied at run time.

    He's initialisation puts c into the weights once. Here it stays outside them: Adam's step
    is about the same size for every weight whatever its scale, so weights of size 1 all learn
    at the same relative speed, whereas weights initialised small would change relatively faster
    in layers with many inputs. ``lr_mul`` slows a layer down on purpose (StyleGAN's mapping
    network uses 0.01): its weights are stored lr_mul times larger, so the same Adam step moves
    the effective weight lr_mul times less. The bias starts at ``bias_init``."""

    def __init__(self, in_features, out_features, bias=True, gain=HE_GAIN, lr_mul=1.0,
                 bias_init=0.0):
        super().__init__()
        self.in_features = checks._int(in_features, "in_features", 1, "EqualizedLinear")
        self.out_features = checks._int(out_features, "out_features", 1, "EqualizedLinear")
        self.gain, self.lr_mul = gain, lr_mul
        self.scale = lr_mul * gain / math.sqrt(in_features)
        self.weight = Parameter(zeros(out_features, in_features))
        self.bias = Parameter(zeros(out_features)) if bias else None
        init.normal_(self.weight, 0.0, 1.0 / lr_mul)
        if self.bias is not None:
            init.constant_(self.bias, bias_init / lr_mul)

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self.describe()}: expected input with {self.in_features} features "
                             f"in its last dimension, got input shape {x.shape}")
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self):
        text = f"in_features={self.in_features}, out_features={self.out_features}, gain={self.gain:.3g}"
        if self.lr_mul != 1:
            text += f", lr_mul={self.lr_mul:g}"
        return text + ("" if self.bias is not None else ", bias=False")


class EqualizedConv2d(Module):
    """Conv2d with weight ~ N(0, 1) multiplied by gain / sqrt(in_channels * kh * kw) at every
    forward (see EqualizedLinear); the bias starts at 0."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 gain=HE_GAIN):
        super().__init__()
        who = "EqualizedConv2d"
        self.in_channels = checks._int(in_channels, "in_channels", 1, who)
        self.out_channels = checks._int(out_channels, "out_channels", 1, who)
        self.kernel_size = checks._pair(kernel_size, "kernel_size", 1, who)
        self.stride = checks._pair(stride, "stride", 1, who)
        self.padding = checks._pair(padding, "padding", 0, who)
        self.gain = gain
        self.scale = gain / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.weight = Parameter(zeros(out_channels, in_channels, *self.kernel_size))
        self.bias = Parameter(zeros(out_channels)) if bias else None
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, x):
        checks._check_conv_input(self.describe(), x, self.in_channels, self.kernel_size,
                                 self.stride, self.padding, (1, 1))
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        return text + f", gain={self.gain:.3g}" + ("" if self.bias is not None else ", bias=False")


class PixelNorm(Module):
    """x / sqrt(mean over channels of x^2 + eps), at every pixel of every sample.

    Progressive GANs put it after each convolution of the generator instead of BatchNorm: it
    keeps activations from growing without bound when the two networks escalate against each
    other, and it never mixes samples. On a vector z (N, C) it projects the noise onto a sphere
    of radius sqrt(C), which is how the networks of lessons 12 and 13 read their input."""

    def __init__(self, eps=1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return x * ((x * x).mean(dim=1, keepdim=True) + self.eps).rsqrt()

    def extra_repr(self):
        return f"eps={self.eps:g}"


class MinibatchStdDev(Module):
    """Appends one feature map: the standard deviation of each feature over a group of samples,
    averaged over features and positions.

    The batch is split into groups of ``group_size`` (sample i goes to group i mod N/group_size,
    as in the paper); within a group, every feature at every position gets its standard
    deviation across the group's samples, and the mean of these numbers fills the extra map of
    each of the group's samples. A collapsed generator, whose samples are alike, shows a value
    near 0 that no real batch has, so the discriminator can punish it. The batch size must be a
    multiple of the group size (a smaller batch is one group). The 1e-8 keeps the square root's
    slope finite when a group has no spread at all."""

    def __init__(self, group_size=4):
        super().__init__()
        self.group_size = checks._int(group_size, "group_size", 1, "MinibatchStdDev")

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected input of shape (N, C, H, W), got {x.shape}")
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"{self.describe()}: batch size {n} is not a multiple of the group "
                             f"size {g}")
        y = x.reshape(g, n // g, c, h, w)
        y = y - y.mean(dim=0, keepdim=True)
        spread = ((y * y).mean(dim=0) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one per group
        planes = spread.reshape(1, n // g, 1, 1, 1).expand(g, n // g, 1, h, w).reshape(n, 1, h, w)
        return cat([x, planes], dim=1)

    def extra_repr(self):
        return f"group_size={self.group_size}"


class NoiseInjection(Module):
    """x + strength * noise: one Gaussian value per pixel (shared by all channels) scaled by a
    learned strength per channel, zero at the start. ``noise`` (N, 1, H, W) is drawn from
    minigan's RNG when not given.

    StyleGAN's generator gets a fresh noise image at every layer, so the random detail of an
    image (where exactly a stroke frays, a hair lies) need not be made out of the style, and
    the style is left free to say what the image is."""

    def __init__(self, channels):
        super().__init__()
        self.channels = checks._int(channels, "channels", 1, "NoiseInjection")
        self.weight = Parameter(zeros(1, channels, 1, 1))

    def forward(self, x, noise=None):
        if noise is None:
            n, _, h, w = x.shape
            noise = randn(n, 1, h, w, dtype=x.dtype)
        return x + self.weight * noise

    def extra_repr(self):
        return f"{self.channels}"


class AdaIN(Module):
    """Adaptive instance normalisation (Huang & Belongie 2017) as StyleGAN uses it:

        AdaIN(x, w) = scale(w) * (x - mean(x)) / std(x) + bias(w)

    with the mean and standard deviation of each channel of each sample over its positions, and
    (scale, bias) = A(w), a learned affine map (an EqualizedLinear of gain 1) whose scales
    start at 1 and biases at 0. Instance normalisation wipes out the statistics the previous
    layers gave each channel; the style then sets new ones. So each layer's style acts on its
    own layer only, which is what lets styles of different layers be mixed."""

    def __init__(self, channels, w_dim, eps=1e-5):
        super().__init__()
        self.channels = checks._int(channels, "channels", 1, "AdaIN")
        self.eps = eps
        self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        self.style.bias.data[:channels] = 1.0  # the scales' biases: AdaIN starts as plain IN

    def forward(self, x, w):
        checks._check_channels(self.describe(), x, self.channels)
        style = self.style(w)
        n, c = style.shape[0], self.channels
        scale, bias = style[:, :c].reshape(n, c, 1, 1), style[:, c:].reshape(n, c, 1, 1)
        return F.instance_norm(x, eps=self.eps) * scale + bias

    def extra_repr(self):
        return f"{self.channels}, w_dim={self.style.in_features}"

"""Layers: Modules that hold parameters (and buffers) and call ``minigan.functional``.

Names, arguments, parameter shapes, default initialisation and reprs follow PyTorch, so a model
written here reads like its PyTorch twin and their state dicts are interchangeable. Each layer
checks its input and says what it expected, naming itself:

    Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected input with 3 channels, got 4 ...
"""
import math

from .. import functional as F
from ..functional import _checks as checks
from ..creation import zeros
from . import init
from .module import Module, Parameter


def _parameter(*shape):
    """A parameter of the default dtype, zero until a reset_parameters fills it."""
    return Parameter(zeros(shape))


def _default_init(weight, bias):
    """PyTorch's default for Linear and convolutions: kaiming_uniform(a=sqrt(5)), which is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    def forward(self, x):
        return x


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = checks._int(in_features, "in_features", 0, "Linear")
        self.out_features = checks._int(out_features, "out_features", 0, "Linear")
        self.weight = _parameter(out_features, in_features)
        self.bias = _parameter(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _default_init(self.weight, self.bias)

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self.describe()}: expected input with {self.in_features} features in its last "
                f"dimension, got input shape {x.shape}")
        checks._check_floating(self.describe(), x, self.weight)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvBase(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 output_padding, bias, weight_shape):
        super().__init__()
        who = type(self).__name__
        self.in_channels = checks._int(in_channels, "in_channels", 0, who)
        self.out_channels = checks._int(out_channels, "out_channels", 0, who)
        self.kernel_size = checks._pair(kernel_size, "kernel_size", 1, who)
        self.stride = checks._pair(stride, "stride", 1, who)
        self.padding = checks._pair(padding, "padding", 0, who)
        self.dilation = checks._pair(dilation, "dilation", 1, who)
        self.output_padding = checks._pair(output_padding, "output_padding", 0, who)
        self.weight = _parameter(*weight_shape, *self.kernel_size)
        self.bias = _parameter(out_channels) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _default_init(self.weight, self.bias)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvBase):
    """2-D convolution over (N, in_channels, H, W); weight (out, in, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0,
                         bias, (out_channels, in_channels))

    def forward(self, x):
        checks._check_conv_input(self.describe(), x, self.in_channels, self.kernel_size, self.stride,
                                 self.padding, self.dilation)
        checks._check_floating(self.describe(), x, self.weight)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class ConvTranspose2d(_ConvBase):
    """Transposed 2-D convolution (a learnable upsampling); weight (in, out, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True, dilation=1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, bias, (in_channels, out_channels))
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(
                    f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than "
                    f"stride {self.stride} or dilation {self.dilation} in each dimension")

    def forward(self, x):
        checks._check_conv_transpose_input(
            self.describe(), x, self.in_channels, self.kernel_size, self.stride, self.padding,
            self.output_padding, self.dilation)
        checks._check_floating(self.describe(), x, self.weight)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.dilation)


class Embedding(Module):
    """A lookup table: integer indices -> rows of ``weight`` (num_embeddings, embedding_dim),
    initialised N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings = checks._int(num_embeddings, "num_embeddings", 0, "Embedding")
        self.embedding_dim = checks._int(embedding_dim, "embedding_dim", 0, "Embedding")
        self.weight = _parameter(num_embeddings, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)

    def forward(self, indices):
        checks._check_indices(self.describe(), indices, self.num_embeddings)
        return F.embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Zeroes elements with probability p in training mode; the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0). ``inplace`` is accepted for PyTorch's sake (see minigan.nn.activation)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Flatten(Module):
    """Merge dimensions start_dim..end_dim into one; by default all but the batch axis."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``, e.g. (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        if math.prod(self.unflattened_size) != x.shape[dim]:
            raise ValueError(f"{self.describe()}: dimension {self.dim} of input shape {x.shape} has "
                             f"size {x.shape[dim]}, which cannot be split into {self.unflattened_size}")
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

"""In-place initialisers with PyTorch's names and formulas; each returns the tensor it filled.

Random values come from minigan's one generator (``minigan.manual_seed``), so a seed fixes
every initial weight.

    >>> import minigan
    >>> from minigan import nn
    >>> w = nn.Parameter(minigan.zeros(64, 32))
    >>> w = nn.init.normal_(w, 0.0, 0.02)   # the DCGAN paper's initialisation
    >>> round(float(w.numpy().std()), 2)
    0.02
"""
import math

from .. import backend


def _fill(tensor, array):
    """Write ``array`` into ``tensor`` in place. PyTorch code often passes ``weight.data``,
    which in minigan is the raw array itself: that is filled in place too."""
    if backend.is_array(tensor):
        tensor[...] = array
        return tensor
    tensor.data[...] = array
    tensor._modified()
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations' variance steady through a nonlinearity."""
    if nonlinearity in ("linear", "conv2d", "conv_transpose2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope * slope))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """Inputs and outputs each weight element connects: dims 1 and 0 times the kernel size.

    A ConvTranspose2d weight is (in, out, kh, kw), so its "fan_in" comes from the out
    channels, as in PyTorch.
    """
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _empty(tensor):
    """A tensor with no elements: initialising it is a no-op, as in PyTorch (and its fans may
    be 0, which the formulas would divide by)."""
    return math.prod(tensor.shape) == 0


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0):
    return _fill(tensor, backend.uniform(a, b, tensor.shape, tensor.dtype))


def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, backend.normal(mean, std, tensor.shape, tensor.dtype))


def constant_(tensor, val):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    if _empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    if _empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al., 2015); ``a`` is the leaky slope."""
    if _empty(tensor):
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    if _empty(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)

"""Normalisation layers: batch norm (fused in training mode), layer norm, and group and instance
norm (fused).

    >>> import minigan as mg
    >>> from minigan import F
    >>> x = mg.randn(8, 3)
    >>> y = F.batch_norm(x, mg.zeros(3), mg.ones(3), training=True)
    >>> [round(v, 4) + 0.0 for v in y.mean(axis=0).tolist()]
    [0.0, 0.0, 0.0]
"""
from ..backend import xp
from ..ops import normalization
from . import reference
from ._checks import _check_floating, _constant


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (axis 1) of an (N, C) or (N, C, ...) input.

    training: use this batch's mean and biased variance, and move the running statistics
    towards them in place: running = (1 - momentum) * running + momentum * batch, with the
    unbiased variance (PyTorch's convention). Otherwise use the running statistics.
    Training mode runs the fused ``BatchNormTrain`` op; ``reference.batch_norm`` is the
    definition it agrees with.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...), got shape {input.shape}")
    _check_floating("batch_norm", input)
    channels = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"batch_norm: expected {name} of shape ({channels},) for input shape "
                             f"{input.shape} (one value per channel), got {tuple(t.shape)}")
    count = input.numel() // channels
    if training and count <= 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input "
            f"shape {input.shape}; use a larger batch or eval mode")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: eval mode needs running_mean and running_var")
    if reference.enabled():
        return reference.batch_norm(input, running_mean, running_var, weight, bias, training,
                                    momentum, eps)
    stat_shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        weight = weight if weight is not None else _constant(xp.ones(channels, dtype=input.dtype))
        bias = bias if bias is not None else _constant(xp.zeros(channels, dtype=input.dtype))
        axes = (0,) + tuple(range(2, input.ndim))
        out, mean, var = normalization.batch_norm_train(input, weight, bias, axes, eps)
        reference.update_running_stats(running_mean, running_var, mean, var, count, momentum)
        return out
    # y = x * scale + shift with per-channel scale = weight / sqrt(var + eps): two passes over x
    scale = (running_var + eps) ** -0.5
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(stat_shape) + shift.reshape(stat_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing dimensions ``normalized_shape`` (biased variance)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if input.shape[input.ndim - len(shape):] != shape or input.ndim < len(shape):
        raise ValueError(
            f"layer_norm: expected input whose trailing dimensions are {shape}, got input shape "
            f"{input.shape}")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    centred = input - input.mean(axes, keepdims=True)
    out = centred * ((centred * centred).mean(axes, keepdims=True) + eps) ** -0.5
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out



def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each sample's channels in ``num_groups`` groups of C / num_groups neighbours,
    each group by its own mean and biased variance over its channels and positions, then scale
    and shift per channel (Wu & He 2018). The statistics never involve other samples, so train
    and eval modes agree. Runs the fused ``GroupNormTrain`` op; ``reference.group_norm`` is the
    definition it agrees with."""
    who = "group_norm"
    if input.ndim < 2:
        raise ValueError(f"{who}: expected an input of shape (N, C, ...), got shape {input.shape}")
    _check_floating(who, input)
    n, channels = input.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1 \
            or channels % num_groups:
        raise ValueError(f"{who}: num_groups must be a positive int that divides the {channels} "
                         f"channels of input shape {input.shape}, got {num_groups!r}")
    _check_affine(who, input, weight, bias)
    if n * (channels // num_groups) * (input.numel() // max(n * channels, 1)) == 1:
        raise ValueError(f"{who}: expected more than 1 value per group, got input shape "
                         f"{input.shape} with {num_groups} groups")
    if reference.enabled():
        return reference.group_norm(input, num_groups, weight, bias, eps)
    weight, bias = _both(input, weight, bias)
    return normalization.group_norm_train(input, weight, bias, num_groups, eps)[0]


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample over its positions (Ulyanov et al. 2016): group
    norm with one channel per group, the normalisation of style transfer and CycleGAN.
    With running statistics given and ``use_input_stats``, they move towards the batch's
    average per-instance mean and unbiased variance (as in PyTorch); without
    ``use_input_stats`` those running statistics normalise instead (batch norm's eval mode)."""
    who = "instance_norm"
    if input.ndim < 3:
        raise ValueError(f"{who}: expected an input of shape (N, C, ...) with positions, got "
                         f"shape {input.shape}")
    _check_floating(who, input)
    channels = input.shape[1]
    _check_affine(who, input, weight, bias)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"{who}: expected {name} of shape ({channels},) for input shape "
                             f"{input.shape}, got {tuple(t.shape)}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{who}: use_input_stats=False needs running_mean and running_var")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    count = input.numel() // max(input.shape[0] * channels, 1)
    if count <= 1:
        raise ValueError(f"{who}: expected more than 1 spatial element per channel, got input "
                         f"shape {input.shape}")
    if reference.enabled():
        return reference.instance_norm(input, running_mean, running_var, weight, bias, True,
                                       momentum, eps)
    weight, bias = _both(input, weight, bias)
    out, mean, var = normalization.group_norm_train(input, weight, bias, channels, eps)
    if running_mean is not None or running_var is not None:
        reference.update_running_stats(running_mean, running_var, mean.mean(axis=0),
                                       var.mean(axis=0), count, momentum)
    return out


def _check_affine(who, input, weight, bias):
    channels = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"{who}: expected {name} of shape ({channels},) for input shape "
                             f"{input.shape} (one value per channel), got {tuple(t.shape)}")


def _both(input, weight, bias):
    """Weight and bias both, or neither (the fused op takes them together)."""
    if weight is None and bias is None:
        return None, None
    channels = input.shape[1]
    weight = weight if weight is not None else _constant(xp.ones(channels, dtype=input.dtype))
    bias = bias if bias is not None else _constant(xp.zeros(channels, dtype=input.dtype))
    return weight, bias

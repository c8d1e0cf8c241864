"""Normalisation layers: batch norm (fused in training mode) and layer norm.

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


"""Layers and losses as plain functions, with PyTorch's names and signatures.

Everything here is a composition of the primitives in ``ops``, so each function has exact first
and second derivatives without a backward of its own. Convolutions are the clearest case:

    conv2d(x, w)           = w.reshape(O, C*kh*kw) @ im2col(x)          -> (O, N*OH*OW) -> (N, O, OH, OW)
    conv_transpose2d(x, w) = col2im(w.reshape(C, O*kh*kw).T @ x as (C, N*H*W))

(im2col/col2im are unfold/fold with channel-major columns, so each is ONE matrix product.)
They are each other's adjoint, so the gradient of a convolution with respect to its
input is a transposed convolution and the other way round, which is what the primitives'
backward passes compute.

    >>> import minigan as mg
    >>> from minigan import functional as F
    >>> x = mg.randn(2, 3, 8, 8)
    >>> F.conv2d(x, mg.randn(16, 3, 3, 3), padding=1).shape
    (2, 16, 8, 8)
"""

from . import backend, ops
from .autograd import Tensor, _as_tensor, full
from .backend import xp
from .ops import conv_output_size, relu, sigmoid, tanh  # noqa: F401  (re-exported, PyTorch names)

__all__ = [
    "linear", "conv2d", "conv_transpose2d", "batch_norm", "layer_norm", "dropout", "relu",
    "leaky_relu", "tanh", "sigmoid", "softplus", "log_softmax", "softmax", "one_hot",
    "embedding", "pad", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
    "nll_loss", "cross_entropy",
]


# --- argument and input checks (``who`` names the caller in messages: a function or a layer) ---
def _pair(value, name, minimum, who):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(n, int) and n >= minimum for n in pair):
        raise ValueError(f"{who}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair


def _check_ndim(who, x, allowed, layout):
    if x.ndim not in allowed:
        wanted = " or ".join(f"{n}-D" for n in allowed)
        raise ValueError(
            f"{who}: expected a {wanted} input {layout}, got a {x.ndim}-D input of shape {x.shape}")


def _check_channels(who, x, expected):
    if x.shape[1] != expected:
        raise ValueError(
            f"{who}: expected input with {expected} channels, got {x.shape[1]} (input shape {x.shape})")


def _check_conv_input(who, x, channels, kernel, stride, padding, dilation):
    """Refuse what conv2d cannot take; return the output's spatial size (OH, OW)."""
    _check_ndim(who, x, (4,), "(N, C, H, W)")
    _check_channels(who, x, channels)
    (h, w), (kh, kw), (ph, pw), (dh, dw) = x.shape[2:], kernel, padding, dilation
    out = (conv_output_size(h, kh, stride[0], ph, dh), conv_output_size(w, kw, stride[1], pw, dw))
    if min(out) <= 0:
        raise ValueError(
            f"{who}: kernel {kh}x{kw} (dilation {dh}x{dw}) is larger than the padded input "
            f"{h + 2 * ph}x{w + 2 * pw} (input shape {x.shape}, padding {ph}x{pw})")
    return out


def _transposed_output_size(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _check_conv_transpose_input(who, x, channels, kernel, stride, padding, output_padding, dilation):
    """Refuse what conv_transpose2d cannot take; return the output's spatial size (OH, OW)."""
    _check_ndim(who, x, (4,), "(N, C, H, W)")
    _check_channels(who, x, channels)
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):  # a larger output_padding would only add rows no window reaches
            raise ValueError(
                f"{who}: output_padding {output_padding} must be smaller than stride {stride} "
                f"or dilation {dilation} in each dimension")
    out = tuple(_transposed_output_size(n, *args) for n, *args in zip(
        x.shape[2:], kernel, stride, padding, output_padding, dilation))
    if min(out) <= 0:
        raise ValueError(
            f"{who}: the output would be {out[0]}x{out[1]} for input shape {x.shape} (kernel "
            f"{kernel[0]}x{kernel[1]}, stride {stride}, padding {padding}); reduce the padding")
    return out


def _check_same_shape(who, input, target):
    if input.shape != target.shape:
        raise ValueError(
            f"{who}: target shape {target.shape} differs from input shape {input.shape}; "
            "reshape one of them (broadcasting here usually hides a bug)")


def _reduce(loss, reduction, who):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _constant(array):
    return Tensor(array)


# --- layers ----------------------------------------------------------------------------------
def linear(input, weight, bias=None):
    """input @ weight.T + bias, with weight of shape (out_features, in_features)."""
    if weight.ndim != 2 or (bias is not None and tuple(bias.shape) != (weight.shape[0],)):
        raise ValueError(
            f"linear: expected a 2-D weight and a bias of shape (out_features,), got weight "
            f"{weight.shape} and bias {None if bias is None else bias.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected input with {weight.shape[1]} features in its last dimension, "
            f"got input shape {input.shape}")
    rows = input if input.ndim == 2 else input.reshape(-1, weight.shape[1])
    out = ops.Linear.apply(rows, weight, *(() if bias is None else (bias,)))
    return out if input.ndim == 2 else out.reshape(*input.shape[:-1], weight.shape[0])


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation of (N, C, H, W) with a weight of shape (O, C, kh, kw).

    Each output position is one column of ``unfold(input)`` times the flattened kernels, so
    the whole convolution is a single (batched) matrix product.
    """
    stride = _pair(stride, "stride", 1, "conv2d")
    padding = _pair(padding, "padding", 0, "conv2d")
    dilation = _pair(dilation, "dilation", 1, "conv2d")
    out_channels, channels, kh, kw = weight.shape
    _check_conv_input("conv2d", input, channels, (kh, kw), stride, padding, dilation)
    # weight (O, C*kh*kw) @ im2col(input) (C*kh*kw, N*OH*OW): one matrix product, as one op
    return ops.conv2d(input, weight, bias, (kh, kw), stride, padding, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """Transposed convolution (the input-gradient of conv2d) with weight (C, O, kh, kw).

    Every input pixel scatters its kernel-weighted copy into the output: one matrix product
    gives all copies as columns, and fold sums the overlapping ones into place. Output size
    per axis: (H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    """
    who = "conv_transpose2d"
    stride = _pair(stride, "stride", 1, who)
    padding = _pair(padding, "padding", 0, who)
    output_padding = _pair(output_padding, "output_padding", 0, who)
    dilation = _pair(dilation, "dilation", 1, who)
    channels, out_channels, kh, kw = weight.shape
    size = _check_conv_transpose_input(
        who, input, channels, (kh, kw), stride, padding, output_padding, dilation)
    if all(op < s for op, s in zip(output_padding, stride)):
        # = col2im(weight.reshape(C, O*kh*kw).T @ input as (C, N*H*W)), as one op
        out = ops.conv_transpose2d(input, weight, size, (kh, kw), stride, padding, dilation)
        return _add_channel_bias(out, bias)
    n, _, h, w = input.shape
    # channel-major input (free when it came from a convolution): one matrix product for all images
    rows = input.permute(1, 0, 2, 3).reshape(channels, n * h * w)
    cols = weight.reshape(channels, out_channels * kh * kw).T @ rows
    # output_padding >= stride (allowed when dilation is larger): fold the whole unpadded
    # image, append the output_padding rows no window reaches, then crop the padding away.
    whole = tuple(_transposed_output_size(n, k, s, 0, 0, d)
                  for n, k, s, d in zip((h, w), (kh, kw), stride, dilation))
    out = ops.col2im(cols, n, whole, (kh, kw), stride, 0, dilation)
    out = pad(out, (0, output_padding[1], 0, output_padding[0]))
    (ph, pw), (oh, ow) = padding, size
    return _add_channel_bias(out[:, :, ph:ph + oh, pw:pw + ow], bias)


def _add_channel_bias(out, bias):
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (axis 1) of an (N, C) or (N, C, ...) input.

    training: use this batch's mean and biased variance, and move the running statistics
    towards them in place: running = (1 - momentum) * running + momentum * batch, with the
    unbiased variance (PyTorch's convention). Otherwise use the running statistics.
    Training mode runs the fused ``ops.BatchNormTrain`` (exact closed-form backward, and the
    primitives' derivative when the backward is recorded, so it is twice differentiable).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...), got shape {input.shape}")
    channels = input.shape[1]
    stat_shape = (1, channels) + (1,) * (input.ndim - 2)
    axes = (0,) + tuple(range(2, input.ndim))
    if training:
        count = input.size // channels
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"shape {input.shape}; use a larger batch or eval mode")
        weight = weight if weight is not None else _constant(xp.ones(channels, dtype=input.dtype))
        bias = bias if bias is not None else _constant(xp.zeros(channels, dtype=input.dtype))
        out, mean, var = ops.batch_norm_train(input, weight, bias, axes, eps)
        if running_mean is not None:
            _update_running(running_mean, mean, momentum)
        if running_var is not None:
            _update_running(running_var, var * (count / (count - 1)), momentum)
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: eval mode needs running_mean and running_var")
    # y = x * scale + shift with per-channel scale = weight / sqrt(var + eps): two passes over x
    scale = (running_var + eps) ** -0.5
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(stat_shape) + shift.reshape(stat_shape)


def _update_running(buffer, batch_value, momentum):
    """In place, outside the graph: optimisers and the state dict keep the same array."""
    buffer.data[...] = (1.0 - momentum) * buffer.data + momentum * batch_value.reshape(buffer.shape)


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


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout),
    so evaluation needs no rescaling. The mask is drawn from minigan's one generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = backend.rand(input.shape, input.dtype) >= p
    return input * _constant(keep.astype(input.dtype) * (1.0 / (1.0 - p)))


# --- activations -----------------------------------------------------------------------------
def leaky_relu(input, negative_slope=0.01):
    return ops.leaky_relu(input, negative_slope)


def softplus(input, beta=1.0):
    """log(1 + exp(beta * x)) / beta, without overflow for any x.

    For z > 0 it is computed as z + log1p(exp(-z)), otherwise as log1p(exp(z)), so exp only
    ever sees z <= 0. Each branch gets a clamped copy of z, so the unused branch stays finite
    and its (zeroed) gradient cannot turn into 0 * inf = nan. The derivative is sigmoid(beta x)
    everywhere, including x = 0.
    """
    z = input * beta if beta != 1.0 else input
    positive, negative = ops.clamp(z, min=0.0), ops.clamp(z, max=0.0)
    out = ops.where(z.data > 0, positive + ops.log1p(ops.exp(-positive)),
                    ops.log1p(ops.exp(negative)))
    return out * (1.0 / beta) if beta != 1.0 else out


def log_softmax(input, dim):
    """x - logsumexp(x) along ``dim``. The max is subtracted first so exp never overflows; it
    is held constant because the result does not depend on the shift."""
    shifted = input - input.max(dim, keepdims=True).detach()
    return shifted - ops.log(ops.exp(shifted).sum(dim, keepdims=True))


def softmax(input, dim):
    e = ops.exp(input - input.max(dim, keepdims=True).detach())
    return e / e.sum(dim, keepdims=True)


# --- indices ---------------------------------------------------------------------------------
def _check_indices(who, indices, upper):
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{who}: expected integer indices, got dtype {indices.dtype}")
    if indices.size and (int(indices.data.min()) < 0 or int(indices.data.max()) >= upper):
        raise ValueError(
            f"{who}: indices must lie in [0, {upper}), got values from {int(indices.data.min())} "
            f"to {int(indices.data.max())}")


def one_hot(input, num_classes=-1):
    """Integer indices of shape S -> int64 one-hot of shape S + (num_classes,)."""
    input = _as_tensor(input, None)
    if num_classes == -1:
        num_classes = int(input.data.max()) + 1 if input.size else 0
    _check_indices("one_hot", input, num_classes)
    return Tensor(xp.eye(num_classes, dtype=xp.int64)[input.data])


def embedding(input, weight):
    """Rows of ``weight`` picked by integer indices: shape input.shape + (embedding_dim,).
    The backward scatter-adds into the rows that were picked (repeated indices add up)."""
    input = _as_tensor(input, None)
    _check_indices("embedding", input, weight.shape[0])
    return weight[input]


def pad(input, pad, mode="constant", value=0.0):
    """Constant padding, PyTorch's order: (left, right) for the last axis, then (top, bottom)
    for the one before, and so on."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or any(n < 0 for n in pad):
        raise ValueError(
            f"pad: expected an even number of non-negative sizes, at most 2 per axis of the "
            f"{input.ndim}-D input, got {pad}")
    out = input
    for i in range(len(pad) // 2):
        axis = input.ndim - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        pieces = [out]
        if before:
            pieces.insert(0, full(out.shape[:axis] + (before,) + out.shape[axis + 1:], value, dtype=out.dtype))
        if after:
            pieces.append(full(out.shape[:axis] + (after,) + out.shape[axis + 1:], value, dtype=out.dtype))
        if len(pieces) > 1:
            out = ops.cat(pieces, axis)
    return out


# --- losses ----------------------------------------------------------------------------------
def _capped_log(p):
    """log p, but never below -100 (PyTorch's cap in binary_cross_entropy), so a saturated
    sigmoid (exactly 0 or 1 in float32) gives a finite loss. Where p == 0 the log sees 1
    instead: the chosen branch is the constant -100 and no 0 * inf reaches the gradient."""
    positive = p.data > 0
    return ops.clamp(ops.where(positive, ops.log(ops.where(positive, p, 1.0)), -100.0), min=-100.0)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)) for probabilities x in [0, 1]. Prefer
    binary_cross_entropy_with_logits, which is exact where the sigmoid saturates."""
    who = "binary_cross_entropy"
    target = _as_tensor(target, input)
    _check_same_shape(who, input, target)
    if input.size and (float(input.data.min()) < 0.0 or float(input.data.max()) > 1.0):
        raise ValueError(f"{who}: input must hold probabilities in [0, 1] (apply sigmoid first, "
                         "or use binary_cross_entropy_with_logits on the raw scores)")
    loss = -(target * _capped_log(input) + (1.0 - target) * _capped_log(1.0 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, who)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of sigmoid(x), computed from the logits x without forming sigmoid:

        -(w_p t log s(x) + (1 - t) log(1 - s(x))) = (1 - t) x + (1 + (w_p - 1) t) softplus(-x)

    using log s(x) = -softplus(-x) and log(1 - s(x)) = -x - softplus(-x). Finite for any
    logit (+-100 included); ``pos_weight`` (w_p) scales the positive term per class.
    """
    who = "binary_cross_entropy_with_logits"
    target = _as_tensor(target, input)
    _check_same_shape(who, input, target)
    log_weight = 1.0 if pos_weight is None else 1.0 + (pos_weight - 1.0) * target
    loss = (1.0 - target) * input + log_weight * softplus(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, who)


def mse_loss(input, target, reduction="mean"):
    target = _as_tensor(target, input)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def _class_axis_last_to_1(t):
    """(N, d1, ..., C) -> (N, C, d1, ...): one_hot puts classes last, the losses want axis 1."""
    if t.ndim <= 2:
        return t
    return t.permute(0, t.ndim - 1, *range(1, t.ndim - 1))


def nll_loss(input, target, weight=None, reduction="mean"):
    """Negative log-likelihood of class indices, from log-probabilities with classes on axis 1
    (axis 0 for one unbatched sample). 'mean' divides by the summed weights of the targets."""
    who = "nll_loss"
    target = _as_tensor(target, None)
    class_axis = 0 if input.ndim == 1 else 1
    classes = input.shape[class_axis]
    expected = input.shape[:class_axis] + input.shape[class_axis + 1:]
    if target.shape != expected:
        raise ValueError(f"{who}: expected target shape {expected} for input shape {input.shape}, "
                         f"got {target.shape}")
    _check_indices(who, target, classes)
    picked = _constant(_class_axis_last_to_1(one_hot(target, classes)).data.astype(input.dtype))
    loss = -(input * picked).sum(class_axis)
    if weight is None:
        return _reduce(loss, reduction, who)
    target_weight = _as_tensor(weight, input)[target]
    loss = loss * target_weight
    if reduction == "mean":
        return loss.sum() / target_weight.sum()
    return _reduce(loss, reduction, who)


def cross_entropy(input, target, weight=None, reduction="mean"):
    """Softmax cross-entropy from raw scores, classes on axis 1 (axis 0 unbatched).

    ``target`` holds class indices (integers, shape of input without the class axis) or class
    probabilities (floats, the input's shape). Built on log_softmax, so large scores are safe.
    """
    class_axis = 0 if input.ndim == 1 else 1
    log_p = log_softmax(input, class_axis)
    target = _as_tensor(target, input)
    if target.dtype.kind in "iu":
        return nll_loss(log_p, target, weight, reduction)
    _check_same_shape("cross_entropy", input, target)
    if weight is not None:
        stat_shape = tuple(n if i == class_axis else 1 for i, n in enumerate(input.shape))
        target = target * _as_tensor(weight, input).reshape(stat_shape)
    loss = -(log_p * target).sum(class_axis)
    return _reduce(loss, reduction, "cross_entropy")

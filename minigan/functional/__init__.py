"""Layers and losses as plain functions, with PyTorch's names and signatures (``minigan.F``).

    linear          linear, conv2d, conv_transpose2d           (fused ops)
    normalization   batch_norm (fused in training), layer_norm, group_norm, instance_norm (fused)
    activation      relu, leaky_relu, tanh, sigmoid, softplus, softmax, log_softmax, dropout
    indexing        one_hot, embedding
    padding         pad (constant, reflect, replicate, circular; fused)
    pooling         max_pool2d, avg_pool2d (fused), adaptive_avg_pool2d
    sampling        interpolate (nearest, bilinear, area), pixel_shuffle, pixel_unshuffle
    loss            binary_cross_entropy(_with_logits), mse_loss, nll_loss, cross_entropy,
                    l1_loss, smooth_l1_loss, kl_div
    reference       the definitions of the fused ops, as compositions of primitives

Everything but the fused ops is itself a composition of primitives, with exact first and second
derivatives and no backward of its own. The fused ops agree with their definitions in
``reference``; ``minigan.use_reference()`` routes every layer through those.
"""
from ..kernels import conv_output_size  # noqa: F401
from . import reference  # noqa: F401
from .activation import (
    dropout, dropout2d, elu, gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, softplus, tanh,
)
from .indexing import embedding, one_hot
from .linear import conv2d, conv_transpose2d, linear
from .loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss,
)
from .loss import kl_div, l1_loss, smooth_l1_loss
from .normalization import batch_norm, group_norm, instance_norm, layer_norm
from .padding import pad
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .sampling import interpolate, pixel_shuffle, pixel_unshuffle
from .reference import use_reference  # noqa: F401

__all__ = [
    "linear", "conv2d", "conv_transpose2d", "batch_norm", "layer_norm", "dropout", "dropout2d",
    "gelu", "silu", "elu", "relu",
    "leaky_relu", "tanh", "sigmoid", "softplus", "log_softmax", "softmax", "one_hot",
    "embedding", "pad", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
    "nll_loss", "cross_entropy",
    "l1_loss", "smooth_l1_loss", "kl_div",
    "group_norm", "instance_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "interpolate", "pixel_shuffle", "pixel_unshuffle",
]

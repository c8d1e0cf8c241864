"""Normalisation layers: batch norm, layer norm, instance norm and group norm, with PyTorch's
names, defaults, reprs and state dict keys.

    >>> from minigan import nn
    >>> list(nn.InstanceNorm2d(3, affine=True, track_running_stats=True).state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    >>> nn.GroupNorm(2, 4)
    GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)
"""
import warnings

from .. import functional as F
from ..functional import _checks as checks
from ..creation import zeros
from ..backend import int64
from . import init
from .layers import _parameter
from .module import Module


class _NormBase(Module):
    """Per-channel weight and bias (``affine``) and running statistics as buffers
    (``track_running_stats``), under PyTorch's names: weight, bias, running_mean, running_var,
    num_batches_tracked."""

    _input_ndims = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 *, bias=True):
        super().__init__()
        self.num_features = checks._int(num_features, "num_features", 0, type(self).__name__)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = _parameter(num_features) if affine else None
        self.bias = _parameter(num_features) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features))
            self.register_buffer("running_var", zeros(num_features))
            self.register_buffer("num_batches_tracked", zeros((), dtype=int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, x):
        who = self.describe()
        checks._check_ndim(who, x, self._input_ndims, self._layout)
        checks._check_channels(who, x, self.num_features)
        checks._check_floating(who, x, self.weight)
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if momentum is None:  # a cumulative average of all batches seen so far
                momentum = 1.0 / int(self.num_batches_tracked.item())
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C."""

    _input_ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C."""

    _input_ndims = (4,)
    _layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` dimensions."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = _parameter(*shape) if elementwise_affine else None
        self.bias = _parameter(*shape) if elementwise_affine and bias else None
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        if x.shape[max(x.ndim - len(self.normalized_shape), 0):] != self.normalized_shape:
            raise ValueError(f"{self.describe()}: expected input whose trailing dimensions are "
                             f"{self.normalized_shape}, got input shape {x.shape}")
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class _InstanceNorm(_NormBase):
    """Each channel of each sample normalised by its own mean and variance over its positions.
    PyTorch's defaults: no affine parameters and no running statistics; with
    ``track_running_stats`` the running ones are kept in training and used in eval mode."""

    _spatial = 0

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)

    def forward(self, x):
        who = self.describe()
        checks._check_ndim(who, x, self._input_ndims, self._layout)
        channel_axis = x.ndim - self._spatial - 1
        if x.shape[channel_axis] != self.num_features:
            if self.affine or self.track_running_stats:
                checks._check_channels(who, x if channel_axis else x.unsqueeze(0), self.num_features)
            warnings.warn(f"{who}: the input has {x.shape[channel_axis]} channels, not "
                          f"num_features={self.num_features} (unused, as affine=False)", stacklevel=2)
        checks._check_floating(who, x, self.weight)
        batched = x if channel_axis else x.unsqueeze(0)
        out = F.instance_norm(batched, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out if channel_axis else out.squeeze(0)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or unbatched (C, L) inputs."""

    _input_ndims, _spatial = (2, 3), 1
    _layout = "(N, C, L) or (C, L)"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or unbatched (C, H, W) inputs (style transfer,
    CycleGAN, pix2pix)."""

    _input_ndims, _spatial = (3, 4), 2
    _layout = "(N, C, H, W) or (C, H, W)"


class GroupNorm(Module):
    """Group normalisation: each sample's ``num_channels`` channels in ``num_groups`` groups,
    each group normalised by its own statistics, then a per-channel weight and bias
    (``affine``). No running statistics: train and eval modes compute the same."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True):
        super().__init__()
        self.num_groups = checks._int(num_groups, "num_groups", 1, "GroupNorm")
        self.num_channels = checks._int(num_channels, "num_channels", 0, "GroupNorm")
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps, self.affine = eps, affine
        self.weight = _parameter(num_channels) if affine else None
        self.bias = _parameter(num_channels) if affine and bias else None
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        who = self.describe()
        if x.ndim < 2:
            raise ValueError(f"{who}: expected an input of shape (N, C, ...), got shape {x.shape}")
        checks._check_channels(who, x, self.num_channels)
        checks._check_floating(who, x, self.weight)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

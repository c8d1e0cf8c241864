"""Resampling layers: Upsample (and its fixed-mode forms UpsamplingNearest2d and
UpsamplingBilinear2d), PixelShuffle and PixelUnshuffle, with PyTorch's arguments and reprs.

    >>> import minigan as mg
    >>> from minigan import nn
    >>> up = nn.Upsample(scale_factor=2, mode="bilinear")
    >>> up, up(mg.zeros(1, 3, 4, 4)).shape
    (Upsample(scale_factor=2.0, mode='bilinear'), (1, 3, 8, 8))
    >>> nn.PixelShuffle(2)(mg.zeros(1, 12, 4, 4)).shape
    (1, 3, 8, 8)
"""
from .. import functional as F
from ..functional import _checks as checks
from ..functional.sampling import MODES
from .module import Module


class Upsample(Module):
    """F.interpolate as a layer: to ``size`` or by ``scale_factor``, with ``mode`` 'nearest'
    (default), 'nearest-exact', 'linear', 'bilinear' or 'area'."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        who = type(self).__name__
        if mode not in MODES:
            raise ValueError(f"{who}: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{who}: give exactly one of size and scale_factor")
        self.name = who
        self.size = tuple(size) if isinstance(size, list) else size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(s) for s in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        what = (f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None
                else f"size={self.size!r}")
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Upsample(mode='nearest') of (N, C, H, W) inputs."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample(mode='bilinear', align_corners=True) of (N, C, H, W) inputs."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r): channels become r x r blocks of pixels."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = checks._int(upscale_factor, "upscale_factor", 1, "PixelShuffle")

    def forward(self, x):
        return F.pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W): the inverse of PixelShuffle."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = checks._int(downscale_factor, "downscale_factor", 1, "PixelUnshuffle")

    def forward(self, x):
        return F.pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"

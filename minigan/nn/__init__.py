"""Neural-network building blocks with PyTorch's names: Module, Parameter, Sequential, layers,
``init`` (initialisers) and ``utils`` (clip_grad_norm_, clip_grad_value_, spectral_norm,
remove_spectral_norm, as in torch.nn.utils). ``nn.functional`` is ``minigan.functional``."""
from .. import functional
from . import init
from .activation import ELU, GELU, Dropout2d, LogSoftmax, SiLU, Softmax, Softplus
from .layers import (
    Conv2d, ConvTranspose2d, Dropout, Embedding, Flatten, Identity, LeakyReLU, Linear, ReLU, Sigmoid,
    Tanh, Unflatten,
)
from .normalization import (
    BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm,
)
from .padding import (
    CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, ReflectionPad1d, ReflectionPad2d,
    ReplicationPad1d, ReplicationPad2d, ZeroPad1d, ZeroPad2d,
)
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sampling import PixelShuffle, PixelUnshuffle, Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .container import ModuleDict, ModuleList, Sequential
from .gan_blocks import AdaIN, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, NoiseInjection, PixelNorm
from .loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
)
from .module import Module, Parameter
from .spectral_norm import remove_spectral_norm, spectral_norm
from . import utils

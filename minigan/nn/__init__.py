"""Neural-network building blocks with PyTorch's names: Module, Parameter, Sequential, layers,
``init`` (initialisers) and ``utils`` (clip_grad_norm_, clip_grad_value_, spectral_norm,
remove_spectral_norm, as in torch.nn.utils). ``nn.functional`` is ``minigan.functional``."""
from .. import functional
from . import init
from .activation import ELU, GELU, Dropout2d, LogSoftmax, SiLU, Softmax, Softplus
from .layers import (
    BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Embedding, Flatten, Identity,
    LayerNorm, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, Unflatten,
)
from .container import ModuleDict, ModuleList, Sequential
from .loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
)
from .module import Module, Parameter
from .spectral_norm import remove_spectral_norm, spectral_norm
from . import utils

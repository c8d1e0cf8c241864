"""Neural-network building blocks with PyTorch's names: Module, Parameter, Sequential, layers,
and ``init`` (initialisers). ``nn.functional`` is ``minigan.functional``."""
from .. import functional
from . import init
from .layers import (
    BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Embedding, Flatten, Identity,
    LayerNorm, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, Unflatten,
)
from .module import Module, Parameter, Sequential

"""``minigan.nn.functional`` is ``minigan.functional``, under PyTorch's other name for it, so
``import torch.nn.functional as F`` becomes ``import minigan.nn.functional as F``.

    >>> import minigan.nn.functional as F
    >>> import minigan
    >>> F.relu is minigan.functional.relu
    True
"""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401

"""``minigan.cuda``: what PyTorch code asks before it picks a device.

    >>> import minigan as torch          # tutorial code, unchanged but for the import
    >>> device = "cuda" if torch.cuda.is_available() else "cpu"
    >>> torch.zeros(2, device=device).shape
    (2,)

``is_available()`` is true when minigan runs on CuPy (``MINIGAN_BACKEND=cupy``): then "cuda" is
the GPU that holds every array. On NumPy it is false, and "cpu" is the only device.
"""
from . import backend


def is_available():
    return backend.on_gpu


def device_count():
    return backend.xp.cuda.runtime.getDeviceCount() if backend.on_gpu else 0


class device:
    """A device name, as ``torch.device("cuda")`` or ``torch.device("cpu", 0)`` gives one."""

    def __init__(self, type, index=None):
        type = str(type)
        if ":" in type:
            type, index = type.split(":")[0], int(type.split(":")[1])
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

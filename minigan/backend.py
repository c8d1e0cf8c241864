"""The array backend: the one module that imports numpy or cupy for array math.

``MINIGAN_BACKEND`` (``numpy`` by default, or ``cupy``) is read once, at import. Everything else
in the engine does its array work through ``xp`` from here, so the same code runs on a CPU or an
NVIDIA GPU.

Random numbers come from one host-side NumPy generator (PCG64) shared by initialisation, noise,
dropout and shuffling. Drawing on the host and moving the result to the device keeps runs
reproducible across backends (the same seed gives the same weights on NumPy and CuPy) and makes
the generator's state a small dict that checkpoints can store without pickle.

On Linux, importing minigan also tells the C library's allocator to keep freed memory (see
``keep_freed_memory``); ``MINIGAN_MALLOC=system`` leaves the allocator as it was.
"""
import ctypes
import os
import sys

import numpy as _np

_BACKENDS = ("numpy", "cupy")


class BackendError(RuntimeError):
    """The backend asked for in MINIGAN_BACKEND cannot be used here."""


def _load_backend(name):
    if name not in _BACKENDS:
        raise BackendError(
            f"MINIGAN_BACKEND={name!r} is not a known backend; use one of {', '.join(_BACKENDS)} "
            f"(unset it for the default, numpy)."
        )
    if name == "numpy":
        return _np
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "MINIGAN_BACKEND=cupy was asked for but CuPy is not installed "
            f"({exc}); install it with `pip install 'minigan[gpu]'` (cupy-cuda12x) on a machine "
            "with an NVIDIA GPU, or unset MINIGAN_BACKEND to use numpy."
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken: CuPy raises its own runtime errors
        raise BackendError(
            f"MINIGAN_BACKEND=cupy was asked for but CuPy cannot reach a CUDA device ({exc}); "
            "check the NVIDIA driver with `nvidia-smi`, or unset MINIGAN_BACKEND to use numpy."
        ) from None
    if count == 0:
        raise BackendError(
            "MINIGAN_BACKEND=cupy was asked for but no CUDA device is visible; "
            "check CUDA_VISIBLE_DEVICES and `nvidia-smi`, or unset MINIGAN_BACKEND to use numpy."
        )
    return cupy


# glibc's mallopt parameters (malloc.h) and the values minigan sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20   # blocks up to 32 MiB come from the heap (glibc's largest allowed)
TRIM_THRESHOLD = 256 << 20  # the heap gives memory back only when 256 MiB at its top are free


def keep_freed_memory():
    """Ask glibc's malloc to keep the memory of freed arrays for the next ones; True if it did.

    A training step allocates and frees the same arrays of megabytes every time. By default
    glibc maps a big block freshly and unmaps it when it is freed (or trims the heap once enough
    at its top is free), so the next step's array is new memory, and each 4 KiB page of it costs
    a page fault when it is first written: thousands per step, 4-14% of the GAN steps measured
    in docs/benchmarks.md. With both thresholds fixed, blocks up to 32 MiB come from the heap and
    stay there for reuse. The price: a process keeps up to 256 MiB of freed memory instead of
    handing it back. Nothing is changed where ``MINIGAN_MALLOC=system`` is set, where the user
    chose glibc's own settings (a ``MALLOC_*_THRESHOLD_`` variable), or off Linux."""
    if os.environ.get("MINIGAN_MALLOC", "").strip().lower() == "system" or not sys.platform.startswith("linux"):
        return False
    if any(os.environ.get(f"MALLOC_{k}_THRESHOLD_") for k in ("MMAP", "TRIM")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (or a libc without mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


keeps_freed_memory = keep_freed_memory()

name = os.environ.get("MINIGAN_BACKEND", "numpy").strip().lower() or "numpy"
xp = _load_backend(name)
on_gpu = name == "cupy"

float32 = xp.float32
float64 = xp.float64
int64 = xp.int64
_default_dtype = xp.dtype(xp.float32)


def device_name():
    """Where arrays live: "cpu" with NumPy, "cuda:0" with CuPy (PyTorch's names)."""
    return f"cuda:{xp.cuda.Device().id}" if on_gpu else "cpu"


def check_device(device, who="to"):
    """Accept PyTorch's device names for the backend in use ("cpu" with NumPy; "cuda" or
    "cuda:N" with CuPy) and refuse the others with a sentence on what to change. Arrays are
    never moved: one backend holds them all."""
    if device is None:
        return device_name()
    name = str(getattr(device, "type", device)).lower()
    kind = name.split(":")[0]
    if kind == "cuda" and on_gpu or kind == "cpu" and not on_gpu:
        return device_name()
    if kind == "cuda":
        raise RuntimeError(f"{who}: device {device!r} asked for, but minigan runs on NumPy here; "
                           "set MINIGAN_BACKEND=cupy on a machine with an NVIDIA GPU "
                           "(torch.cuda.is_available() is False here, so tutorial code picks 'cpu')")
    if kind == "cpu":
        raise RuntimeError(f"{who}: device 'cpu' asked for, but minigan runs on the GPU "
                           "(MINIGAN_BACKEND=cupy); unset MINIGAN_BACKEND to run on the CPU")
    raise RuntimeError(f"{who}: unknown device {device!r}; minigan knows 'cpu' and 'cuda'")


def get_default_dtype():
    """The floating dtype new tensors get when none is given (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype):
    """Set the default floating dtype: float32 for training, float64 for gradient checks."""
    global _default_dtype
    dtype = xp.dtype(dtype)
    if dtype not in (xp.dtype(xp.float32), xp.dtype(xp.float64)):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _default_dtype = dtype


def asarray(data, dtype=None):
    """Put host or device data on this backend as an array (no copy when it already is one)."""
    return xp.asarray(data, dtype=dtype)


def to_numpy(array):
    """A NumPy array with the same values, for plotting, saving and printing."""
    if on_gpu and isinstance(array, xp.ndarray):
        return xp.asnumpy(array)
    return _np.asarray(array)


def is_array(obj):
    return isinstance(obj, (xp.ndarray, _np.ndarray))


def index_add(target, index, values):
    """target[index] += values, adding repeated indices once each (scatter-add)."""
    if on_gpu:
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        _np.add.at(target, index, values)


# --- the one random generator -------------------------------------------------------------------
_rng = _np.random.default_rng(0)


def manual_seed(seed):
    """Seed the generator behind every random draw in minigan."""
    global _rng
    _rng = _np.random.default_rng(int(seed))


def rng():
    """The host-side generator itself (NumPy Generator), for host code such as shuffling."""
    return _rng


def get_rng_state():
    """The generator's state as a plain dict of ints and strings (checkpoint-safe)."""
    return _rng.bit_generator.state


def set_rng_state(state):
    _rng.bit_generator.state = state


def _on_device(host, dtype):
    return xp.asarray(host.astype(dtype, copy=False))


def randn(shape, dtype=None):
    dtype = _np.dtype(dtype or _default_dtype.name)
    return _on_device(_rng.standard_normal(shape, dtype=dtype), dtype)


def rand(shape, dtype=None):
    dtype = _np.dtype(dtype or _default_dtype.name)
    return _on_device(_rng.random(shape, dtype=dtype), dtype)


def uniform(low, high, shape, dtype=None):
    dtype = _np.dtype(dtype or _default_dtype.name)
    return _on_device(_rng.uniform(low, high, shape), dtype)


def normal(mean, std, shape, dtype=None):
    dtype = _np.dtype(dtype or _default_dtype.name)
    return _on_device(_rng.normal(mean, std, shape), dtype)


def randint(low, high, shape):
    return xp.asarray(_rng.integers(low, high, shape))


def permutation(n):
    """A host-side (NumPy) permutation of range(n), for shuffling datasets."""
    return _rng.permutation(n)

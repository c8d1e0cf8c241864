"""What the benchmark ran on, for the header of every table: a figure without its machine
cannot be compared with anything (the ratio to PyTorch moves with the CPU and the BLAS)."""
import ctypes
import glob
import os
import platform


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas():
    """NumPy's BLAS with its version and, for OpenBLAS, the kernel set it picked for this CPU."""
    import numpy

    try:
        info = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{info.get('name')} {info.get('version')}"
    except Exception:  # older NumPy: no dict form of the build configuration
        name = "unknown BLAS"
    for lib in glob.glob(os.path.join(os.path.dirname(numpy.__file__) + ".libs", "*openblas*")):
        handle = ctypes.CDLL(lib)
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                       "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(handle, symbol):
                getter = getattr(handle, symbol)
                getter.restype = ctypes.c_char_p
                return f"{name}, core {getter().decode()}"
    return name


def describe(torch_version=None):
    import numpy

    parts = [cpu_model(), f"{os.cpu_count()} cores", f"NumPy {numpy.__version__} ({blas()})"]
    if torch_version:
        parts.append(f"PyTorch {torch_version}")
    parts.append(f"Python {platform.python_version()}")
    return "; ".join(parts)


def load_average():
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"

"""Two other ways to compute a 3x3 stride-1 convolution, timed against the engine's.

The engine computes a convolution by copying each output position's k*k windows into columns
and multiplying once (``minigan.kernels.conv2d``; a layer narrowing to half its channels or
fewer copies windows of its narrow side instead). For the few-channel 3x3 layers of the
progressive GAN and StyleGAN that product runs well below the BLAS's peak, so two rearrangements
that do less copying or less arithmetic are worth measuring:

- Winograd F(2x2, 3x3) (Lavin & Gray 2016): each 4x4 input tile and each 3x3 kernel are
  transformed so that a 2x2 output tile costs 16 multiplications instead of 36; the products
  become 16 matrix products over C channels, and the transforms are element-wise passes.
- column shifts only: copy the kw horizontal shifts of the padded image (3 copies instead of 9)
  and read the kernel's rows as row-offset views of that copy: kh products over C*kw terms,
  summed, instead of one over C*kh*kw.

Both are written here in plain NumPy over the same batch-last layout as the engine, checked equal
to the engine's convolution before they are timed, and timed in one process with the engine's,
alternating, one BLAS thread. Prints the machine and a Markdown table of time ratios (> 1: the
rearrangement is slower than the engine).

    python benchmarks/conv_rearrangements.py
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import machine  # noqa: E402
from minigan import kernels  # noqa: E402
from minigan.ops.conv import Conv2d  # noqa: E402

# (batch, in channels, out channels, side): the 3x3 layers of the lessons' 32x32 models, and a
# wide one for contrast
LAYERS = [(64, 16, 16, 32), (64, 16, 32, 32), (64, 32, 16, 32), (64, 32, 32, 16), (64, 32, 64, 16),
          (64, 64, 64, 8), (64, 128, 128, 4), (64, 256, 256, 8)]

# Winograd F(2x2, 3x3): output tile = A^T [(G g G^T) * (B^T d B)] A, elementwise product in the middle
KERNEL_TRANSFORM = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def engine(x, weight, padding):
    """The engine's convolution forward on arrays (``minigan.ops.conv.Conv2d``, which picks its
    kernel): (N, C, H, W) -> (O, OH, OW, N), padding on both axes."""
    geometry = ((3, 3), (1, 1), (padding, padding), (1, 1))
    return Conv2d(()).forward(x, weight, None, geometry=geometry).transpose(1, 2, 3, 0)


def _padded(x, padding, rows, cols):
    """x (N, C, H, W) as a zero-padded (C, rows, cols, N) array, ``padding`` zeros in front and
    as many behind as fill ``rows`` and ``cols`` (Winograd's tiles may overhang the image)."""
    n, c, h, w = x.shape
    out = np.zeros((c, rows, cols, n), dtype=x.dtype)
    out[:, padding:padding + h, padding:padding + w] = x.transpose(1, 2, 3, 0)
    return out


def winograd(x, weight, padding):
    """Winograd F(2x2, 3x3): (N, C, H, W) -> (O, OH, OW, N)."""
    n, c, h, w = x.shape
    o = weight.shape[0]
    oh, ow = h + 2 * padding - 2, w + 2 * padding - 2
    th, tw = -(-oh // 2), -(-ow // 2)  # 2x2 output tiles along each axis
    image = _padded(x, padding, 2 * th + 2, 2 * tw + 2)
    # B^T d B for every 4x4 tile (tiles overlap by 2): first along rows, then along columns
    r = [image[:, k:k + 2 * th:2] for k in range(4)]
    by_rows = (r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3])
    tiles = np.empty((4, 4, c, th, tw, n), dtype=x.dtype)
    for i, part in enumerate(by_rows):
        s = [part[:, :, k:k + 2 * tw:2] for k in range(4)]
        np.subtract(s[0], s[2], out=tiles[i, 0])
        np.add(s[1], s[2], out=tiles[i, 1])
        np.subtract(s[2], s[1], out=tiles[i, 2])
        np.subtract(s[1], s[3], out=tiles[i, 3])
    g = KERNEL_TRANSFORM.astype(x.dtype)
    kernel_tiles = np.einsum("ai,ocij,bj->aboc", g, weight, g).reshape(16, o, c)
    m = np.matmul(kernel_tiles, tiles.reshape(16, c, th * tw * n)).reshape(4, 4, o, th, tw, n)
    # A^T m A: two output rows from the four tile rows, then two columns from the four columns
    out = np.empty((o, th, 2, tw, 2, n), dtype=x.dtype)
    for row, part in enumerate((m[0] + m[1] + m[2], m[1] - m[2] - m[3])):
        np.add(part[0] + part[1], part[2], out=out[:, :, row, :, 0])
        np.subtract(part[1] - part[2], part[3], out=out[:, :, row, :, 1])
    return out.reshape(o, 2 * th, 2 * tw, n)[:, :oh, :ow]


def column_shifts(x, weight, padding, block_bytes=kernels.BLOCK_BYTES):
    """Three horizontal shifts copied, the kernel's rows read as row offsets: (N, C, H, W) ->
    (O, OH, OW, N), a block of output rows at a time like the engine."""
    n, c, h, w = x.shape
    o = weight.shape[0]
    oh, ow = h + 2 * padding - 2, w + 2 * padding - 2
    image = kernels.planes(x, ((3, 3), (1, 1), (padding, padding), (1, 1)))[:, 0, 0]  # (C, H+2p, W+2p, N)
    rows_of_kernel = [np.ascontiguousarray(weight[:, :, i, :]).reshape(o, 3 * c) for i in range(3)]
    out = np.empty((o, oh, ow, n), dtype=x.dtype)
    step = max(1, block_bytes // (3 * c * ow * n * x.itemsize))
    for first in range(0, oh, step):
        end = min(oh, first + step)
        shifts = np.empty((c, 3, end - first + 2, ow, n), dtype=x.dtype)
        for j in range(3):
            shifts[:, j] = image[:, first:end + 2, j:j + ow]
        matrix, length = shifts.reshape(3 * c, -1), (end - first) * ow * n
        target = out[:, first:end].reshape(o, length)
        np.matmul(rows_of_kernel[0], matrix[:, :length], out=target)
        for i in (1, 2):
            target += rows_of_kernel[i] @ matrix[:, i * ow * n:i * ow * n + length]
    return out


WAYS = {"Winograd F(2x2, 3x3)": winograd, "column shifts only": column_shifts}


def check(x, weight, padding):
    """Raise if a rearrangement does not compute the engine's convolution."""
    expected = engine(x, weight, padding)
    tolerance = 1e-5 * np.abs(expected).max()
    for name, way in WAYS.items():
        got = way(x, weight, padding)
        if got.shape != expected.shape or np.abs(got - expected).max() > tolerance:
            raise AssertionError(f"{name} differs from the engine's convolution for x {x.shape}, "
                                 f"weight {weight.shape}, padding {padding}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=15, help="timed calls per way, alternating (median taken)")
    args = p.parse_args(argv)
    print(f"machine: {machine.describe()}; {machine.load_average()}")
    print(f"1 BLAS thread (OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}), float32, "
          f"median of {args.calls} calls\n")
    print("| 3x3 convolution, padding 1 | engine ms | " + " | ".join(f"{name} / engine" for name in WAYS) + " |")
    print("|---|---:|" + "---:|" * len(WAYS))
    rng = np.random.default_rng(0)
    for n, c, o, side in LAYERS:
        # x lying batch-last, as the engine's layers hand it on
        x = np.ascontiguousarray(rng.standard_normal((c, side, side, n), dtype=np.float32)).transpose(3, 0, 1, 2)
        weight = rng.standard_normal((o, c, 3, 3), dtype=np.float32)
        check(x, weight, 1)
        ways = {"engine": engine, **WAYS}
        for way in ways.values():  # warm up
            way(x, weight, 1)
        times = {name: [] for name in ways}
        for _ in range(args.calls):  # one call of each way in turn, so a slow moment hits all alike
            for name, way in ways.items():
                start = time.perf_counter()
                way(x, weight, 1)
                times[name].append(time.perf_counter() - start)
        t = {name: statistics.median(v) for name, v in times.items()}
        ratios = " | ".join(f"{t[name] / t['engine']:.2f}" for name in WAYS)
        print(f"| {c} -> {o} at {side}x{side}, batch {n} | {t['engine'] * 1e3:.2f} | {ratios} |")


if __name__ == "__main__":
    main()

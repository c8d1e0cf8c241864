"""Time the built-in Digits generator: how long 60,000 images take from scratch (no cache).

The budget is 15 s on a 2-core CPU, so that a lesson's first run offline starts quickly.

    python benchmarks/digits_generation.py            # 60,000 images, 3 runs
    python benchmarks/digits_generation.py --n 10000 --runs 1
"""
import argparse
import time

from minigan import data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60000, help="images per run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (the median is reported)")
    args = parser.parse_args()

    start = time.perf_counter()
    data._glyph_bank()  # rendered once per process; later runs reuse it
    bank_seconds = time.perf_counter() - start

    timings = []
    for seed in range(args.runs):
        start = time.perf_counter()
        data.generate_digits(args.n, seed=seed)
        timings.append(time.perf_counter() - start)
    median = sorted(timings)[len(timings) // 2]
    print(f"glyph bank (fonts rendered once): {bank_seconds:.2f} s")
    print(f"{args.n} digits: {median:.2f} s median of {args.runs} "
          f"({', '.join(f'{t:.2f}' for t in timings)}), first run total {bank_seconds + timings[0]:.2f} s")


if __name__ == "__main__":
    main()

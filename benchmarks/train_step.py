"""Time one full GAN train step (a D step and a G step with Adam) in minigan and in PyTorch.

The two frameworks run the identical model (built by one function from either ``nn``) in one
process, alternating step by step, with the same thread count and batch, so the ratio
minigan / PyTorch is fair even on a noisy machine. Both run under the C allocator settings
minigan makes when it is imported (``MINIGAN_MALLOC=system`` runs both without them). Prints a
Markdown table of medians.

    python benchmarks/train_step.py                       # all models, 1 thread, batch 64
    python benchmarks/train_step.py --threads 2 --models dcgan28 --layers
    python benchmarks/train_step.py --memory              # peak memory of a step, each framework
    MINIGAN_BACKEND=cupy python benchmarks/train_step.py --backend cupy --batch 256
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402  (the benchmark folder, just put on the path)

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,dcgan28,dcgan32,dcgan64",
                   help="comma-separated names from benchmarks/models.py: mlp, dcgan28, dcgan32, dcgan64, "
                        "sngan, cgan, pix2pix, cyclegan, progan32, stylegan32")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for both frameworks")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per framework (median taken)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--backend", choices=("numpy", "cupy"), default=None,
                   help="minigan backend (default: MINIGAN_BACKEND or numpy); cupy compares with torch CUDA")
    p.add_argument("--layers", action="store_true",
                   help="also time each layer's forward and backward, and single layers on GAN-sized inputs")
    p.add_argument("--memory", action="store_true", help="measure each framework's peak memory per step")
    p.add_argument("--no-torch", action="store_true", help="time minigan alone")
    p.add_argument("--memory-child", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def pin_threads_and_backend(args):
    """Thread counts must be fixed before numpy/torch load their BLAS: re-run this script once
    with the environment set."""
    want = {v: str(args.threads) for v in THREAD_VARS}
    if args.backend:
        want["MINIGAN_BACKEND"] = args.backend
    if any(os.environ.get(k) != v for k, v in want.items()):
        os.environ.update(want)
        os.execv(sys.executable, [sys.executable] + sys.argv)


class Minigan:
    name = "minigan"

    def __init__(self):
        import minigan

        self.mg = minigan
        self.nn, self.F, self.optim = minigan.nn, minigan.functional, minigan.optim
        self.gpu = minigan.backend.on_gpu

    def randn(self, *shape):
        return self.mg.randn(*shape)

    def randn_like(self, t):
        """Random values laid out in memory like ``t`` (a gradient arriving from the next layer
        has its layout; a differently laid-out one would time a transposing pass instead)."""
        xp = self.mg.backend.xp
        data = xp.empty_like(t.data)
        data[...] = self.mg.randn(*t.shape).data
        return self.mg.Tensor(data)

    def full(self, shape, value):
        return self.mg.full(shape, value)

    def grad(self, out, x, upstream):
        return self.mg.grad(out, x, upstream)

    def sync(self):
        if self.gpu:
            self.mg.backend.xp.cuda.Device().synchronize()

    def seed(self, s):
        self.mg.manual_seed(s)


class Torch:
    name = "pytorch"

    def __init__(self, threads, gpu):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.nn, self.F, self.optim = torch.nn, torch.nn.functional, torch.optim
        self.device = "cuda" if gpu else "cpu"
        self.gpu = gpu

    def randn(self, *shape):
        return self.torch.randn(*shape, device=self.device)

    def randn_like(self, t):
        return self.torch.randn_like(t)  # keeps t's memory format

    def full(self, shape, value):
        return self.torch.full(shape, value, device=self.device)

    def grad(self, out, x, upstream):
        return self.torch.autograd.grad(out, x, upstream)

    def sync(self):
        if self.gpu:
            self.torch.cuda.synchronize()

    def seed(self, s):
        self.torch.manual_seed(s)


class GanStep:
    """One model pair with its optimisers, and the train step both frameworks run."""

    def __init__(self, fw, model, batch):
        from models import MODELS

        fw.seed(0)
        g, d, self.z_shape, x_shape = MODELS[model](fw.nn)
        if getattr(fw, "device", "cpu") != "cpu":
            g, d = g.to(fw.device), d.to(fw.device)
        self.fw, self.g, self.d = fw, g, d
        self.opt_g = fw.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = fw.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.real = fw.randn(batch, *x_shape)
        self.ones, self.zeros = fw.full((batch, 1), 1.0), fw.full((batch, 1), 0.0)
        self.batch = batch

    def __call__(self):
        fw, n, bce = self.fw, self.batch, self.fw.F.binary_cross_entropy_with_logits
        fake = self.g(fw.randn(n, *self.z_shape))
        self.opt_d.zero_grad()
        loss_d = (bce(self.d(self.real).reshape(n, 1), self.ones)
                  + bce(self.d(fake.detach()).reshape(n, 1), self.zeros))
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        loss_g = bce(self.d(fake).reshape(n, 1), self.ones)
        loss_g.backward()
        self.opt_g.step()
        fw.sync()


class MatmulClock:
    """Adds up the time minigan spends inside matmul (forward and backward alike)."""

    def __init__(self):
        from minigan import kernels

        self.kernels, self.seconds, self.original = kernels, 0.0, kernels.matmul
        clock = self

        def timed(a, b, out=None):
            start = time.perf_counter()
            out = clock.original(a, b, out=out)
            clock.seconds += time.perf_counter() - start
            return out

        kernels.matmul = timed

    def close(self):
        self.kernels.matmul = self.original


def time_call(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_model(model, frameworks, args):
    steps = {fw.name: GanStep(fw, model, args.batch) for fw in frameworks}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    clock = None if frameworks[0].gpu else MatmulClock()
    try:
        for _ in range(args.steps):
            for name, step in steps.items():  # alternate, so both see the same machine noise
                times[name].append(time_call(step))
        matmul_share = clock.seconds / sum(times["minigan"]) if clock else None
    finally:
        if clock:
            clock.close()
    return {name: statistics.median(t) for name, t in times.items()}, matmul_share


def layer_rows(model, frameworks, args):
    """Forward and forward+backward time of every layer of the model, in isolation."""
    from models import MODELS

    rows = []
    for fw in frameworks:
        fw.seed(0)
        g, d, z_shape, _ = MODELS[model](fw.nn)
        if getattr(fw, "device", "cpu") != "cpu":
            g, d = g.to(fw.device), d.to(fw.device)
        x = fw.randn(args.batch, *z_shape)
        for part, net in (("G", g), ("D", d)):
            # a network that is not a plain stack (U-Net skips, a pair of outputs) cannot be fed
            # layer by layer: it is timed as one row
            layers = list(net) if isinstance(net, fw.nn.Sequential) else [net]
            for i, layer in enumerate(layers):
                x_in = x.detach()
                x_in.requires_grad_(True)
                out = layer(x_in)
                upstream = fw.randn_like(out)

                def forward():
                    layer(x_in)
                    fw.sync()

                def backward():
                    layer(x_in).backward(upstream)
                    fw.sync()

                fwd = statistics.median(time_call(forward) for _ in range(max(3, args.steps // 2)))
                both = statistics.median(time_call(backward) for _ in range(max(3, args.steps // 2)))
                name = (f"{part}[{i}] {type(layer).__name__}" if layer is not net
                        else f"{part} {type(net).__name__} (whole)")
                rows.append((fw.name, name, tuple(out.shape), fwd, both - fwd))
                x = out.detach()
            if part == "G":
                x = x.detach()
    return rows


# Single layers on GAN-sized inputs (the layers of U-Net, CycleGAN and StyleGAN blocks): name,
# builder from a framework's nn, and the input's shape after the batch axis.
SINGLE_LAYERS = [
    ("MaxPool2d(2)", lambda nn: nn.MaxPool2d(2), (128, 32, 32)),
    ("AvgPool2d(2)", lambda nn: nn.AvgPool2d(2), (128, 32, 32)),
    ("Upsample(x2, nearest)", lambda nn: nn.Upsample(scale_factor=2), (128, 32, 32)),
    ("Upsample(x2, bilinear)", lambda nn: nn.Upsample(scale_factor=2, mode="bilinear"), (128, 32, 32)),
    ("InstanceNorm2d(128)", lambda nn: nn.InstanceNorm2d(128), (128, 32, 32)),
    ("InstanceNorm2d(128, affine)", lambda nn: nn.InstanceNorm2d(128, affine=True), (128, 32, 32)),
    ("ReflectionPad2d(1)", lambda nn: nn.ReflectionPad2d(1), (64, 64, 64)),
    ("ReflectionPad2d(3)", lambda nn: nn.ReflectionPad2d(3), (64, 64, 64)),
    # The convolutions the models spend their time in, and one product without the copying:
    # Linear(144, 16) on 1,024 x 64 rows is the matrix product of the 16 -> 16 3x3 convolution
    # at 32x32 (65,536 positions by 144 window values by 16 channels), the floor that
    # convolution reaches in minigan, which copies windows and then multiplies.
    ("Conv2d(16, 16, 3, padding=1)", lambda nn: nn.Conv2d(16, 16, 3, padding=1), (16, 32, 32)),
    ("Linear(144, 16): that conv's product alone", lambda nn: nn.Linear(144, 16), (1024, 144)),
    ("Conv2d(64, 64, 3, padding=1)", lambda nn: nn.Conv2d(64, 64, 3, padding=1), (64, 16, 16)),
    ("Conv2d(64, 128, 4, 2, 1)", lambda nn: nn.Conv2d(64, 128, 4, 2, 1), (64, 14, 14)),
    ("ConvTranspose2d(128, 64, 4, 2, 1)", lambda nn: nn.ConvTranspose2d(128, 64, 4, 2, 1), (128, 7, 7)),
]


def cpu_time_call(fn):
    """The CPU time of one call (this process's, so a busy neighbour on a shared machine is not
    counted; with one thread per framework it is the call's work)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def single_layer_rows(frameworks, args):
    """Forward and backward times of each SINGLE_LAYERS layer, medians of ``--steps`` calls, the
    frameworks alternating call by call; backward = forward+backward - forward, the gradient
    asked for with autograd.grad (so neither framework adds it into a .grad). On the CPU the
    calls are timed in CPU time (``cpu_time_call``)."""
    clock = time_call if frameworks[0].gpu else cpu_time_call
    rows = []
    for name, make, shape in SINGLE_LAYERS:
        calls = {}
        for fw in frameworks:
            fw.seed(0)
            layer = make(fw.nn)
            if getattr(fw, "device", "cpu") != "cpu":
                layer = layer.to(fw.device)
            x = fw.randn(args.batch, *shape)
            x.requires_grad_(True)
            upstream = fw.randn_like(layer(x))

            def forward(layer=layer, x=x, fw=fw):
                layer(x)
                fw.sync()

            def both(layer=layer, x=x, fw=fw, upstream=upstream):
                fw.grad(layer(x), x, upstream)
                fw.sync()

            calls[fw.name] = (forward, both)
        times = {fw_name: ([], []) for fw_name in calls}
        for _ in range(max(5, args.steps)):
            for fw_name, (forward, both) in calls.items():
                times[fw_name][0].append(clock(forward))
                times[fw_name][1].append(clock(both))
        medians = {fw_name: (statistics.median(f), statistics.median(b) - statistics.median(f))
                   for fw_name, (f, b) in times.items()}
        rows.append((name, (args.batch, *shape), medians))
    return rows


def peak_memory_of_child(framework, model, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", framework, model,
           "--batch", str(args.batch), "--threads", str(args.threads)]
    if args.backend:
        cmd += ["--backend", args.backend]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def memory_child(framework, model, args):
    """Run a few steps and print the peak resident memory above the level before the first.
    minigan is imported in PyTorch's child too, so both run under the allocator settings it
    makes at import (``minigan.backend.keep_freed_memory``), as in the timing runs."""
    import minigan  # noqa: F401
    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024  # MiB
    fw = Minigan() if framework == "minigan" else Torch(args.threads, args.backend == "cupy")
    step = GanStep(fw, model, args.batch)
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current size
    for _ in range(3):
        step()
    print(status("VmHWM") - before)


def main(argv=None):
    args = parse_args(argv)
    pin_threads_and_backend(args)
    if args.memory_child:
        memory_child(*args.memory_child, args)
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    frameworks = [Minigan()]
    gpu = frameworks[0].gpu
    if not args.no_torch:
        try:
            frameworks.append(Torch(args.threads, gpu))
        except ImportError:
            print("(torch is not installed: timing minigan alone; pip install torch==2.13.0 to compare)")
    device = "GPU (CuPy vs torch CUDA)" if gpu else f"CPU, {args.threads} thread(s)"
    torch_version = frameworks[1].torch.__version__ if len(frameworks) > 1 else None
    print(f"Machine: {machine.describe(torch_version)}")
    kept = frameworks[0].mg.backend.keeps_freed_memory
    kept = "freed memory kept (minigan's setting)" if kept else "the C library's own"
    print(f"Allocator: {kept}, for both frameworks")
    print(f"Started at {machine.load_average()}\n")
    print(f"## Train step, batch {args.batch}, {device}, median of {args.steps} steps\n")
    print("| model | minigan ms | PyTorch ms | minigan / PyTorch | matmul share (minigan) |")
    print("|---|---:|---:|---:|---:|")
    for model in models:
        medians, share = bench_model(model, frameworks, args)
        torch_ms = medians.get("pytorch")
        ratio = f"{medians['minigan'] / torch_ms:.2f}" if torch_ms else "-"
        torch_cell = f"{torch_ms * 1e3:.1f}" if torch_ms else "-"
        share_cell = f"{share:.0%}" if share is not None else "-"
        print(f"| {model} | {medians['minigan'] * 1e3:.1f} | {torch_cell} | {ratio} | {share_cell} |", flush=True)
    if args.memory:
        print("\n## Peak memory of a train step above the level before it (MiB)\n")
        print("| model | minigan | PyTorch | minigan / PyTorch |")
        print("|---|---:|---:|---:|")
        for model in models:
            ours = peak_memory_of_child("minigan", model, args)
            theirs = peak_memory_of_child("pytorch", model, args) if len(frameworks) > 1 else None
            if theirs:
                print(f"| {model} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |")
            else:
                print(f"| {model} | {ours:.0f} | - | - |")
    if args.layers:
        for model in models:
            print(f"\n## Per layer, {model} (ms, median)\n")
            print("| framework | layer | output shape | forward | backward |")
            print("|---|---|---|---:|---:|")
            for fw_name, layer, shape, fwd, bwd in layer_rows(model, frameworks, args):
                print(f"| {fw_name} | {layer} | {shape} | {fwd * 1e3:.2f} | {bwd * 1e3:.2f} |")
        clock = "" if gpu else "CPU "
        print(f"\n## Single layers on GAN-sized inputs, batch {args.batch} ({clock}ms, median of "
              f"{max(5, args.steps)}; ratio = minigan / PyTorch)\n")
        print("| layer | input shape | minigan forward | PyTorch forward | ratio | minigan backward "
              "| PyTorch backward | ratio | both ratio |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, shape, medians in single_layer_rows(frameworks, args):
            ours, theirs = medians["minigan"], medians.get("pytorch")
            cells = []
            for i in range(2):
                cells += [f"{ours[i] * 1e3:.2f}", f"{theirs[i] * 1e3:.2f}" if theirs else "-",
                          f"{ours[i] / theirs[i]:.2f}" if theirs else "-"]
            cells.append(f"{sum(ours) / sum(theirs):.2f}" if theirs else "-")
            print(f"| {name} | {shape} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

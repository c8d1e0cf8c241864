"""The scaffolding every GAN lesson shares, so each lesson file stays about its one idea.

A lesson asks ``lesson_parser`` for the usual flags (--steps, --batch-size, --dataset, --out,
--seed, --quick, --resume) and keeps a ``Run``: the run directory with its sample grids from
fixed noise, the loss history and its plot, the checkpoint a resumed run continues from, the
final samples and a small metrics file.

    args = lesson_parser("04_dcgan", __doc__, steps=1500, batch_size=64).parse_args()
    run = Run(args)
    start = run.resume(models={"G": G, "D": D}, optimizers={"G": opt_g, "D": opt_d})
    for step in run.steps(start):
        ...
        run.log(step, loss_d=..., loss_g=...)
"""
import argparse
import json
import os
import time

import numpy as np

from . import io, viz
from .autograd import no_grad
from .ops import cat
from .progress import progress

DATASET_CHOICES = ("digits", "mnist", "fashion-mnist")


class LessonParser(argparse.ArgumentParser):
    """Resolves --steps after parsing: as given, else ``quick_steps`` under --quick, else the
    lesson's default."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.steps is None:
            parsed.steps = parsed.quick_steps if parsed.quick else parsed.default_steps
        return parsed


def lesson_parser(name, description, steps, batch_size, datasets=DATASET_CHOICES, quick_steps=12):
    """The flags every lesson takes; ``--quick`` runs ``quick_steps`` steps for smoke tests
    (unless --steps is given too)."""
    parser = LessonParser(
        prog=f"lessons/{name}.py", description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default {steps})")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"default {batch_size}")
    if datasets:
        parser.add_argument("--dataset", choices=datasets, default=datasets[0],
                            help=f"default {datasets[0]} (built in, works offline)")
        parser.add_argument("--data-root", default=None,
                            help="folder with the MNIST files (default $MINIGAN_DATA or ~/.cache/minigan)")
    parser.add_argument("--out", default=os.path.join("runs", name), help="run directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"{quick_steps} steps, for smoke tests")
    parser.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    parser.set_defaults(quick_steps=quick_steps, default_steps=steps)
    return parser


def generate(G, z, chunk=250, image_shape=None):
    """Images from noise ``z`` in eval mode, without a graph, ``chunk`` at a time.

    In eval mode BatchNorm uses the running statistics gathered in training, so an image
    depends on its own noise only, not on whichever other images share its batch. ``G`` goes
    back to the mode it was in. ``image_shape`` (e.g. (1, 28, 28)) reshapes flat outputs."""
    was_training = G.training
    G.eval()
    try:
        with no_grad():
            images = cat([G(z[i:i + chunk]) for i in range(0, len(z), chunk)])
    finally:
        G.train(was_training)
    return images if image_shape is None else images.reshape(len(z), *image_shape)


class Run:
    """One training run's directory and records."""

    def __init__(self, args, sample_every=None):
        self.args = args
        self.dir = args.out
        os.makedirs(self.dir, exist_ok=True)
        self.history = {"step": []}
        self.sample_every = sample_every or max(1, args.steps // 6)
        self.checkpoint_path = os.path.join(self.dir, "checkpoint.npz")
        self.elapsed_before = 0.0
        self.started = time.perf_counter()
        self.bar = None

    # --- resuming --------------------------------------------------------------------------
    def resume(self, models, optimizers):
        """Restore models, optimizers, RNG and history when --resume finds a checkpoint;
        returns the step to start from (0 for a fresh run)."""
        if not (self.args.resume and os.path.exists(self.checkpoint_path)):
            if self.args.resume:
                print(f"no checkpoint at {self.checkpoint_path}: starting from step 0")
            return 0
        step, history, extra = io.load_checkpoint(self.checkpoint_path, models=models, optimizers=optimizers)
        self.history = {k: list(v) for k, v in history.items()}
        self.elapsed_before = float((extra or {}).get("elapsed", 0.0))
        print(f"resumed from {self.checkpoint_path} at step {step}")
        return int(step)

    def save_checkpoint(self, step, models, optimizers):
        io.save_checkpoint(self.checkpoint_path, models=models, optimizers=optimizers, step=step,
                           history=self.history, extra={"elapsed": self.elapsed()})

    # --- the loop --------------------------------------------------------------------------
    def steps(self, start=0):
        """The step numbers start .. steps-1, with a progress bar (quiet off a terminal)."""
        self.bar = progress(range(start, self.args.steps), desc=os.path.basename(self.dir),
                            initial=start, total=self.args.steps)
        return self.bar

    def log(self, step, **values):
        """Record scalars (tensors or numbers) for this step and show them on the bar."""
        self.history["step"].append(int(step))
        shown = {}
        for name, value in values.items():
            value = float(value.item() if hasattr(value, "item") else value)
            self.history.setdefault(name, []).append(value)
            shown[name] = f"{value:.3f}"
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)

    def should_sample(self, step):
        return (step + 1) % self.sample_every == 0 or step + 1 == self.args.steps

    def save_grid(self, images, step=None, nrow=8):
        name = "samples_final.png" if step is None else f"samples_{step + 1:06d}.png"
        path = os.path.join(self.dir, name)
        viz.save_grid(images, path, nrow=nrow)
        return path

    def elapsed(self):
        return self.elapsed_before + time.perf_counter() - self.started

    # --- the end ---------------------------------------------------------------------------
    def finish(self, final_grid, samples, metrics=None, plot=True):
        """Write samples_final.png, samples.npy (float32 in [-1, 1]), history.png and
        metrics.json (with the run's wall time); returns the metrics dict."""
        if self.bar is not None:
            self.bar.close()
        self.save_grid(final_grid)
        samples = np.asarray(samples, dtype=np.float32)
        with io.atomic_open(os.path.join(self.dir, "samples.npy")) as f:
            np.save(f, np.clip(samples, -1, 1))
        if plot:
            viz.plot_history(self.history, os.path.join(self.dir, "history.png"))
        metrics = dict(metrics or {})
        metrics.update(steps=self.args.steps, batch_size=self.args.batch_size,
                       seconds=round(self.elapsed(), 1),
                       dataset=getattr(self.args, "dataset", None))
        for name, values in self.history.items():
            if name != "step" and values:
                tail = values[-max(1, len(values) // 10):]
                metrics[f"final_{name}"] = float(np.mean(tail))
        with io.atomic_open(os.path.join(self.dir, "metrics.json")) as f:
            f.write(json.dumps(metrics, indent=2).encode())
        print(f"done in {metrics['seconds']:.0f} s; pictures and metrics in {self.dir}/")
        return metrics

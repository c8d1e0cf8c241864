"""The scaffolding every GAN lesson shares, so each lesson file stays about its one idea.

A lesson asks ``lesson_parser`` for the usual flags (--steps, --batch-size, --dataset,
--data-root, --train-size, --no-judge, --out, --seed, --quick, --resume) and keeps a ``Run``: the run
directory with its sample grids from fixed noise, the loss history and its plot, the checkpoint
a resumed run continues from, the final samples and a small metrics file.

    args = lesson_parser("04_dcgan", __doc__, steps=1200, batch_size=32).parse_args()
    run = Run(args, sample_every=200)
    mg.manual_seed(args.seed)
    data = run.load_dataset()
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    run.track_diversity(G, randn(500, 100, 1, 1))   # what the judge sees, at sample points
    start = run.resume(models, optimizers, streams)
    for step in run.steps(start):
        ...
        run.log(step, loss_d=..., loss_g=...)
        if run.should_sample(step):
            run.save_grid(generate(G, fixed_z), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)
    run.finish_gan(G, fixed_z, data)

``track_diversity`` makes the history say whether the generator draws every kind of image:
at the first step and at every sample point, the samples from its fixed noise are read by
lesson 10's judge (``minigan.classifier``, trained once per dataset and cached): how many
classes they cover, and their precision and recall against as many real images. The history
also gets their mean pairwise cosine and pixel spread, which need no judge (``--no-judge``
keeps to these). ``finish_gan`` then scores the final samples with the judge against the
real test images, beside real training images as the floor. ``track_readings`` does the same
for a lesson's own measurement (lessons 14 and 15, which translate images, read how their
translations of test pairs score).

A checkpoint holds the models, optimizers, data streams (the epoch's order and the position in
it), minigan's RNG and the history, so ``--resume`` continues bit for bit where the run stopped:
a run of N steps, or one stopped at any checkpoint and resumed to N, ends with the same
weights, history, samples and metrics.

The flags come from ``minigan.flags`` (``lesson_parser``, ``positive_int``, ``non_negative_int``,
``DATASET_CHOICES``), passed on here. The module also passes on what several lessons build the
same way (from ``minigan.gan``):
``dcgan_init`` (the DCGAN paper's initialisation), ``dcgan_generator`` (lesson 04's generator
at any width) and ``update_ema`` (a moving average of a generator's weights); from
``minigan.creation``, ``fork_rng`` (for measurements that must not disturb the training's
random numbers) and ``seeded_noise`` (fixed noise from a seed of its own); and it holds
``lesson_judge`` (the judge for a lesson that loads it up front).
"""
import functools
import json
import math
import os
import sys
import time

import numpy as np

from . import cat, classifier, io, no_grad, randn, viz
from .creation import fork_rng, seeded_noise  # noqa: F401 (passed on)
from .data import load_dataset, to_tanh_range
from .flags import DATASET_CHOICES, lesson_parser, non_negative_int, positive_int  # noqa: F401 (passed on)
from .gan import EMA_HALF_LIFE, EMA_RAMP, dcgan_generator, dcgan_init, update_ema  # noqa: F401 (passed on)
from .metrics import (RealReference, class_coverage, compare_to_real, mean_pairwise_cosine,
                      pixel_std, precision_recall)
from .progress import progress

FINAL_SAMPLES = 1000  # samples compared with as many real images at the end of a GAN lesson
JUDGE_READINGS = ("coverage", "precision", "recall")  # track_diversity's readings by the judge
SPREAD_READINGS = ("cosine", "pixel_std")             # ... and the two that need no judge


# --- pieces several lessons share ---------------------------------------------------------------
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


def centre_crop(images, size):
    """The middle ``size`` = (h, w) of each (N, C, H, W) image; images no larger pass as they are."""
    (h, w), (height, width) = size, images.shape[-2:]
    if (height, width) == (h, w) or height < h or width < w:
        return images
    top, left = (height - h) // 2, (width - w) // 2
    return images[..., top:top + h, left:left + w]


@functools.lru_cache(maxsize=2)
def judge_for(dataset, root=None):
    """Lesson 10's classifier for ``dataset``, read once per process (``load_or_train``
    trains it the first time and caches it on disk)."""
    return classifier.load_or_train(dataset, root=root)


@functools.lru_cache(maxsize=2)
def test_reference(judge, dataset, root=None):
    """The real test images of ``dataset`` as ``judge`` sees them, prepared once per process
    (the runs of lesson 05 share it)."""
    return RealReference(judge, load_dataset(dataset, root=root, train=False).images)


def lesson_judge(args, dataset):
    """Lesson 10's classifier for ``dataset``, for a lesson that sets ``run.judge`` itself: read
    from the cache (trained the first time), or under --quick a small one trained in seconds
    on 1,000 images and never cached. Either way in a fork of the RNG (building and training a
    network draw random numbers), so training goes the same with the judge as without it."""
    with fork_rng():
        if args.quick:
            train = load_dataset(dataset, root=args.data_root).first(1000)
            test = load_dataset(dataset, root=args.data_root, train=False).first(200)
            return classifier.train_classifier(train, test, epochs=1)
        return classifier.load_or_train(dataset, root=args.data_root)


# --- one run ------------------------------------------------------------------------------------
class Run:
    """One training run's directory and records.

    ``dataset`` is the dataset the run trains on when it is loaded elsewhere (several runs
    sharing one); otherwise ``load_dataset()`` loads it. Either way metrics.json names it.
    ``recipe`` names the lesson's own flags (attributes of ``args``) that change what a step
    does: a resumed run must have the same values, like the same batch size and seed.
    """

    def __init__(self, args, sample_every=None, dataset=None, recipe=()):
        self.args = args
        self.recipe = tuple(recipe)
        self.dir = args.out
        os.makedirs(self.dir, exist_ok=True)
        self.dataset = dataset
        self.history = {"step": []}
        self.sample_every = sample_every or max(1, args.steps // 6)
        self.checkpoint_path = os.path.join(self.dir, "checkpoint.npz")
        self.elapsed_before = 0.0
        self.started = time.perf_counter()
        self.bar = None
        self.tracked = None   # (G, noise, image_shape, every, view) once track_diversity is called
        self.watched = []     # (read, names, every, title) for each track_readings call
        self.readings = {}    # the last readings of both kinds, logged at every step
        self.judge = None     # lesson 10's classifier, loaded at the first reading (or set by the lesson)
        self.real_features = None

    def load_dataset(self):
        """The dataset --dataset names (MNIST-like names fall back to the built-in digits
        offline), cut to its first --train-size images when that is given."""
        args = self.args
        data = load_dataset(args.dataset, root=args.data_root)
        if args.train_size is not None:
            if args.train_size > len(data):
                _refuse(f"--train-size {args.train_size} is more than the {len(data)} images "
                        f"of {data.name}")
            data = data.first(args.train_size)
        if args.batch_size > len(data):
            _refuse(f"--batch-size {args.batch_size} is more than the {len(data)} images of "
                    f"{data.name}")
        self.dataset = data
        return data

    def settings(self):
        """What a resumed run must share with the run that wrote its checkpoint."""
        args = self.args
        dataset = self.dataset.name if self.dataset is not None else getattr(args, "dataset", None)
        return {"batch_size": args.batch_size, "seed": args.seed, "dataset": dataset,
                "train_size": getattr(args, "train_size", None), "judge": self.uses_judge(),
                **{name: getattr(args, name) for name in self.recipe}}

    # --- resuming --------------------------------------------------------------------------
    def resume(self, models, optimizers, streams=None):
        """With --resume and a checkpoint in the run directory, restore the models, optimizers,
        data streams, RNG and history, and return the step to continue from; otherwise 0.

        Exits with an error, changing nothing, when the checkpoint cannot be used: it is past
        --steps (which counts the run's steps from its start), it was made with another
        --batch-size, --seed, --train-size, dataset or ``recipe`` flag, or it does not fit
        these models."""
        if not self.args.resume:
            return 0
        if not os.path.exists(self.checkpoint_path):
            print(f"no checkpoint at {self.checkpoint_path}: starting from step 0")
            return 0
        path = self.checkpoint_path
        try:
            state = io.load(path)
        except ValueError as exc:
            _refuse(f"cannot resume: {exc}")
        step = state.get("step") if isinstance(state, dict) else None
        if isinstance(step, int) and step > self.args.steps:
            _refuse(f"{path} is at step {step}, past --steps {self.args.steps}; --steps counts "
                    f"the run's steps from its start, so it must be >= {step} to resume it")
        extra = state.get("extra") if isinstance(state, dict) else None
        saved = extra.get("settings") if isinstance(extra, dict) else None
        if isinstance(saved, dict):
            changed = [f"{key} {saved[key]!r} (now {value!r})" if key in saved else
                       f"{key} unrecorded, by an older version of the lesson (now {value!r})"
                       for key, value in self.settings().items() if saved.get(key, ...) != value]
            if changed:
                _refuse(f"{path} was made with {', '.join(changed)}; resume with the same "
                        "settings, or start a new run without --resume")
        try:
            step, history, extra = io.restore_checkpoint(
                state, models=models, optimizers=optimizers, streams=streams, source=path)
        except (ValueError, KeyError, RuntimeError) as exc:
            _refuse(f"cannot resume from {path}: {exc}")
        self.history = {k: list(v) for k, v in history.items()}
        watched = [name for _, names, _, _ in self.watched for name in names]
        self.readings = {k: self.history[k][-1] for k in (*JUDGE_READINGS, *SPREAD_READINGS, *watched)
                         if self.history.get(k)}
        self.elapsed_before = float((extra or {}).get("elapsed", 0.0))
        print(f"resumed from {path} at step {step}")
        return int(step)

    def save_checkpoint(self, step, models, optimizers, streams=None):
        """Write checkpoint.npz: what ``resume`` needs to continue after ``step`` steps."""
        io.save_checkpoint(self.checkpoint_path, models=models, optimizers=optimizers,
                           streams=streams, step=step, history=self.history,
                           extra={"elapsed": self.elapsed(), "settings": self.settings()})

    # --- the loop --------------------------------------------------------------------------
    def steps(self, start=0):
        """The step numbers start .. steps-1, with a progress bar (quiet off a terminal)."""
        self.bar = progress(range(start, self.args.steps), desc=os.path.basename(self.dir),
                            initial=start, total=self.args.steps)
        return self.bar

    def log(self, step, **values):
        """Record scalars (tensors or numbers) for this step and show them on the bar, with the
        readings of ``track_diversity`` and ``track_readings``: taken now at a reading step (or
        when there are none yet), else the last ones again."""
        readers = [(self.read_diversity, SPREAD_READINGS, self.tracked[3])] if self.tracked else []
        readers += [(read, names, every) for read, names, every, _ in self.watched]
        for read, names, every in readers:
            if (step + 1) % every == 0 or any(name not in self.readings for name in names):
                readings = read()
                missing = [name for name in names if name not in readings]
                if missing:
                    raise KeyError(f"Run.log: the readings taken at step {step} lack {', '.join(missing)} "
                                   f"(the reader was tracked with {', '.join(names)}; it returned "
                                   f"{', '.join(readings) or 'nothing'})")
                self.readings.update(readings)
        values.update(self.readings)
        self.history["step"].append(int(step))
        shown = {}
        for name, value in values.items():
            value = float(value.item() if hasattr(value, "item") else value)
            self.history.setdefault(name, []).append(value)
            shown[name] = f"{value:.3f}"
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)

    # --- what the samples cover ------------------------------------------------------------
    def track_diversity(self, G, noise, image_shape=None, every=None, view=None):
        """From now on, ``log`` reads the diversity of G's samples from ``noise`` at the first
        step of the run and every ``every`` steps (default: every sample_every steps), and
        logs the last readings at every step:

          coverage, precision, recall  lesson 10's judge on the samples, against as many real
                                       images of the run's dataset: classes holding >= 2% of
                                       the samples, and k-NN precision and recall in its
                                       feature space. A collapsed generator covers few
                                       classes and has a recall near 0.
          cosine, pixel_std            mean pairwise cosine and per-pixel spread of the
                                       samples (no judge needed; see minigan.metrics).

        ``view``, if given, turns G's output and the real images alike into the images read
        (lesson 12 enlarges its early stages, lesson 11 averages 64x64 down to its judge's
        32x32); the judge reads their centre at its input size (12 and 13 pad digits to
        32x32), cosine and spread the whole. The judge is trained the first time (about a
        minute; then cached) unless the lesson set ``run.judge``; with ``--no-judge`` only
        cosine and pixel_std are read. Samples are drawn in a fork of the RNG (StyleGAN's G
        draws noise), so training goes exactly as without the readings."""
        self.tracked = (G, noise, image_shape, every or self.sample_every, view)

    def track_readings(self, read, names, title, every=None):
        """From now on, ``log`` also calls ``read()``, which returns a number for each of
        ``names``, at the first step of the run and every ``every`` steps (default: every
        sample_every steps), and logs the last values at every step; history.png shows them in
        a panel ``title``. A lesson whose generator translates images instead of drawing from
        noise (14, 15) reads this way what its translations of held-out inputs score as it
        trains. ``read`` must leave the training alone: no random numbers drawn outside
        ``fork_rng``, no layer left in another mode."""
        self.watched.append((read, tuple(names), every or self.sample_every, title))

    def uses_judge(self):
        return self.tracked is not None and not getattr(self.args, "no_judge", False)

    def load_judge(self):
        """Lesson 10's classifier for the run's dataset (trained once, then cached). Building
        (or training) its network draws random numbers, so it does so in a fork of the RNG."""
        if self.judge is None:
            with fork_rng():
                self.judge = judge_for(self.dataset.name, self.args.data_root)
        return self.judge

    def read_diversity(self):
        """The readings ``track_diversity`` describes, for G's samples from its noise now."""
        G, noise, image_shape, _, view = self.tracked
        with fork_rng():
            samples = generate(G, noise, image_shape=image_shape)
        samples = io.as_numpy(samples if view is None else view(samples))
        if not np.isfinite(samples).all():
            names = JUDGE_READINGS + SPREAD_READINGS if self.uses_judge() else SPREAD_READINGS
            return dict.fromkeys(names, math.nan)
        readings = {}
        if self.uses_judge():
            judge = self.load_judge()
            side = judge.input_shape[-2:]
            if self.real_features is None:
                real = io.as_numpy(self.dataset.images[:len(samples)])
                self.real_features = judge.features(centre_crop(real if view is None else view(real), side))
            seen = centre_crop(samples, side)
            features, predicted = judge.features(seen), judge.predict(seen)
            precision, recall = precision_recall(self.real_features, features)
            readings = {"coverage": class_coverage(predicted, len(self.dataset.classes)),
                        "precision": precision, "recall": recall}
        readings.update(cosine=mean_pairwise_cosine(samples), pixel_std=pixel_std(samples))
        return readings

    def reading_panels(self):
        """The tracked readings as panels for ``viz.plot_panels``: one per ``track_readings``,
        then the judge's diversity readings, or without a judge the cosine and pixel spread."""
        panels = {title: {name: self.history[name] for name in names}
                  for _, names, _, title in self.watched if self.history.get(names[0])}
        if self.history.get("recall"):
            n = len(self.dataset.classes)
            title = "what the judge sees in samples from fixed noise"
            panels[title] = {"recall": self.history["recall"], "precision": self.history["precision"],
                             f"classes covered / {n}": [c / n for c in self.history["coverage"]]}
        elif self.history.get("cosine"):
            panels["diversity of samples from fixed noise"] = {k: self.history[k] for k in SPREAD_READINGS}
        return panels

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
    def finish_gan(self, G, fixed_z, data, image_shape=None, metrics=None, plot=True,
                   compare=compare_to_real):
        """The end of a GAN lesson: the final grid from ``fixed_z``, FINAL_SAMPLES samples from
        fresh noise (shaped like ``fixed_z``), compared with as many real images of ``data``
        in [-1, 1] by ``compare(samples, real)`` (default ``metrics.compare_to_real``), then
        ``finish``. A diverged run's samples are not compared. Returns (grid, samples, metrics)
        with the grid and samples as NumPy arrays."""
        samples = generate(G, randn(FINAL_SAMPLES, *fixed_z.shape[1:]), image_shape=image_shape)
        samples = samples.numpy()
        grid = generate(G, fixed_z, image_shape=image_shape).numpy()
        metrics = dict(metrics or {})
        if np.isfinite(samples).all():
            real = to_tanh_range(data.images[:FINAL_SAMPLES])
            metrics.update(compare(samples, real))
            if self.uses_judge() and "judge" not in metrics:  # a lesson's compare may score them itself
                metrics["judge"] = self.judge_scores(samples, data)
        return grid, samples, self.finish(grid, samples, metrics=metrics, plot=plot)

    def judge_scores(self, samples, data):
        """Lesson 10's readings of ``samples`` against the real test images, and of as many
        real training images (drawn at random, the same ones every run): the floor, the best
        any generator can reach at this sample count. Images larger than the judge's input
        are read by their centre (lessons 12 and 13 pad digits to 32x32)."""
        judge = self.load_judge()
        side = judge.input_shape[-2:]
        reference = test_reference(judge, data.name, self.args.data_root)
        picked = np.random.default_rng(0).choice(len(data), min(len(samples), len(data)),
                                                 replace=False)
        return {"dataset": data.name, "classifier_accuracy": judge.accuracy,
                "neighbours": reference.k, "samples": reference.score(centre_crop(samples, side)),
                "real": reference.score(centre_crop(data.images[np.sort(picked)], side))}

    def finish(self, final_grid, samples, metrics=None, plot=True):
        """Write samples_final.png, samples.npy (float32 in [-1, 1]), history.png and
        metrics.json (with the run's settings, the dataset it really used and its wall time);
        returns the metrics dict. metrics.json sums the history up in two ways: ``final_<name>``
        is the mean of the last tenth of each logged number (losses, D's outputs, ...), and
        ``last_readings`` holds the last value of each reading of ``track_diversity`` and
        ``track_readings``: a few hundred samples against as many training images, so it can
        differ from the scores of the final samples (``finish_gan``'s ``judge``) beside it.

        A diverged run, whose samples hold NaN or infinite values, is written all the same:
        samples.npy keeps those values, the grid shows them in magenta, and metrics.json says
        ``"diverged": true`` with the fraction of non-finite values (``"diverged": false``
        otherwise). Non-finite numbers are written to metrics.json as null."""
        if self.bar is not None:
            self.bar.close()
        self.save_grid(final_grid)
        samples = np.asarray(samples, dtype=np.float32)
        finite = np.isfinite(samples)
        with io.atomic_open(os.path.join(self.dir, "samples.npy")) as f:
            np.save(f, np.where(finite, np.clip(samples, -1, 1), samples))
        if plot:
            self.plot_history()
        metrics = dict(metrics or {})
        metrics["diverged"] = not finite.all()
        if metrics["diverged"]:
            metrics["nonfinite_fraction"] = float(1 - finite.mean())
        metrics.update(steps=self.args.steps, batch_size=self.args.batch_size,
                       seconds=round(self.elapsed(), 1), **self._dataset_record())
        for name, values in self.history.items():
            if name in self.readings:
                metrics.setdefault("last_readings", {})[name] = float(values[-1])
            elif name != "step" and values:
                tail = values[-max(1, len(values) // 10):]
                metrics[f"final_{name}"] = float(np.mean(tail))
        with io.atomic_open(os.path.join(self.dir, "metrics.json")) as f:
            f.write(json.dumps(_finite_or_null(metrics), indent=2, allow_nan=False).encode())
        if metrics["diverged"]:
            print(f"the run diverged: {metrics['nonfinite_fraction']:.1%} of the sample values "
                  f"are NaN or infinite (magenta in samples_final.png)", file=sys.stderr)
        print(f"done in {metrics['seconds']:.0f} s; pictures and metrics in {self.dir}/")
        return metrics

    def plot_history(self, panels=None):
        """history.png: ``panels`` (title -> {label: values}; by default the losses and the
        discriminator's scores), then the diversity readings in a panel of their own."""
        h = self.history
        if panels is None:
            readings = set(JUDGE_READINGS + SPREAD_READINGS).union(*(names for _, names, _, _ in self.watched))
            curves = {k: v for k, v in h.items() if k != "step" and k not in readings and v}
            panels = {"losses": {k: v for k, v in curves.items() if "loss" in k},
                      "discriminator scores": {k: v for k, v in curves.items() if "loss" not in k}}
        viz.plot_panels({**panels, **self.reading_panels()}, os.path.join(self.dir, "history.png"),
                        steps=h["step"], held=[title for _, _, _, title in self.watched])

    def _dataset_record(self):
        requested = getattr(self.args, "dataset", None)
        if self.dataset is None:
            return {"dataset": requested}
        record = {"dataset": self.dataset.name}
        if requested is not None and requested != self.dataset.name:
            record["dataset_requested"] = requested
        if getattr(self.args, "train_size", None) is not None:
            record["train_size"] = len(self.dataset)
        return record


def _refuse(message):
    """Stop the lesson with a one-line error (exit status 1), not a traceback."""
    raise SystemExit(f"error: {message}")


def _finite_or_null(value):
    """``value`` with NaN and infinite floats replaced by None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""Lesson 10 — measuring a GAN: a judge trained on real data, its readings, and mode collapse
made visible.

A grid of samples tells you that a GAN draws digits. It does not tell you whether it draws every
digit, how close its digits are to real ones, or whether one run beats another. This lesson
builds the measurements the course uses from here on, and checks that they mean something:

  1. the judge: a small CNN trained once on the real training images and cached (its network,
     training loop and cache are in minigan/classifier.py, shared with every lesson that
     measures samples). Its last hidden layer plays the part the Inception network plays in FID;
  2. five readings of a set of samples through it: the Fréchet distance between Gaussian fits
     of real and generated features, an Inception-Score-like score from its softmax, class
     coverage (how many classes get at least 2% of the samples), and precision and recall
     (Kynkäänniemi et al. 2019);
  3. calibration: every reading for real images (the best any generator can do), for half the
     classes and for a single class (two degrees of collapse), and for two kinds of noise;
  4. a 2-D toy where collapse is plain to see: 8 Gaussians on a ring, a small GAN that settles
     on one of them, and two remedies side by side, minibatch standard deviation (Karras et al.
     2017) and packing (PacGAN, Lin et al. 2018), each with its count of modes covered.

Run it:
    python lessons/10_evaluation.py                      # 4-5 minutes on a 2-core CPU, 2-3 once the judge is cached
    python lessons/10_evaluation.py --dataset mnist      # the judge trained on real MNIST
    python lessons/10_evaluation.py --samples runs/04_dcgan/samples.npy   # score any run

Outputs in runs/10_evaluation/: calibration_examples.png, calibration_classes.png,
toy_samples.png, toy_progress.png, toy_modes.png, metrics.json and a checkpoint per toy run
(--resume continues them to --steps); --samples writes scores_<run>.json and
scores_<run>_classes.png.
"""
import json
import os
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle

import minigan as mg
from minigan import F, classifier, io, metrics, nn, optim, viz
from minigan.data import load_dataset, to_tanh_range
from minigan.experiment import DATASET_CHOICES, lesson_parser
from minigan.progress import progress

SAMPLES = 1000  # images per calibration set, as many as a GAN lesson's samples.npy holds
NEIGHBOUR_SWEEP = (1, 2, 3, 5, 10)


# --- 1-3. the judge and its calibration ---------------------------------------------------------

def quick_judge(train, test):
    """For smoke tests only: a judge trained for one epoch on 2,000 images, never cached."""
    return classifier.train_classifier(train.first(2000), test.first(500), epochs=1)


def real_sample(train, n, rng):
    """``n`` training images drawn at random (without repeats) by a NumPy generator."""
    return train.images[rng.choice(len(train), n, replace=False)]


def calibration_sets(train, n, seed):
    """Sets of ``n`` images whose right answers we know, uint8 or floats in [-1, 1]:

    - real: training images, which the judge compares with test images. No generator can beat
      real data, so this row is the floor (and the ceiling) every reading can reach at this n;
    - half the classes, and one class: real images, so every one looks right, but a generator
      that drew only these would have collapsed onto some of the data;
    - shuffled pixels: real images with their pixels in random places (the same ink, no shape);
    - Gaussian noise."""
    rng = np.random.default_rng(seed)
    real = real_sample(train, n, rng)
    some = train.images[rng.permutation(np.flatnonzero(train.labels < 5))[:n]]
    one = train.images[rng.permutation(np.flatnonzero(train.labels == 1))[:n]]
    shuffled = rng.permuted(real.reshape(n, -1), axis=1).reshape(real.shape)
    noise = np.clip(rng.normal(0, 0.5, real.shape), -1, 1).astype(np.float32)
    return {"real (train)": real, "classes 0-4": some, f"class {train.classes[1]} only": one,
            "shuffled pixels": shuffled, "Gaussian noise": noise}


def neighbour_sweep(reference, sets, ks):
    """Precision and recall of each calibration set for several k. Small k makes tight balls
    (even real images fall outside the real manifold); large k makes balls so wide that noise
    falls inside it. The k to use scores real images high and noise low."""
    sweep = {}
    for k in ks:
        at_k = reference.with_neighbours(k)
        sweep[k] = {label: {key: value for key, value in at_k.score(images).items() if key in ("precision", "recall")}
                    for label, images in sets.items()}
    return sweep


def print_sweep(sweep):
    labels = list(next(iter(sweep.values())))
    print(f"{'k':>3s}  " + "".join(f"{label[:15]:>17s}" for label in labels) + "    (precision / recall)")
    for k, rows in sweep.items():
        print(f"{k:3d}  " + "".join(f"{r['precision']:9.3f} /{r['recall']:6.3f}" for r in rows.values()))


def print_table(rows):
    print(f"{'':18s}{'Fréchet':>9s}{'IS':>7s}{'coverage':>10s}{'precision':>11s}{'recall':>8s}")
    for label, s in rows.items():
        print(f"{label:18s}{s['frechet_distance']:9.4f}{s['inception_score']:7.2f}{s['coverage']:10d}"
              f"{s['precision']:11.3f}{s['recall']:8.3f}")


# --- 4. the toy: 8 Gaussians on a ring --------------------------------------------------------

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.05
ANGLES = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
CENTRES = (RING_RADIUS * np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)).astype(np.float32)
LATENT, HIDDEN = 2, 128
TOY_LR = 1e-3
PACK = 2  # samples per packed discriminator input
VARIANTS = ("plain", "minibatch_stddev", "packing")
TOY_SEEDS = 3
EVAL_EVERY = 250
EVAL_POINTS = 2500


def sample_ring(n):
    """n points of the mixture: a mode picked uniformly, then N(0, RING_STD^2) around it."""
    modes = (mg.rand(n) * RING_MODES).numpy().astype(int)
    return mg.tensor(CENTRES[modes]) + RING_STD * mg.randn(n, 2)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2017): one extra feature, the same for every
    sample of the batch, that tells D how varied the batch is.

        s = mean over features f of sqrt(Var_batch(h[:, f]) + 1e-8);   output = [h, s]

    A real batch from the ring is spread over 8 modes; a collapsed generator's batch is not, and
    D can now see that in one number and punish it, so G gains by spreading out. The 1e-8 keeps
    the gradient finite when a batch has no spread at all (sqrt has an infinite slope at 0),
    which is exactly the collapsed case. The statistics are those of the batch D is given, so
    real and fake batches go through D separately."""

    def forward(self, h):
        centred = h - h.mean(axis=0, keepdims=True)
        spread = mg.sqrt((centred * centred).mean(axis=0) + 1e-8).mean()
        return mg.cat([h, spread * mg.ones(h.shape[0], 1, dtype=h.dtype)], axis=1)


def make_toy_generator():
    """z (2) -> 128 -> 128 -> a point in the plane."""
    return nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, 2))


def make_toy_discriminator(variant):
    """A point (or, packed, PACK points side by side) -> 128 -> one logit.

    Packing (PacGAN) shows D several samples of one kind at once, all real or all fake. PACK
    points from a collapsed G sit in the same place, which PACK real points almost never do:
    D can spot the sameness in one input, and G is pushed to vary its samples."""
    pack = PACK if variant == "packing" else 1
    layers = [nn.Linear(2 * pack, HIDDEN), nn.LeakyReLU(0.2)]
    if variant == "minibatch_stddev":
        return nn.Sequential(*layers, MinibatchStdDev(), nn.Linear(HIDDEN + 1, 1))
    return nn.Sequential(*layers, nn.Linear(HIDDEN, 1))


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, mg.full(logits.shape, target))


def count_modes(G, z):
    with mg.no_grad():
        points = G(z).numpy()
    return points, metrics.mode_coverage(points, CENTRES, RING_STD)


def train_toy(variant, seed, args):
    """One toy GAN: lesson 03's losses and Adam settings, on points instead of images. Every
    EVAL_EVERY steps, 2,500 samples from fixed noise are sorted to their nearest mode: the
    modes covered and the fraction of high-quality samples (within 3 std of a mode) are logged,
    and the samples kept for the pictures. The finished run is checkpointed; --resume continues
    it to --steps."""
    mg.manual_seed(seed)
    pack = PACK if variant == "packing" else 1
    G, D = make_toy_generator(), make_toy_discriminator(variant)
    opt_g = optim.Adam(G.parameters(), lr=TOY_LR, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=TOY_LR, betas=(0.5, 0.999))
    models, optimizers = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}
    eval_z = mg.randn(EVAL_POINTS, LATENT)
    history, snapshots = {"step": [], "modes": [], "high_quality": []}, []
    path = os.path.join(args.out, f"toy_{variant}_seed{seed}.npz")
    start = 0
    if args.resume and os.path.exists(path):
        start, history, extra = io.load_checkpoint(path, models=models, optimizers=optimizers)
        snapshots = list(extra["snapshots"])
    for step in range(start, args.steps):
        # Packing: PACK consecutive samples become one input row of D, real with real, fake
        # with fake; each row gets one label.
        real = sample_ring(args.batch_size).reshape(-1, 2 * pack)
        fake = G(mg.randn(args.batch_size, LATENT)).reshape(-1, 2 * pack)

        opt_d.zero_grad()
        loss_d = bce(D(real), 1.0) + bce(D(fake.detach()), 0.0)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad()
        loss_g = bce(D(fake), 1.0)
        loss_g.backward()
        opt_g.step()

        if (step + 1) % EVAL_EVERY == 0 or step + 1 == args.steps:
            points, counted = count_modes(G, eval_z)
            history["step"].append(step + 1)
            history["modes"].append(counted["modes"])
            history["high_quality"].append(counted["high_quality"])
            snapshots.append(points)
    io.save_checkpoint(path, models=models, optimizers=optimizers, step=max(start, args.steps),
                       history=history, extra={"snapshots": snapshots})
    points, final = count_modes(G, eval_z)
    return {"points": points, "history": history, "snapshots": snapshots, **final}


# --- scoring a run's samples --------------------------------------------------------------------

def score_samples(path, reference, train, out):
    """Score a samples.npy (float images in [-1, 1], shaped like the judge's input) beside real
    training images of the same count: the floor at that sample size."""
    samples = np.load(path, allow_pickle=False)
    if samples.ndim != 4 or samples.shape[1:] != reference.judge.input_shape:
        raise SystemExit(f"{path}: expected images shaped (N, {', '.join(map(str, reference.judge.input_shape))}),"
                         f" got {samples.shape}")
    if not np.isfinite(samples).all():
        raise SystemExit(f"{path}: holds NaN or infinite values")
    name = os.path.basename(os.path.dirname(os.path.abspath(path))) or "samples"
    rows = {"real (train)": reference.score(real_sample(train, len(samples), np.random.default_rng(0))),
            name: reference.score(samples)}
    print_table(rows)
    plot_class_fractions(rows, train.classes, os.path.join(out, f"scores_{name}_classes.png"))
    with io.atomic_open(os.path.join(out, f"scores_{name}.json")) as f:
        f.write(json.dumps({"samples": os.path.abspath(path), "scores": rows[name],
                            "real_floor": rows["real (train)"]}, indent=2).encode())


# --- pictures -----------------------------------------------------------------------------------

def save_figure(figure, path):
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


def plot_class_fractions(rows, classes, path):
    """One bar chart per set: the share of samples the judge puts in each class, with the 2%
    line that class coverage counts from."""
    figure = Figure(figsize=(3.2 * len(rows), 2.8), dpi=100)
    FigureCanvasAgg(figure)
    for ax, (label, scores) in zip(figure.subplots(1, len(rows), squeeze=False)[0], rows.items()):
        ax.bar(range(len(classes)), scores["class_fractions"], color="tab:blue")
        ax.axhline(metrics.COVERAGE_THRESHOLD, color="tab:red", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(classes)), [c[:4] for c in classes], fontsize="x-small")
        ax.set_ylim(0, 1)
        ax.set_title(f"{label}\ncoverage {scores['coverage']}", fontsize="small")
    save_figure(figure, path)


def plot_mode_counts(results, path):
    """Modes covered as training goes on: a colour per variant, a line style per seed."""
    figure = Figure(figsize=(8, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for colour, (variant, runs) in zip(("tab:red", "tab:blue", "tab:green"), results.items()):
        for style, (seed, run) in zip(("-", "--", ":"), runs.items()):
            ax.plot(run["history"]["step"], run["history"]["modes"], style, color=colour,
                    label=f"{variant}, seed {seed}")
    ax.set_ylim(-0.3, RING_MODES + 0.3)
    ax.set_xlabel("step")
    ax.set_ylabel(f"modes covered (of {RING_MODES})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", ncol=len(results), loc="center right")
    save_figure(figure, path)


def plot_toy_progress(results, seed, path, columns=6):
    """A row per variant: the samples from fixed noise at ``columns`` moments of one run."""
    figure = Figure(figsize=(2.2 * columns, 2.3 * len(results)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(results), columns, squeeze=False)
    for row, (variant, runs) in zip(axes, results.items()):
        run = runs[seed]
        picks = np.linspace(0, len(run["snapshots"]) - 1, columns).round().astype(int)
        for ax, i in zip(row, picks):
            _draw_points(ax, run["snapshots"][i])
            ax.set_title(f"{variant}, step {run['history']['step'][i]}", fontsize="x-small")
    save_figure(figure, path)


def _draw_points(ax, points):
    ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.3, color="tab:blue")
    for centre in CENTRES:
        ax.add_patch(Circle(centre, 3 * RING_STD, fill=False, color="tab:red", linewidth=0.8))
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_toy(results, path):
    """A row per variant, a column per seed: the samples (blue) over the ring's modes (red
    circles of 3 std, the "high quality" zone)."""
    seeds = sorted(next(iter(results.values())))
    figure = Figure(figsize=(2.6 * len(seeds), 2.6 * len(results)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(results), len(seeds), squeeze=False)
    for row, (variant, runs) in zip(axes, results.items()):
        for ax, seed in zip(row, seeds):
            run = runs[seed]
            _draw_points(ax, run["points"])
            ax.set_title(f"{variant}, seed {seed}: {run['modes']} modes, "
                         f"{run['high_quality']:.0%} HQ", fontsize="x-small")
    save_figure(figure, path)


# --- the lesson ---------------------------------------------------------------------------------

def parse_args(argv):
    parser = lesson_parser("10_evaluation", __doc__, steps=4000, batch_size=256, datasets=None, quick_steps=12)
    parser.add_argument("--dataset", choices=DATASET_CHOICES, default=DATASET_CHOICES[0],
                        help="the judge's dataset (default digits, built in)")
    parser.add_argument("--data-root", default=None,
                        help="folder with the MNIST files and the judge's cache "
                             "(default $MINIGAN_DATA or ~/.cache/minigan)")
    parser.add_argument("--samples", default=None, metavar="PATH",
                        help="score this samples.npy (N, C, H, W) in [-1, 1] and stop")
    args = parser.parse_args(argv)
    if args.batch_size % PACK:
        parser.error(f"--batch-size must be a multiple of {PACK} (the packing variant packs {PACK} samples)")
    return args


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    train = load_dataset(args.dataset, root=args.data_root)
    test = load_dataset(args.dataset, root=args.data_root, train=False)

    # 1. The judge: trained on the real training images, measured on the test images.
    judge = quick_judge(train, test) if args.quick else classifier.load_or_train(args.dataset, args.data_root)
    print(f"judge: {train.name} classifier, test accuracy {judge.accuracy:.2%}")
    reference = metrics.RealReference(judge, test.images[:500] if args.quick else test.images)
    if args.samples:
        score_samples(args.samples, reference, train, args.out)
        return

    # 2-3. Calibration: the readings of sets whose right answers we know.
    n = 100 if args.quick else SAMPLES
    sets = calibration_sets(train, n, args.seed)
    rows = {label: reference.score(images) for label, images in sets.items()}
    print(f"\n{n} images per set against {len(reference.features)} test images (k = {reference.k}):")
    print_table(rows)
    viz.save_image_rows([to_tanh_range(s, "float32") if s.dtype == np.uint8 else s for s in
                         (images[:12] for images in sets.values())],
                        os.path.join(args.out, "calibration_examples.png"))
    plot_class_fractions(rows, train.classes, os.path.join(args.out, "calibration_classes.png"))
    sweep = neighbour_sweep(reference, sets, (1, 3) if args.quick else NEIGHBOUR_SWEEP)
    print(f"\nprecision / recall for other k (k = {metrics.NEIGHBOURS} is the default):")
    print_sweep(sweep)

    # 4. The toy: a plain GAN and its two remedies, TOY_SEEDS runs each.
    seeds = range(args.seed, args.seed + (1 if args.quick else TOY_SEEDS))
    runs = [(variant, seed) for variant in VARIANTS for seed in seeds]
    toy = {variant: {} for variant in VARIANTS}
    for variant, seed in progress(runs, desc="toy GANs"):
        toy[variant][seed] = train_toy(variant, seed, args)
    print(f"\nmodes covered (of {RING_MODES}) after {args.steps} steps, per seed:")
    for variant, by_seed in toy.items():
        modes = [r["modes"] for r in by_seed.values()]
        quality = [f"{r['high_quality']:.0%}" for r in by_seed.values()]
        print(f"  {variant:18s} modes {modes}   high-quality samples {quality}")
    plot_toy(toy, os.path.join(args.out, "toy_samples.png"))
    plot_toy_progress(toy, args.seed, os.path.join(args.out, "toy_progress.png"))
    plot_mode_counts(toy, os.path.join(args.out, "toy_modes.png"))

    record = {
        "dataset": train.name, "classifier_accuracy": judge.accuracy, "reference_images": len(reference.features),
        "images_per_set": n, "neighbours": reference.k, "calibration": rows, "neighbour_sweep": sweep,
        "toy": {variant: {"steps": args.steps, "modes": [r["modes"] for r in by_seed.values()],
                          "high_quality": [r["high_quality"] for r in by_seed.values()],
                          "history": {str(s): r["history"] for s, r in by_seed.items()}}
                for variant, by_seed in toy.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    with io.atomic_open(os.path.join(args.out, "metrics.json")) as f:
        f.write(json.dumps(record, indent=2).encode())
    print(f"done in {record['seconds']:.0f} s; pictures and metrics in {args.out}/")


if __name__ == "__main__":
    main()

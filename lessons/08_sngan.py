"""Lesson 08 — spectral normalisation, the hinge loss and two time-scales
(SNGAN: Miyato, Kataoka, Koyama & Yoshida 2018; TTUR: Heusel, Ramsauer, Unterthiner, Nessler &
Hochreiter 2017).

Lessons 06 and 07 kept the critic Lipschitz by clipping its weights or by penalising its
gradient at random points. Spectral normalisation does it layer by layer, and cheaply: every
weight matrix W is divided by its largest singular value sigma(W), the most any unit vector can
be stretched by it. A layer W / sigma(W) stretches no input by more than a factor 1, LeakyReLU
stretches nothing, so the whole discriminator is (close to) 1-Lipschitz, whatever the batch.

sigma(W) would take an SVD per layer per step. Power iteration gets it almost for free: keep a
vector u between steps (a buffer, saved in checkpoints, never trained) and refine it once per
forward pass,

    v = W^T u / |W^T u|,    u = W v / |W v|,    sigma ~ u^T W v.

W changes little per step, so one refinement per step keeps u on W's top singular vector.

What you will see:
  1. SNConv2d: a Conv2d whose weight is W / sigma(W), the power iteration written out;
  2. the hinge loss: D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))], G minimises
     -E[D(G(z))];
  3. TTUR: D learns twice as fast as G (Adam lr 4e-4 against 2e-4), one D step per G step;
  4. the experiment: the same DCGAN with lesson 04's BatchNorm discriminator and with a
     spectral-norm one, each trained with three seeds, measured by lesson 10's judge (Fréchet
     distance, precision, recall, class coverage) every few hundred steps;
  5. sigma.png: each layer's power-iteration estimate of sigma against the largest singular
     value from an SVD, as training goes on, and why it lags when the top two are close.

Run it:
    python lessons/08_sngan.py                                   # 6 runs, about 8 minutes on a 2-core CPU
    python lessons/08_sngan.py --variants spectral --seeds 1     # one run, about a minute and a half
    python lessons/08_sngan.py --dataset mnist --data-root DIR   # real MNIST (the judge trains once)
    python lessons/08_sngan.py --steps 1600 --resume             # continue every run for longer

--seed is the first of the --seeds seeds (seed, seed + 1, ...).
Outputs in runs/08_sngan/: a folder per run (<variant>_seed<k>/: grids from fixed noise,
history.png, evaluations.json, metrics.json, checkpoint.npz, samples.npy), and at the top
history.png (the judge's readings of every run over training), sigma.png, samples.png (each
run's final samples), metrics.json (the table), and the samples.npy / samples_final.png of the
first spectral-norm run.
"""
import copy
import json
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import F, classifier, io, metrics, nn, optim, viz
from minigan.data import forever, load_dataset
from minigan.experiment import Run, dcgan_generator, dcgan_init, generate, lesson_parser, positive_int

LATENT = 100
G_WIDTH = 32          # G: 4 * G_WIDTH channels at 7x7, 2 * G_WIDTH at 14x14 (lesson 04's)
WIDTH = 32            # D: WIDTH channels at 14x14, 2 * WIDTH at 7x7
LR_G, LR_D = 2e-4, 4e-4  # TTUR: the discriminator learns twice as fast as the generator
BETAS = (0.0, 0.9)   # no momentum: each step follows the current gradient (as in lesson 07)
VARIANTS = ("batchnorm", "spectral")
EVAL_SAMPLES = 1000   # samples the judge scores at each evaluation, as in lesson 10's calibration
QUICK_EVAL_SAMPLES = 100


# --- 1. spectral normalisation, written out ------------------------------------------------------
def l2_normalise(vector, eps=1e-12):
    """vector / |vector| (eps only guards against dividing by zero)."""
    return vector / ((vector * vector).sum().sqrt() + eps)


def power_iteration(W, u):
    """One step of power iteration on the matrix W (rows x cols) from the unit vector u (rows).

    W^T W has W's squared singular values as eigenvalues; multiplying a vector by it again and
    again turns the vector towards the eigenvector of the largest one, because that component
    grows fastest. v = W^T u and u = W v are that multiplication split in two, normalised at
    each half so nothing overflows. At convergence u and v are W's top left and right singular
    vectors, and u^T W v = sigma(W)."""
    v = l2_normalise(W.T @ u)
    u = l2_normalise(W @ v)
    return u, v


def spectral_normalise(W, u, v):
    """W / sigma with sigma = u^T W v, for fixed vectors u and v; returns (W / sigma, sigma).

    The gradient flows through sigma as well as through W, so the optimiser sees that scaling W
    up scales its divisor too, and does nothing. u and v are constants here (the paper, and
    PyTorch's spectral_norm, treat them so)."""
    sigma = u @ (W @ v)
    return W / sigma, sigma


class SNConv2d(nn.Conv2d):
    """A Conv2d whose kernel is used as W / sigma(W), W seen as an (out, in * kh * kw) matrix.

    ``u`` (out,) is a buffer: saved with the model, moved by no optimizer. In training mode
    every forward pass refines it by one power-iteration step before normalising; in eval mode
    it stays put. (The convolution's own stretch factor can exceed the matrix's, by a factor
    that grows with how many kernel positions overlap at one output pixel; the paper normalises
    the matrix anyway, because it is cheap and it works.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("u", l2_normalise(mg.randn(self.out_channels)))

    def matrix(self):
        return self.weight.reshape(self.out_channels, -1)

    def normalised_weight(self):
        W = self.matrix()
        with mg.no_grad():  # the iteration only estimates; no gradient flows through u and v
            if self.training:
                self.u, v = power_iteration(W, self.u)  # a new tensor: graphs built from the old u keep it
            else:
                v = l2_normalise(W.T @ self.u)
        weight, sigma = spectral_normalise(W, self.u, v)
        self.sigma = sigma.detach()  # for the sigma panel
        return weight.reshape(self.weight.shape)

    def forward(self, x):
        return F.conv2d(x, self.normalised_weight(), self.bias, self.stride, self.padding, self.dilation)


def singular_values(layer):
    """The two largest singular values of the layer's kernel matrix, from an SVD on the host
    (the second is 0 for a one-row matrix). Power iteration homes in on the first at the rate
    (second / first)^2 per step: slowly when the two are close."""
    values = np.linalg.svd(layer.matrix().numpy(), compute_uv=False)
    return float(values[0]), float(values[1]) if len(values) > 1 else 0.0


# --- 2. the two discriminators ------------------------------------------------------------------
def make_discriminator(variant):
    """1x28x28 -> WIDTH x 14x14 -> 2 WIDTH x 7x7 -> one score.

    "batchnorm": lesson 04's paper-recipe discriminator, BatchNorm in the middle layer.
    "spectral": the same layers with every kernel spectrally normalised and no BatchNorm. Each
    layer then stretches nothing by more than 1, and D scores every image on its own."""
    if variant == "batchnorm":
        return nn.Sequential(
            nn.Conv2d(1, WIDTH, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(WIDTH, 2 * WIDTH, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * WIDTH), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * WIDTH, 1, 7, 1, 0), nn.Flatten(0),
        )
    return nn.Sequential(
        SNConv2d(1, WIDTH, 4, 2, 1), nn.LeakyReLU(0.2),
        SNConv2d(WIDTH, 2 * WIDTH, 4, 2, 1), nn.LeakyReLU(0.2),
        SNConv2d(2 * WIDTH, 1, 7, 1, 0), nn.Flatten(0),
    )


def sn_layers(D):
    return [m for m in D.modules() if isinstance(m, SNConv2d)]


# --- 3. the hinge loss --------------------------------------------------------------------------
def discriminator_loss(D, real, fake):
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))].

    A real image scored above 1, or a fake one below -1, costs nothing and sends no gradient:
    D stops pushing on what it already gets right by a margin, and spends its effort on the
    images near the boundary. Real and fake go through D as separate batches (for the
    BatchNorm variant, so that each batch is normalised with its own statistics)."""
    real_scores, fake_scores = D(real), D(fake.detach())
    loss = F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    return loss, real_scores.mean(), fake_scores.mean()


def generator_loss(D, fake):
    """-E[D(G(z))]: G raises D's score of its images, with no margin (a WGAN-like loss)."""
    return -D(fake).mean()


# --- 4. one run ---------------------------------------------------------------------------------
def evaluate(G, eval_z, reference):
    """The judge's readings of the images G makes from the fixed evaluation noise."""
    scores = reference.score(generate(G, eval_z).numpy())
    return {key: scores[key] for key in ("frechet_distance", "precision", "recall", "coverage")}


def train(variant, seed, args, data, reference):
    """Train one variant with one seed in its own folder; returns what the comparison needs."""
    run_args = copy.copy(args)
    run_args.out, run_args.seed = os.path.join(args.out, f"{variant}_seed{seed}"), seed
    run = Run(run_args, sample_every=args.sample_every, dataset=data)
    mg.manual_seed(seed)
    fixed_z = mg.randn(64, LATENT, 1, 1)
    eval_z = mg.randn(QUICK_EVAL_SAMPLES if args.quick else EVAL_SAMPLES, LATENT, 1, 1)
    G = dcgan_generator(LATENT, G_WIDTH).apply(dcgan_init)
    D = make_discriminator(variant).apply(dcgan_init)
    opt_g = optim.Adam(G.parameters(), lr=LR_G, betas=BETAS)
    opt_d = optim.Adam(D.parameters(), lr=LR_D, betas=BETAS)
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    start = run.resume(models, optimizers, streams)

    # the judge's readings at step 0 and at every sample point, kept beside the checkpoint so a
    # resumed run continues the same curve
    evals_path = os.path.join(run.dir, "evaluations.json")
    evals = [e for e in _read_json(evals_path, []) if e["step"] <= start] if start else []
    if not start:
        evals.append({"step": 0, **evaluate(G, eval_z, reference)})

    for step in run.steps(start):
        real = next(batches)[0]
        fake = G(mg.randn(args.batch_size, LATENT, 1, 1))

        opt_d.zero_grad()
        loss_d, d_real, d_fake = discriminator_loss(D, real, fake)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad()
        loss_g = generator_loss(D, fake)
        loss_g.backward()
        opt_g.step()

        # sigma of each normalised layer: the estimate the last forward used, and the SVD's
        sigmas = {}
        for i, layer in enumerate(sn_layers(D)):
            sigmas[f"sigma_estimate_{i}"] = layer.sigma
            sigmas[f"sigma_svd_{i}"], sigmas[f"sigma_second_{i}"] = singular_values(layer)
        run.log(step, loss_d=loss_d, loss_g=loss_g, d_real=d_real, d_fake=d_fake, **sigmas)
        if run.should_sample(step):
            run.save_grid(generate(G, fixed_z), step)
            if (step + 1) % run.sample_every == 0:  # not at a run's last step: see evaluations
                evals.append({"step": step + 1, **evaluate(G, eval_z, reference)})
            _write_json(evals, evals_path)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    plot_run(run.history, os.path.join(run.dir, "history.png"))
    grid, samples, final = run.finish_gan(
        G, fixed_z, data, plot=False, compare=lambda samples, real: judged(samples, reference),
        metrics={"variant": variant, "seed": seed, "evaluations": evals})
    return {"grid": grid, "samples": samples, "final": final, "evals": evals,
            "history": run.history, "seconds": run.elapsed()}


def judged(samples, reference):
    """The final samples' readings (lesson 10's RealReference.score), for metrics.json."""
    scores = reference.score(samples)
    return {key: scores[key] for key in ("frechet_distance", "inception_score", "coverage",
                                         "precision", "recall", "class_fractions")}


def plot_run(history, path):
    panels = {
        "hinge losses": {k: history[k] for k in ("loss_d", "loss_g")},
        "mean D score on real and fake batches": {"D(x)": history["d_real"], "D(G(z))": history["d_fake"]},
    }
    sigmas = {k: v for k, v in history.items() if k.startswith("sigma_")}
    if sigmas:
        panels["sigma(W) of each spectrally normalised layer"] = sigmas
    viz.plot_panels(panels, path, steps=history["step"])


# --- 5. the comparison --------------------------------------------------------------------------
def spread(values):
    """Mean and standard deviation (over seeds; 0 for one seed)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(results, threshold):
    """Per variant: the final readings' mean and spread over seeds, the Fréchet distance at each
    evaluation step (mean and spread), and the first step each seed got below ``threshold``."""
    summary = {}
    for variant, runs in results.items():
        finals = [r["final"] for r in runs.values()]
        steps = [e["step"] for e in next(iter(runs.values()))["evals"]]
        curve = [spread([r["evals"][i]["frechet_distance"] for r in runs.values()])
                 for i in range(len(steps))]
        reached = [next((e["step"] for e in r["evals"] if e["frechet_distance"] <= threshold), None)
                   for r in runs.values()]
        summary[variant] = {
            **{f"final_{key}": spread([f.get(key, np.nan) for f in finals])
               for key in ("frechet_distance", "precision", "recall", "coverage", "inception_score")},
            "frechet_by_step": {str(s): c for s, c in zip(steps, curve)},
            "first_step_below_threshold": reached,
            "seconds": spread([r["seconds"] for r in runs.values()]),
        }
    return summary


def print_summary(summary, threshold):
    print(f"\n{'':12s}{'Fréchet':>18s}{'precision':>16s}{'recall':>16s}{'coverage':>12s}"
          f"   first step with Fréchet <= {threshold}")
    for variant, s in summary.items():
        cells = "".join(f"{s[f'final_{k}'][0]:{w}.{p}f} ±{s[f'final_{k}'][1]:.{p}f}"
                        for k, w, p in (("frechet_distance", 9, 4), ("precision", 8, 3),
                                        ("recall", 8, 3), ("coverage", 6, 1)))
        print(f"{variant:12s}{cells}   {s['first_step_below_threshold']}")


COLOURS = {"batchnorm": "tab:blue", "spectral": "tab:orange"}
LINESTYLES = ("-", "--", ":", "-.")


def plot_curves(results, path):
    """The judge's readings of every run over training, one panel per reading."""
    keys = (("frechet_distance", "Fréchet distance (log scale)"), ("precision", "precision"),
            ("recall", "recall"), ("coverage", "classes covered"))
    figure = Figure(figsize=(14, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(keys))
    for ax, (key, title) in zip(axes, keys):
        for variant, runs in results.items():
            for i, (seed, r) in enumerate(runs.items()):
                ax.plot([e["step"] for e in r["evals"]], [e[key] for e in r["evals"]],
                        color=COLOURS.get(variant), linestyle=LINESTYLES[i % len(LINESTYLES)],
                        marker="o", markersize=3, label=f"{variant} seed {seed}")
        if key == "frechet_distance":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    save_figure(figure, path)


def plot_sigmas(results, path):
    """Top: each spectrally normalised layer's sigma(W) over the first spectral run, the
    power-iteration estimate against the largest and second largest singular values from an
    SVD. Bottom: estimate / SVD for every spectral run, on a log step axis so that the first
    steps, where u is still finding its way, show."""
    runs = results.get("spectral", {})
    if not runs:
        return
    layers = sorted({k.rsplit("_", 1)[1] for r in runs.values() for k in r["history"]
                     if k.startswith("sigma_svd_")}, key=int)
    figure = Figure(figsize=(4.5 * len(layers), 6.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, len(layers), squeeze=False)
    first_seed, first = next(iter(runs.items()))
    for column, layer in enumerate(layers):
        top, bottom = axes[0, column], axes[1, column]
        steps = np.asarray(first["history"]["step"]) + 1
        for key, label, style, colour in (("svd", "largest singular value (SVD)", "--", "tab:blue"),
                                          ("second", "second largest (SVD)", ":", "tab:orange"),
                                          ("estimate", "power-iteration estimate", "-", "tab:green")):
            values = first["history"][f"sigma_{key}_{layer}"]
            if any(values):  # a one-row kernel has no second singular value
                top.plot(steps, values, linestyle=style, color=colour, linewidth=1.0, label=label)
        for seed, r in runs.items():
            ratio = np.divide(r["history"][f"sigma_estimate_{layer}"], r["history"][f"sigma_svd_{layer}"])
            bottom.plot(np.asarray(r["history"]["step"]) + 1, ratio, linewidth=0.8, label=f"seed {seed}")
        top.set_title(f"layer {layer}: sigma(W), seed {first_seed}")
        bottom.set_title(f"layer {layer}: estimate / largest singular value")
        bottom.set_xscale("log")
        bottom.set_ylim(0.8, 1.02)
        bottom.set_xlabel("step")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="x-small")
    axes[1, 0].legend(fontsize="x-small")
    save_figure(figure, path)


def save_figure(figure, path):
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


def _read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def _write_json(value, path):
    with io.atomic_open(path) as f:
        f.write(json.dumps(value, indent=1).encode())


# --- the lesson ---------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = lesson_parser("08_sngan", __doc__, steps=700, batch_size=32, quick_steps=3)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)} (default both)")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help="seeds per variant: --seed, --seed + 1, ... (default 3; --quick: 1)")
    parser.add_argument("--sample-every", type=positive_int, default=100,
                        help="steps between grids, evaluations and checkpoints (default 100)")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="the Fréchet distance that counts as converged (default 0.05)")
    args = parser.parse_args(argv)
    args.variant_names = args.variants.split(",")
    unknown = [v for v in args.variant_names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    return args


def main(argv=None):
    args = parse_args(argv)
    top = Run(args)  # the lesson's own folder, for the comparison
    data = top.load_dataset()
    test = load_dataset(args.dataset, root=args.data_root, train=False)
    if args.quick:  # a judge trained in seconds, for smoke tests; never cached
        judge = classifier.train_classifier(data.first(2000), test.first(500), epochs=1)
        reference = metrics.RealReference(judge, test.images[:500])
    else:
        judge = classifier.load_or_train(args.dataset, args.data_root)
        reference = metrics.RealReference(judge, test.images)
    print(f"judge: {data.name} classifier, test accuracy {judge.accuracy:.2%}; "
          f"{len(reference.features)} test images as the reference")

    seeds = range(args.seed, args.seed + args.seeds)
    results = {variant: {} for variant in args.variant_names}
    for variant in args.variant_names:
        for seed in seeds:
            print(f"\n== {variant} discriminator, seed {seed}")
            results[variant][seed] = r = train(variant, seed, args, data, reference)
            print(f"   Fréchet {r['final']['frechet_distance']:.4f}, precision "
                  f"{r['final']['precision']:.3f}, recall {r['final']['recall']:.3f}, "
                  f"coverage {r['final']['coverage']}")

    summary = summarise(results, args.threshold)
    print_summary(summary, args.threshold)
    plot_curves(results, os.path.join(args.out, "history.png"))
    plot_sigmas(results, os.path.join(args.out, "sigma.png"))
    panels = {f"{variant} seed {seed}": viz.make_grid(r["grid"][:36], nrow=6)
              for variant, runs in results.items() for seed, r in runs.items()}
    viz.plot_images(panels, os.path.join(args.out, "samples.png"), ncols=len(seeds),
                    title="Final samples from each run's fixed noise")
    shown = results.get("spectral", results[args.variant_names[0]])[args.seed]
    top.finish(shown["grid"], shown["samples"], plot=False, metrics={
        "classifier_accuracy": judge.accuracy, "threshold": args.threshold,
        "seeds": list(seeds), "summary": summary,
        "runs": {variant: {str(seed): r["final"] for seed, r in runs.items()}
                 for variant, runs in results.items()}})


if __name__ == "__main__":
    main()

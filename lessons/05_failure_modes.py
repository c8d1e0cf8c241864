"""Lesson 05 — how GANs fail, how to tell from the curves, and what fixes each failure.

A GAN is two networks in a tug of war; it fails when one side wins outright, or when the
generator finds one answer that works and stops exploring. This lesson breaks the MLP GAN of
lesson 03 on purpose, three ways, and repairs each break. The breaks start from lesson 03's
generator without its BatchNorm, which fails more readily; every fix gives the BatchNorm back
besides its own change, because without it the repaired runs still draw only a few kinds of
digit in 1,400 steps (the judge's recall stays near 0: mode collapse):

  experiment      what is changed                                what you should see
  saturating      G minimises log(1 - D(G(z))) (the minimax      D(G(z)) ~ 0.001, the gradient
                  loss of Goodfellow et al. 2014); D gets a      reaching G ~ 0: samples stay
                  100-step head start                            static
  non_saturating  fix: lesson 03's recipe: G minimises           G escapes; digits appear
                  -log D(G(z)), real target 0.9, BatchNorm in G
  strong_d        D: 5 steps per G step at lr 1e-3, real         D(x) ~ 1, D(G(z)) ~ 0.03 for the
                  target 1                                       whole run
  smoothed_d      fix: one D step, real target 0.9 (one-sided    D stays unsure, more variety
                  label smoothing, Salimans et al. 2016)
  collapse        G: 5 steps per D step, batch 16                the same digit everywhere,
                                                                 pairwise cosine ~ 1
  ttur            fix: two time-scale update rule (Heusel et     variety comes back
                  al. 2017): D lr 4e-4, G lr 1e-4, one step each

``diagnose(history)`` reads a run's curves (D(x), D(G(z)), sample diversity and the size of
the gradient reaching G) and names the failure — "healthy", "mode collapse", "discriminator
wins" or "oscillation" — with its evidence and the fix it recommends. The lesson prints the
diagnosis of every run.

Run it:
    python lessons/05_failure_modes.py                          # all six, about 4 minutes
    python lessons/05_failure_modes.py --experiments collapse,ttur --steps 2000
    python lessons/05_failure_modes.py --list                   # the experiments' settings

Outputs in runs/05_failure_modes/: one folder per experiment (grids from fixed noise,
history.png, metrics.json with the diagnosis, checkpoint.npz, samples.npy), and at the top
summary.png (each experiment's final samples under its diagnosis), history.png (D(G(z)),
diversity and G's gradient for all runs on shared axes), metrics.json, and the samples.npy /
samples_final.png of the first healthy run. --resume continues every experiment from its
checkpoint.
"""
import copy
import dataclasses
import math
import os

import minigan as mg
from minigan import F, metrics, nn, optim, viz
from minigan.data import forever, to_tanh_range
from minigan.experiment import Run, generate, lesson_parser, positive_int

LATENT = 64
IMAGE = 28 * 28


# --- the MLP GAN of lesson 03, with the knobs this lesson turns ---------------------------------
def make_generator(batchnorm=False):
    """Lesson 03's generator, z (64) -> 256 -> 512 -> 784, without its BatchNorm unless
    ``batchnorm``: the failures start from the plainer network, which breaks more readily; the
    fixes give it lesson 03's BatchNorm1d after each hidden layer back."""
    def hidden(n_in, n_out):  # with BatchNorm's shift in place of the Linear's bias
        norm = [nn.BatchNorm1d(n_out)] if batchnorm else []
        return [nn.Linear(n_in, n_out, bias=not batchnorm), *norm, nn.ReLU()]

    return nn.Sequential(*hidden(LATENT, 256), *hidden(256, 512), nn.Linear(512, IMAGE), nn.Tanh())


def make_discriminator():
    return nn.Sequential(
        nn.Linear(IMAGE, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1),
    )


@dataclasses.dataclass(frozen=True)
class Experiment:
    title: str
    g_loss: str = "non_saturating"  # or "saturating": minimise log(1 - D(G(z)))
    real_target: float = 0.9        # 1.0 = no label smoothing
    lr_d: float = 2e-4
    lr_g: float = 2e-4
    d_steps: int = 1                # D updates per training step
    g_steps: int = 1                # G updates per training step
    head_start: int = 0             # first steps in which only D trains (--quick: at most 2)
    batch_size: int = None          # None: the --batch-size flag
    batchnorm: bool = False         # lesson 03's BatchNorm1d in G (every fix has it)
    fixes: str = None               # the experiment whose failure this one repairs


EXPERIMENTS = {
    "saturating": Experiment("minimax G loss log(1 - D(G(z))), D has a 100-step head start",
                             g_loss="saturating", real_target=1.0, head_start=100),
    "non_saturating": Experiment("fix: lesson 03's G loss -log D(G(z)), real target 0.9 and "
                                 "BatchNorm in G, same head start", head_start=100,
                                 batchnorm=True, fixes="saturating"),
    "strong_d": Experiment("D: 5 steps per G step at lr 1e-3, real target 1",
                           real_target=1.0, lr_d=1e-3, d_steps=5),
    "smoothed_d": Experiment("fix: one D step, real target 0.9 (D lr still 1e-3), BatchNorm in G",
                             lr_d=1e-3, batchnorm=True, fixes="strong_d"),
    "collapse": Experiment("G: 5 steps per D step, batch 16", g_steps=5, batch_size=16),
    "ttur": Experiment("fix: TTUR, D lr 4e-4, G lr 1e-4, one step each, BatchNorm in G, batch 16",
                       lr_d=4e-4, lr_g=1e-4, batch_size=16, batchnorm=True, fixes="collapse"),
}


# --- one training run ---------------------------------------------------------------------------
def d_step(G, D, opt_d, real, exp):
    """One discriminator update; returns its loss and D's mean probabilities on real and fake."""
    with mg.no_grad():  # D's update does not need G's graph
        fake = G(mg.randn(len(real), LATENT))
    opt_d.zero_grad()
    real_logits, fake_logits = D(real), D(fake)
    real_labels = mg.full(real_logits.shape, exp.real_target)
    loss = (F.binary_cross_entropy_with_logits(real_logits, real_labels)
            + F.binary_cross_entropy_with_logits(fake_logits, mg.zeros(*fake_logits.shape)))
    loss.backward()
    opt_d.step()
    return loss, mg.sigmoid(real_logits).mean(), mg.sigmoid(fake_logits).mean()


def g_step(G, D, opt_g, batch_size, exp, update=True):
    """One generator update (or, with update=False, just its loss); returns the loss and the
    size of the gradient D sends back to the generated images: how much D is telling G."""
    opt_g.zero_grad()
    fake = G(mg.randn(batch_size, LATENT))
    # Backpropagate in two legs to see the message in between: first through D into a leaf
    # holding the images (its .grad is what D tells G, pixel by pixel), then through G.
    # D's parameters collect gradients on the way; d_step zeroes them before D's update.
    judged = fake.detach().requires_grad_()
    logits = D(judged)
    if exp.g_loss == "saturating":
        # minimise log(1 - D(G(z))) = -BCE(logits, 0): d loss / d logit = -D(G(z)), which
        # vanishes exactly when D rejects the fakes.
        loss = -F.binary_cross_entropy_with_logits(logits, mg.zeros(*logits.shape))
    else:
        # minimise -log D(G(z)) = BCE(logits, 1): d loss / d logit = -(1 - D(G(z))), largest
        # when D rejects the fakes.
        loss = F.binary_cross_entropy_with_logits(logits, mg.ones(*logits.shape))
    loss.backward()
    if update:
        fake.backward(judged.grad)
        opt_g.step()
    # per-image gradient norm, times the batch size to undo the loss's mean over the batch
    grad = judged.grad
    return loss, ((grad * grad).sum(1).mean() ** 0.5).item() * batch_size


def diversity(images):
    return {"cosine": metrics.mean_pairwise_cosine(images), "pixel_std": metrics.pixel_std(images)}


def feature_distance(samples, real):
    """How far the samples are from real images (for metrics.json; lower is closer)."""
    return {"feature_distance": metrics.feature_distance(real, samples)}


def train(name, exp, args, data, diversity_z):
    """Train one experiment in its own run directory; returns (run, G, the grid's fixed noise)."""
    run_args = copy.copy(args)
    run_args.out = os.path.join(args.out, name)
    run_args.batch_size = exp.batch_size or args.batch_size
    run = Run(run_args, sample_every=max(50, args.steps // 4), dataset=data)
    mg.manual_seed(args.seed)
    fixed_z = mg.randn(64, LATENT)
    G, D = make_generator(exp.batchnorm), make_discriminator()
    opt_g = optim.Adam(G.parameters(), lr=exp.lr_g, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=exp.lr_d, betas=(0.5, 0.999))
    batch = run_args.batch_size
    batches = forever(data, batch)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    # Every few steps the history gets the diversity of samples from fixed noise: what lesson
    # 10's judge sees in them (classes covered, precision, recall) and their cosine and spread.
    run.track_diversity(G, diversity_z, image_shape=(1, 28, 28), every=args.diversity_every)
    start = run.resume(models, optimizers, streams)

    head_start = min(exp.head_start, QUICK_HEAD_START) if args.quick else exp.head_start
    for step in run.steps(start):
        for _ in range(exp.d_steps):
            real = next(batches)[0].reshape(batch, IMAGE)
            loss_d, d_real, d_fake = d_step(G, D, opt_d, real, exp)
        for _ in range(exp.g_steps):
            loss_g, grad_g = g_step(G, D, opt_g, batch, exp, update=step >= head_start)
        run.log(step, loss_d=loss_d, loss_g=loss_g, d_real=d_real, d_fake=d_fake, grad_g=grad_g)
        if run.should_sample(step):
            run.save_grid(generate(G, fixed_z, image_shape=(1, 28, 28)), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)
    return run, G, fixed_z


def plot_run(run):
    """One run's curves: losses, D's probabilities, G's gradient (on a scale of its own), then
    the diversity readings."""
    history = run.history
    run.plot_history({
        "losses": {k: history[k] for k in ("loss_d", "loss_g")},
        "D's mean probability": {"D(x)": history["d_real"], "D(G(z))": history["d_fake"]},
        "gradient reaching G's images (norm per image)": {"grad_g": history["grad_g"]},
    })


# --- reading the curves -------------------------------------------------------------------------
REAL_DIGITS = {"cosine": 0.71, "pixel_std": 0.36}  # diversity of 256 real digits (measured)
RECALL_COLLAPSED = 0.25  # real vs real ~0.9; half the classes ~0.45, one class ~0.1 (lesson 10)
CLASSES_COLLAPSED = 8    # of 10: two digits under 2% of the samples are missing, not rare

FIXES = {
    "healthy": "nothing to fix; train longer for sharper samples",
    "vanishing gradient": "use the non-saturating generator loss -log D(G(z)) (it is steep exactly "
                          "where log(1 - D(G(z))) is flat)",
    "discriminator wins": "weaken D: one D step per G step, and one-sided label smoothing (real "
                          "target 0.9) so D cannot become certain; or a lower D learning rate",
    "mode collapse": "stop G from outrunning D: one G step per D step and the two time-scale "
                     "update rule (TTUR: D lr 4e-4, G lr 1e-4); larger batches and BatchNorm "
                     "in G (lesson 03) help too",
    "oscillation": "lower both learning rates, keep Adam's beta1 at 0.5, and let D lead (TTUR: "
                   "D lr 4e-4, G lr 1e-4)",
}


@dataclasses.dataclass
class Diagnosis:
    mode: str       # "healthy", "mode collapse", "discriminator wins" or "oscillation"
    fix: str
    evidence: dict  # the numbers the verdict rests on

    def __str__(self):
        numbers = ", ".join(f"{k}={v:.3g}" for k, v in self.evidence.items())
        return f"{self.mode}  ({numbers})\n      fix: {self.fix}"


def tail_mean(values, fraction=0.2):
    """The mean of the last ``fraction`` of a curve: where the run ended up, minus batch noise."""
    tail = values[-max(1, int(len(values) * fraction)):]
    return sum(tail) / len(tail)


def swing(values):
    """How much a curve still wanders over the second half of the run: the standard deviation
    of its moving average (window a twentieth of the run), so that batch noise does not count."""
    window = max(1, len(values) // 20)
    half = values[len(values) // 2 - window:] if len(values) >= 2 * window else values
    smooth = [sum(half[i:i + window]) / window for i in range(len(half) - window + 1)]
    mean = sum(smooth) / len(smooth)
    return math.sqrt(sum((v - mean) ** 2 for v in smooth) / len(smooth))


def diagnose(history, reference=None):
    """Name a run's failure mode from its history (a dict of per-step lists, as Run keeps it).

    Reads d_real and d_fake (D's mean probabilities on real and generated batches) and, where
    the history has them, the diversity of samples from fixed noise (``Run.track_diversity``:
    recall and coverage read by lesson 10's judge, cosine and pixel_std) and grad_g (size of
    the gradient reaching G's images). Checked in this order, on the last fifth of the run
    unless said otherwise:

      discriminator wins  D(G(z)) < 0.05 and D(x) > 0.9: D tells real from fake perfectly.
                          With grad_g < 0.05 as well, G is not even told how to improve: the
                          saturating loss's vanishing gradient, whose fix differs.
      mode collapse       the samples miss much of the data. By the judge: recall under 0.25
                          (real images reach about 0.9) or fewer than 8 of 10 classes covered.
                          By the pixels: mean pairwise cosine more than 0.25 above the real
                          data's, or pixel std under 35% of it.
      oscillation         the smoothed D(G(z)) still swings with standard deviation > 0.1 over
                          the second half of the run instead of settling.
      healthy             none of the above.

    ``reference``: the real data's {"cosine", "pixel_std"} (default: the built-in digits).
    Returns a Diagnosis with ``mode``, ``fix`` and ``evidence``.
    """
    reference = reference or REAL_DIGITS
    evidence = {"d_real": tail_mean(history["d_real"]), "d_fake": tail_mean(history["d_fake"])}
    for key in ("coverage", "recall", "cosine", "pixel_std", "grad_g"):
        if history.get(key):
            evidence[key] = tail_mean(history[key])
    evidence["swing"] = swing(history["d_fake"])

    if evidence["d_fake"] < 0.05 and evidence["d_real"] > 0.9:
        vanishing = evidence.get("grad_g", math.inf) < 0.05
        return Diagnosis("discriminator wins", FIXES["vanishing gradient" if vanishing
                                                     else "discriminator wins"], evidence)
    missed_by_judge = evidence.get("recall", 1) < RECALL_COLLAPSED or \
        evidence.get("coverage", math.inf) < CLASSES_COLLAPSED
    alike_in_pixels = evidence.get("cosine", -1) > reference["cosine"] + 0.25 or \
        evidence.get("pixel_std", math.inf) < 0.35 * reference["pixel_std"]
    if missed_by_judge or alike_in_pixels:
        mode = "mode collapse"
    elif evidence["swing"] > 0.1:
        mode = "oscillation"
    else:
        mode = "healthy"
    return Diagnosis(mode, FIXES[mode], evidence)


# --- the lesson ---------------------------------------------------------------------------------
QUICK_EXPERIMENTS = ("saturating", "collapse")  # for --quick: both losses, head start, g_steps
QUICK_HEAD_START = 2  # --quick runs 6 steps: G trains in the last 4 at least


def parse_args(argv=None):
    parser = lesson_parser("05_failure_modes", __doc__, steps=1400, batch_size=64, quick_steps=6)
    parser.add_argument("--experiments", default="all",
                        help="comma-separated names, or 'all' (default; --quick runs two)")
    parser.add_argument("--diversity-every", type=positive_int, default=50,
                        help="steps between diversity measurements (default 50)")
    parser.add_argument("--list", action="store_true", help="print the experiments and exit")
    args = parser.parse_args(argv)
    if args.experiments == "all":
        names = list(QUICK_EXPERIMENTS if args.quick else EXPERIMENTS)
    else:
        names = args.experiments.split(",")
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment {', '.join(unknown)}; "
                     f"choose from {', '.join(EXPERIMENTS)}")
    args.names = names
    if args.quick:
        args.diversity_every = 2
    return args


def summary_pictures(results, reference, out):
    """summary.png: each experiment's final samples titled with its diagnosis;
    history.png: D(G(z)), diversity and G's gradient of every run on shared axes."""
    panels = {f"{name}: {r['diagnosis'].mode}": viz.make_grid(r["grid"][:36], nrow=6)
              for name, r in results.items()}
    viz.plot_images(panels, os.path.join(out, "summary.png"), ncols=min(2, len(panels)),
                    title="Final samples from fixed noise, and what diagnose() says")
    steps = len(next(iter(results.values()))["history"]["step"])
    cosine = {n: r["history"]["cosine"] for n, r in results.items()}
    cosine["real data"] = [reference["cosine"]] * steps
    recall = {n: r["history"]["recall"] for n, r in results.items() if "recall" in r["history"]}
    viz.plot_panels({
        "D(G(z)): D's mean probability that a fake is real":
            {n: r["history"]["d_fake"] for n, r in results.items()},
        "diversity: mean pairwise cosine of samples (lower = more varied)": cosine,
        "recall: the share of real images the samples reach (the judge's features)": recall,
        "gradient reaching G's images (norm per image)":
            {n: r["history"]["grad_g"] for n, r in results.items()},
    }, os.path.join(out, "history.png"))


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        default = Experiment("")
        for name, exp in EXPERIMENTS.items():
            changed = {f.name: getattr(exp, f.name) for f in dataclasses.fields(exp)
                       if f.name != "title" and getattr(exp, f.name) != getattr(default, f.name)}
            print(f"{name:<15} {exp.title}\n{'':<15} {changed}")
        return
    top = Run(args)  # the lesson's own directory, for the summary
    mg.manual_seed(args.seed)
    data = top.load_dataset()
    diversity_z = mg.randn(64 if args.quick else 256, LATENT)
    reference = diversity(to_tanh_range(data.images[:256]))
    print(f"real {data.name}: mean pairwise cosine {reference['cosine']:.3f}, "
          f"pixel std {reference['pixel_std']:.3f}")

    results = {}
    for name in args.names:
        exp = EXPERIMENTS[name]
        print(f"\n== {name}: {exp.title}")
        run, G, fixed_z = train(name, exp, args, data, diversity_z)
        diagnosis = diagnose(run.history, reference)
        print(f"   diagnosis: {diagnosis}")
        if exp.fixes in results:
            before = results[exp.fixes]["diagnosis"].mode
            print(f"   repairs {exp.fixes}: {before} -> {diagnosis.mode}")
        grid, samples, _ = run.finish_gan(
            G, fixed_z, data, image_shape=(1, 28, 28), plot=False, compare=feature_distance,
            metrics={"experiment": dataclasses.asdict(exp),
                     "diagnosis": dataclasses.asdict(diagnosis)})
        plot_run(run)
        results[name] = {"diagnosis": diagnosis, "grid": grid, "history": run.history,
                         "samples": samples, "seconds": run.elapsed()}

    summary_pictures(results, reference, args.out)
    healthy = [n for n, r in results.items() if r["diagnosis"].mode == "healthy"]
    shown = (healthy or list(results))[0]
    summary = {name: {**dataclasses.asdict(r["diagnosis"]), "seconds": round(r["seconds"], 1)}
               for name, r in results.items()}
    top.finish(results[shown]["grid"], results[shown]["samples"], plot=False, metrics={
        "reference": reference, "samples_from": shown, "experiments": summary})


if __name__ == "__main__":
    main()

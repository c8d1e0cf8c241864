"""Lesson 09 — conditional GANs: ask for a class, get that class (Mirza & Osindero 2014; the
auxiliary classifier GAN of Odena, Olah & Shlens 2017; the projection discriminator of Miyato &
Koyama 2018).

The GANs so far draw a random digit: which one is up to the noise. A conditional GAN takes the
class as a second input. The generator draws G(z, y), an image of class y in the style z; the
discriminator judges pairs (image, class), so a good 3 labelled "7" is as fake as a smudge. To
fool it, G must draw the digit it is asked for.

What you will see:
  1. G's input: the noise z with the class as a one-hot vector appended, (100 + 10) numbers
     that the first transposed convolution turns into a 7x7 map, as in lesson 04;
  2. D's input: the image with the class as extra channels, a learnt embedding of the class
     (EMBED numbers) copied to every pixel, so D's first layer sees the class wherever it looks;
  3. behind --discriminator, two other ways to tell D the class: the projection discriminator
     (D's score gets a term <embed(y), features(x)>) and AC-GAN (D is told nothing, but also
     predicts the class, and G is rewarded when D reads the class it asked for);
  4. lesson 08's recipe: spectral norm in D, the hinge loss, TTUR;
  5. the check that conditioning works: lesson 10's judge (a classifier trained on the real
     images) reads 1,000 samples, 100 asked of each class, and we count how often it reads the
     class that was asked for;
  6. samples_final.png: one row per class, one column per noise vector, so a row shows a class
     and a column one style drawn in every class.

Run it:
    python lessons/09_conditional.py                              # about 8 minutes on a 2-core CPU
    python lessons/09_conditional.py --dataset shapes             # circles and squares, 32x32 RGB
    python lessons/09_conditional.py --discriminator acgan        # or projection
    python lessons/09_conditional.py --dataset mnist --data-root DIR   # real MNIST
    python lessons/09_conditional.py --steps 5000 --resume        # continue a finished run

Outputs in runs/09_conditional/: samples_<step>.png (a row per class from fixed noise),
samples_final.png, history.png (losses, D's scores, and the judge's agreement over training),
agreement.png (the judge's reading of each requested class), evaluations.json, metrics.json,
checkpoint.npz and samples.npy (with labels.npy, the class each sample was asked for).
"""
import json
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import F, classifier, io, metrics, nn, optim, viz
from minigan.data import forever, load_dataset
from minigan.experiment import (
    DATASET_CHOICES, FINAL_SAMPLES, Run, dcgan_init, generate, lesson_parser, positive_int)

LATENT = 100
WIDTH = 32            # D: WIDTH channels at half the image side, 2 * WIDTH at a quarter; G mirrors it
EMBED = 8             # label channels the "channels" discriminator gets
LR_G, LR_D = 2e-4, 4e-4  # lesson 08's TTUR
BETAS = (0.0, 0.9)
VARIANTS = ("channels", "projection", "acgan")
COLUMNS = 8           # noise vectors per row of the class grid
EVAL_SAMPLES = 500    # samples the judge reads at each evaluation during training


# --- 1. the generator: z and a one-hot class --------------------------------------------------
def generator_input(z, labels, classes):
    """[z, one_hot(y)] shaped (N, LATENT + classes, 1, 1): G's input is a 1x1 image whose channels
    are the noise and the class. Nothing else in G changes: the first transposed convolution
    gives each class its own weights (the one-hot picks a slice of its kernel), added to what
    the noise draws."""
    one_hot = F.one_hot(labels, classes).float()
    return mg.cat([z, one_hot], dim=1).reshape(len(z), LATENT + classes, 1, 1)


def feature_sizes(size):
    """The side of the smallest feature map and the number of doublings up to the image: 28x28
    images start at 7x7 and double twice (lesson 04), 32x32 ones start at 4x4 and double three
    times (lesson 11), so that D's last features see the whole shape."""
    return (7, 2) if size == 28 else (size // 8, 3)


def make_generator(classes, channels, size):
    """(LATENT + classes) x 1x1 -> 4 WIDTH x 7x7 -> 2 WIDTH x 14x14 -> channels x 28x28, lesson
    04's generator at half width; for 32x32 images 4 WIDTH x 4x4 -> 2 WIDTH x 8x8 -> WIDTH x
    16x16 -> channels x 32x32."""
    start, doublings = feature_sizes(size)
    widths = [4 * WIDTH, 2 * WIDTH, WIDTH][:doublings]
    layers = [nn.ConvTranspose2d(LATENT + classes, widths[0], start, 1, 0, bias=False),
              nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for wide, narrow in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU()]
    return nn.Sequential(*layers, nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh())


# --- 2. the discriminator: the class as image channels (or a projection, or a second head) -------
class LabelChannels(nn.Module):
    """(images (N, C, H, W), labels (N,)) -> (N, C + dim, H, W): each image with its class's
    embedding, a learnt vector of ``dim`` numbers, copied to every pixel as ``dim`` constant
    channels. The first convolution then weighs the class at every position like any other
    input channel; the embedding is trained with D."""

    def __init__(self, classes, dim):
        super().__init__()
        self.embed = nn.Embedding(classes, dim)

    def forward(self, images, labels):
        n, _, h, w = images.shape
        planes = self.embed(labels).reshape(n, -1, 1, 1).expand(n, self.embed.embedding_dim, h, w)
        return mg.cat([images, planes], dim=1)


class ConditionalDiscriminator(nn.Module):
    """channels x 28x28 -> WIDTH x 14x14 -> 2 WIDTH x 7x7 = features h -> a score (and, for
    AC-GAN, class logits); for 32x32 images one stage more, to 4 WIDTH x 4x4. Every kernel is
    spectrally normalised (lesson 08; here with the engine's nn.utils.spectral_norm, which runs
    the same power iteration).

    variant "channels":   D(x, y) = head(h(x ++ embed(y) planes))
    variant "projection": D(x, y) = head(h(x)) + <embed(y), h(x)>, with h(x) flattened:
                          the class picks a direction in feature space, and the score rises
                          when the image's features point along it (Miyato & Koyama 2018)
    variant "acgan":      D(x) = head(h(x)) and class logits from a second head; D is not
                          told the class, it predicts it (Odena et al. 2017)
    ``forward`` returns (scores (N,), class logits (N, classes) or None)."""

    def __init__(self, variant, classes, channels, size):
        super().__init__()
        self.variant = variant
        sn = nn.utils.spectral_norm
        side, halvings = feature_sizes(size)
        widths = [channels + (EMBED if variant == "channels" else 0), WIDTH, 2 * WIDTH, 4 * WIDTH][:halvings + 1]
        if variant == "channels":
            self.labels = LabelChannels(classes, EMBED)
        layers = []
        for narrow, wide in zip(widths, widths[1:]):
            layers += [sn(nn.Conv2d(narrow, wide, 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = sn(nn.Conv2d(widths[-1], 1 + (classes if variant == "acgan" else 0), side, 1, 0))
        if variant == "projection":
            self.project = sn(nn.Embedding(classes, widths[-1] * side * side))

    def forward(self, images, labels):
        if self.variant == "channels":
            images = self.labels(images, labels)
        h = self.body(images)
        out = self.head(h).flatten(1)
        scores = out[:, 0]
        if self.variant == "projection":
            scores = scores + (self.project(labels) * h.flatten(1)).sum(dim=1)
        return scores, (out[:, 1:] if self.variant == "acgan" else None)


# --- 3. the losses: lesson 08's hinge, plus AC-GAN's class term ----------------------------------
def discriminator_loss(D, real, real_labels, fake, fake_labels):
    """Hinge loss on (image, class) pairs. For AC-GAN, D also learns to name the class of real
    images and of fakes (as the paper does: the class of a fake is the one G was asked for)."""
    real_scores, real_classes = D(real, real_labels)
    fake_scores, fake_classes = D(fake.detach(), fake_labels)
    loss = F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
    if real_classes is not None:
        loss = loss + F.cross_entropy(real_classes, real_labels) + F.cross_entropy(fake_classes, fake_labels)
    return loss, real_scores.mean(), fake_scores.mean()


def generator_loss(D, fake, fake_labels):
    """-E[D(G(z, y), y)]; for AC-GAN plus the cross-entropy of D's class reading against y."""
    scores, classes = D(fake, fake_labels)
    loss = -scores.mean()
    if classes is not None:
        loss = loss + F.cross_entropy(classes, fake_labels)
    return loss


# --- 4. does G draw the class it is asked for? -------------------------------------------------
def balanced_labels(n, classes):
    """0, 1, ..., classes - 1, 0, 1, ...: n labels, every class (nearly) equally often."""
    return mg.tensor(np.arange(n) % classes)


def agreement(judge, samples, labels, classes):
    """The fraction of samples the judge reads as the class they were asked for, overall and per
    class (NumPy samples and labels)."""
    hits = judge.predict(samples) == labels
    per_class = [float(hits[labels == c].mean()) for c in range(classes)]
    return float(hits.mean()), per_class


def class_grid(G, z, classes):
    """Images for a grid with one row per class and one column per noise vector in ``z``:
    every row reuses the same noise, so a column shows one style in every class."""
    labels = mg.tensor(np.repeat(np.arange(classes), len(z)))
    noise = mg.cat([z] * classes)
    return generate(G, generator_input(noise, labels, classes))


def plot_history(history, evals, path):
    """Losses and D's mean scores per step (raw faint, smoothed solid), and the judge's
    agreement with the requested class at each evaluation."""
    figure = Figure(figsize=(8, 9), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 1, sharex=True)
    panels = (("hinge losses", ("loss_d", "loss_g")), ("mean D score", ("d_real", "d_fake")))
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            line, = ax.plot(history["step"], history[key], alpha=0.25, linewidth=0.8)
            ax.plot(history["step"], viz.ema(history[key], max(1, len(history[key]) // 20)),
                    color=line.get_color(), linewidth=1.5, label=key)
        ax.set_title(title)
        ax.legend(fontsize="small")
    axes[2].plot([e["step"] for e in evals], [e["agreement"] for e in evals], marker="o",
                 label="agreement: the judge reads the class asked for")
    for key in ("precision", "recall"):  # the run's diversity readings (Run.track_diversity)
        if history.get(key):
            axes[2].plot(history["step"], history[key], linewidth=1.2, label=key)
    axes[2].set_ylim(0, 1.02)
    axes[2].set_title("the judge on samples from fixed noise (fraction of samples)")
    axes[2].legend(fontsize="small")
    axes[2].set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
    save_figure(figure, path)


def plot_agreement(per_class, class_names, path):
    figure = Figure(figsize=(max(4, 0.6 * len(class_names) + 2), 3.2), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.bar(range(len(per_class)), per_class)
    ax.axhline(0.9, color="tab:red", linewidth=0.8)
    ax.set_xticks(range(len(per_class)), class_names)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("requested class")
    ax.set_title("samples the judge reads as the requested class")
    save_figure(figure, path)


def save_figure(figure, path):
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


def _read_json(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _write_json(value, path):
    with io.atomic_open(path) as f:
        f.write(json.dumps(value, indent=1).encode())


# --- the lesson ---------------------------------------------------------------------------------
def main(argv=None):
    parser = lesson_parser("09_conditional", __doc__, steps=3500, batch_size=64, quick_steps=3,
                           datasets=DATASET_CHOICES + ("shapes",))
    parser.add_argument("--discriminator", choices=VARIANTS, default="channels",
                        help="how D is told the class (default channels)")
    parser.add_argument("--sample-every", type=positive_int, default=250,
                        help="steps between grids, evaluations and checkpoints (default 250)")
    args = parser.parse_args(argv)
    run = Run(args, sample_every=args.sample_every, recipe=("discriminator",))  # a resume must keep it
    data = run.load_dataset()
    test = load_dataset(args.dataset, root=args.data_root, train=False)
    if args.quick:  # a judge trained in seconds, for smoke tests; never cached
        judge = classifier.train_classifier(data.first(2000), test.first(500), epochs=1)
        reference = metrics.RealReference(judge, test.images[:500])
    else:
        judge = classifier.load_or_train(args.dataset, args.data_root)
        reference = metrics.RealReference(judge, test.images)
    print(f"judge: {data.name} classifier, test accuracy {judge.accuracy:.2%}")
    classes, channels, size = len(data.classes), data.channels, data.image_size
    mg.manual_seed(args.seed)  # after the judge, whose training (--quick) seeds the RNG itself

    fixed_z = mg.randn(COLUMNS, LATENT)
    eval_labels = balanced_labels(EVAL_SAMPLES, classes)
    eval_z = mg.randn(EVAL_SAMPLES, LATENT)
    G = make_generator(classes, channels, size).apply(dcgan_init)
    D = ConditionalDiscriminator(args.discriminator, classes, channels, size).apply(dcgan_init)
    opt_g = optim.Adam(G.parameters(), lr=LR_G, betas=BETAS)
    opt_d = optim.Adam(D.parameters(), lr=LR_D, betas=BETAS)
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    # The history reads the same 500 samples' diversity at every grid (precision, recall, classes
    # covered), with this lesson's judge (--quick trains a small one).
    run.judge = judge
    run.track_diversity(G, generator_input(eval_z, eval_labels, classes))
    start = run.resume(models, optimizers, streams)

    def evaluate(step):
        samples = generate(G, generator_input(eval_z, eval_labels, classes)).numpy()
        share, _ = agreement(judge, samples, eval_labels.numpy(), classes)
        return {"step": step, "agreement": share}

    evals_path = os.path.join(run.dir, "evaluations.json")
    evals = [e for e in _read_json(evals_path) if e["step"] <= start] if start else [evaluate(0)]

    for step in run.steps(start):
        real, real_labels = next(batches)
        fake_labels = mg.randint(0, classes, (args.batch_size,))
        fake = G(generator_input(mg.randn(args.batch_size, LATENT), fake_labels, classes))

        opt_d.zero_grad()
        loss_d, d_real, d_fake = discriminator_loss(D, real, real_labels, fake, fake_labels)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad()
        loss_g = generator_loss(D, fake, fake_labels)
        loss_g.backward()
        opt_g.step()

        run.log(step, loss_d=loss_d, loss_g=loss_g, d_real=d_real, d_fake=d_fake)
        if run.should_sample(step):
            run.save_grid(class_grid(G, fixed_z, classes), step, nrow=COLUMNS)
            if (step + 1) % run.sample_every == 0:  # a run's last step is not a fixed point
                evals.append(evaluate(step + 1))
            _write_json(evals, evals_path)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    # 1,000 fresh samples, 100 asked of each class (for digits): does the judge read that class?
    labels = balanced_labels(FINAL_SAMPLES, classes)
    samples = generate(G, generator_input(mg.randn(FINAL_SAMPLES, LATENT), labels, classes)).numpy()
    labels = labels.numpy()
    share, per_class = agreement(judge, samples, labels, classes)
    print(f"the judge reads the requested class in {share:.1%} of {FINAL_SAMPLES} samples; per class: "
          + ", ".join(f"{name} {p:.0%}" for name, p in zip(data.classes, per_class)))
    scores = reference.score(samples) if np.isfinite(samples).all() else {}
    np.save(os.path.join(run.dir, "labels.npy"), labels)
    plot_history(run.history, evals, os.path.join(run.dir, "history.png"))
    plot_agreement(per_class, data.classes, os.path.join(run.dir, "agreement.png"))
    grid = class_grid(G, fixed_z, classes).numpy()
    run.finish(grid, samples, plot=False, metrics={
        "discriminator": args.discriminator, "agreement": share,
        "agreement_per_class": dict(zip(data.classes, per_class)),
        "classifier_accuracy": judge.accuracy, "evaluations": evals, **scores})


if __name__ == "__main__":
    main()

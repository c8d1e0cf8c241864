"""Lesson 12 — progressive growing of GANs (Karras, Aila, Laine & Lehtinen 2017).

A GAN that must draw 32x32 images from the first step has to find the large structure (where
the stroke goes) and the fine detail (how its edges look) at once, and the discriminator can
tell real from fake by either. Progressive growing trains both networks on 4x4 images first,
where only the coarse layout exists, then adds a layer pair for 8x8, 16x16 and 32x32 in turn.
Each stage starts from networks that already solve the coarser problem, so it only has to add
the detail of one octave.

What you will see:
  1. the fade-in: a new block enters with weight alpha rising from 0 to 1, beside a skip path
     that the old, smaller network feeds (its image upsampled by nearest neighbour in G; the
     input average-pooled into the old first layer in D), so growing never shocks the networks;
  2. the paper's other ingredients, from minigan.nn: equalised learning rate (EqualizedConv2d,
     EqualizedLinear), pixelwise feature normalisation in G (PixelNorm) instead of BatchNorm,
     minibatch standard deviation in D (MinibatchStdDev), and the WGAN-GP loss of lesson 07
     with the paper's small drift term;
  3. growth.png: the same noise at the end of every stage, 4x4 to 32x32 (stage_<side>.png has
     the full grids); fade_in.png: the same noise during each fade-in, alpha 0 to 1;
  4. lesson 10's judge on the final samples (digits are padded to 32x32, and cropped back to
     28x28 for the judge).

The stage and the fade-in's alpha live in both networks as buffers, so they are in the
checkpoint with the weights: --resume checks them against the schedule and continues exactly.

Run it:
    python lessons/12_progressive.py                        # about 10 minutes on a 2-core CPU
    python lessons/12_progressive.py --dataset mnist        # real MNIST (downloaded once, or --data-root DIR)
    python lessons/12_progressive.py --steps 4000 --resume  # more steps at 32x32

--phase-steps P sets the schedule: P steps at 4x4, then for each of 8x8, 16x16 and 32x32 P steps
of fade-in and P steps of training at that size (7 P in all); steps beyond stay at 32x32.
Outputs in runs/12_progressive/: samples_<step>.png, stage_<side>.png, growth.png,
fade_in.png, samples_final.png, history.png, metrics.json, checkpoint.npz and samples.npy.
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import F, io, nn, optim, viz
from minigan.data import forever, to_tanh_range
from minigan.experiment import Run, generate, lesson_judge, lesson_parser, positive_int, seeded_noise
from minigan.metrics import compare_to_real

LATENT = 128
SIDES = (4, 8, 16, 32)
CHANNELS = {4: 128, 8: 64, 16: 32, 32: 16}  # feature maps at each side, in G and in D
LAMBDA = 10.0    # gradient penalty weight (lesson 07)
DRIFT = 1e-3     # keeps D's scores near 0: epsilon_drift * E[D(x)^2], from the paper
STRIP = 6        # noise vectors in growth.png and fade_in.png
FADE_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


def fade_in(alpha, old, new):
    """(1 - alpha) * old + alpha * new: the grown network's output while its new block fades in."""
    return old + alpha * (new - old)


def upsample(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x):
    return F.avg_pool2d(x, 2)


# --- the generator --------------------------------------------------------------------------------

class GeneratorBlock(nn.Module):
    """Double the side (nearest neighbour), then two 3x3 convolutions, each followed by
    LeakyReLU and pixel norm."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.EqualizedConv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.EqualizedConv2d(c_out, c_out, 3, padding=1)
        self.norm = nn.PixelNorm()

    def forward(self, x):
        x = self.norm(lrelu(self.conv1(upsample(x))))
        return self.norm(lrelu(self.conv2(x)))


class Generator(nn.Module):
    """z -> 4x4 (a dense layer and a 3x3 convolution), then one GeneratorBlock per larger side.
    Every side has its own toRGB, a 1x1 convolution to image channels (linear, no tanh: the
    paper's generator outputs are unbounded; samples are clipped to [-1, 1] for pictures).

    ``stage`` (0 for 4x4 ... 3 for 32x32) and ``alpha`` are buffers: they say which blocks run
    and how far the newest one has faded in, and they travel with the weights in a state dict."""

    def __init__(self, channels, image_channels):
        super().__init__()
        c = CHANNELS
        self.input_norm = nn.PixelNorm()
        self.dense = nn.EqualizedLinear(LATENT, 16 * c[4], gain=np.sqrt(2) / 4)
        self.conv4 = nn.EqualizedConv2d(c[4], c[4], 3, padding=1)
        self.norm = nn.PixelNorm()
        self.blocks = nn.ModuleList([GeneratorBlock(c[a], c[b]) for a, b in zip(SIDES, SIDES[1:])])
        self.to_rgb = nn.ModuleList([nn.EqualizedConv2d(c[s], image_channels, 1, gain=1.0) for s in SIDES])
        self.register_buffer("stage", mg.tensor(0))
        self.register_buffer("alpha", mg.tensor(1.0))

    def forward(self, z):
        stage, alpha = int(self.stage.item()), float(self.alpha.item())
        x = self.norm(lrelu(self.dense(self.input_norm(z)).reshape(len(z), CHANNELS[4], 4, 4)))
        x = self.norm(lrelu(self.conv4(x)))
        for block in self.blocks[:max(stage - 1, 0)]:
            x = block(x)
        if stage == 0:
            return self.to_rgb[0](x)
        new = self.to_rgb[stage](self.blocks[stage - 1](x))
        if alpha >= 1:
            return new
        return fade_in(alpha, upsample(self.to_rgb[stage - 1](x)), new)


# --- the discriminator ----------------------------------------------------------------------------

class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU, then halve the side (2x2 average pooling)."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.EqualizedConv2d(c_in, c_in, 3, padding=1)
        self.conv2 = nn.EqualizedConv2d(c_in, c_out, 3, padding=1)

    def forward(self, x):
        return downsample(lrelu(self.conv2(lrelu(self.conv1(x)))))


class Discriminator(nn.Module):
    """G in reverse: fromRGB (1x1 convolution) at the current side, DiscriminatorBlocks down to
    4x4, then minibatch standard deviation, a 3x3 and a 4x4 convolution and a linear score
    (unbounded: a WGAN critic). No normalisation of activations: the gradient penalty wants
    every sample's score to depend on that sample (minibatch stddev is the exception, on
    purpose, and it only adds one feature)."""

    def __init__(self, channels, image_channels):
        super().__init__()
        c = CHANNELS
        self.from_rgb = nn.ModuleList([nn.EqualizedConv2d(image_channels, c[s], 1) for s in SIDES])
        self.blocks = nn.ModuleList([DiscriminatorBlock(c[b], c[a]) for a, b in zip(SIDES, SIDES[1:])])
        self.stddev = nn.MinibatchStdDev(group_size=4)
        self.conv4 = nn.EqualizedConv2d(c[4] + 1, c[4], 3, padding=1)
        self.conv_last = nn.EqualizedConv2d(c[4], c[4], 4)
        self.score = nn.EqualizedLinear(c[4], 1, gain=1.0)
        self.register_buffer("stage", mg.tensor(0))
        self.register_buffer("alpha", mg.tensor(1.0))

    def forward(self, image):
        stage, alpha = int(self.stage.item()), float(self.alpha.item())
        x = lrelu(self.from_rgb[stage](image))
        if stage > 0:
            x = self.blocks[stage - 1](x)
            if alpha < 1:
                x = fade_in(alpha, lrelu(self.from_rgb[stage - 1](downsample(image))), x)
            for block in reversed(self.blocks[:stage - 1]):
                x = block(x)
        x = lrelu(self.conv4(self.stddev(x)))
        x = lrelu(self.conv_last(x))
        return self.score(x.reshape(len(x), -1)).reshape(len(x))


# --- the schedule ---------------------------------------------------------------------------------

def schedule(step, phase):
    """(stage, alpha) at ``step``: ``phase`` steps at 4x4; then for each larger side ``phase``
    steps with alpha rising linearly from 0 towards 1, and ``phase`` steps at alpha = 1."""
    if step < phase:
        return 0, 1.0
    grown, into = divmod(step - phase, 2 * phase)
    if grown >= len(SIDES) - 1:
        return len(SIDES) - 1, 1.0
    return grown + 1, min(1.0, into / phase)


def set_stage(models, stage, alpha):
    for model in models:
        model.stage.data[...] = stage
        model.alpha.data[...] = alpha


def real_at(images, stage, alpha):
    """Real 32x32 images as the networks see them at this stage: averaged down to its side,
    and while a block fades in, blended with their upsampled half-size version in the same way
    as G's output, so that real and fake change alike."""
    side = SIDES[stage]
    while images.shape[-1] > side:
        images = downsample(images)
    if stage > 0 and alpha < 1:
        images = fade_in(alpha, upsample(downsample(images)), images)
    return images


def full_size(images):
    """Images of any stage enlarged (nearest neighbour) to 32x32, for grids and measurements."""
    while images.shape[-1] < SIDES[-1]:
        images = upsample(images)
    return images


# --- WGAN-GP (lesson 07), with the drift term -----------------------------------------------------

def critic_loss(D, real, fake):
    """E[D(fake)] - E[D(real)] + lambda E[(||grad D(x_hat)|| - 1)^2] + drift E[D(real)^2]."""
    real_scores, fake_scores = D(real), D(fake)
    estimate = real_scores.mean() - fake_scores.mean()
    eps = mg.rand(len(real), 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = mg.grad(D(x_hat).sum(), x_hat, create_graph=True)
    norms = ((grad * grad).sum(dim=(1, 2, 3)) + 1e-12).sqrt()
    penalty = LAMBDA * ((norms - 1) ** 2).mean()
    drift = DRIFT * (real_scores * real_scores).mean()
    return penalty + drift - estimate, estimate, penalty


def generator_loss(D, fake):
    return -D(fake).mean()


# --- pictures -------------------------------------------------------------------------------------

def plot_growth(snapshots, path):
    """The same noise at the end of every stage: a row per side, enlarged to 32x32."""
    sides = [side for side in SIDES if f"stage {side}" in snapshots]
    if not sides:
        return
    grid = viz.make_grid(np.concatenate([snapshots[f"stage {side}"] for side in sides]), nrow=STRIP)
    figure = Figure(figsize=(grid.shape[1] * 2.4 / 110 + 0.8, grid.shape[0] * 2.4 / 110 + 0.3), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.imshow(grid.squeeze(), cmap="gray", interpolation="nearest", vmin=0, vmax=1)
    row = grid.shape[0] / len(sides)
    ax.set_yticks([row * (i + 0.5) for i in range(len(sides))], [f"{side}x{side}" for side in sides])
    ax.set_xticks([])
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


def plot_fades(snapshots, path):
    """One panel per grown side: rows are noise vectors, columns alpha 0 ... 1."""
    fades = [side for side in SIDES[1:] if f"fade {side} alpha 1.00" in snapshots]
    if not fades:
        return
    figure = Figure(figsize=(2.2 * len(fades) + 0.5, 3.2), dpi=120)
    FigureCanvasAgg(figure)
    for ax, side in zip(figure.subplots(1, len(fades), squeeze=False)[0], fades):
        columns = [snapshots[f"fade {side} alpha {a:.2f}"] for a in FADE_POINTS]
        grid = viz.make_grid(np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:]), nrow=len(columns))
        ax.imshow(grid.squeeze(), cmap="gray", interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(f"fading in {side}x{side}: alpha " + " ".join(f"{a:g}" for a in FADE_POINTS),
                     fontsize="x-small")
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


def main(argv=None):
    parser = lesson_parser("12_progressive", __doc__, steps="7 x --phase-steps", batch_size=16,
                           quick_steps=7)
    parser.add_argument("--phase-steps", type=positive_int, default=None,
                        help="steps of each phase of the schedule (default 300; 1 with --quick)")
    args = parser.parse_args(argv)
    if args.phase_steps is None:
        args.phase_steps = 1 if args.quick else 300
    if not isinstance(args.steps, int):  # not given: the whole schedule
        args.steps = (2 * len(SIDES) - 1) * args.phase_steps
    run = Run(args, sample_every=args.phase_steps)
    mg.manual_seed(args.seed)
    # 28x28 digits padded to 32x32, a power of two: what G draws and the readings compare with
    run.dataset = data = run.load_dataset().padded(2)
    fixed_z = mg.randn(64, LATENT)

    G = Generator(CHANNELS, data.channels)
    D = Discriminator(CHANNELS, data.channels)
    # The paper's Adam: lr 1e-3, beta1 = 0 (no momentum: the target moves), beta2 = 0.99.
    opt_g = optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    opt_d = optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    # At every grid the history reads what the judge sees in 500 samples, enlarged to 32x32 at
    # the early stages (and cropped to 28x28 for the judge): classes covered, precision, recall.
    run.judge = None if args.no_judge else lesson_judge(args, data.name)
    run.track_diversity(G, seeded_noise(args.seed + 1, 500, LATENT), view=full_size)
    start = run.resume(models, optimizers, streams)
    if start and (int(G.stage.item()), float(G.alpha.item())) != schedule(start - 1, args.phase_steps):
        raise SystemExit(f"error: the checkpoint's stage {int(G.stage.item())} and alpha "
                         f"{float(G.alpha.item()):.3f} do not follow --phase-steps {args.phase_steps}; "
                         "resume with the --phase-steps of the run")

    snapshot_path = os.path.join(run.dir, "snapshots.npz")
    snapshots = io.load(snapshot_path) if start and os.path.exists(snapshot_path) else {}
    for step in run.steps(start):
        stage, alpha = schedule(step, args.phase_steps)
        set_stage((G, D), stage, alpha)
        into = (step - args.phase_steps) % (2 * args.phase_steps)
        for a in FADE_POINTS:  # the fade-in strip: the same noise at alpha 0, 0.25, ... 1
            if stage > 0 and step < (2 * len(SIDES) - 1) * args.phase_steps and into == round(a * args.phase_steps):
                snapshots[f"fade {SIDES[stage]} alpha {a:.2f}"] = full_size(generate(G, fixed_z[:STRIP])).numpy()

        with mg.no_grad():
            real = real_at(next(batches)[0], stage, alpha)
        with mg.no_grad():
            fake = G(mg.randn(args.batch_size, LATENT))
        opt_d.zero_grad()
        loss_d, estimate, penalty = critic_loss(D, real, fake)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad()
        loss_g = generator_loss(D, G(mg.randn(args.batch_size, LATENT)))
        loss_g.backward()
        opt_g.step()

        run.log(step, loss_critic=loss_d, loss_g=loss_g, penalty_loss=penalty,
                wasserstein_estimate=estimate, side=SIDES[stage], alpha=alpha)
        if schedule(step + 1, args.phase_steps)[0] > stage or step + 1 == args.steps:
            images = full_size(generate(G, fixed_z)).numpy()
            snapshots[f"stage {SIDES[stage]}"] = images[:STRIP]
            viz.save_grid(images.clip(-1, 1), os.path.join(run.dir, f"stage_{SIDES[stage]}.png"))
        if run.should_sample(step):
            run.save_grid(full_size(generate(G, fixed_z)).clamp(-1, 1), step)
            io.save(snapshots, snapshot_path)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    plot_growth(snapshots, os.path.join(run.dir, "growth.png"))
    plot_fades(snapshots, os.path.join(run.dir, "fade_in.png"))
    h = run.history
    viz.plot_panels({
        "losses": {k: h[k] for k in ("loss_critic", "loss_g", "penalty_loss")},
        "the critic's Wasserstein estimate E[D(real)] - E[D(fake)]":
            {"wasserstein_estimate": h["wasserstein_estimate"]},
        "the schedule: alpha of the newest block": {"alpha": h["alpha"]},
        **run.reading_panels(),
    }, os.path.join(run.dir, "history.png"), steps=h["step"], window=1)
    samples = full_size(generate(G, mg.randn(1000, LATENT))).clamp(-1, 1).numpy()
    grid = full_size(generate(G, fixed_z)).clamp(-1, 1).numpy()
    metrics = {"phase_steps": args.phase_steps, "final_side": int(SIDES[int(G.stage.item())])}
    if np.isfinite(samples).all():
        metrics.update(compare_to_real(samples, to_tanh_range(data.images[:1000])))
        if run.judge is not None:  # read by their centre, 28x28, against the test digits
            metrics["judge"] = run.judge_scores(samples, run.dataset)
    record = run.finish(grid, samples, metrics=metrics, plot=False)
    if "judge" in record:
        fake, real = record["judge"]["samples"], record["judge"]["real"]
        print(f"judge: coverage {fake['coverage']}/10 (real {real['coverage']}), precision "
              f"{fake['precision']:.2f} ({real['precision']:.2f}), recall {fake['recall']:.2f} "
              f"({real['recall']:.2f}), Fréchet {fake['frechet_distance']:.3f} ({real['frechet_distance']:.3f})")


if __name__ == "__main__":
    main()

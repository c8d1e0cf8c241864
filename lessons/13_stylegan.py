"""Lesson 13 — a small StyleGAN (Karras, Laine & Aila 2019).

In every generator so far, the noise z entered at the bottom and every layer worked on what the
previous one made of it. StyleGAN turns this around:

  1. a mapping network (a few fully connected layers; the paper has 8, this one 4) turns z into
     an intermediate latent w. z must fill a fixed Gaussian ball; w need not, so the mapping can
     unwarp it, and directions in w end up meaning more than directions in z;
  2. the synthesis network starts from a learned constant 4x4 input and grows it to 32x32 with
     upsample + 3x3 convolution blocks, two layers per side, and ends in a 1x1 convolution to
     pixels and tanh;
  3. w enters at every layer through AdaIN: the layer's activations are instance-normalised
     and then scaled and shifted per channel by an affine map of w (a "style");
  4. every layer also gets a fresh noise image, scaled by a learned strength per channel, for
     the random detail that has no business in the style.

And then the figures that make StyleGAN StyleGAN:
  - style_mixing.png: two noise vectors A and B, and images that take the styles of some
    layers from B and the rest from A: coarse layers (4x4, 8x8) decide what digit it is and
    how it sits, fine layers (32x32) only how the strokes look. Training mixes styles this way
    for 90% of the batches (mixing regularisation), so that neighbouring layers do not come to
    rely on each other's style;
  - truncation.png: w pulled towards the average w (w_avg, a running mean kept during training)
    by w_avg + psi (w - w_avg) with psi = 1, 0.7, 0.5, 0: more typical images, less variety,
    and at psi = 0 the one "average" image;
  - noise.png: one w with different noise images, and each pixel's spread over many noises;
  - ema.png: samples from G and from an exponential moving average of G's weights. Each step
    moves G towards the critic's latest opinion, so G oscillates around where the game is
    going; the average of its recent weights is smoother and draws better images. It is used
    for every picture and measurement, and never trained itself.

The loss is the non-saturating logistic loss of lesson 03 with an R1 penalty (Mescheder et al.
2018) on the critic's gradient at real images, computed every 4th step with 4 times the weight
(lazy regularisation, from StyleGAN2). Equalised learning rate, pixel norm (of z) and minibatch
standard deviation come from lesson 12 (minigan.nn). The checkpoint holds G, D, the EMA copy
and w_avg (a buffer of both generators), so --resume continues exactly.

Run it:
    python lessons/13_stylegan.py                           # about 13 minutes on a 2-core CPU
    python lessons/13_stylegan.py --dataset mnist           # real MNIST (downloaded once, or --data-root DIR)
    python lessons/13_stylegan.py --steps 5000 --resume     # twice as long: see what it adds

Outputs in runs/13_stylegan/: samples_<step>.png (from the EMA generator), samples_final.png,
style_mixing.png, truncation.png, noise.png, ema.png, history.png, metrics.json,
checkpoint.npz and samples.npy.
"""
import copy
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import F, io, nn, optim, viz
from minigan.data import forever, to_tanh_range
from minigan.experiment import Run, fork_rng, generate, lesson_judge, lesson_parser, seeded_noise, update_ema
from minigan.metrics import compare_to_real

LATENT = W_DIM = 128
MAPPING_LAYERS = 4
SIDES = (4, 8, 16, 32)
CHANNELS = {4: 128, 8: 64, 16: 32, 32: 16}
LAYERS = 2 * len(SIDES)  # styled layers: two per side, so 8 styles for a 32x32 image
MIXING = 0.9             # share of training batches with two styles (mixing regularisation)
W_AVG_DECAY = 0.995      # the running mean of w, for truncation
R1_GAMMA = 2.0           # flatter than 0.1 or 1, with which the generator draws few 4s, 7s and 9s
R1_EVERY = 4
PSIS = (1.0, 0.7, 0.5, 0.0)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


def upsample(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


# --- the generator --------------------------------------------------------------------------------

class MappingNetwork(nn.Module):
    """z -> pixel norm -> MAPPING_LAYERS x (EqualizedLinear + LeakyReLU) -> w. The layers learn
    100 times slower than the rest (lr_mul 0.01, as in the paper): w's distribution then moves
    gently under the synthesis network's feet."""

    def __init__(self):
        super().__init__()
        layers = [nn.PixelNorm()]
        for i in range(MAPPING_LAYERS):
            layers += [nn.EqualizedLinear(LATENT if i == 0 else W_DIM, W_DIM, lr_mul=0.01), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class StyledLayer(nn.Module):
    """[upsample] -> 3x3 convolution -> + noise -> LeakyReLU -> AdaIN(w). The very first layer
    has no convolution: it styles the learned constant (plus noise) directly."""

    def __init__(self, c_in, c_out, conv=True, up=False):
        super().__init__()
        self.up = up
        self.conv = nn.EqualizedConv2d(c_in, c_out, 3, padding=1) if conv else None
        self.noise = nn.NoiseInjection(c_out)
        self.bias = nn.Parameter(mg.zeros(1, c_out, 1, 1))
        self.adain = nn.AdaIN(c_out, W_DIM)

    def forward(self, x, w, noise=None):
        if self.up:
            x = upsample(x)
        if self.conv is not None:
            x = self.conv(x)
        return self.adain(lrelu(self.noise(x, noise) + self.bias), w)


class Synthesis(nn.Module):
    """The learned constant (CHANNELS[4] x 4x4), then two StyledLayers per side (the first of
    each side from 8x8 on upsamples), then toRGB, a 1x1 convolution, and tanh; ``ws`` holds
    one w per layer, (N, LAYERS, W_DIM). ``noises``, if given, is one (N, 1, side, side) image
    per layer; otherwise each layer draws its own.

    The paper's output is linear. A digit's background is exactly -1, and after the last AdaIN
    every channel's level there is set by the image's style, so a linear toRGB draws that -1
    only where the styles happen to cancel: the backgrounds come out grey, a shade per z, the
    discriminator tells them apart at a glance, and the generator escapes by drawing one
    image for every z. tanh reaches -1 by saturating, whatever the style."""

    def __init__(self, image_channels):
        super().__init__()
        self.const = nn.Parameter(mg.ones(1, CHANNELS[4], 4, 4))
        layers = [StyledLayer(CHANNELS[4], CHANNELS[4], conv=False), StyledLayer(CHANNELS[4], CHANNELS[4])]
        for a, b in zip(SIDES, SIDES[1:]):
            layers += [StyledLayer(CHANNELS[a], CHANNELS[b], up=True), StyledLayer(CHANNELS[b], CHANNELS[b])]
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.EqualizedConv2d(CHANNELS[SIDES[-1]], image_channels, 1, gain=1.0)

    def forward(self, ws, noises=None):
        x = self.const.expand(len(ws), -1, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], None if noises is None else noises[i])
        return F.tanh(self.to_rgb(x))


class Generator(nn.Module):
    """z -> mapping -> w (truncated towards w_avg by psi) -> the same w for every layer ->
    synthesis. ``w_avg`` is a buffer (in the state dict and the checkpoint), moved by
    ``update_w_avg`` during training. The output is in (-1, 1), the data's range (tanh, see
    Synthesis)."""

    def __init__(self, image_channels):
        super().__init__()
        self.mapping = MappingNetwork()
        self.synthesis = Synthesis(image_channels)
        self.register_buffer("w_avg", mg.zeros(W_DIM))

    def truncate(self, w, psi):
        return w if psi == 1 else self.w_avg + psi * (w - self.w_avg)

    def forward(self, z, psi=1.0):
        w = self.truncate(self.mapping(z), psi)
        return self.synthesis(broadcast(w))


def broadcast(w, layers=LAYERS):
    """One w (N, W_DIM) as the style of every layer: (N, layers, W_DIM)."""
    return w.reshape(len(w), 1, W_DIM).expand(len(w), layers, W_DIM)


def update_w_avg(G, w):
    with mg.no_grad():
        G.w_avg.data[...] = (G.w_avg + (1 - W_AVG_DECAY) * (w.mean(dim=0) - G.w_avg)).data


def training_styles(G, n):
    """Styles for a training batch: one w per image for every layer; with probability MIXING a
    second w from another z takes over from a random layer on (the same layer for the whole
    batch). Moves w_avg towards the batch's mean w."""
    w = G.mapping(mg.randn(n, LATENT))
    update_w_avg(G, w)
    ws = broadcast(w)
    if mg.rand(1).item() < MIXING:
        cut = int(mg.randint(1, LAYERS, (1,)).item())
        other = broadcast(G.mapping(mg.randn(n, LATENT)), LAYERS - cut)
        ws = mg.cat([ws[:, :cut], other], dim=1)
    return ws


# --- the discriminator (lesson 12's, at full size) ------------------------------------------------

class DiscriminatorBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.EqualizedConv2d(c_in, c_in, 3, padding=1)
        self.conv2 = nn.EqualizedConv2d(c_in, c_out, 3, padding=1)

    def forward(self, x):
        return F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)


class Discriminator(nn.Module):
    """fromRGB at 32x32, blocks down to 4x4, minibatch stddev, a 3x3 and a 4x4 convolution and
    a linear score (a logit)."""

    def __init__(self, image_channels):
        super().__init__()
        c = CHANNELS
        self.from_rgb = nn.EqualizedConv2d(image_channels, c[32], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(c[b], c[a]) for a, b in reversed(list(zip(SIDES, SIDES[1:])))])
        self.stddev = nn.MinibatchStdDev(group_size=4)
        self.conv4 = nn.EqualizedConv2d(c[4] + 1, c[4], 3, padding=1)
        self.conv_last = nn.EqualizedConv2d(c[4], c[4], 4)
        self.score = nn.EqualizedLinear(c[4], 1, gain=1.0)

    def forward(self, image):
        x = self.blocks(lrelu(self.from_rgb(image)))
        x = lrelu(self.conv_last(lrelu(self.conv4(self.stddev(x)))))
        return self.score(x.reshape(len(x), -1)).reshape(len(x))


# --- losses -------------------------------------------------------------------------------------

def discriminator_loss(D, real, fake, regularise):
    """softplus(D(fake)) + softplus(-D(real)) = -log(1 - sigmoid(D(fake))) - log sigmoid(D(real)),
    and on regularising steps R1_EVERY * gamma / 2 * E ||grad_x D(x)||^2 at the real images: it
    flattens the critic around the data, so G is not pushed off real images (zero is the right
    gradient there once G matches the data)."""
    real = real.detach().requires_grad_(regularise)
    real_logits = D(real)
    loss = F.softplus(D(fake)).mean() + F.softplus(-real_logits).mean()
    r1 = mg.zeros(())
    if regularise:
        (grad,) = mg.grad(real_logits.sum(), real, create_graph=True)
        r1 = (grad * grad).sum(dim=(1, 2, 3)).mean()
        loss = loss + R1_EVERY * R1_GAMMA / 2 * r1
    return loss, real_logits, r1


def generator_loss(D, fake):
    return F.softplus(-D(fake)).mean()


# --- figures ------------------------------------------------------------------------------------

def fixed_noises(n, seed):
    """One noise image per layer, the same for all n images (so only the styles differ)."""
    rng = np.random.default_rng(seed)
    sides = [SIDES[i // 2] for i in range(LAYERS)]
    return [mg.tensor(np.repeat(rng.standard_normal((1, 1, s, s)), n, axis=0), dtype=mg.get_default_dtype())
            for s in sides]


def synthesise(G, ws, noises=None):
    with mg.no_grad():
        return G.synthesis(ws, noises).numpy()


def mixing_grid(G, w_a, w_b, layers):
    """Sources A along the top, B down the left; each cell takes B's w in ``layers`` and A's in
    the others. Returns the images of the grid, row by row, with a blank corner."""
    na, nb = len(w_a), len(w_b)
    noises = fixed_noises(na + nb, seed=1)
    sources = synthesise(G, broadcast(mg.cat([w_a, w_b])), noises)
    rows = [np.concatenate([-np.ones_like(sources[:1]), sources[:na]])]
    for i in range(nb):
        ws = broadcast(w_a).numpy().copy()
        ws[:, layers] = w_b[i].numpy()
        rows.append(np.concatenate([sources[na + i:na + i + 1],
                                    synthesise(G, mg.tensor(ws), [n[:na] for n in noises])]))
    return np.concatenate(rows)


def save_panels(panels, path):
    """Grids side by side, each with a title: ``panels`` maps title -> (images, nrow). The
    figure is sized so that every image pixel gets about 2.4 screen pixels."""
    grids = {title: viz.make_grid(images, nrow=nrow) for title, (images, nrow) in panels.items()}
    width = sum(g.shape[1] for g in grids.values()) * 2.4 / 110 + 0.4 * len(grids)
    height = max(g.shape[0] for g in grids.values()) * 2.4 / 110 + 0.5
    figure = Figure(figsize=(max(width, 4.5), height), dpi=110)
    FigureCanvasAgg(figure)
    for ax, (title, grid) in zip(figure.subplots(1, len(grids), squeeze=False)[0], grids.items()):
        ax.imshow(grid.squeeze(), cmap="gray", interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(title, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


def draw_figures(G, G_raw, fixed_z, out):
    """style_mixing.png, truncation.png, noise.png and ema.png, from the EMA generator ``G``."""
    with fork_rng(), mg.no_grad():
        mg.manual_seed(7)
        G.eval()
        w = G.mapping(mg.randn(10, LATENT))
        w_a, w_b = w[:5], w[5:9]
        layer_sets = {"coarse styles (4x4, 8x8) from B": [0, 1, 2, 3],
                      "middle styles (16x16) from B": [4, 5],
                      "fine styles (32x32) from B": [6, 7]}
        save_panels({title: (mixing_grid(G, w_a, w_b, layers), 6) for title, layers in layer_sets.items()},
                    os.path.join(out, "style_mixing.png"))

        z = mg.randn(8, LATENT)
        noises = fixed_noises(8, seed=2)
        columns = [synthesise(G, broadcast(G.truncate(G.mapping(z), psi)), noises) for psi in PSIS]
        truncated = np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:])
        save_panels({"rows: one z each; columns: psi = " + ", ".join(f"{p:g}" for p in PSIS): (truncated, len(PSIS))},
                    os.path.join(out, "truncation.png"))

        ws = broadcast(w[:4])
        draws = [synthesise(G, ws) for _ in range(64)]
        spread = np.stack(draws).std(axis=0)
        spread = spread / max(spread.max(), 1e-8) * 2 - 1
        shown = np.concatenate([np.stack(draws[:6], axis=1), spread[:, None]], axis=1)
        save_panels({"one w per row, six noise draws, then each pixel's spread over 64": (
            shown.reshape(-1, *shown.shape[2:]), 7)}, os.path.join(out, "noise.png"))

        z = mg.randn(8, LATENT)
        mg.manual_seed(8)
        raw = generate(G_raw, z).numpy()
        mg.manual_seed(8)  # the same noise images for both
        averaged = generate(G, z).numpy()
        save_panels({"G (top) and the EMA of its weights (bottom), same z and noise seed": (
            np.concatenate([raw, averaged]), 8)}, os.path.join(out, "ema.png"))


def main(argv=None):
    parser = lesson_parser("13_stylegan", __doc__, steps=2500, batch_size=16, quick_steps=4)
    args = parser.parse_args(argv)
    run = Run(args, sample_every=500 if args.steps >= 1500 else None)
    mg.manual_seed(args.seed)
    data = run.load_dataset().padded(2)  # 28x28 digits -> 32x32, a power of two
    fixed_z = mg.randn(64, LATENT)

    G, D = Generator(data.channels), Discriminator(data.channels)
    G_ema = copy.deepcopy(G).eval()  # never trained: an average of G's weights
    # The paper's Adam (beta1 = 0, beta2 = 0.99), at a rate suited to this small network; the
    # mapping network's equalised layers scale its steps down 100 times themselves.
    opt_g = optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_d = optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    batches = forever(data, args.batch_size)
    models = {"G": G, "G_ema": G_ema, "D": D}
    optimizers, streams = {"G": opt_g, "D": opt_d}, {"real": batches}
    # At every grid the history reads what the judge sees in 500 samples of G_ema (cropped to
    # 28x28 for it): classes covered, precision, recall.
    run.judge = None if args.no_judge else lesson_judge(args, data.name)
    run.track_diversity(G_ema, seeded_noise(args.seed + 1, 500, LATENT))
    start = run.resume(models, optimizers, streams)
    last_r1 = run.history["r1"][-1] if start else 0.0  # logged at every step, measured every 4th

    for step in run.steps(start):
        real = next(batches)[0]
        with mg.no_grad():
            fake = G.synthesis(training_styles(G, args.batch_size))
        opt_d.zero_grad()
        loss_d, real_logits, r1 = discriminator_loss(D, real, fake, regularise=step % R1_EVERY == 0)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad()
        loss_g = generator_loss(D, G.synthesis(training_styles(G, args.batch_size)))
        loss_g.backward()
        opt_g.step()
        update_ema(G_ema, G, (step + 1) * args.batch_size, args.batch_size)

        if step % R1_EVERY == 0:
            last_r1 = r1.item()
        run.log(step, loss_d=loss_d, loss_g=loss_g, d_real=mg.sigmoid(real_logits).mean(), r1=last_r1)
        if run.should_sample(step):
            with fork_rng():  # the noise images drawn here leave training's random numbers alone
                run.save_grid(generate(G_ema, fixed_z), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    draw_figures(G_ema, G, fixed_z, run.dir)
    h = run.history
    viz.plot_panels({"losses": {k: h[k] for k in ("loss_d", "loss_g")},
                     "D's mean probability on real images": {"d_real": h["d_real"]},
                     "R1: E ||grad D(x)||^2 at real images (every 4th step)": {"r1": h["r1"]},
                     **run.reading_panels()},
                    os.path.join(run.dir, "history.png"), steps=h["step"])
    metrics, samples = {}, {}
    for name, model in (("ema", G_ema), ("raw", G)):
        samples[name] = generate(model, mg.randn(1000, LATENT)).numpy()
    if np.isfinite(samples["ema"]).all():
        metrics.update(compare_to_real(samples["ema"], to_tanh_range(data.images[:1000])))
        if run.judge is not None:  # read by their centre, 28x28, against the test digits
            metrics["judge"] = run.judge_scores(samples["ema"], run.dataset)
            if np.isfinite(samples["raw"]).all():  # the same measures for the raw G's samples
                metrics["judge_raw_G"] = run.judge_scores(samples["raw"], run.dataset)["samples"]
    grid = generate(G_ema, fixed_z).numpy()
    record = run.finish(grid, samples["ema"], metrics=metrics, plot=False)
    if "judge" in record:
        fake, real = record["judge"]["samples"], record["judge"]["real"]
        print(f"judge (EMA G): coverage {fake['coverage']}/10 (real {real['coverage']}), precision "
              f"{fake['precision']:.2f} ({real['precision']:.2f}), recall {fake['recall']:.2f} "
              f"({real['recall']:.2f}), Fréchet {fake['frechet_distance']:.3f} ({real['frechet_distance']:.3f})")


if __name__ == "__main__":
    main()

"""Lesson 14 — Pix2Pix: translating one image into another with a conditional GAN
(Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks").

The GANs so far drew an image from noise. Pix2Pix draws an image from another image: a sketch
becomes a photo, a map becomes an aerial view. It learns from pairs (input, target). A plain
regression (L1 to the target) already learns where things go, but where the input leaves a
choice open — which colour? how thick a stroke? — L1 answers with the median of all the
possibilities: a dull, blurred compromise that no target looks like. A discriminator that
judges (input, output) pairs punishes exactly that: it has seen real pairs, and real targets are
never the median. Pix2Pix trains the generator with both losses.

Here the pairs are made offline (minigan.data): a white outline of a circle or square -> the
shape filled with a colour on a dark background (the outline says nothing about the colour),
or with --dataset digits/mnist a digit's one-pixel skeleton -> the digit (the skeleton says
nothing about the stroke width).

What you will see:
  1. the U-Net generator: an encoder that halves the image five times (32 -> 1), a decoder that
     doubles it back, and skip connections that hand each decoder layer the encoder's map of the
     same size, concatenated along the channels, so the outline's exact position goes round the
     bottleneck; dropout in the decoder is the only noise, and it stays on when translating;
  2. the PatchGAN discriminator: it reads the input and the output stacked as one image and
     gives a verdict per overlapping patch, not per image; its receptive field (the patch each
     verdict sees) is computed from its layers and printed;
  3. the loss: the conditional GAN loss + lambda * L1, lambda = 100; Adam 2e-4, betas (0.5, 0.999);
  4. the ablation: the same generator, from the same initial weights and batches, trained with
     L1 only, with the GAN loss only and with both, measured on 1,000 test pairs: L1 to the
     target, where the shape is (intersection over union of the foreground), and for shapes
     the colours (saturation and spread) — or for digits whether lesson 10's classifier reads
     the right digit.

Run it:
    python lessons/14_pix2pix.py                         # three runs, about 8 minutes on a 2-core CPU
    python lessons/14_pix2pix.py --losses both           # the Pix2Pix run alone
    python lessons/14_pix2pix.py --dataset digits        # skeleton -> digit (or mnist, --data-root DIR)
    python lessons/14_pix2pix.py --steps 6000 --resume   # continue every run for longer

Outputs in runs/14_pix2pix/: a folder per loss (l1/, gan/, both/: grids with rows input |
output | target, history.png, metrics.json, checkpoint.npz, samples.npy with the translations
of the test inputs), and at the top ablation.png (the same test inputs translated by each
run), metrics.json (the table) and the samples of the L1 + GAN run.
"""
import copy
import os

import numpy as np

import minigan as mg
from minigan import F, classifier, nn, optim, viz
from minigan.data import (
    DigitSkeletons, OutlinedShapes, forever, load_dataset, to_tanh_range,
)
from minigan.experiment import Run, dcgan_init, fork_rng, judge_for, lesson_parser, positive_int

WIDTHS = (16, 32, 64, 64, 64)  # U-Net channels at 16x16, 8x8, 4x4, 2x2 and 1x1
D_WIDTH = 32            # PatchGAN channels at 16x16 (twice that at 8x8)
LAMBDA = 100.0          # weight of the L1 term (the paper's value)
LR, BETAS = 2e-4, (0.5, 0.999)
LOSSES = {"l1": "L1 only", "gan": "cGAN only", "both": "L1 + cGAN"}
TEST_PAIRS = 1000
QUICK_TEST_PAIRS = 64
READ_PAIRS = 250        # test pairs measured at every sample point, for history.png
SHOWN = 16              # test examples in each grid


# --- 1. the U-Net generator ----------------------------------------------------------------------
class Down(nn.Module):
    """Conv 4x4 stride 2 (halves the side) -> BatchNorm -> LeakyReLU(0.2)."""

    def __init__(self, cin, cout, norm=True):
        super().__init__()
        layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        self.block = nn.Sequential(*layers, nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.block(x)


class Up(nn.Module):
    """Transposed conv 4x4 stride 2 (doubles the side) -> BatchNorm -> Dropout(0.5) (the
    noise, in the innermost blocks) -> ReLU."""

    def __init__(self, cin, cout, dropout=False):
        super().__init__()
        layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        self.block = nn.Sequential(*layers, nn.ReLU())

    def forward(self, x):
        return self.block(x)


class UNet(nn.Module):
    """An encoder-decoder with skip connections (Ronneberger, Fischer & Brox 2015), here with
    five halvings (``widths`` gives each level's channels):

        in   32x32 --down--> 16x16 --down--> 8x8 --down--> 4x4 --down--> 2x2 --down--> 1x1
                              |  e1            | e2          | e3           | e4          |
        out  32x32 <--up-- [d1,e1] <--up-- [d2,e2] <--up-- [d3,e3] <--up-- [d4,e4] <--up--

    Each decoder block's output is concatenated with the encoder's map of the same side
    (``mg.cat([d, e], dim=1)``), so the next block sees both what the bottleneck made of the
    whole image and the encoder's local detail at that scale. No BatchNorm on the first
    encoder block (it would normalise away the input's own levels) nor at the 1x1 bottleneck.
    The output is tanh: images in [-1, 1]. The two innermost decoder blocks have dropout."""

    def __init__(self, cin, cout, widths=WIDTHS):
        super().__init__()
        c, depth = widths, len(widths)
        self.down = nn.ModuleList(
            [Down(cin, c[0], norm=False)]
            + [Down(c[i - 1], c[i], norm=i < depth - 1) for i in range(1, depth)])
        self.up = nn.ModuleList(  # block i doubles level i to level i - 1's side
            [Up(c[i] * (1 if i == depth - 1 else 2), c[i - 1], dropout=i >= depth - 2)
             for i in range(depth - 1, 0, -1)])
        self.out = nn.Sequential(nn.ConvTranspose2d(2 * c[0], cout, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself is where the decoder starts
        for block in self.up:
            x = mg.cat([block(x), skips.pop()], dim=1)
        return self.out(x)


def translate(G, inputs, seed=0, chunk=250):
    """G's outputs for ``inputs`` without a graph: BatchNorm in eval mode (running statistics),
    dropout left on, as the paper does at test time — it is the generator's noise. The dropout
    masks come from ``seed`` in a fork of the RNG: the same masks every time for a seed, and
    the training run's random numbers untouched."""
    was_training = G.training
    G.eval()
    for module in G.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    try:
        with fork_rng(), mg.no_grad():
            mg.manual_seed(seed)
            return mg.cat([G(inputs[i:i + chunk]) for i in range(0, len(inputs), chunk)])
    finally:
        G.train(was_training)


# --- 2. the PatchGAN discriminator ---------------------------------------------------------------
def make_discriminator(channels, width=D_WIDTH):
    """(input, output) stacked as ``channels`` planes, 32x32 -> 32x16x16 -> 64x8x8 -> 1x7x7:
    a logit for each of 7x7 overlapping patches, 22x22 pixels each — large enough to hold the
    largest shape whole, so a patch can tell whether a shape has one colour. No sigmoid (the
    loss takes logits), no BatchNorm on the first layer (as in DCGAN)."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 1, 4, 1, 1),
    )


def receptive_field(layers):
    """The side of the input patch one output of a stack of convolutions sees.

    Walk the layers from the input: a kernel of size k adds (k - 1) * jump pixels to the
    patch, where ``jump`` is how far apart neighbouring outputs of the layer are in input
    pixels (the product of the strides so far)."""
    field, jump = 1, 1
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            k, s, d = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
            field += (k - 1) * d * jump
            jump *= s
    return field


# --- 3. the losses ---------------------------------------------------------------------------------
def discriminator_loss(D, inputs, targets, fake):
    """BCE of every patch: real pairs (input, target) -> 1, fake pairs (input, G(input)) -> 0.
    Halved, as in the paper, so D learns more slowly than G."""
    real_logits = D(mg.cat([inputs, targets], dim=1))
    fake_logits = D(mg.cat([inputs, fake.detach()], dim=1))
    loss = (F.binary_cross_entropy_with_logits(real_logits, mg.ones(*real_logits.shape))
            + F.binary_cross_entropy_with_logits(fake_logits, mg.zeros(*fake_logits.shape)))
    return 0.5 * loss, mg.sigmoid(real_logits).mean(), mg.sigmoid(fake_logits).mean()


def generator_losses(D, inputs, targets, fake, losses):
    """The non-saturating GAN loss on every patch of (input, G(input)) and the L1 distance to
    the target; ``losses`` says which go into the total: "l1", "gan" or "both"."""
    l1 = (fake - targets).abs().mean()
    parts = {"loss_l1": l1}
    total = LAMBDA * l1 if losses != "gan" else 0.0
    if losses != "l1":
        logits = D(mg.cat([inputs, fake], dim=1))
        parts["loss_gan"] = F.binary_cross_entropy_with_logits(logits, mg.ones(*logits.shape))
        total = total + parts["loss_gan"]
    return total, parts


# --- 4. measuring a translation --------------------------------------------------------------------
def foreground(images):
    """Pixels (N, H, W) of images in [0, 1] that belong to the shape or stroke: a channel above
    0.4 (shape colours reach at least 0.7 in some channel, backgrounds at most 0.15; ink is
    white on black)."""
    return images.max(axis=1) > 0.4


def colours(images, masks):
    """The mean colour (N, 3) of each image over its foreground (the background's where the
    mask is empty)."""
    weights = masks[:, None].astype(np.float64)
    counts = weights.sum(axis=(2, 3))
    return np.where(counts > 0, (images * weights).sum(axis=(2, 3)) / np.maximum(counts, 1),
                    images.mean(axis=(2, 3)))


def measure(outputs, targets, judge=None, labels=None):
    """How close translated ``outputs`` come to the ``targets`` (NumPy, [-1, 1]):

      l1           mean |output - target| per pixel, in [0, 1] pixel units: what the L1 loss
                   minimises, lowest for the median answer
      mask_iou     the shape's (or stroke's) pixels in output and target: intersection over
                   union, averaged over images — is the shape where the input says?
    for colour images
      saturation   how colourful the shapes are: (max - min) / max of each shape's mean colour,
                   averaged (grey is 0)
      colour_spread  the spread of shape colours over the test set: the standard deviation of
                   the mean colours, averaged over channels (one colour for all: 0)
    and with a ``judge`` (lesson 10's classifier, 28x28) the fraction of outputs it reads as
    their digit, ``judge_accuracy``."""
    out, tgt = (outputs + 1) / 2, (targets + 1) / 2
    a, b = foreground(out), foreground(tgt)
    union = (a | b).sum(axis=(1, 2))
    iou = np.where(union > 0, (a & b).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)
    result = {"l1": float(np.abs(out - tgt).mean()), "mask_iou": float(iou.mean())}
    if out.shape[1] == 3:
        mean = colours(out, a)
        top = mean.max(axis=1)
        result["saturation"] = float(np.mean((top - mean.min(axis=1)) / np.maximum(top, 1e-6)))
        result["colour_spread"] = float(mean.std(axis=0).mean())
    if judge is not None:
        result["judge_accuracy"] = judge.score(outputs[:, :, 2:-2, 2:-2], labels)
    return result


# --- the data, the grids ---------------------------------------------------------------------------
def load_pairs(args):
    """Training and test pairs for --dataset: outlines -> shapes, or skeletons -> digits
    (TEST_PAIRS test pairs; a few under --quick)."""
    tests = QUICK_TEST_PAIRS if args.quick else TEST_PAIRS
    if args.dataset == "shapes":
        return OutlinedShapes(20000, seed=0), OutlinedShapes(tests, seed=1)
    train = load_dataset(args.dataset, root=args.data_root).first(20000)
    test = load_dataset(args.dataset, root=args.data_root, train=False).first(tests)
    return DigitSkeletons(train), DigitSkeletons(test)


def digit_judge(args, test):
    """Lesson 10's classifier for the digits (trained in seconds on a few images under --quick,
    and then not cached), or None for shapes or with --no-judge."""
    if args.dataset == "shapes" or args.no_judge:
        return None
    if args.quick:
        digits = load_dataset(args.dataset, root=args.data_root)
        return classifier.train_classifier(digits.first(2000), digits.first(500), epochs=1)
    return judge_for(test.name.rsplit("-", 1)[0], args.data_root)


def rows_of_triplets(inputs, outputs, targets, per_row=8):
    """Images for a grid of ``per_row`` columns: a row of inputs, the row of their outputs, the
    row of their targets, then the next ``per_row`` examples. Grey inputs are shown in colour
    next to colour outputs."""
    inputs, outputs, targets = (np.asarray(x.numpy() if hasattr(x, "numpy") else x)
                                for x in (inputs, outputs, targets))
    if inputs.shape[1] != outputs.shape[1]:
        inputs = np.repeat(inputs, outputs.shape[1], axis=1)
    bands = [np.concatenate([x[i:i + per_row] for x in (inputs, outputs, targets)])
             for i in range(0, len(inputs), per_row)]
    return np.concatenate(bands)


# --- one run ---------------------------------------------------------------------------------------
def train(losses, args, data, test, judge):
    """Train the U-Net with ``losses`` in its own folder; returns its translations and numbers."""
    run_args = copy.copy(args)
    run_args.out = os.path.join(args.out, losses)
    run = Run(run_args, sample_every=args.sample_every, dataset=data)
    mg.manual_seed(args.seed)  # every run starts from the same weights and sees the same batches
    cin, cout = data.input_channels, data.target_channels
    G = UNet(cin, cout).apply(dcgan_init)
    D = make_discriminator(cin + cout).apply(dcgan_init)
    opt_g = optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"pairs": batches}
    test_inputs, test_targets = (mg.tensor(to_tanh_range(x)) for x in (test.inputs, test.targets))
    shown = (test_inputs[:SHOWN], test_targets[:SHOWN])
    # The history's own judge: the first READ_PAIRS test pairs translated and measured at every
    # sample point (colour spread falls towards 0 if G paints every shape alike; for digits,
    # the judge's accuracy says whether G keeps drawing the digit its skeleton shows).
    read_inputs, read_targets = test_inputs[:READ_PAIRS], test_targets[:READ_PAIRS].numpy()
    read_labels = test.labels[:READ_PAIRS]
    names = ["l1", "mask_iou"] + (["saturation", "colour_spread"] if cout == 3 else [])
    names += ["judge_accuracy"] if judge is not None else []  # what measure gives for this data
    run.track_readings(lambda: measure(translate(G, read_inputs).numpy(), read_targets, judge, read_labels),
                       names, f"the first {len(read_targets)} test pairs, translated")
    start = run.resume(models, optimizers, streams)

    for step in run.steps(start):
        inputs, targets = data.split(next(batches)[0])
        fake = G(inputs)
        scores = {}
        if losses != "l1":  # with L1 alone there is no discriminator to train
            opt_d.zero_grad()
            loss_d, d_real, d_fake = discriminator_loss(D, inputs, targets, fake)
            loss_d.backward()
            opt_d.step()
            scores = {"loss_d": loss_d, "d_real": d_real, "d_fake": d_fake}

        opt_g.zero_grad()
        loss_g, parts = generator_losses(D, inputs, targets, fake, losses)
        loss_g.backward()
        opt_g.step()

        run.log(step, **parts, **scores)
        if run.should_sample(step):
            run.save_grid(rows_of_triplets(shown[0], translate(G, shown[0]), shown[1]), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    outputs = translate(G, test_inputs).numpy()
    numbers = measure(outputs, test_targets.numpy(), judge, test.labels)
    # the same inputs through other dropout masks: how much does the noise change an output?
    other = translate(G, test_inputs, seed=1).numpy()
    numbers["dropout_change"] = float(np.abs(other - outputs).mean() / 2)
    curves = {k: v for k, v in run.history.items() if k != "step"}
    run.plot_history({
        "losses": {k: v for k, v in curves.items() if k.startswith("loss")},
        "D's mean verdict on real and fake pairs": {k: v for k, v in curves.items()
                                                    if k.startswith("d_")}})
    grid = rows_of_triplets(shown[0], outputs[:SHOWN], shown[1])
    record = run.finish(grid, outputs, metrics={"losses": losses, "lambda": LAMBDA, **numbers},
                        plot=False)
    return {"outputs": outputs, "numbers": numbers, "record": record}


# --- the lesson ------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = lesson_parser("14_pix2pix", __doc__, steps=3000, batch_size=16, quick_steps=3,
                           datasets=("shapes", "digits", "mnist"))
    parser.add_argument("--losses", default=",".join(LOSSES),
                        help="comma-separated runs, from l1, gan, both (default all three)")
    parser.add_argument("--sample-every", type=positive_int, default=250,
                        help="steps between grids and checkpoints (default 250)")
    args = parser.parse_args(argv)
    args.runs = args.losses.split(",")
    unknown = [name for name in args.runs if name not in LOSSES]
    if unknown or not args.runs:
        parser.error(f"unknown --losses {', '.join(unknown)}; choose from {', '.join(LOSSES)}")
    return args


def print_table(results, real):
    measured = next(iter(results.values()))["numbers"]
    keys = [k for k in ("l1", "mask_iou", "saturation", "colour_spread",
                        "judge_accuracy", "dropout_change") if k in measured]
    print("\n" + f"{'':14s}" + "".join(f"{k:>15s}" for k in keys))
    for name, numbers in [(LOSSES[n], r["numbers"]) for n, r in results.items()] + [("targets", real)]:
        print(f"{name:14s}" + "".join(f"{numbers[k]:15.3f}" if k in numbers else f"{'':15s}"
                                      for k in keys))


def main(argv=None):
    args = parse_args(argv)
    data, test = load_pairs(args)
    if args.train_size is not None:
        data = data.first(args.train_size)
    if args.batch_size > len(data):
        raise SystemExit(f"error: --batch-size {args.batch_size} is more than the {len(data)} "
                         f"training pairs")
    top = Run(args, dataset=data)  # the lesson's own folder, for the comparison
    judge = digit_judge(args, test)
    D = make_discriminator(data.input_channels + data.target_channels)
    field = receptive_field(D)
    with mg.no_grad():
        patches = D(mg.zeros(1, D[0].in_channels, data.image_size, data.image_size)).shape[-1]
    print(f"{len(data)} training pairs ({data.name}); the PatchGAN gives {patches}x{patches} "
          f"verdicts per image, each on a {field}x{field} patch of the {data.image_size}x"
          f"{data.image_size} pair")

    results = {}
    for losses in args.runs:
        print(f"\n== {LOSSES[losses]}")
        results[losses] = train(losses, args, data, test, judge)
    inputs, targets = to_tanh_range(test.inputs[:SHOWN]), to_tanh_range(test.targets)
    real = measure(targets, targets, judge, test.labels)
    print_table(results, real)

    shown_inputs = np.repeat(inputs, data.target_channels // data.input_channels, axis=1)
    panels = {"input": viz.make_grid(shown_inputs, nrow=4)}
    panels.update({LOSSES[n]: viz.make_grid(r["outputs"][:SHOWN], nrow=4) for n, r in results.items()})
    panels["target"] = viz.make_grid(targets[:SHOWN], nrow=4)
    viz.plot_images(panels, os.path.join(args.out, "ablation.png"),
                    title="The same test inputs, translated by each run")
    shown = results.get("both", next(iter(results.values())))
    finals = {k: v for k, v in shown["record"].items() if k.startswith("final_") or k == "last_readings"}
    top.finish(rows_of_triplets(inputs, shown["outputs"][:SHOWN], targets[:SHOWN]),
               shown["outputs"], plot=False, metrics={
                   "receptive_field": field, "patches": patches, "lambda": LAMBDA, **finals,
                   "runs": {n: r["numbers"] for n, r in results.items()}, "targets": real})


if __name__ == "__main__":
    main()

"""Lesson 15 — CycleGAN: translating between two kinds of image without a single pair
(Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks").

Lesson 14 learnt from pairs (input, target). Often there are none: nobody has photographed the
same horse as a zebra. CycleGAN learns from two unpaired piles of images, domain A and domain
B, with two generators, G: A -> B and F: B -> A, and a discriminator per domain. A GAN loss
alone would let G turn every circle into some square — any square. The cycle does the pairing:
F(G(a)) must give back a, and G(F(b)) must give back b, so G has to keep whatever F needs to
undo it: here the colour, the size, the place.

The domains are made offline (minigan.data): coloured circles and coloured squares, drawn
alike but separately (the "horse <-> zebra" of this course), or with --dataset digits/mnist
digits written with a thin pen and digits written with a broad one.

What you will see:
  1. the ResNet generator: reflection padding, 7x7 convolution, two stride-2 convolutions
     down to 8x8, residual blocks, two transposed convolutions back up; instance norm
     throughout, so each image is normalised on its own;
  2. two PatchGAN discriminators with instance norm, trained with the least-squares GAN loss
     (Mao et al. 2017): D pushes its verdicts on real patches to 1 and on fakes to 0, G pushes
     the verdicts on its fakes to 1;
  3. the cycle-consistency loss lambda * (|F(G(a)) - a| + |G(F(b)) - b|), lambda = 10, and the
     identity loss 0.5 lambda * (|G(b) - b| + |F(a) - a|): a square given to G should come
     back unchanged, which keeps colours where they are;
  4. the history buffer: each discriminator learns from a pool of the last 50 fakes, half of
     each batch drawn from it (Shrivastava et al. 2017), so it does not just chase G's latest
     move; the pool is saved in the checkpoint, so --resume continues exactly;
  5. measuring it: a small classifier trained on the two domains says whether translated
     images landed in the target domain; the cycle error and the distance to the true
     translation of a matched test set (the square drawn around each circle) say what was
     kept; for digits lesson 10's classifier says whether the digit was kept.

Run it:
    python lessons/15_cyclegan.py                          # about 9 minutes on a 2-core CPU
    python lessons/15_cyclegan.py --dataset digits         # thin <-> bold strokes (or mnist)
    python lessons/15_cyclegan.py --steps 2000 --resume    # continue for longer

Outputs in runs/15_cyclegan/: samples_<step>.png (rows a, G(a), F(G(a)), then b, F(b),
G(F(b)), from fixed test images), samples_final.png, history.png, metrics.json,
checkpoint.npz, samples.npy (G of the 1,000 test inputs of domain A) and translations.png (the
test inputs, their translations and the true translations).
"""
import os

import numpy as np

import minigan as mg
from minigan import classifier, nn, optim, viz
from minigan.data import (
    CirclesToSquares, ImageDataset, ThinToBold, forever, load_dataset, to_tanh_range, unpaired,
)
from minigan.experiment import Run, judge_for, lesson_parser, positive_int

WIDTH = 16               # generator channels at 32x32 (32 at 16x16, 64 at 8x8)
D_WIDTH = 32             # PatchGAN channels at 16x16 (twice that at 15x15)
BLOCKS = 3               # residual blocks at 8x8
LAMBDA_CYCLE = 10.0      # the paper's weights
LAMBDA_IDENTITY = 0.5 * LAMBDA_CYCLE
POOL_SIZE = 50           # fakes each discriminator's history buffer keeps (the paper's)
LR, BETAS = 2e-4, (0.5, 0.999)
TEST_PAIRS = 1000
QUICK_TEST_PAIRS = 64
READ_PAIRS = 250         # test pairs measured at every sample point, for history.png
SHOWN = 8                # test images per direction in each grid
DOMAIN_JUDGE_VERSION = 1  # bump when the domains or the recipe change, so caches are not reused


# --- 1. the ResNet generator ---------------------------------------------------------------------
def conv_block(cin, cout, kernel, stride=1, transposed=False):
    """Convolution (reflection-padded when it keeps the side) -> InstanceNorm -> ReLU.

    Reflection padding mirrors the image at its border instead of adding zeros, so the
    generator sees no dark frame it might learn to draw. Instance norm normalises each
    channel of each image by its own mean and spread: an image's translation does not depend
    on the other images in the batch."""
    if transposed:
        layers = [nn.ConvTranspose2d(cin, cout, kernel, stride, 1, output_padding=1, bias=False)]
    elif stride == 1:
        layers = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, bias=False)]
    else:
        layers = [nn.Conv2d(cin, cout, kernel, stride, 1, bias=False)]
    return layers + [nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]


class ResidualBlock(nn.Module):
    """x + (pad, conv 3x3, norm, ReLU, pad, conv 3x3, norm)(x): the block adds a correction to
    its input, so a stack of them starts out close to the identity (He et al. 2016)."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            *conv_block(channels, channels, 3),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


def make_generator(channels, width=WIDTH, blocks=BLOCKS):
    """c x 32x32 -> w x 32x32 (7x7) -> 2w x 16x16 -> 4w x 8x8 -> residual blocks ->
    2w x 16x16 -> w x 32x32 -> c x 32x32 (7x7, tanh): the paper's generator for small images,
    at a quarter of its width."""
    return nn.Sequential(
        *conv_block(channels, width, 7),
        *conv_block(width, 2 * width, 3, stride=2),
        *conv_block(2 * width, 4 * width, 3, stride=2),
        *[ResidualBlock(4 * width) for _ in range(blocks)],
        *conv_block(4 * width, 2 * width, 3, stride=2, transposed=True),
        *conv_block(2 * width, width, 3, stride=2, transposed=True),
        nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh())


def gaussian_init(module):
    """Weights ~ N(0, 0.02) as in the paper's code, biases 0; instance norm scale 1, shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# --- 2. the PatchGAN discriminators, the least-squares loss ----------------------------------------
def make_discriminator(channels, width=D_WIDTH):
    """c x 32x32 -> 32 x 16x16 -> 64 x 15x15 -> 1 x 14x14: a verdict per 16x16 patch (lesson
    14's PatchGAN, on one image instead of a pair, with instance norm)."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 1, 1, bias=False), nn.InstanceNorm2d(2 * width, affine=True),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 1, 4, 1, 1))


def least_squares(verdicts, target):
    """mean (D(x) - target)^2 over every patch: LSGAN's loss. Unlike the log loss it keeps
    pulling on fakes that D already scores well past the boundary, and never saturates."""
    return ((verdicts - target) ** 2).mean()


# --- 3. the generators' loss: GAN + cycle + identity -------------------------------------------------
def generator_loss(G, F_, D_a, D_b, a, b):
    """One pass through both translators, in both directions; returns the total and its parts,
    and the fakes G(a), F(b) for the discriminators. (``F_`` is the paper's F; the underscore
    keeps it apart from the ``F`` that other lessons import as minigan.functional.)"""
    fake_b, fake_a = G(a), F_(b)
    gan = least_squares(D_b(fake_b), 1.0) + least_squares(D_a(fake_a), 1.0)
    cycle = (F_(fake_b) - a).abs().mean() + (G(fake_a) - b).abs().mean()
    identity = (G(b) - b).abs().mean() + (F_(a) - a).abs().mean()
    total = gan + LAMBDA_CYCLE * cycle + LAMBDA_IDENTITY * identity
    return total, {"loss_gan": gan, "loss_cycle": cycle, "loss_identity": identity}, fake_b, fake_a


def discriminator_loss(D, real, fake):
    """0.5 * (mean (D(real) - 1)^2 + mean D(fake)^2): halved, as in the paper, so D learns more
    slowly than G."""
    return 0.5 * (least_squares(D(real), 1.0) + least_squares(D(fake), 0.0))


# --- 4. the history buffer --------------------------------------------------------------------------
class ImagePool:
    """The last ``size`` generated images, for the discriminator (Shrivastava et al. 2017).

    ``query(fakes)`` returns a batch as large as ``fakes``: while the pool is filling, each new
    image goes in and comes straight back; once it is full, each new image has an even chance
    of coming back itself, or of taking the place of a random stored image, which comes back
    instead. D then sees fakes from the last few hundred steps, not only the latest, and cannot
    win by reacting to G's newest trick alone. The choices draw from minigan's RNG, and
    ``state_dict`` holds the stored images, so a checkpoint resumes the pool exactly."""

    def __init__(self, size=POOL_SIZE):
        self.size = size
        self.images = []

    def query(self, fakes):
        out = []
        for image in fakes.detach():
            image = image.reshape(1, *image.shape)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif mg.rand(1).item() < 0.5:
                i = int(mg.randint(0, self.size, (1,)).item())
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return mg.cat(out)

    def state_dict(self):
        stored = mg.cat(self.images).numpy() if self.images else None
        return {"size": self.size, "images": stored}

    def load_state_dict(self, state):
        images = state["images"]
        if state["size"] != self.size or (images is not None and len(images) > self.size):
            found = 0 if images is None else len(images)
            raise ValueError(f"ImagePool.load_state_dict: a pool of {self.size} cannot take "
                             f"{found} images saved from a pool of {state['size']}")
        self.images = [] if images is None else [mg.tensor(image[None]) for image in images]


# --- 5. measuring the translation -------------------------------------------------------------------
def domain_judge(a, b, test, names, args):
    """A small CNN (lesson 10's classifier architecture) that tells domain A (class 0) from
    domain B (class 1): trained once on every training image of both domains (3 epochs, half a
    minute) and cached beside lesson 10's classifiers; its accuracy is measured on the test
    pairs. Under --quick (150 images a domain) or --train-size it is trained for one epoch on
    what there is, and not cached."""
    n = min(len(a), 150) if args.quick else len(a)  # the two domains are the same size
    train = ImageDataset(np.concatenate([a.images[:n], b.images[:n]]), np.repeat([0, 1], n),
                         names, f"{a.name[:-2]}-domains")
    check = ImageDataset(np.concatenate([test.inputs, test.targets]),
                         np.repeat([0, 1], len(test)), names, train.name)
    cached = not args.quick and args.train_size is None
    path = classifier.cache_path(f"{train.name}-v{DOMAIN_JUDGE_VERSION}", args.data_root)
    if cached:
        try:
            return classifier.load_classifier(path)
        except (OSError, ValueError, KeyError):
            pass  # not cached yet (or from another version): train it
    judge = classifier.train_classifier(train, check, epochs=3 if cached else 1)
    if cached:
        try:
            classifier.save_classifier(judge, path)
        except OSError as exc:
            print(f"could not cache the domain classifier at {path} ({exc})")
    return judge


def translate(model, images, chunk=250):
    """``model``'s outputs without a graph (instance norm has no running statistics: train and
    eval mode compute the same)."""
    with mg.no_grad():
        return mg.cat([model(images[i:i + chunk]) for i in range(0, len(images), chunk)])


def foreground(images):
    """The shape's (or stroke's) pixels (N, H, W) of images in [-1, 1]: a channel above 0.4 in
    [0, 1] units (shape colours reach 0.7 in some channel, backgrounds stay below 0.15)."""
    return images.max(axis=1) > -0.2


def overlap(x, y):
    """Intersection over union of the foregrounds of x and y, image by image, averaged."""
    a, b = foreground(x), foreground(y)
    union = (a | b).sum(axis=(1, 2))
    return float(np.mean(np.where(union > 0, (a & b).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)))


def colours(images):
    """Each image's mean colour over its foreground, in [0, 1] units: (N, C)."""
    weights = foreground(images)[:, None]
    return ((images + 1) / 2 * weights).sum(axis=(2, 3)) / np.maximum(weights.sum(axis=(2, 3)), 1)


def measure(G, F_, test, judge, digit_judge=None, round_trip=True):
    """The translation of the matched test pairs (a_i, b_i), both ways:

      in_target_{ab,ba}  the domain classifier reads G(a) as B (and F(b) as A)
      cycle_{ab,ba}      mean |F(G(a)) - a| (and |G(F(b)) - b|), in [0, 1] pixel units: what
                         the round trip loses
      shape_{ab,ba}      the foreground of G(a) against that of the true translation b:
                         intersection over union (and F(b) against a) — kept place and size
      shape_unchanged    the same for a against b: what doing nothing scores
    colour images:
      colour_{ab,ba}     mean |colour(G(a)) - colour(a)| over channels, [0, 1] units: how far
                         the translation moved the shape's colour
      colour_random      the same between two random test shapes: losing the colour
    digits (with lesson 10's classifier):
      digit_kept_{ab,ba} the classifier reads the digit's class in G(a) (and F(b))
      digit_read_real    ... and in the true bold digits b
    With round_trip=False the cycle numbers (and back_a, back_b) are left out: the history's
    readings skip the two extra translations they cost.
    """
    a, b = (mg.tensor(to_tanh_range(x)) for x in (test.inputs, test.targets))
    fake_b, fake_a = translate(G, a), translate(F_, b)
    images = {"a": a, "b": b, "fake_a": fake_a, "fake_b": fake_b}
    if round_trip:
        images.update(back_a=translate(F_, fake_b), back_b=translate(G, fake_a))
    images = {k: x.numpy() for k, x in images.items()}
    a, b, fake_a, fake_b = (images[k] for k in ("a", "b", "fake_a", "fake_b"))

    def l1(x, y):
        return float(np.abs(x - y).mean() / 2)  # [-1, 1] -> [0, 1] units

    numbers = {
        "in_target_ab": float((judge.predict(fake_b) == 1).mean()),
        "in_target_ba": float((judge.predict(fake_a) == 0).mean()),
        "judge_on_real": float(np.mean([(judge.predict(a) == 0).mean(),
                                        (judge.predict(b) == 1).mean()])),
        "shape_ab": overlap(fake_b, b), "shape_ba": overlap(fake_a, a),
        "shape_unchanged": overlap(a, b),
    }
    if round_trip:
        numbers.update(cycle_ab=l1(images["back_a"], a), cycle_ba=l1(images["back_b"], b))
    if a.shape[1] == 3:
        true = colours(a)
        numbers.update(colour_ab=float(np.abs(colours(fake_b) - true).mean()),
                       colour_ba=float(np.abs(colours(fake_a) - colours(b)).mean()),
                       colour_random=float(np.abs(true - np.roll(true, 1, axis=0)).mean()))
    if digit_judge is not None:
        for key, translated in (("digit_kept_ab", fake_b), ("digit_kept_ba", fake_a),
                                ("digit_read_real", b)):
            numbers[key] = digit_judge.score(translated[:, :, 2:-2, 2:-2], test.labels)
    return numbers, images


def report(numbers, names):
    """The measurements as sentences, one direction a line."""
    for way, source, target in (("ab", *names), ("ba", *reversed(names))):
        line = (f"{'G' if way == 'ab' else 'F'}: {source} -> {target}: "
                f"{numbers[f'in_target_{way}']:.1%} read as {target}; shape against the true "
                f"{target}: IoU {numbers[f'shape_{way}']:.3f} (untranslated "
                f"{numbers['shape_unchanged']:.3f})")
        if f"colour_{way}" in numbers:
            line += (f"; colour moved by {numbers[f'colour_{way}']:.3f} (another shape's: "
                     f"{numbers['colour_random']:.3f})")
        if f"digit_kept_{way}" in numbers:
            line += f"; the digit read right in {numbers[f'digit_kept_{way}']:.1%}"
        print(line + f"; cycle error {numbers[f'cycle_{way}']:.3f}")


def cycle_grid(G, F_, a, b):
    """Rows a, G(a), F(G(a)), then b, F(b), G(F(b)): each translation and its way back."""
    fake_b, fake_a = translate(G, a), translate(F_, b)
    return mg.cat([a, fake_b, translate(F_, fake_b), b, fake_a, translate(G, fake_a)])


# --- the lesson ---------------------------------------------------------------------------------
def load_domains(args):
    """Training domains A and B (unpaired halves) and the matched test pairs, for --dataset
    (TEST_PAIRS of them; a few under --quick)."""
    tests = QUICK_TEST_PAIRS if args.quick else TEST_PAIRS
    if args.dataset == "shapes":
        pairs, test, names = CirclesToSquares(20000, seed=0), CirclesToSquares(tests, seed=1), \
            ("circle", "square")
    else:
        digits = load_dataset(args.dataset, root=args.data_root)
        test_digits = load_dataset(args.dataset, root=args.data_root, train=False)
        pairs, test = ThinToBold(digits.first(20000)), ThinToBold(test_digits.first(tests))
        names = ("thin", "bold")
    if args.train_size is not None:
        pairs = pairs.first(2 * args.train_size)
    a, b = unpaired(pairs)
    return a, b, test, names


def parse_args(argv=None):
    parser = lesson_parser("15_cyclegan", __doc__, steps=1200, batch_size=8, quick_steps=3,
                           datasets=("shapes", "digits", "mnist"))
    parser.add_argument("--sample-every", type=positive_int, default=200,
                        help="steps between grids, measurements and checkpoints (default 200)")
    parser.add_argument("--pool-size", type=positive_int, default=POOL_SIZE,
                        help=f"generated images in each history buffer (default {POOL_SIZE})")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    a_data, b_data, test, names = load_domains(args)
    if args.batch_size > len(a_data):
        raise SystemExit(f"error: --batch-size {args.batch_size} is more than the "
                         f"{len(a_data)} images of each domain")
    run = Run(args, sample_every=args.sample_every, dataset=a_data, recipe=("pool_size",))
    judge = domain_judge(a_data, b_data, test, names, args)
    digits = None
    if args.dataset != "shapes" and not args.no_judge:
        digits = judge_for(args.dataset, args.data_root)
    print(f"domains {names[0]} ({len(a_data)} images) and {names[1]} ({len(b_data)}); the "
          f"domain classifier tells them apart in {judge.accuracy:.1%} of held-out images")

    mg.manual_seed(args.seed)
    channels = a_data.channels
    G, F_ = make_generator(channels).apply(gaussian_init), make_generator(channels).apply(gaussian_init)
    D_a, D_b = make_discriminator(channels).apply(gaussian_init), make_discriminator(channels).apply(gaussian_init)
    opt_g = optim.Adam(list(G.parameters()) + list(F_.parameters()), lr=LR, betas=BETAS)
    opt_d = optim.Adam(list(D_a.parameters()) + list(D_b.parameters()), lr=LR, betas=BETAS)
    stream_a, stream_b = forever(a_data, args.batch_size), forever(b_data, args.batch_size)
    pool_a, pool_b = ImagePool(args.pool_size), ImagePool(args.pool_size)
    models = {"G": G, "F": F_, "D_a": D_a, "D_b": D_b}
    optimizers = {"G": opt_g, "D": opt_d}
    streams = {"a": stream_a, "b": stream_b, "pool_a": pool_a, "pool_b": pool_b}
    # The history's own judge: the first READ_PAIRS test pairs translated both ways and
    # measured (see measure) at every sample point.
    read = test.first(READ_PAIRS)
    readings = ["in_target_ab", "in_target_ba", "shape_ab", "shape_ba"]
    readings += ["colour_ab", "colour_ba"] if channels == 3 else []
    readings += ["digit_kept_ab", "digit_kept_ba"] if digits is not None else []

    def read_now():
        numbers = measure(G, F_, read, judge, digits, round_trip=False)[0]
        return {k: numbers[k] for k in readings}

    run.track_readings(read_now, readings, f"the first {len(read)} test pairs, translated both ways")
    start = run.resume(models, optimizers, streams)
    shown_a = mg.tensor(to_tanh_range(test.inputs[:SHOWN]))
    shown_b = mg.tensor(to_tanh_range(test.targets[SHOWN:2 * SHOWN]))

    for step in run.steps(start):
        a, b = next(stream_a)[0], next(stream_b)[0]

        # Generators: fool both discriminators, come back round the cycle, leave the target
        # domain alone. D's weights get gradients here too; opt_d.zero_grad() clears them.
        opt_g.zero_grad()
        loss_g, parts, fake_b, fake_a = generator_loss(G, F_, D_a, D_b, a, b)
        loss_g.backward()
        opt_g.step()

        # Discriminators: real images against fakes from the history buffer.
        opt_d.zero_grad()
        loss_d_a = discriminator_loss(D_a, a, pool_a.query(fake_a))
        loss_d_b = discriminator_loss(D_b, b, pool_b.query(fake_b))
        (loss_d_a + loss_d_b).backward()
        opt_d.step()

        run.log(step, **parts, loss_d_a=loss_d_a, loss_d_b=loss_d_b)
        if run.should_sample(step):
            run.save_grid(cycle_grid(G, F_, shown_a, shown_b), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    numbers, images = measure(G, F_, test, judge, digits)
    report(numbers, names)
    panels = {f"{names[0]} (test)": images["a"], f"G: as {names[1]}": images["fake_b"],
              f"true {names[1]}": images["b"], f"{names[1]} (test)": images["b"],
              f"F: as {names[0]}": images["fake_a"], f"true {names[0]}": images["a"]}
    viz.plot_images({k: viz.make_grid(v[:16], nrow=4) for k, v in panels.items()},
                    os.path.join(run.dir, "translations.png"), ncols=3,
                    title="Test images, their translations and the true translations")
    run.plot_history({
        "generators": {k: run.history[k] for k in ("loss_gan", "loss_cycle", "loss_identity")},
        "discriminators (least squares)": {k: run.history[k] for k in ("loss_d_a", "loss_d_b")}})
    run.finish(cycle_grid(G, F_, shown_a, shown_b), images["fake_b"], plot=False, metrics={
        "domains": list(names), "domain_classifier_accuracy": judge.accuracy, **numbers})


if __name__ == "__main__":
    main()

"""Lesson 11 — DCGAN in colour, at 32x32 and 64x64 (Radford, Metz & Chintala 2015).

Lesson 04's DCGAN drew 28x28 grey digits. The same recipe makes colour images: the generator
ends in 3 channels instead of 1, and one more stride-2 stage doubles the side. Here it learns
the built-in Shapes with four kinds (circle, square, triangle, ring) and three fills (flat,
gradient, stripes) in random colours, so that it has to get form, colour and texture right
together; Fashion-MNIST padded to 32x32 is the grey alternative.

What you will see:
  1. the generator 4 -> 8 -> 16 -> 32 (ConvTranspose2d(latent, 8 ngf, 4, 1, 0) first, then
     stride-2 transposed convolutions halving the channels), and with --image-size 64 one
     stage more: the classic 64x64 DCGAN, with --ngf / --ndf setting the widths;
  2. colour_histograms.png: each channel's pixel values, real against generated, and the
     per-channel means and spreads in metrics.json;
  3. checkerboard.png: why transposed convolutions leave a checkerboard (their output pixels
     are made by different kernel taps, in four interleaved phases) and resize-convolution
     (nearest upsampling, then a 3x3 convolution) does not, side by side from one layer and
     from whole untrained generators; spectra.png: the trained generator's power spectrum
     against the real images', where a checkerboard is a peak at the highest frequency;
     --upsample resize trains the resize-convolution generator instead;
  4. lesson 10's measurements of the final samples: a classifier of the 12 kinds of shape
     (trained once and cached, like lesson 10's judge) reads coverage, precision, recall and
     the Fréchet distance, and history.png its coverage, precision and recall at every grid
     (500 samples from fixed noise); the colour histograms say what it does not (it is trained
     to ignore colour).

Run it:
    python lessons/11_dcgan_color.py                          # 32x32 shapes, about 10 minutes on a 2-core CPU
    python lessons/11_dcgan_color.py --image-size 64 --out runs/11_dcgan64   # the classic 64x64 DCGAN, about 15
    python lessons/11_dcgan_color.py --dataset fashion-mnist  # grey (downloaded once, or --data-root DIR)
    python lessons/11_dcgan_color.py --upsample resize --out runs/11_resize  # nearest upsampling + conv
    python lessons/11_dcgan_color.py --steps 4000 --resume    # continue a finished run for longer

Outputs in runs/11_dcgan_color/: samples_<step>.png from fixed noise, samples_final.png,
real.png, colour_histograms.png, checkerboard.png, spectra.png, history.png, metrics.json,
checkpoint.npz and samples.npy.
"""
import os
import zipfile

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import minigan as mg
from minigan import F, classifier, io, nn, optim, viz
from minigan.data import ImageDataset, Shapes, forever, load_dataset, to_tanh_range
from minigan.experiment import (Run, dcgan_init, fork_rng, generate, lesson_judge, lesson_parser, positive_int,
                               seeded_noise)
from minigan.metrics import RealReference, compare_to_real

LATENT = 100
KINDS = ("circle", "square", "triangle", "ring")
FILLS = ("flat", "gradient", "stripes")
TRAIN_IMAGES, TEST_IMAGES = 20000, 4000
STEPS = {32: 4000, 64: 2000}  # default training steps at each image size
JUDGE_SIZE = 32  # the judge reads 32x32 shapes (64x64 ones are averaged down) or 28x28 grey images


# --- data -----------------------------------------------------------------------------------------

def enlarge(data, factor):
    """Each pixel repeated factor x factor times (a 32x32 grey image shown at 64x64)."""
    images = data.images.repeat(factor, axis=2).repeat(factor, axis=3)
    return ImageDataset(images, data.labels, data.classes, name=data.name)


def load_data(run, args, train=True):
    """The training (or test) images at --image-size: the 12 kinds of shape, drawn here at that
    size, or the grey dataset padded to 32x32 (and enlarged to 64x64)."""
    if args.dataset == "shapes":
        n, seed = (TRAIN_IMAGES, 0) if train else (TEST_IMAGES, 1)
        data = Shapes(n, size=args.image_size, seed=seed, kinds=KINDS, fills=FILLS)
        if train and args.train_size is not None:
            data = data.first(args.train_size)
        if train:
            run.dataset = data
        return data
    data = run.load_dataset() if train else load_dataset(args.dataset, args.data_root, train=False)
    data = data.padded(2)  # 28x28 -> 32x32, the side the generator doubles to
    data = enlarge(data, args.image_size // 32) if args.image_size > 32 else data
    if train:
        run.dataset = data  # the run's readings compare G's images with these, as G draws them
    return data


# --- the two networks -----------------------------------------------------------------------------

def up_block(c_in, c_out, upsample, last=False):
    """Double the side. "transposed": ConvTranspose2d(kernel 4, stride 2, padding 1), the DCGAN
    way. "resize": nearest-neighbour upsampling, then Conv2d(kernel 3, padding 1) (Odena,
    Dumoulin & Olah 2016). Then BatchNorm + ReLU, or nothing for the output layer (tanh)."""
    if upsample == "transposed":
        layers = [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last)]
    else:
        layers = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=last)]
    return layers + ([nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU()])


def make_generator(channels, ngf, image_size, upsample="transposed"):
    """z as (LATENT, 1, 1) -> 8 ngf x 4x4 -> 4 ngf x 8x8 -> 2 ngf x 16x16 -> channels x 32x32;
    at 64x64 one stage more: ... -> 2 ngf x 16x16 -> ngf x 32x32 -> channels x 64x64 (the
    PyTorch DCGAN tutorial's generator). The first layer is always a transposed convolution:
    from a 1x1 input it is a fully connected layer to a 4x4 image."""
    widths = [8 * ngf, 4 * ngf, 2 * ngf] + ([ngf] if image_size == 64 else [])
    layers = [nn.ConvTranspose2d(LATENT, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += up_block(c_in, c_out, upsample)
    return nn.Sequential(*layers, *up_block(widths[-1], channels, upsample, last=True))


def make_discriminator(channels, ndf, image_size):
    """The mirror image: channels x 32x32 -> ndf x 16x16 -> 2 ndf x 8x8 -> 4 ndf x 4x4 -> one
    logit (at 64x64 one stage more, to 8 ndf), strided convolutions with BatchNorm on every
    layer but the first, LeakyReLU(0.2)."""
    widths = [ndf, 2 * ndf, 4 * ndf] + ([8 * ndf] if image_size == 64 else [])
    layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 4, 1, 0), nn.Flatten(0))


def discriminator_loss(D, real, fake):
    """Lesson 04's loss: BCE(D(x), 1) + BCE(D(G(z)), 0) on logits, real and fake in separate
    batches (so BatchNorm normalises each with its own statistics)."""
    real_logits, fake_logits = D(real), D(fake.detach())
    loss = (F.binary_cross_entropy_with_logits(real_logits, mg.ones(*real_logits.shape))
            + F.binary_cross_entropy_with_logits(fake_logits, mg.zeros(*fake_logits.shape)))
    return loss, real_logits, fake_logits


def generator_loss(D, fake):
    logits = D(fake)
    return F.binary_cross_entropy_with_logits(logits, mg.ones(*logits.shape))


# --- colour ---------------------------------------------------------------------------------------

def channel_statistics(samples, real):
    """Per channel: mean and standard deviation of the pixel values of generated and real
    images, and the 1-D Wasserstein distance between the two distributions of values (the mean
    gap between their sorted values: 0 when the histograms match)."""
    stats = {}
    names = ("red", "green", "blue") if samples.shape[1] == 3 else ("grey",)
    for c, name in enumerate(names):
        fake_values, real_values = np.sort(samples[:, c].ravel()), np.sort(real[:, c].ravel())
        stats[name] = {"fake_mean": float(fake_values.mean()), "real_mean": float(real_values.mean()),
                       "fake_std": float(fake_values.std()), "real_std": float(real_values.std()),
                       "wasserstein": float(np.abs(fake_values - real_values).mean())}
    return stats


def plot_colour_histograms(samples, real, path):
    """One panel per channel: histograms of pixel values, real and generated, on a log scale
    (the dark background holds most pixels; the shapes' colours are the tail on the right)."""
    names = ("red", "green", "blue") if samples.shape[1] == 3 else ("grey",)
    figure = Figure(figsize=(3.6 * len(names), 3.0), dpi=100)
    FigureCanvasAgg(figure)
    edges = np.linspace(-1, 1, 65)
    for ax, (c, name) in zip(figure.subplots(1, len(names), squeeze=False)[0], enumerate(names)):
        colour = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue"}.get(name, "black")
        ax.hist(real[:, c].ravel(), bins=edges, color=colour, alpha=0.35, label="real")
        ax.hist(samples[:, c].ravel(), bins=edges, color=colour, histtype="step", linewidth=1.5,
                label="generated")
        ax.set_yscale("log")
        ax.set_title(f"{name} channel", fontsize="small")
        ax.set_xlabel("pixel value", fontsize="small")
        ax.legend(fontsize="x-small")
    _save_figure(figure, path)


# --- checkerboards --------------------------------------------------------------------------------

def checkerboard_energy(images):
    """The share of each image's power spectrum (mean removed) at the highest frequencies, the
    Nyquist row and column of the 2-D FFT: a pattern that alternates every pixel (a
    checkerboard, stripes one pixel wide) puts its energy there; natural edges very little."""
    images = np.asarray(images, np.float64)
    images = images - images.mean(axis=(2, 3), keepdims=True)
    power = np.abs(np.fft.fft2(images)) ** 2
    h, w = images.shape[2:]
    nyquist = power[..., h // 2, :].sum(axis=-1) + power[..., :, w // 2].sum(axis=-1) - power[..., h // 2, w // 2]
    return float(nyquist.sum() / power.sum())


def mean_log_spectrum(images):
    """log10 of the power spectrum averaged over images and channels, zero frequency in the
    centre (left blank: each image's mean is removed) and the highest frequencies, a
    checkerboard's, in the corners."""
    images = np.asarray(images, np.float64)
    images = images - images.mean(axis=(2, 3), keepdims=True)
    power = (np.abs(np.fft.fft2(images)) ** 2).mean(axis=(0, 1))
    power[0, 0] = np.nan
    return np.log10(np.fft.fftshift(power))


def one_layer_responses():
    """What a single upsampling layer makes of a flat image of ones (4x4, one channel), and of
    a random one: the pattern of the layer itself, with nothing to hide it.

    ConvTranspose2d(kernel 3, stride 2) with a kernel of ones: output pixels are covered by 1, 2
    or 4 kernel taps (uneven overlap), a checkerboard even with equal weights. With kernel 4 the
    overlap is even (every pixel gets 2x2 taps), so equal weights give a flat image, but random
    ones do not: each of the four phases of the output uses its own 2x2 taps of the kernel, with
    its own sum. Nearest upsampling then a 3x3 convolution applies the same kernel everywhere."""
    with fork_rng(), mg.no_grad():
        mg.manual_seed(1)
        flat = mg.ones(1, 1, 6, 6)
        ones3 = mg.ones(1, 1, 3, 3)
        ones4 = mg.ones(1, 1, 4, 4)
        random4 = mg.rand(1, 1, 4, 4) + 0.5
        random3 = mg.rand(1, 1, 3, 3) + 0.5
        return {
            "transposed, k3 s2, weights 1": F.conv_transpose2d(flat, ones3, stride=2, padding=1, output_padding=1),
            "transposed, k4 s2, weights 1": F.conv_transpose2d(flat, ones4, stride=2, padding=1),
            "transposed, k4 s2, random weights": F.conv_transpose2d(flat, random4, stride=2, padding=1),
            "nearest x2 + conv k3, random weights": F.conv2d(
                F.pad(F.interpolate(flat, scale_factor=2), (1, 1, 1, 1), mode="replicate"), random3),
        }


def plot_checkerboards(layers, untrained, path):
    """Top row: the four single-layer responses. Then, for each untrained generator (DCGAN
    initialisation, the same noise), four samples, each stretched to its own full range: the
    transposed-convolution stack is covered in a fine grid, the resize-convolution one is not."""
    rows = 1 + len(untrained)
    figure = Figure(figsize=(10, 2.7 * rows), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 4, squeeze=False)
    for ax, (title, image) in zip(axes[0], layers.items()):
        image = image.numpy()[0, 0]
        ax.imshow(image, cmap="gray", interpolation="nearest", vmin=0, vmax=image.max())
        ax.set_title(f"{title}\n(range {image.min():.2f} to {image.max():.2f})", fontsize="x-small")
    for row, (name, (images, energy)) in zip(axes[1:], untrained.items()):
        for i, ax in enumerate(row):
            image = images[i].transpose(1, 2, 0)
            image = (image - image.min()) / (image.max() - image.min() + 1e-12)
            ax.imshow(image.squeeze(), cmap="gray", interpolation="nearest")
            if i == 0:
                ax.set_title(f"untrained G, {name}: checkerboard energy {energy:.3f}", fontsize="x-small",
                             loc="left")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _save_figure(figure, path)


def plot_spectra(real, samples, path):
    """Mean log power spectra of real and generated images, and their difference."""
    spectra = {"real": mean_log_spectrum(real), "generated": mean_log_spectrum(samples)}
    spectra["generated - real"] = spectra["generated"] - spectra["real"]
    figure = Figure(figsize=(10, 3.3), dpi=100)
    FigureCanvasAgg(figure)
    low, high = np.nanmin(spectra["real"]), np.nanmax(spectra["real"])
    gap = np.nanmax(np.abs(spectra["generated - real"]))
    for ax, (title, image) in zip(figure.subplots(1, 3), spectra.items()):
        limits = dict(cmap="coolwarm", vmin=-gap, vmax=gap) if "-" in title else dict(vmin=low, vmax=high)
        shown = ax.imshow(image, interpolation="nearest", **limits)
        figure.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(f"{title} (log10 power)", fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    _save_figure(figure, path)


def _save_figure(figure, path):
    figure.tight_layout()
    with io.atomic_open(path) as f:
        figure.savefig(f, format="png")


# --- lesson 10's judge ----------------------------------------------------------------------------

def judge_view(images, grey):
    """Images as the judge reads them: floats in [-1, 1] at 32x32 (64x64 ones averaged over
    2x2 blocks), grey ones cropped back to the 28x28 of the classifier."""
    images = to_tanh_range(images, "float32") if images.dtype == np.uint8 else np.asarray(images, np.float32)
    while images.shape[-1] > JUDGE_SIZE:
        n, c, h, w = images.shape
        images = images.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    return images[:, :, 2:30, 2:30] if grey else images


def load_judge(args, data):
    """For shapes: a classifier of the 12 kinds trained on 32x32 shapes, cached like lesson 10's
    (a minute the first time); for the grey datasets, lesson 10's own for the dataset the run
    really trains on (``experiment.lesson_judge``). --quick trains a small one in seconds and
    caches nothing."""
    if args.dataset != "shapes":
        return lesson_judge(args, data.name)
    train = Shapes(1000 if args.quick else TRAIN_IMAGES, seed=0, kinds=KINDS, fills=FILLS)
    test = Shapes(200 if args.quick else TEST_IMAGES, seed=1, kinds=KINDS, fills=FILLS)
    if args.quick:
        return classifier.train_classifier(train, test, epochs=1)
    path = classifier.cache_path(train.name, args.data_root)
    try:
        return classifier.load_classifier(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # not trained yet (or from another version)
    judge = classifier.train_classifier(train, test)
    classifier.save_classifier(judge, path)
    return judge


def judge_scores(judge, samples, train, test, grey):
    """Lesson 10's readings of the samples against the test images, and of as many training
    images (the same ones every run): the best a generator can reach at this sample count."""
    reference = RealReference(judge, judge_view(test.images, grey))
    picked = np.sort(np.random.default_rng(0).choice(len(train), min(len(samples), len(train)), replace=False))
    return {"classifier_accuracy": judge.accuracy, "neighbours": reference.k,
            "samples": reference.score(judge_view(samples, grey)),
            "real": reference.score(judge_view(train.images[picked], grey))}


# --- the lesson -----------------------------------------------------------------------------------

def parse_args(argv):
    parser = lesson_parser("11_dcgan_color", __doc__, steps=f"{STEPS[32]} at 32x32, {STEPS[64]} at 64x64",
                           batch_size=32, datasets=("shapes", "fashion-mnist"), quick_steps=3)
    parser.add_argument("--image-size", type=int, choices=(32, 64), default=32)
    parser.add_argument("--ngf", type=positive_int, default=32,
                        help="generator width: 8 ngf channels at 4x4 (default 32; the tutorials' 64 "
                             "gives ConvTranspose2d(latent, 512, 4, 1, 0) first)")
    parser.add_argument("--ndf", type=positive_int, default=32,
                        help="discriminator width: ndf channels after its first layer (default 32)")
    parser.add_argument("--upsample", choices=("transposed", "resize"), default="transposed",
                        help="how G doubles the side: ConvTranspose2d(4, 2, 1), or nearest "
                             "upsampling + Conv2d(3, 1, 1)")
    args = parser.parse_args(argv)
    if not isinstance(args.steps, int):  # not given: the default for the image size
        args.steps = STEPS[args.image_size]
    return args


def main(argv=None):
    args = parse_args(argv)
    run = Run(args, sample_every=500 if args.steps >= 1500 else None,
              recipe=("image_size", "ngf", "ndf", "upsample"))  # a resume must keep them
    mg.manual_seed(args.seed)
    data = load_data(run, args)
    channels, grey = data.channels, args.dataset != "shapes"
    fixed_z = mg.randn(64, LATENT, 1, 1)

    G = make_generator(channels, args.ngf, args.image_size, args.upsample).apply(dcgan_init)
    D = make_discriminator(channels, args.ndf, args.image_size).apply(dcgan_init)
    opt_g = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    # At every grid the history reads what the judge sees in 500 samples from fixed noise (as it
    # reads them: 64x64 averaged down, grey ones cropped): kinds covered, precision, recall. The
    # judge is loaded (or trained) up front in a fork of the RNG, so training goes as without it.
    judged = not args.no_judge
    if judged:
        with fork_rng():
            run.judge = load_judge(args, data)
    run.track_diversity(G, seeded_noise(args.seed + 1, 500, LATENT, 1, 1),
                        view=lambda images: judge_view(io.as_numpy(images), grey))
    start = run.resume(models, optimizers, streams)

    if not start:
        viz.save_grid(to_tanh_range(data.images[:64]), os.path.join(run.dir, "real.png"))
        # The checkerboard of an untrained generator: both kinds, DCGAN-initialised, same noise.
        # Drawn aside (fork_rng), so the run trains exactly as without the picture.
        untrained = {}
        with fork_rng():
            for kind in ("transposed", "resize"):
                mg.manual_seed(args.seed + 1)
                fresh = make_generator(channels, args.ngf, args.image_size, kind).apply(dcgan_init)
                images = generate(fresh, fixed_z[:16]).numpy()
                untrained[f"{kind} convolutions"] = (images, checkerboard_energy(images))
        plot_checkerboards(one_layer_responses(), untrained, os.path.join(run.dir, "checkerboard.png"))

    for step in run.steps(start):
        real = next(batches)[0]
        fake = G(mg.randn(args.batch_size, LATENT, 1, 1))

        opt_d.zero_grad()
        loss_d, real_logits, fake_logits = discriminator_loss(D, real, fake)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad()
        loss_g = generator_loss(D, fake)
        loss_g.backward()
        opt_g.step()

        run.log(step, loss_d=loss_d, loss_g=loss_g,
                d_real=mg.sigmoid(real_logits).mean(), d_fake=mg.sigmoid(fake_logits).mean())
        if run.should_sample(step):
            run.save_grid(generate(G, fixed_z), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    judge, test = (run.judge, load_data(run, args, train=False)) if judged else (None, None)

    def compare(samples, real):
        """lesson 10's readings, the colours, and the checkerboard, beside the real images'"""
        plot_colour_histograms(samples, real, os.path.join(run.dir, "colour_histograms.png"))
        plot_spectra(real, samples, os.path.join(run.dir, "spectra.png"))
        record = {**compare_to_real(samples, real), "channels": channel_statistics(samples, real),
                  "checkerboard_energy": checkerboard_energy(samples),
                  "real_checkerboard_energy": checkerboard_energy(real)}
        if judged:
            record["judge"] = judge_scores(judge, samples, data, test, grey)
        return record

    metrics = {"image_size": args.image_size, "ngf": args.ngf, "ndf": args.ndf, "upsample": args.upsample}
    _, _, record = run.finish_gan(G, fixed_z, data, metrics=metrics, compare=compare)
    if "judge" in record:
        fake, real = record["judge"]["samples"], record["judge"]["real"]
        print(f"judge: coverage {fake['coverage']} of {len(data.classes)} (real {real['coverage']}), "
              f"precision {fake['precision']:.2f} ({real['precision']:.2f}), recall {fake['recall']:.2f} "
              f"({real['recall']:.2f}), Fréchet {fake['frechet_distance']:.3f} ({real['frechet_distance']:.3f})")


if __name__ == "__main__":
    main()

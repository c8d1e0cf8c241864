"""Lesson 04 — DCGAN: the convolutional GAN that made GANs work on images (Radford et al. 2015).

Lesson 03's networks saw an image as 784 unrelated numbers. Here both networks are
convolutional: the generator starts from a 1x1 "image" of 100 noise channels and grows it to
7x7, 14x14 and 28x28 with transposed convolutions; the discriminator shrinks a 28x28 image
back down with strided convolutions. Neighbouring pixels share weights, so strokes, edges and
loops are learnt once and reused everywhere in the picture.

What you will see:
  1. the DCGAN recipe written out: transposed/strided convolutions instead of pooling,
     BatchNorm in G and in every D layer but the first, ReLU in G, LeakyReLU(0.2) in D,
     tanh output, weights drawn from N(0, 0.02), Adam with lr 2e-4 and beta1 = 0.5;
  2. the discriminator and generator steps, and why the D step detaches the fakes;
  3. sampling in eval mode, where BatchNorm uses its running statistics instead of the batch's;
  4. grids from the same fixed noise as training goes on: blobs, then strokes, then digits.

Run it:
    python lessons/04_dcgan.py                          # 4 to 5 minutes on a 2-core CPU
    python lessons/04_dcgan.py --dataset mnist    # real MNIST (downloaded once, or --data-root DIR)
    python lessons/04_dcgan.py --steps 3000 --resume    # continue a finished run for longer

Outputs in runs/04_dcgan/: samples_<step>.png from fixed noise, samples_final.png,
history.png (losses, d_real, d_fake), metrics.json, checkpoint.npz and samples.npy.
"""
import minigan as mg
from minigan import F, nn, optim
from minigan.data import forever
from minigan.experiment import Run, dcgan_init, generate, lesson_parser

LATENT = 100


def make_generator():
    """z as a (100, 1, 1) image -> 256x7x7 -> 128x14x14 -> 1x28x28.

    A transposed convolution with kernel 4, stride 2, padding 1 doubles the side exactly. The
    layers before BatchNorm have no bias: BatchNorm subtracts the mean anyway, and its own
    shift (beta) plays the bias's part."""
    return nn.Sequential(
        nn.ConvTranspose2d(LATENT, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh(),
    )


def make_discriminator():
    """1x28x28 -> 64x14x14 -> 128x7x7 -> one logit, the mirror image of G.

    No BatchNorm on the first layer: normalising the raw pixels of a batch would make D's
    verdict on one image depend on the others' brightness (the DCGAN paper found it made
    training unstable). No sigmoid at the end: the loss below takes logits, which is
    numerically safer than log(sigmoid(x))."""
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 1, 7, 1, 0),
    )


def discriminator_loss(D, real, fake):
    """BCE(D(x), 1) + BCE(D(G(z)), 0) = -log D(x) - log(1 - D(G(z))), on logits.

    ``fake.detach()`` cuts the fakes from the generator's graph. Without it, backward would
    also run through all of G, spending time on gradients for G's weights that this step
    throws away (opt_d only moves D), and leaving them in G's .grad for the G step to trip on.

    Real and fake go through D as two separate batches, so D's BatchNorm normalises each with
    its own statistics (a mixed batch would let D tell them apart by the batch mean alone)."""
    real_logits, fake_logits = D(real), D(fake.detach())
    loss = (F.binary_cross_entropy_with_logits(real_logits, mg.ones(*real_logits.shape))
            + F.binary_cross_entropy_with_logits(fake_logits, mg.zeros(*fake_logits.shape)))
    return loss, real_logits, fake_logits


def generator_loss(D, fake):
    """The non-saturating loss -log D(G(z)): BCE against the label "real" (see lesson 03).
    No detach here: the gradient must flow through D into G."""
    logits = D(fake)
    return F.binary_cross_entropy_with_logits(logits, mg.ones(*logits.shape))


def main(argv=None):
    parser = lesson_parser("04_dcgan", __doc__, steps=2000, batch_size=32, quick_steps=3)
    args = parser.parse_args(argv)
    run = Run(args, sample_every=200)
    mg.manual_seed(args.seed)
    data = run.load_dataset()
    fixed_z = mg.randn(64, LATENT, 1, 1)  # the same 64 noise vectors for every grid

    # The paper's initialisation, applied to every layer: conv weights ~ N(0, 0.02), BatchNorm
    # scale ~ N(1, 0.02) and shift 0. Small weights keep early activations small, so neither
    # player saturates at once.
    G = make_generator().apply(dcgan_init)
    D = make_discriminator().apply(dcgan_init)
    opt_g = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batches = forever(data, args.batch_size)
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    # At every sample point the history reads what lesson 10's judge sees in 500 samples from
    # fixed noise: classes covered, precision and recall (and their cosine and pixel spread).
    run.track_diversity(G, mg.randn(500, LATENT, 1, 1))
    start = run.resume(models, optimizers, streams)

    for step in run.steps(start):
        real = next(batches)[0]
        fake = G(mg.randn(args.batch_size, LATENT, 1, 1))

        # Discriminator step: push D(x) up and D(G(z)) down.
        opt_d.zero_grad()
        loss_d, real_logits, fake_logits = discriminator_loss(D, real, fake)
        loss_d.backward()
        opt_d.step()

        # Generator step: the same fakes, judged by the D that just improved. This backward
        # also leaves gradients in D's weights; opt_d.zero_grad() clears them next step.
        opt_g.zero_grad()
        loss_g = generator_loss(D, fake)
        loss_g.backward()
        opt_g.step()

        run.log(step, loss_d=loss_d, loss_g=loss_g,
                d_real=mg.sigmoid(real_logits).mean(), d_fake=mg.sigmoid(fake_logits).mean())
        if run.should_sample(step):
            # generate() samples in eval mode: G's BatchNorm then uses the running statistics
            # gathered in training, so each image depends on its own noise only
            run.save_grid(generate(G, fixed_z), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    run.finish_gan(G, fixed_z, data)  # final grid, 1,000 samples vs real images, metrics.json


if __name__ == "__main__":
    main()

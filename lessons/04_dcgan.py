"""Lesson 04 — DCGAN: the convolutional GAN that made GANs work on images (Radford et al. 2015).

Lesson 03's networks saw an image as 784 unrelated numbers. Here both networks are
convolutional: the generator starts from a 1x1 "image" of 100 noise channels and grows it to
7x7, 14x14 and 28x28 with transposed convolutions; the discriminator shrinks a 28x28 image
back down with strided convolutions. Neighbouring pixels share weights, so strokes, edges and
loops are learnt once and reused everywhere in the picture.

What you will see:
  1. the DCGAN architecture written out: transposed/strided convolutions instead of pooling,
     BatchNorm and ReLU in G, LeakyReLU(0.2) in D, tanh output, weights drawn from N(0, 0.02);
  2. the discriminator and generator steps, and why the D step detaches the fakes;
  3. three changes to the paper's training recipe that later GANs made standard, each worth
     a measured step in sample quality on real MNIST (the paper's recipe is one flag away,
     --paper-recipe, to compare):
       - Adam with beta1 = 0 and beta2 = 0.99 at lr 1e-3 (Karras et al. 2018) instead of the
         paper's beta1 = 0.5, beta2 = 0.999 at lr 2e-4: bigger, momentum-free steps;
       - an exponential moving average of G's weights for sampling (Karras et al. 2018;
         Yazici et al. 2019): fast steps make G jitter around where the game is going, and
         the average of its recent weights draws cleaner images;
       - in D, an R1 penalty on its gradient at real images (Mescheder et al. 2018) instead of
         BatchNorm: it keeps D from growing steep cliffs around the real data that would
         throw G's fast steps about;
  4. sampling in eval mode, where BatchNorm uses its running statistics instead of the batch's;
  5. grids from the same fixed noise as training goes on: blobs, then strokes, then digits.

Run it:
    python lessons/04_dcgan.py                          # about 5 minutes on a 2-core CPU
    python lessons/04_dcgan.py --dataset mnist    # real MNIST (downloaded once, or --data-root DIR)
    python lessons/04_dcgan.py --paper-recipe --out runs/04_paper   # the 2015 recipe, to compare
    python lessons/04_dcgan.py --steps 9000 --resume    # continue a finished run for longer

Outputs in runs/04_dcgan/: samples_<step>.png from fixed noise, samples_final.png,
history.png (losses, d_real, d_fake, R1), metrics.json, checkpoint.npz and samples.npy.
"""
import copy

import minigan as mg
from minigan import F, nn, optim
from minigan.data import forever
from minigan.experiment import Run, dcgan_init, generate, lesson_parser, update_ema

LATENT = 100
LR, BETAS = 1e-3, (0.0, 0.99)            # Adam, as in Karras et al. 2018
PAPER_LR, PAPER_BETAS = 2e-4, (0.5, 0.999)  # Adam, as in the DCGAN paper
R1_GAMMA = 1.0   # weight of the R1 penalty, tuned on MNIST (0.5 and 2 did worse; see the page)
R1_EVERY = 4     # the penalty is computed every 4th D step with 4x the weight (Karras et al. 2020)


def make_generator():
    """z as a (100, 1, 1) image -> 128x7x7 -> 64x14x14 -> 1x28x28.

    A transposed convolution with kernel 4, stride 2, padding 1 doubles the side exactly. The
    layers before BatchNorm have no bias: BatchNorm subtracts the mean anyway, and its own
    shift (beta) plays the bias's part. The paper's 64x64 generator narrows 1024 -> 512 -> 256
    -> 128 channels; for 28x28 digits half as many as the usual 256 -> 128 are plenty, and
    each step then costs a quarter as much, so a run of a few minutes sees four times the
    images."""
    return nn.Sequential(
        nn.ConvTranspose2d(LATENT, 128, 7, 1, 0, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(),
    )


def make_discriminator(batchnorm=False):
    """1x28x28 -> 32x14x14 -> 64x7x7 -> one logit, the mirror image of G.

    The paper puts BatchNorm in every D layer but the first (normalising the raw pixels of a
    batch would make D's verdict on one image depend on the others' brightness);
    ``batchnorm=True`` builds that D. Without it, D's verdict on each image is its own, which
    the R1 penalty below needs: it asks for the gradient of one image's logit with respect to
    that image. No sigmoid at the end: the loss takes logits, which is numerically safer than
    log(sigmoid(x))."""
    middle = ([nn.Conv2d(32, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64)] if batchnorm
              else [nn.Conv2d(32, 64, 4, 2, 1)])
    return nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        *middle, nn.LeakyReLU(0.2),
        nn.Conv2d(64, 1, 7, 1, 0),
    )


def discriminator_loss(D, real, fake, r1_weight=0.0):
    """BCE(D(x), 1) + BCE(D(G(z)), 0) = -log D(x) - log(1 - D(G(z))), on logits, plus
    ``r1_weight`` / 2 times the R1 penalty when it is not zero.

    ``fake.detach()`` cuts the fakes from the generator's graph. Without it, backward would
    also run through all of G, spending time on gradients for G's weights that this step
    throws away (opt_d only moves D), and leaving them in G's .grad for the G step to trip on.
    Real and fake go through D as two separate batches, which the paper's BatchNorm D needs (in
    a mixed batch it could tell them apart by the batch mean alone).

    R1 is the mean over the real images of |grad_x D(x)|^2: how steeply D's verdict changes
    around real data. Real data is where G is headed, and where D should be flat once G gets
    there; a steep D there overshoots and sends G's samples past the digits. The gradient is
    taken with create_graph=True, so that loss.backward() can differentiate the penalty in
    turn (a gradient of a gradient; lesson 07 looks at this in detail).

    Returns the loss, both logits and the penalty (0 when not computed)."""
    real = real.detach().requires_grad_(r1_weight > 0)
    real_logits, fake_logits = D(real), D(fake.detach())
    loss = (F.binary_cross_entropy_with_logits(real_logits, mg.ones(*real_logits.shape))
            + F.binary_cross_entropy_with_logits(fake_logits, mg.zeros(*fake_logits.shape)))
    r1 = mg.zeros(())
    if r1_weight > 0:
        (grad,) = mg.grad(real_logits.sum(), real, create_graph=True)
        r1 = (grad * grad).sum(dim=(1, 2, 3)).mean()
        loss = loss + r1_weight / 2 * r1
    return loss, real_logits, fake_logits, r1


def generator_loss(D, fake):
    """The non-saturating loss -log D(G(z)): BCE against the label "real" (see lesson 03).
    No detach here: the gradient must flow through D into G."""
    logits = D(fake)
    return F.binary_cross_entropy_with_logits(logits, mg.ones(*logits.shape))


def main(argv=None):
    parser = lesson_parser("04_dcgan", __doc__, steps=5500, batch_size=32, quick_steps=3)
    parser.add_argument("--paper-recipe", action="store_true",
                        help=f"train as the DCGAN paper did: BatchNorm in D, Adam lr {PAPER_LR} "
                             f"with betas {PAPER_BETAS}, no R1, samples from G itself")
    args = parser.parse_args(argv)
    run = Run(args, sample_every=200, recipe=("paper_recipe",))
    mg.manual_seed(args.seed)
    data = run.load_dataset()
    fixed_z = mg.randn(64, LATENT, 1, 1)  # the same 64 noise vectors for every grid

    # The paper's initialisation, applied to every layer: conv weights ~ N(0, 0.02), BatchNorm
    # scale ~ N(1, 0.02) and shift 0. Small weights keep early activations small, so neither
    # player saturates at once.
    paper = args.paper_recipe
    G = make_generator().apply(dcgan_init)
    D = make_discriminator(batchnorm=paper).apply(dcgan_init)
    lr, betas = (PAPER_LR, PAPER_BETAS) if paper else (LR, BETAS)
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=betas)
    models = {"G": G, "D": D}
    # G_ema is never trained: after every G step it moves a little towards G (update_ema), and
    # it draws every grid and every measured sample. Under the paper's recipe G draws them.
    sampler = G
    if not paper:
        sampler = models["G_ema"] = copy.deepcopy(G).eval()
    batches = forever(data, args.batch_size)
    optimizers, streams = {"G": opt_g, "D": opt_d}, {"real": batches}
    # At every sample point the history reads what lesson 10's judge sees in 500 samples from
    # fixed noise: classes covered, precision and recall (and their cosine and pixel spread).
    run.track_diversity(sampler, mg.randn(500, LATENT, 1, 1))
    start = run.resume(models, optimizers, streams)
    r1 = run.history["r1"][-1] if start else 0.0  # logged every step, measured every 4th

    for step in run.steps(start):
        real = next(batches)[0]
        fake = G(mg.randn(args.batch_size, LATENT, 1, 1))

        # Discriminator step: push D(x) up and D(G(z)) down; every R1_EVERY-th step, also
        # flatten D around the real images (R1_EVERY times the weight, so the same on average).
        opt_d.zero_grad()
        regularise = not paper and step % R1_EVERY == 0
        loss_d, real_logits, fake_logits, penalty = discriminator_loss(
            D, real, fake, r1_weight=R1_EVERY * R1_GAMMA if regularise else 0.0)
        loss_d.backward()
        opt_d.step()

        # Generator step: the same fakes, judged by the D that just improved. This backward
        # also leaves gradients in D's weights; opt_d.zero_grad() clears them next step.
        opt_g.zero_grad()
        loss_g = generator_loss(D, fake)
        loss_g.backward()
        opt_g.step()
        if not paper:
            update_ema(models["G_ema"], G, images_seen=(step + 1) * args.batch_size,
                       batch=args.batch_size)

        r1 = penalty.item() if regularise else r1  # measured every R1_EVERY-th step
        run.log(step, loss_d=loss_d, loss_g=loss_g, r1=r1,
                d_real=mg.sigmoid(real_logits).mean(), d_fake=mg.sigmoid(fake_logits).mean())
        if run.should_sample(step):
            # generate() samples in eval mode: G's BatchNorm then uses the running statistics
            # gathered in training, so each image depends on its own noise only
            run.save_grid(generate(sampler, fixed_z), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    h = run.history
    panels = {"losses": {name: h[name] for name in ("loss_d", "loss_g")},
              "discriminator scores": {name: h[name] for name in ("d_real", "d_fake")}}
    if not paper:
        panels["R1: mean |grad D(x)|^2 at real images"] = {"r1": h["r1"]}
    run.plot_history(panels)
    run.finish_gan(sampler, fixed_z, data, plot=False)  # final grid, 1,000 samples, metrics.json


if __name__ == "__main__":
    main()

"""Lesson 03 — the first GAN: two multi-layer perceptrons playing a game (Goodfellow et al. 2014).

A generator G turns 64 numbers of Gaussian noise into a 28x28 image; a discriminator D looks
at an image and returns one logit, "how real does this look". D is trained to tell real from
generated images, G is trained to make D call its images real. Nothing else tells G what a
digit looks like: everything it learns comes through D's gradient.

What you will see:
  1. the two networks, written out as nn.Sequential stacks of Linear layers, with BatchNorm
     in the generator (without it, on real MNIST, most samples become one digit);
  2. the discriminator's loss, binary cross-entropy on logits, with one-sided label smoothing
     (real target 0.9 instead of 1, Salimans et al. 2016);
  3. the generator's non-saturating loss, -log D(G(z)), instead of the minimax log(1 - D(G(z)));
  4. Adam with betas (0.5, 0.999), as most GAN papers, at lr 4e-4: twice their usual 2e-4,
     which BatchNorm makes safe, so the run learns more in its few minutes;
  5. D(x) and D(G(z)) tracked every step, and samples from the same fixed noise every few
     hundred steps, so you can watch digits condense out of static.

Run it:
    python lessons/03_mlp_gan.py                     # about 2 minutes on a 2-core CPU
    python lessons/03_mlp_gan.py --dataset mnist     # real MNIST (downloads once)
    python lessons/03_mlp_gan.py --resume --steps 15000  # continue a finished run for longer

Outputs in runs/03_mlp_gan/: samples_<step>.png from fixed noise, samples_final.png,
history.png (losses, d_real, d_fake), metrics.json, checkpoint.npz and samples.npy.
"""
import minigan as mg
from minigan import F, nn, optim
from minigan.data import forever
from minigan.experiment import Run, generate, lesson_parser

LATENT = 64
IMAGE = 28 * 28
REAL_TARGET = 0.9  # one-sided label smoothing: only the real label is softened
LR = 4e-4          # both players; without BatchNorm in G, 2e-4 is the safe choice


def make_generator():
    """z (64) -> 256 -> 512 -> 784 pixels; tanh puts pixels in [-1, 1] like the data.

    BatchNorm1d after each hidden layer rescales every unit to zero mean and unit variance
    over the batch (then a learnt scale and shift). A unit can then no longer go quiet or
    saturate for every z at once, so the batch's samples keep differing from each other: on
    real MNIST the same network without it sends a third of its samples to "1". The Linear
    layers in front have no bias, since BatchNorm's shift takes its place."""
    return nn.Sequential(
        nn.Linear(LATENT, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
        nn.Linear(256, 512, bias=False), nn.BatchNorm1d(512), nn.ReLU(),
        nn.Linear(512, IMAGE), nn.Tanh(),
    )


def make_discriminator():
    """784 pixels -> 512 -> 256 -> 1 logit. LeakyReLU keeps a gradient for negative inputs,
    so G still hears something from D where a ReLU would be flat."""
    return nn.Sequential(
        nn.Linear(IMAGE, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1),
    )


def discriminator_loss(D, real, fake):
    """BCE(D(x), t) + BCE(D(G(z)), 0) with t = 0.9: D learns to score real high, fake low.

    BCE(p, t) = -[t log p + (1 - t) log(1 - p)]; with t = 0.9, D's best answer on a real image
    is 0.9, a finite logit. ``fake`` is detached, so this loss moves D only. Returns the loss
    and both logits."""
    real_logits, fake_logits = D(real), D(fake.detach())
    loss = (F.binary_cross_entropy_with_logits(real_logits, mg.full(real_logits.shape, REAL_TARGET))
            + F.binary_cross_entropy_with_logits(fake_logits, mg.zeros(*fake_logits.shape)))
    return loss, real_logits, fake_logits


def generator_loss(D, fake):
    """The non-saturating loss -log D(G(z)), i.e. BCE against the label "real".

    The minimax game asks G to minimise log(1 - D(G(z))). Early on D easily spots fakes,
    D(G(z)) is near 0 and that curve is flat there, so G gets almost no gradient. -log D(G(z))
    has the same fixed point but is steep exactly where G is bad (lesson 05 shows the stall)."""
    logits = D(fake)
    return F.binary_cross_entropy_with_logits(logits, mg.ones(*logits.shape))


def main(argv=None):
    args = lesson_parser("03_mlp_gan", __doc__, steps=10000, batch_size=64).parse_args(argv)
    run = Run(args, sample_every=500)
    mg.manual_seed(args.seed)
    data = run.load_dataset()
    fixed_z = mg.randn(64, LATENT)  # the same 64 noise vectors for every grid

    G, D = make_generator(), make_discriminator()
    opt_g = optim.Adam(G.parameters(), lr=LR, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=LR, betas=(0.5, 0.999))
    batches = forever(data, args.batch_size)  # endless shuffled batches, reshuffled every epoch
    # Everything a resumed run needs, down to the data stream's place in its epoch.
    models, optimizers, streams = {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, {"real": batches}
    # At every sample point the history reads what lesson 10's judge sees in 500 samples from
    # fixed noise: classes covered, precision and recall (and their cosine and pixel spread).
    run.track_diversity(G, mg.randn(500, LATENT), image_shape=(1, 28, 28))
    start = run.resume(models, optimizers, streams)

    for step in run.steps(start):
        real = next(batches)[0].reshape(args.batch_size, IMAGE)
        fake = G(mg.randn(args.batch_size, LATENT))

        # Discriminator step: real up, fake down.
        opt_d.zero_grad()
        loss_d, real_logits, fake_logits = discriminator_loss(D, real, fake)
        loss_d.backward()
        opt_d.step()

        # Generator step: the same fakes, judged by the D that just improved.
        opt_g.zero_grad()
        loss_g = generator_loss(D, fake)
        loss_g.backward()
        opt_g.step()

        run.log(step, loss_d=loss_d, loss_g=loss_g,
                d_real=mg.sigmoid(real_logits).mean(), d_fake=mg.sigmoid(fake_logits).mean())
        if run.should_sample(step):
            # generate() samples in eval mode: BatchNorm uses the running statistics gathered
            # in training, so each image depends on its own noise only
            run.save_grid(generate(G, fixed_z, image_shape=(1, 28, 28)), step)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    # The final grid, 1,000 samples compared with 1,000 real images, metrics.json.
    run.finish_gan(G, fixed_z, data, image_shape=(1, 28, 28))


if __name__ == "__main__":
    main()

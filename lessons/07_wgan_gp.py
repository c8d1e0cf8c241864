"""Lesson 07 — WGAN-GP: keep the critic 1-Lipschitz with a gradient penalty
(Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017).

Lesson 06 made the critic Lipschitz by clipping its weights, which works but cripples it: most
weights sit at +-0.01 and the critic learns slowly. A differentiable function is 1-Lipschitz
exactly when the norm of its input gradient is at most 1 everywhere, and the optimal WGAN
critic has gradient norm 1 almost everywhere between the two distributions. So WGAN-GP drops the
clipping and adds to the critic's loss a penalty on how far that norm is from 1:

    L_C = E[C(fake)] - E[C(real)] + lambda * E[(||grad_x C(x_hat)|| - 1)^2]

at points x_hat on straight lines between a real and a fake image. The penalty contains a
gradient, so minimising it needs the gradient of a gradient: minigan.grad(..., create_graph=True)
records the backward pass as a graph, and loss.backward() differentiates through it.

What you will see:
  1. the penalty written out: random interpolates, their input gradient, its norm per sample;
  2. why the critic has no BatchNorm (it would make one sample's gradient depend on the others);
  3. the recipe: lambda = 10 (the paper's), two critic steps per generator step, and lesson
     04's Adam (lr 1e-3, betas (0.0, 0.99)) with samples drawn from an exponential moving
     average of G's weights (the paper: five critic steps, lr 1e-4, betas (0.0, 0.9), G itself);
  4. grad_norms.png: histograms of ||grad C(x_hat)|| gathering around 1 as training goes on;
  5. the mean gradient norm and the Wasserstein estimate in history.png.

Why two critic steps, not the paper's five? Every critic step costs a double backward, so
within a fixed time budget each critic step spent is a generator step lost. The paper wants
the critic close to its optimum before each generator step; but the critic is never trained
from scratch, only nudged after a generator that moved a little, and the penalty keeps its
slopes near 1 however few its updates, so two are enough to keep up. A generator step with two
costs half one with five, and 4,000 of them beat the paper's 2,000 with five in about the same
time. Lesson 04's Adam steps ten times as far as the paper's (lr 1e-3 against 1e-4), which
makes G jitter around where the game is going; the moving average of its weights (lesson 04)
draws from the middle of the jitter.

Run it:
    python lessons/07_wgan_gp.py                          # about 9 minutes on a 2-core CPU
    python lessons/07_wgan_gp.py --dataset mnist    # real MNIST (downloaded once, or --data-root DIR)
    python lessons/07_wgan_gp.py --critic-steps 5         # the paper's ratio
    python lessons/07_wgan_gp.py --steps 6000 --resume    # continue a finished run for longer

--steps counts generator updates; each comes with --critic-steps critic updates (default
CRITIC_STEPS).
Outputs in runs/07_wgan_gp/: samples_<step>.png from fixed noise, samples_final.png,
history.png, grad_norms.png (and grad_norms.npz, its data), metrics.json, checkpoint.npz and
samples.npy.
"""
import copy
import os

import minigan as mg
from minigan import io, nn, optim, viz
from minigan.data import forever
from minigan.experiment import (Run, dcgan_generator, dcgan_init, fork_rng, generate,
                                lesson_parser, positive_int, update_ema)

LATENT = 100
WIDTH = 32           # channels of the critic's first layer; G mirrors it (2 * WIDTH, 4 * WIDTH)
CRITIC_STEPS = 2     # critic updates per generator update (the paper: 5); --critic-steps
LR = 1e-3            # Adam's learning rate for both nets, lesson 04's (the paper: 1e-4)
BETAS = (0.0, 0.99)  # Adam's betas for both nets, lesson 04's (the paper: (0.0, 0.9))
LAMBDA = 10.0        # weight of the gradient penalty (the paper's value for every experiment)
HISTOGRAM_BATCH = 256  # interpolates behind each histogram in grad_norms.png


def make_critic():
    """28x28 -> 14x14 -> 7x7 -> one unbounded score, with LayerNorm instead of BatchNorm.

    The penalty asks for the gradient of each sample's score with respect to that sample. With
    BatchNorm, a score depends on the batch's mean and variance, so on every other image in the
    batch, and "the gradient of C at x_hat" stops being a property of x_hat alone. LayerNorm
    normalises each sample over its own (channels, height, width), so samples stay independent.
    (The paper recommends layer normalisation, or none.)"""
    return nn.Sequential(
        nn.Conv2d(1, WIDTH, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(WIDTH, 2 * WIDTH, 4, 2, 1), nn.LayerNorm((2 * WIDTH, 7, 7)), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * WIDTH, 1, 7, 1, 0), nn.Flatten(0),
    )


def interpolate(real, fake):
    """x_hat = eps * real + (1 - eps) * fake with one eps ~ U[0, 1] per sample: a random point
    on the segment between each real image and a fake one. Returned as a leaf that requires
    grad, because we are about to differentiate with respect to it."""
    eps = mg.rand(len(real), 1, 1, 1)
    return (eps * real + (1 - eps) * fake).detach().requires_grad_(True)


def gradient_norms(C, x_hat, create_graph):
    """||d C(x_hat_i) / d x_hat_i|| for every sample i, over channels and pixels together.

    We differentiate the *sum* of the scores: sample i's score depends on x_hat_i only, so the
    gradient of the sum with respect to x_hat_i is the gradient of its own score. With
    create_graph=True the gradient is itself a graph (built from the backward ops), so a loss
    made from it can be backpropagated into the critic's weights: a second derivative."""
    (grad,) = mg.grad(C(x_hat).sum(), x_hat, create_graph=create_graph)
    return ((grad * grad).sum(axis=(1, 2, 3)) + 1e-12).sqrt()  # sqrt's slope is infinite at 0


def critic_loss(C, real, fake):
    """-(E[C(real)] - E[C(fake)]) + lambda * E[(||grad C(x_hat)|| - 1)^2].

    The first part is lesson 06's critic loss; the penalty pulls the gradient norm towards 1 on
    both sides (the paper's "two-sided" penalty), not just below it. Returns the loss, the
    Wasserstein estimate, the penalty and the mean gradient norm (for the history)."""
    estimate = C(real).mean() - C(fake).mean()
    norms = gradient_norms(C, interpolate(real, fake), create_graph=True)
    penalty = LAMBDA * ((norms - 1) ** 2).mean()
    return penalty - estimate, estimate, penalty, norms.mean()


def generator_loss(C, fake):
    """G wants the critic to score its images high: minimise -E[C(G(z))], as in lesson 06."""
    return -C(fake).mean()


def norm_snapshot(C, G, data, n=HISTOGRAM_BATCH):
    """Gradient norms at n fresh interpolates, for one histogram (no graph kept).

    A measurement, not part of training: fork_rng puts minigan's RNG back afterwards, so the
    training draws the same noise and batches whether or not a snapshot was taken."""
    with fork_rng():
        real = next(forever(data, min(n, len(data))))[0]
        fake = generate(G, mg.randn(len(real), LATENT, 1, 1))
        return gradient_norms(C, interpolate(real, fake), create_graph=False).numpy()


def main(argv=None):
    parser = lesson_parser("07_wgan_gp", __doc__, steps=3800, batch_size=32, quick_steps=2)
    parser.add_argument("--critic-steps", type=positive_int, default=CRITIC_STEPS,
                        help=f"critic updates per generator update (default {CRITIC_STEPS}; "
                             f"the paper's is 5)")
    args = parser.parse_args(argv)
    run = Run(args, sample_every=200, recipe=("critic_steps",))  # a resume must keep it
    mg.manual_seed(args.seed)
    data = run.load_dataset()
    fixed_z = mg.randn(64, LATENT, 1, 1)

    # G is lesson 04's DCGAN generator, with BatchNorm: the penalty is about
    # the critic's gradient, not G's. Both start from the DCGAN initialisation (LayerNorm
    # keeps its default: scale 1, shift 0).
    G = dcgan_generator(LATENT, WIDTH).apply(dcgan_init)
    C = make_critic().apply(dcgan_init)
    # The same Adam for both nets, lesson 04's: large steps without momentum. G_ema, the
    # moving average of G's weights, is never trained; it draws every grid and measured sample.
    opt_g = optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_c = optim.Adam(C.parameters(), lr=LR, betas=BETAS)
    G_ema = copy.deepcopy(G).eval()
    batches = forever(data, args.batch_size)
    models, optimizers = {"G": G, "G_ema": G_ema, "C": C}, {"G": opt_g, "C": opt_c}
    streams = {"real": batches}
    run.track_diversity(G_ema, mg.randn(500, LATENT, 1, 1))  # what the judge sees, at sample points
    start = run.resume(models, optimizers, streams)

    # Histograms of gradient norms at the start and at every sample point, kept on disk so a
    # resumed run continues the same picture.
    norms_path = os.path.join(run.dir, "grad_norms.npz")
    snapshots = io.load(norms_path) if start and os.path.exists(norms_path) else {}
    if not start:
        snapshots["step 0"] = norm_snapshot(C, G, data)

    for step in run.steps(start):
        for _ in range(args.critic_steps):
            real = next(batches)[0]
            with mg.no_grad():  # the critic's update needs no path into G
                fake = G(mg.randn(args.batch_size, LATENT, 1, 1))
            opt_c.zero_grad()
            loss_c, estimate, penalty, grad_norm = critic_loss(C, real, fake)
            loss_c.backward()  # through the penalty's gradient graph: double backward
            opt_c.step()

        opt_g.zero_grad()
        loss_g = generator_loss(C, G(mg.randn(args.batch_size, LATENT, 1, 1)))
        loss_g.backward()
        opt_g.step()
        update_ema(G_ema, G, images_seen=(step + 1) * args.batch_size, batch=args.batch_size)

        run.log(step, loss_critic=loss_c, loss_g=loss_g, penalty_loss=penalty,
                wasserstein_estimate=estimate, grad_norm=grad_norm)
        if run.should_sample(step):
            run.save_grid(generate(G_ema, fixed_z), step)
            snapshots[f"step {step + 1}"] = norm_snapshot(C, G, data)
            io.save(snapshots, norms_path)
            run.save_checkpoint(step + 1, models, optimizers, streams)

    viz.plot_histograms(snapshots, os.path.join(run.dir, "grad_norms.png"), reference=1.0,
                        xlabel="||grad C(x_hat)||", title="Critic gradient norms at interpolates",
                        columns=4, limits=(0, 3))
    h = run.history
    run.plot_history({
        "losses": {name: h[name] for name in ("loss_critic", "loss_g", "penalty_loss")},
        "the critic's Wasserstein estimate E[C(real)] - E[C(fake)]":
            {"wasserstein_estimate": h["wasserstein_estimate"]},
        "mean ||grad C(x_hat)|| at interpolates (the penalty pulls it to 1)":
            {"grad_norm": h["grad_norm"]},
    })
    final_norms = snapshots[f"step {args.steps}"]
    run.finish_gan(G_ema, fixed_z, data, plot=False, metrics={
        "critic_steps": args.critic_steps,
        "grad_norm_mean": float(final_norms.mean()),
        "grad_norm_std": float(final_norms.std()),
    })


if __name__ == "__main__":
    main()

"""Building blocks several GAN lessons make the same way: the DCGAN paper's initialisation, lesson
04's generator at any width, and an exponential moving average of a generator's weights.
(``minigan.experiment`` passes them on, beside the scaffolding of a run.)"""
from . import nn, no_grad


def dcgan_init(module):
    """The DCGAN paper's initialisation, for ``model.apply(dcgan_init)``: convolution weights
    ~ N(0, 0.02) and biases 0; BatchNorm scale ~ N(1, 0.02) and shift 0. Other layers keep
    their own initialisation. Small weights keep early activations small, so neither player
    saturates at once."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


EMA_HALF_LIFE = 10000  # images after which an old weight counts half in the average (Karras et al. 2019)
EMA_RAMP = 0.05        # ... but at most this fraction of the images seen so far


def update_ema(G_ema, G, images_seen, batch, half_life=EMA_HALF_LIFE, ramp=EMA_RAMP):
    """One step of an exponential moving average of G's weights, kept in G_ema (a copy of G
    that is never trained): G_ema <- beta G_ema + (1 - beta) G.

    beta is set by a half-life counted in images: after ``half_life`` images, an old weight
    counts half. Early on, when G changes fastest, the half-life is at most ``ramp`` times the
    images seen so far, so the first weights are forgotten quickly. Buffers (BatchNorm's
    running statistics) are copied, not averaged."""
    span = min(half_life, ramp * images_seen)
    beta = 0.5 ** (batch / span) if span > 0 else 0.0
    with no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.data[...] = (p + beta * (p_ema - p)).data
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.data[...] = b.data


def dcgan_generator(latent, width):
    """Lesson 04's DCGAN generator for 28x28 grey images, ``width`` setting its channels:
    z as a (latent, 1, 1) image -> 4*width x 7x7 -> 2*width x 14x14 -> 1 x 28x28, with
    BatchNorm and ReLU between and tanh at the end (lesson 04 writes it out, at width 32)."""
    return nn.Sequential(
        nn.ConvTranspose2d(latent, 4 * width, 7, 1, 0, bias=False),
        nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
        nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, 1, 4, 2, 1), nn.Tanh(),
    )

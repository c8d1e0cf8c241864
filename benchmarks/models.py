"""The benchmark models, written once against the PyTorch-style API that both minigan and torch
offer: each builder takes a framework's ``nn`` namespace, so the two models are identical layer
for layer."""


def mlp_gan(nn, z_dim=64):
    g = nn.Sequential(
        nn.Linear(z_dim, 256), nn.ReLU(),
        nn.Linear(256, 512), nn.ReLU(),
        nn.Linear(512, 784), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Linear(784, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1),
    )
    return g, d, (z_dim,), (784,)


def dcgan28(nn, z_dim=100):
    """The 28x28 DCGAN of lesson 04: about 18 GFLOP per train step at batch 64."""
    g = nn.Sequential(
        nn.ConvTranspose2d(z_dim, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 1, 7, 1, 0),
    )
    return g, d, (z_dim, 1, 1), (1, 28, 28)


def dcgan32_rgb(nn, z_dim=64, width=32):
    g = nn.Sequential(
        nn.ConvTranspose2d(z_dim, width * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(),
        nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(),
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 2, width * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 4, 1, 4, 1, 0),
    )
    return g, d, (z_dim, 1, 1), (3, 32, 32)


def dcgan64(nn, z_dim=100, ngf=64, ndf=64):
    """The classic 64x64 RGB DCGAN (Radford et al. 2015): 4 -> 8 -> 16 -> 32 -> 64 with
    ngf = ndf = 64, BatchNorm everywhere but G's output and D's input."""
    g = nn.Sequential(
        nn.ConvTranspose2d(z_dim, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
    )
    return g, d, (z_dim, 1, 1), (3, 64, 64)


MODELS = {"mlp": mlp_gan, "dcgan28": dcgan28, "dcgan32": dcgan32_rgb, "dcgan64": dcgan64}


def sngan28(nn, z_dim=100, width=32):
    """Lesson 08's spectral-norm GAN: the half-width 28x28 DCGAN generator, and a discriminator
    with every kernel spectrally normalised (one power-iteration step per forward) instead of
    BatchNorm."""
    sn = nn.utils.spectral_norm
    g = nn.Sequential(
        nn.ConvTranspose2d(z_dim, width * 4, 7, 1, 0, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(),
        nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(),
        nn.ConvTranspose2d(width * 2, 1, 4, 2, 1), nn.Tanh(),
    )
    d = nn.Sequential(
        sn(nn.Conv2d(1, width, 4, 2, 1)), nn.LeakyReLU(0.2),
        sn(nn.Conv2d(width, width * 2, 4, 2, 1)), nn.LeakyReLU(0.2),
        sn(nn.Conv2d(width * 2, 1, 7, 1, 0)),
    )
    return g, d, (z_dim, 1, 1), (1, 28, 28)


def cgan28(nn, z_dim=100, classes=10, width=32, embed=8):
    """Lesson 09's conditional GAN: G reads z with a one-hot class appended, D reads the image
    with a learnt class embedding copied to every pixel as extra channels (and spectral norm).
    The benchmark's step passes noise and images only, so both models ask for the classes
    0, 1, ..., 9, 0, 1, ... down the batch."""
    import importlib

    framework = importlib.import_module(nn.__name__.split(".")[0])  # torch or minigan

    def cycle(x):
        return framework.tensor([i % classes for i in range(len(x))]).to(x.device)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.ConvTranspose2d(z_dim + classes, width * 4, 7, 1, 0, bias=False),
                nn.BatchNorm2d(width * 4), nn.ReLU(),
                nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2), nn.ReLU(),
                nn.ConvTranspose2d(width * 2, 1, 4, 2, 1), nn.Tanh(),
            )

        def forward(self, z):
            one_hot = nn.functional.one_hot(cycle(z), classes).float()
            return self.net(framework.cat([z.reshape(len(z), z_dim), one_hot], dim=1)
                            .reshape(len(z), z_dim + classes, 1, 1))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            sn = nn.utils.spectral_norm
            self.embed = nn.Embedding(classes, embed)
            self.net = nn.Sequential(
                sn(nn.Conv2d(1 + embed, width, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(width, width * 2, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(width * 2, 1, 7, 1, 0)),
            )

        def forward(self, x):
            n, _, h, w = x.shape
            planes = self.embed(cycle(x)).reshape(n, embed, 1, 1).expand(n, embed, h, w)
            return self.net(framework.cat([x, planes], dim=1))

    return Generator(), Discriminator(), (z_dim, 1, 1), (1, 28, 28)


MODELS.update({"sngan": sngan28, "cgan": cgan28})


def pix2pix32(nn, widths=(16, 32, 64, 64, 64), d_width=32):
    """Lesson 14's U-Net generator (an outline, 1x32x32 -> a shape, 3x32x32: five halvings down
    to 1x1, skip connections concatenated channel-wise, dropout in the two innermost decoder
    blocks) and its PatchGAN discriminator on the (input, output) pair (14x14 patch logits).
    The benchmark's step gives G noise and D one image per logit, so here G returns the pair
    (its input, its output) stacked as 4 channels, the real batch is a random 4-channel pair,
    and D averages its patch logits into one per image: the lesson's layers, with the loss
    averaged over patches before the BCE instead of after."""
    import importlib

    framework = importlib.import_module(nn.__name__.split(".")[0])  # torch or minigan

    def down(cin, cout, norm=True):
        layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
        return nn.Sequential(*layers, *([nn.BatchNorm2d(cout)] if norm else []), nn.LeakyReLU(0.2))

    def up(cin, cout, dropout=False):
        layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, *([nn.Dropout(0.5)] if dropout else []), nn.ReLU())

    class PairGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            c, depth = widths, len(widths)
            self.down = nn.ModuleList([down(1, c[0], norm=False)] + [
                down(c[i - 1], c[i], norm=i < depth - 1) for i in range(1, depth)])
            self.up = nn.ModuleList([up(c[i] * (1 if i == depth - 1 else 2), c[i - 1], i >= depth - 2)
                                     for i in range(depth - 1, 0, -1)])
            self.out = nn.Sequential(nn.ConvTranspose2d(2 * c[0], 3, 4, 2, 1), nn.Tanh())

        def forward(self, z):
            x, skips = z, []
            for block in self.down:
                x = block(x)
                skips.append(x)
            skips.pop()
            for block in self.up:
                x = framework.cat([block(x), skips.pop()], dim=1)
            return framework.cat([z, self.out(x)], dim=1)

    class PatchDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(4, d_width, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(d_width, 2 * d_width, 4, 1, 1, bias=False), nn.BatchNorm2d(2 * d_width),
                nn.LeakyReLU(0.2), nn.Conv2d(2 * d_width, 1, 4, 1, 1))

        def forward(self, x):
            return self.net(x).flatten(1).mean(1)

    return PairGenerator(), PatchDiscriminator(), (1, 32, 32), (4, 32, 32)


def cyclegan32(nn, width=16, blocks=3, d_width=32):
    """Lesson 15's ResNet generator (3x32x32 -> 3x32x32: reflection padding, 7x7 convolution,
    two stride-2 convolutions to 8x8, residual blocks, two transposed convolutions back, instance
    norm throughout) and its PatchGAN discriminator with instance norm. One translator and one
    discriminator, in the benchmark's step: G maps a random image (its "noise") and D averages
    its patch logits into one per image."""
    def block(cin, cout, kernel, stride=1, transposed=False):
        if transposed:
            conv = [nn.ConvTranspose2d(cin, cout, kernel, stride, 1, output_padding=1, bias=False)]
        elif stride == 1:
            conv = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, bias=False)]
        else:
            conv = [nn.Conv2d(cin, cout, kernel, stride, 1, bias=False)]
        return conv + [nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(*block(c, c, 3), nn.ReflectionPad2d(1),
                                      nn.Conv2d(c, c, 3, bias=False), nn.InstanceNorm2d(c, affine=True))

        def forward(self, x):
            return x + self.body(x)

    class PatchDiscriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(3, d_width, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(d_width, 2 * d_width, 4, 1, 1, bias=False),
                nn.InstanceNorm2d(2 * d_width, affine=True), nn.LeakyReLU(0.2),
                nn.Conv2d(2 * d_width, 1, 4, 1, 1))

        def forward(self, x):
            return self.net(x).flatten(1).mean(1)

    g = nn.Sequential(
        *block(3, width, 7), *block(width, 2 * width, 3, 2), *block(2 * width, 4 * width, 3, 2),
        *[Residual(4 * width) for _ in range(blocks)],
        *block(4 * width, 2 * width, 3, 2, transposed=True), *block(2 * width, width, 3, 2, transposed=True),
        nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh())
    return g, PatchDiscriminator(), (3, 32, 32), (3, 32, 32)


MODELS.update({"pix2pix": pix2pix32, "cyclegan": cyclegan32})


def _gan_blocks(nn):
    """The equalised-learning-rate layers, pixel norm, minibatch stddev, noise injection and
    AdaIN of lessons 12 and 13 (minigan.nn has them built in), written once for either
    framework so the two models are the same computation."""
    import importlib
    import math

    framework = importlib.import_module(nn.__name__.split(".")[0])  # torch or minigan
    F = nn.functional

    class Linear(nn.Module):
        def __init__(self, n_in, n_out, gain=math.sqrt(2), lr_mul=1.0):
            super().__init__()
            self.weight = nn.Parameter(framework.randn(n_out, n_in) / lr_mul)
            self.bias = nn.Parameter(framework.zeros(n_out))
            self.scale, self.lr_mul = lr_mul * gain / math.sqrt(n_in), lr_mul

        def forward(self, x):
            return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)

    class Conv(nn.Module):
        """Same-size output for odd kernels; ``padding=0`` for the critic's last 4x4."""

        def __init__(self, c_in, c_out, k, gain=math.sqrt(2), padding=None):
            super().__init__()
            self.weight = nn.Parameter(framework.randn(c_out, c_in, k, k))
            self.bias = nn.Parameter(framework.zeros(c_out))
            self.scale = gain / math.sqrt(c_in * k * k)
            self.padding = k // 2 if padding is None else padding

        def forward(self, x):
            return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def pixel_norm(x):
        return x * ((x * x).mean(dim=1, keepdim=True) + 1e-8).rsqrt()

    def minibatch_stddev(x, g=4):
        n, c, h, w = x.shape
        y = x.reshape(g, n // g, c, h, w)
        y = y - y.mean(dim=0, keepdim=True)
        spread = ((y * y).mean(dim=0) + 1e-8).sqrt().mean(dim=(1, 2, 3))
        planes = spread.reshape(1, n // g, 1, 1, 1).expand(g, n // g, 1, h, w).reshape(n, 1, h, w)
        return framework.cat([x, planes], dim=1)

    class AdaIN(nn.Module):
        def __init__(self, channels, w_dim):
            super().__init__()
            self.style, self.channels = Linear(w_dim, 2 * channels, gain=1.0), channels

        def forward(self, x, w):
            style = self.style(w)
            c = self.channels
            return F.instance_norm(x) * style[:, :c].reshape(len(w), c, 1, 1) + style[:, c:].reshape(len(w), c, 1, 1)

    class Noise(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.weight = nn.Parameter(framework.zeros(1, channels, 1, 1))

        def forward(self, x):
            n, _, h, w = x.shape
            return x + self.weight * framework.randn(n, 1, h, w, device=x.device)

    def lrelu(x):
        return F.leaky_relu(x, 0.2)

    def up(x):
        return F.interpolate(x, scale_factor=2, mode="nearest")

    class DBlock(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1, self.conv2 = Conv(c_in, c_in, 3), Conv(c_in, c_out, 3)

        def forward(self, x):
            return F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(x)))), 2)

    class Critic(nn.Module):
        """Lesson 12's critic at 32x32 (lesson 13's discriminator): fromRGB, three blocks,
        minibatch stddev, 3x3 and 4x4 convolutions, a linear score. ``fading`` adds lesson 12's
        skip path from the half-size image at alpha 0.5."""

        def __init__(self, channels, fading):
            super().__init__()
            c, self.fading = channels, fading
            self.from_rgb, self.from_rgb_half = Conv(1, c[32], 1), Conv(1, c[16], 1)
            self.blocks = nn.ModuleList([DBlock(c[32], c[16]), DBlock(c[16], c[8]), DBlock(c[8], c[4])])
            self.conv4, self.conv_last = Conv(c[4] + 1, c[4], 3), Conv(c[4], c[4], 4, padding=0)
            self.score = Linear(c[4], 1, gain=1.0)

        def forward(self, image):
            x = self.blocks[0](lrelu(self.from_rgb(image)))
            if self.fading:
                x = x + 0.5 * (lrelu(self.from_rgb_half(F.avg_pool2d(image, 2))) - x)
            for block in self.blocks[1:]:
                x = block(x)
            x = lrelu(self.conv_last(lrelu(self.conv4(minibatch_stddev(x)))))
            return self.score(x.reshape(len(x), -1)).reshape(len(x))

    return framework, Linear, Conv, pixel_norm, AdaIN, Noise, lrelu, up, Critic


LESSON_CHANNELS = {4: 128, 8: 64, 16: 32, 32: 16}  # lessons 12 and 13


def progan32(nn, z_dim=128, c=LESSON_CHANNELS):
    """Lesson 12's progressive GAN in its last stage, 32x32 fading in at alpha 0.5 (both the new
    block and the upsampled skip path run): equalised learning rate, pixel norm in G,
    minibatch stddev in D. The benchmark's step uses the logistic loss, not the lesson's
    gradient penalty."""
    framework, Linear, Conv, pixel_norm, _, _, lrelu, up, Critic = _gan_blocks(nn)

    class Block(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1, self.conv2 = Conv(c_in, c_out, 3), Conv(c_out, c_out, 3)

        def forward(self, x):
            return pixel_norm(lrelu(self.conv2(pixel_norm(lrelu(self.conv1(up(x)))))))

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense, self.conv4 = Linear(z_dim, 16 * c[4], gain=2 ** 0.5 / 4), Conv(c[4], c[4], 3)
            self.blocks = nn.ModuleList([Block(c[4], c[8]), Block(c[8], c[16]), Block(c[16], c[32])])
            self.to_rgb, self.to_rgb_half = Conv(c[32], 1, 1, gain=1.0), Conv(c[16], 1, 1, gain=1.0)

        def forward(self, z):
            x = pixel_norm(lrelu(self.dense(pixel_norm(z)).reshape(len(z), c[4], 4, 4)))
            x = self.blocks[1](self.blocks[0](pixel_norm(lrelu(self.conv4(x)))))
            old, new = up(self.to_rgb_half(x)), self.to_rgb(self.blocks[2](x))
            return old + 0.5 * (new - old)

    return Generator(), Critic(c, fading=True), (z_dim,), (1, 32, 32)


def stylegan32(nn, z_dim=128, c=LESSON_CHANNELS, mapping_layers=4):
    """Lesson 13's StyleGAN: a 4-layer mapping network (lr_mul 0.01), a learned constant, two
    styled layers per side (convolution, noise, LeakyReLU, AdaIN) up to 32x32, and lesson 12's
    critic. The benchmark's step leaves out style mixing and the R1 penalty."""
    framework, Linear, Conv, pixel_norm, AdaIN, Noise, lrelu, up, Critic = _gan_blocks(nn)

    class Styled(nn.Module):
        def __init__(self, c_in, c_out, conv=True, upsample=False):
            super().__init__()
            self.upsample = upsample
            self.conv = Conv(c_in, c_out, 3) if conv else None
            self.noise, self.adain = Noise(c_out), AdaIN(c_out, z_dim)
            self.bias = nn.Parameter(framework.zeros(1, c_out, 1, 1))

        def forward(self, x, w):
            x = up(x) if self.upsample else x
            x = self.conv(x) if self.conv is not None else x
            return self.adain(lrelu(self.noise(x) + self.bias), w)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for _ in range(mapping_layers):
                layers += [Linear(z_dim, z_dim, lr_mul=0.01), nn.LeakyReLU(0.2)]
            self.mapping = nn.Sequential(*layers)
            self.const = nn.Parameter(framework.ones(1, c[4], 4, 4))
            styled = [Styled(c[4], c[4], conv=False), Styled(c[4], c[4])]
            for a, b in ((4, 8), (8, 16), (16, 32)):
                styled += [Styled(c[a], c[b], upsample=True), Styled(c[b], c[b])]
            self.styled = nn.ModuleList(styled)
            self.to_rgb = Conv(c[32], 1, 1, gain=1.0)

        def forward(self, z):
            w = self.mapping(pixel_norm(z))
            x = self.const.expand(len(z), -1, -1, -1)
            for layer in self.styled:
                x = layer(x, w)
            return self.to_rgb(x)

    return Generator(), Critic(c, fading=False), (z_dim,), (1, 32, 32)


MODELS.update({"progan32": progan32, "stylegan32": stylegan32})

"""A StyleGAN mapping network and one synthesis block with AdaIN and noise (Karras et al. 2019),
written the way PyTorch tutorials write them.

Only the imports below change to run it on minigan (tests/test_tutorials.py does exactly that).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

nz = w_dim = 16
channels = 8


class MappingNetwork(nn.Module):
    def __init__(self, layers=4):
        super().__init__()
        blocks = []
        for _ in range(layers):
            blocks += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2, inplace=True)]
        self.net = nn.Sequential(*blocks)

    def forward(self, z):
        z = z * torch.rsqrt((z ** 2).mean(dim=1, keepdim=True) + 1e-8)  # pixel norm of z
        return self.net(z)


class AdaIN(nn.Module):
    def __init__(self, num_channels):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_channels)
        self.style = nn.Linear(w_dim, num_channels * 2)

    def forward(self, x, w):
        scale, bias = self.style(w).chunk(2, dim=1)
        return self.norm(x) * (1 + scale.unsqueeze(2).unsqueeze(3)) + bias.unsqueeze(2).unsqueeze(3)


class NoiseInjection(nn.Module):
    def __init__(self, num_channels):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, num_channels, 1, 1))

    def forward(self, x, noise):
        return x + self.weight * noise


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.noise = NoiseInjection(out_channels)
        self.adain = AdaIN(out_channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x, w, noise):
        x = self.conv(self.up(x))
        return self.adain(self.act(self.noise(x, noise)), w)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.mapping = MappingNetwork()
        self.const = nn.Parameter(torch.ones(1, channels, 4, 4))
        self.blocks = nn.ModuleList([SynthesisBlock(channels, channels), SynthesisBlock(channels, channels)])
        self.to_rgb = nn.Conv2d(channels, 3, 1)

    def forward(self, z, noises):
        w = self.mapping(z)
        x = self.const.expand(z.size(0), -1, -1, -1)
        for block, noise in zip(self.blocks, noises):
            x = block(x, w, noise)
        return torch.tanh(self.to_rgb(x))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.AvgPool2d(2),
            nn.Conv2d(channels, channels * 2, 3, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels * 2, 1),
        )

    def forward(self, x):
        return self.net(x)


def make(device):
    G, D = Generator().to(device), Discriminator().to(device)
    opt_G = optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    opt_D = optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    return G, D, opt_G, opt_D


def train_step(G, D, opt_G, opt_D, real, z, noises):
    # the non-saturating logistic loss StyleGAN trains with, written with softplus
    opt_D.zero_grad()
    fake = G(z, noises)
    loss_D = F.softplus(D(fake.detach())).mean() + F.softplus(-D(real)).mean()
    loss_D.backward()
    opt_D.step()

    opt_G.zero_grad()
    loss_G = F.softplus(-D(fake)).mean()
    loss_G.backward()
    opt_G.step()
    return loss_D.item(), loss_G.item()


def main(steps=2, batch_size=4):
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    G, D, opt_G, opt_D = make(device)
    for _ in range(steps):
        real = torch.rand(batch_size, 3, 16, 16, device=device) * 2 - 1
        z = torch.randn(batch_size, nz, device=device)
        noises = [torch.randn(batch_size, 1, 8, 8, device=device),
                  torch.randn(batch_size, 1, 16, 16, device=device)]
        losses = train_step(G, D, opt_G, opt_D, real, z, noises)
    return losses

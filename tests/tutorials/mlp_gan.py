"""A fully connected GAN on 28x28 images, written the way PyTorch tutorials write it.

Only the imports below change to run it on minigan (tests/test_tutorials.py does exactly that).
"""
import torch
import torch.nn as nn
import torch.optim as optim

LATENT = 100


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LATENT, 128),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(128, 256),
            nn.BatchNorm1d(256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 784),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z).view(z.size(0), 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(784, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.net(x.flatten(1))


def make(device):
    G, D = Generator().to(device), Discriminator().to(device)
    opt_G = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return G, D, opt_G, opt_D


def train_step(G, D, opt_G, opt_D, real, z, device):
    criterion = nn.BCELoss()
    B = real.size(0)
    real_labels = torch.ones(B, 1, device=device)
    fake_labels = torch.zeros(B, 1, device=device)

    opt_D.zero_grad()
    fake = G(z)
    loss_D = criterion(D(real), real_labels) + criterion(D(fake.detach()), fake_labels)
    loss_D.backward()
    opt_D.step()

    opt_G.zero_grad()
    loss_G = criterion(D(fake), real_labels)
    loss_G.backward()
    opt_G.step()
    return loss_D.item(), loss_G.item()


def main(steps=2, batch_size=16, path=None):
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    G, D, opt_G, opt_D = make(device)
    for _ in range(steps):
        real = (torch.rand(batch_size, 1, 28, 28) * 2 - 1).to(device)
        z = torch.randn(batch_size, LATENT, device=device)
        losses = train_step(G, D, opt_G, opt_D, real, z, device)
    with torch.no_grad():
        G.eval()
        samples = G(torch.randn(8, LATENT, device=device))
    if path is not None:
        torch.save(G.state_dict(), path)
        G.load_state_dict(torch.load(path))
    return losses, samples

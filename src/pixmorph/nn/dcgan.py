"""DCGAN-style networks (Radford et al. 2016) for class-conditional GANs at small square sizes.

* :class:`ConditionalGenerator`: ``[z ⊕ embedding(c)]`` -> dense to a 4x4 map -> transposed
  convolutions (4x4, stride 2) with batch norm and ReLU up to the image size -> tanh.
* :class:`DCGANTrunk`: strided 4x4 convolutions with batch norm (none on the first) and LeakyReLU(0.2)
  from the image down to a 4x4 map, flattened: the shared body of the discriminator and the encoder.
* :class:`ACDiscriminator`: trunk + a real/fake logit + class logits (ACGAN's auxiliary classifier).
* :class:`LatentEncoder`: the same trunk + a dense head to ``z``.

The width doubles at each halving of the size and is capped at ``8 * ngf`` / ``8 * ndf``. Image
sizes are powers of two from 8 up.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _levels(image_size: int) -> int:
    """Number of 2x up/downsamplings between a 4x4 map and ``image_size``."""
    levels = math.log2(image_size / 4) if image_size >= 8 else -1
    if levels < 1 or levels != int(levels):
        raise ValueError(f"image_size={image_size}: the DCGAN nets need a power of two >= 8 (8, 16, 32, 64, ...)")
    return int(levels)


def _width(base: int, level: int) -> int:
    return base * min(2**level, 8)


class ConditionalGenerator(nn.Module):
    """``G(z, c)``: N x z_dim latents and N class indices -> N x channels x size x size in [-1, 1]."""

    def __init__(self, z_dim: int = 100, num_classes: int = 10, embed_dim: int = 50, ngf: int = 64,
                 channels: int = 3, image_size: int = 32):
        super().__init__()
        levels = _levels(image_size)
        self.z_dim, self.num_classes, self.image_size = z_dim, num_classes, image_size
        self.embed = nn.Embedding(num_classes, embed_dim)
        # Unit-norm class codes at the start, like a one-hot code: at N(0, 1) per entry (PyTorch's default) the
        # class term swamps z after the batch norm and the generator collapses to one image per class.
        nn.init.normal_(self.embed.weight, 0.0, embed_dim**-0.5 if embed_dim else 1.0)
        top = _width(ngf, levels - 1)
        self.project = nn.Sequential(nn.Linear(z_dim + embed_dim, top * 16, bias=False), nn.Unflatten(1, (top, 4, 4)),
                                     nn.BatchNorm2d(top), nn.ReLU(True))
        layers: list[nn.Module] = []
        for level in range(levels - 1, 0, -1):
            c_in, c_out = _width(ngf, level), _width(ngf, level - 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        return self.body(self.project(torch.cat([z, self.embed(c).to(z.dtype)], dim=1)))


class DCGANTrunk(nn.Module):
    """N x channels x size x size -> N x features (the flattened 4x4 map)."""

    def __init__(self, channels: int = 3, ndf: int = 64, image_size: int = 32):
        super().__init__()
        levels = _levels(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for level in range(1, levels):
            c_in, c_out = _width(ndf, level - 1), _width(ndf, level)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        self.features = _width(ndf, levels - 1) * 16

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class ACDiscriminator(nn.Module):
    """``D(x) -> (real/fake logit N, class logits N x num_classes)``."""

    def __init__(self, channels: int = 3, ndf: int = 64, image_size: int = 32, num_classes: int = 10):
        super().__init__()
        self.trunk = DCGANTrunk(channels, ndf, image_size)
        self.real_fake = nn.Linear(self.trunk.features, 1)
        self.classify = nn.Linear(self.trunk.features, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.real_fake(h).squeeze(1), self.classify(h)


class LatentEncoder(nn.Module):
    """``E(x) -> z``: the discriminator's trunk with a dense head to ``z_dim``."""

    def __init__(self, channels: int = 3, ndf: int = 64, image_size: int = 32, z_dim: int = 100):
        super().__init__()
        self.trunk = DCGANTrunk(channels, ndf, image_size)
        self.head = nn.Linear(self.trunk.features, z_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))

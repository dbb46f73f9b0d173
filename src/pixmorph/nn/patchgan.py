"""The PatchGAN discriminator: with 3 layers each output sees a 70x70 patch of the input."""

from torch import Tensor, nn

from pixmorph.nn.norm import norm_layer, uses_bias


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        Norm, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias), Norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        # n_layers halvings must leave 3 px: the last normalised layer then has 2x2, the output 1x1
        self.min_size = 3 * 2**n_layers if n_layers else 4

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

"""pix2pixHD's multi-scale discriminator and its feature-matching loss.

Each scale is a PatchGAN (4x4 convolutions, padding 2, ``n_layers`` stride-2 layers then a stride-1
layer and the 1-channel output) that returns every intermediate activation, for feature matching.
Scale k sees the input average-pooled k times (3x3, stride 2). DeepSIM: 2 scales, 3 layers, ndf 64.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.nn.norm import norm_layer, uses_bias


class FeaturePatchDiscriminator(nn.Module):
    """pix2pixHD's ``NLayerDiscriminator`` with ``getIntermFeat``: forward returns the list of the
    activations of each layer, the last being the real/fake map."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        Norm, bias = norm_layer(norm), uses_bias(norm)
        pad = 2  # ceil((4 - 1) / 2)
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, pad), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for n in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(prev, nf, 4, stride, pad, bias=bias), Norm(nf),
                                        nn.LeakyReLU(0.2, True)))
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` discriminators on successively halved inputs; forward returns one feature list per scale
    (finest first)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, num_D: int = 2, norm: str = "instance"):
        super().__init__()
        self.n_layers = n_layers
        self.scales = nn.ModuleList(FeaturePatchDiscriminator(in_channels, ndf, n_layers, norm) for _ in range(num_D))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]], n_layers: int) -> Tensor:
    """pix2pixHD's discriminator feature matching: L1 between the activations (all but the output map) for
    the fake and the (detached) real input, weighted 4 / (n_layers + 1) per layer and 1 / num_D per scale."""
    layer_w, scale_w = 4.0 / (n_layers + 1), 1.0 / len(fake)
    total = fake[0][0].new_zeros((), dtype=fake[0][0].float().dtype)
    for f_scale, r_scale in zip(fake, real):
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            total = total + scale_w * layer_w * F.l1_loss(f.float(), r.detach().float())
    return total

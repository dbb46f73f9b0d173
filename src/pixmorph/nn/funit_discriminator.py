"""FUNIT's multi-task discriminator: a ResNet of pre-activation blocks with one output map per source
class; for an image of class y only map y is read (NVlabs/FUNIT ``ResDiscriminator``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.nn.pad import ReflectionPad2d


class ActFirstResBlock(nn.Module):
    """LeakyReLU -> conv 3x3 -> LeakyReLU -> conv 3x3, plus a 1x1 shortcut when the width changes.
    ``lrelu_shortcut``: an identity shortcut carries LeakyReLU(x), as NVlabs/FUNIT's code computes it (its
    first LeakyReLU is in place, so the x its shortcut adds is the activated one)."""

    def __init__(self, c_in: int, c_out: int, lrelu_shortcut: bool = False):
        super().__init__()
        hidden = min(c_in, c_out)
        self.conv0 = nn.Sequential(ReflectionPad2d(1), nn.Conv2d(c_in, hidden, 3))
        self.conv1 = nn.Sequential(ReflectionPad2d(1), nn.Conv2d(hidden, c_out, 3))
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()
        self.lrelu_shortcut = lrelu_shortcut and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        activated = F.leaky_relu(x, 0.2)
        dx = self.conv1(F.leaky_relu(self.conv0(activated), 0.2))
        return (activated if self.lrelu_shortcut else self.shortcut(x)) + dx


class MultiTaskDiscriminator(nn.Module):
    """``D(x, y) -> (score map of class y: N x h x w, features: N x F x h x w)``. ``n_blocks`` residual
    blocks (even, >= 4): pairs of blocks with a 3x3/2 average pool between pairs, widths doubling up to 1024.

    ``as_reference_code``: what NVlabs/FUNIT's code computes, whose in-place LeakyReLUs change two things
    the paper's architecture does not have: identity shortcuts add LeakyReLU(x), and the features returned
    (for feature matching) are LeakyReLU(features). Off: the pre-activation network as drawn, as NVlabs'
    later imaginaire re-implements it."""

    def __init__(self, channels: int, num_classes: int, nf: int = 64, n_blocks: int = 10,
                 as_reference_code: bool = False):
        super().__init__()
        self.as_reference_code = as_reference_code
        if n_blocks < 4 or n_blocks % 2:
            raise ValueError(f"discriminator n_blocks={n_blocks}: use an even number >= 4")
        layers: list[nn.Module] = [ReflectionPad2d(3), nn.Conv2d(channels, nf, 7)]
        for _ in range(n_blocks // 2 - 1):
            nf_out = min(2 * nf, 1024)
            layers += [ActFirstResBlock(nf, nf, as_reference_code), ActFirstResBlock(nf, nf_out, as_reference_code),
                       ReflectionPad2d(1), nn.AvgPool2d(3, 2)]
            nf = nf_out
        nf_out = min(2 * nf, 1024)
        layers += [ActFirstResBlock(nf, nf, as_reference_code), ActFirstResBlock(nf, nf_out, as_reference_code)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(nf_out, num_classes, 1)
        self.num_classes = num_classes
        # The least side it takes: the last blocks' 1-px reflection pads need 2 pixels, a 3x3/2 pool with 1 px of
        # padding gives s from 2s - 1, and the stem's 3-px reflection pad needs 4.
        side = 2
        for _ in range(n_blocks // 2 - 1):
            side = 2 * side - 1
        self.min_size = max(4, side)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        feat = self.features(x)
        activated = F.leaky_relu(feat, 0.2)
        out = self.head(activated)
        return out[torch.arange(x.shape[0], device=x.device), y], activated if self.as_reference_code else feat

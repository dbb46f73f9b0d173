"""The U-Net generator of pix2pix: ``num_downs`` stride-2 levels with skip connections."""

import torch
from torch import Tensor, nn

from pixmorph.nn.norm import norm_layer, uses_bias


class UnetLevel(nn.Module):
    """One level: down-conv, the inner levels, up-conv, then concatenation with the input (skip)."""

    def __init__(self, outer: int, inner: int, *, sub: nn.Module | None, in_channels: int | None = None,
                 outermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        Norm, bias = norm_layer(norm), uses_bias(norm)
        in_channels = outer if in_channels is None else in_channels
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        up_in = inner if sub is None else inner * 2
        self.outermost = outermost
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
        elif sub is None:  # innermost: no norm after the bottleneck conv
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), Norm(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, Norm(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), Norm(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


MIN_DOWNS = 5  # the outer levels (ngf ... 8 ngf) and the innermost


class UnetGenerator(nn.Module):
    """U-Net 256 for ``num_downs=8`` (1x1 bottleneck at 256 px); use fewer levels for small images."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, num_downs: int = 8,
                 norm: str = "batch", dropout: bool = True):
        super().__init__()
        if num_downs < MIN_DOWNS:
            raise ValueError(f"num_downs={num_downs}: the U-Net needs at least {MIN_DOWNS} levels")
        level = UnetLevel(ngf * 8, ngf * 8, sub=None, norm=norm)
        for _ in range(num_downs - 5):
            level = UnetLevel(ngf * 8, ngf * 8, sub=level, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            level = UnetLevel(ngf * mult, ngf * mult * 2, sub=level, norm=norm)
        self.model = UnetLevel(out_channels, ngf, sub=level, in_channels=in_channels, outermost=True, norm=norm)
        self.stride = 2**num_downs

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

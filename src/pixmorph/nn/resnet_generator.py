"""The ResNet generator of CycleGAN (Johnson et al. style): c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3."""

from torch import Tensor, nn

from pixmorph.nn.image_conv import ImageConv2d
from pixmorph.nn.norm import norm_layer, uses_bias
from pixmorph.nn.pad import ReflectionPad2d


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        Norm, bias = norm_layer(norm), uses_bias(norm)
        layers = [ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), Norm(channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), Norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Encoder (2 stride-2 convs), ``n_blocks`` residual blocks, decoder; tanh output in [-1, 1]."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
    ):
        super().__init__()
        Norm, bias = norm_layer(norm), uses_bias(norm)
        layers: list[nn.Module] = [
            ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), Norm(ngf), nn.ReLU(True)
        ]
        channels = ngf
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias), Norm(channels * 2), nn.ReLU(True)]
            channels *= 2
        layers += [ResidualBlock(channels, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                Norm(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [ReflectionPad2d(3), ImageConv2d(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.stride = 2**n_downsampling
        self.min_size = 2 * self.stride  # instance norm needs more than one pixel at the bottleneck

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

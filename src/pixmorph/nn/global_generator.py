"""The pix2pixHD "global" generator (Wang et al., CVPR 2018), DeepSIM's generator.

c7s1-ngf, then ``n_downsampling`` stride-2 3x3 convolutions doubling the width (64 -> 1024 with the
defaults), ``n_blocks`` residual blocks at the bottleneck, as many transposed convolutions back, and
c7s1-out with tanh; instance norm and reflection padding throughout. That is the CycleGAN ResNet
generator with four downsamplings instead of two, so it is built from :class:`ResnetGenerator`.
With the defaults it has 182 M parameters; inputs need sides that are multiples of 16 (``stride``).
"""

from __future__ import annotations

from pixmorph.nn.resnet_generator import ResnetGenerator


class GlobalGenerator(ResnetGenerator):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_downsampling: int = 4,
                 n_blocks: int = 9, norm: str = "instance"):
        super().__init__(in_channels, out_channels, ngf=ngf, n_blocks=n_blocks, n_downsampling=n_downsampling,
                         norm=norm)
        self.in_channels, self.out_channels = in_channels, out_channels

"""FUNIT's few-shot generator (Liu et al., ICCV 2019; NVlabs/FUNIT ``networks.py``).

content encoder (conv 7x7, strided 4x4 convs, residual blocks, instance norm) -> content code;
class encoder (conv 7x7, strided 4x4 convs without norm, global average pool, 1x1 conv) -> one class
code per image, averaged over the K images of the class; an MLP maps the class code to the scales and
biases of the decoder's AdaIN layers; decoder (AdaIN residual blocks, nearest upsampling + 5x5 convs
with instance norm, conv 7x7, tanh).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pixmorph.nn.image_conv import MAX_OUT_CHANNELS, ImageConv2d
from pixmorph.nn.norm import InstanceNorm2d, instance_norm
from pixmorph.nn.pad import ReflectionPad2d


class ConvBlock(nn.Module):
    """Reflection pad, conv, optional norm (``in`` / ``adain`` / ``none``), optional ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, norm: str = "none", act: bool = True):
        super().__init__()
        self.pad = ReflectionPad2d((k - stride + 1) // 2)  # 7x7/1: 3, 4x4/2: 1 (FUNIT's paddings)
        self.conv = (ImageConv2d if c_out <= MAX_OUT_CHANNELS else nn.Conv2d)(c_in, c_out, k, stride)  # the image layer
        self.norm = {"in": InstanceNorm2d(c_out), "adain": AdaIN(c_out), "none": nn.Identity()}[norm]
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class AdaIN(nn.Module):
    """Instance norm whose per-channel scale and bias are set from outside (by :class:`FewShotGenerator`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.weight: Tensor | None = None  # N x C, assigned before each forward
        self.bias: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaIN parameters not set: call the generator, not the decoder alone")
        x = instance_norm(x, eps=1e-5)
        return x * self.weight[:, :, None, None] + self.bias[:, :, None, None]


class ResBlock(nn.Module):
    def __init__(self, dim: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(dim, dim, 3, norm=norm), ConvBlock(dim, dim, 3, norm=norm, act=False))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ContentEncoder(nn.Sequential):
    def __init__(self, channels: int, nf: int, n_down: int, n_res: int):
        layers = [ConvBlock(channels, nf, 7, norm="in")]
        for _ in range(n_down):
            layers.append(ConvBlock(nf, 2 * nf, 4, 2, norm="in"))
            nf *= 2
        layers += [ResBlock(nf, "in") for _ in range(n_res)]
        super().__init__(*layers)
        self.out_channels = nf


class ClassEncoder(nn.Module):
    """One ``latent_dim`` code per image; widths double for the first two downsamplings, as in FUNIT."""

    def __init__(self, channels: int, nf: int, n_down: int, latent_dim: int):
        super().__init__()
        layers = [ConvBlock(channels, nf, 7)]
        for i in range(n_down):
            nf_out = 2 * nf if i < 2 else nf
            layers.append(ConvBlock(nf, nf_out, 4, 2))
            nf = nf_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(nf, latent_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3), keepdim=True)).flatten(1)


class Decoder(nn.Module):
    def __init__(self, channels: int, nf: int, n_up: int, n_res: int):
        super().__init__()
        layers: list[nn.Module] = [ResBlock(nf, "adain") for _ in range(n_res)]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock(nf, nf // 2, 5, norm="in")]
            nf //= 2
        layers += [ConvBlock(nf, channels, 7, act=False), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def adain_layers(self) -> list[AdaIN]:
        return [m for m in self.modules() if isinstance(m, AdaIN)]

    def forward(self, content: Tensor) -> Tensor:
        return self.layers(content)


def mlp(c_in: int, width: int, c_out: int, n_blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(c_in, width), nn.ReLU(inplace=True)]
    for _ in range(n_blocks - 2):
        layers += [nn.Linear(width, width), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(width, c_out))


class FewShotGenerator(nn.Module):
    """``G(content, class_images)``: content N x C x H x W; class images N x K x C x H x W (or N x C x H x W
    for K = 1); the class code is the mean of the K per-image codes, so their order does not matter."""

    def __init__(self, channels: int = 3, nf: int = 64, nf_mlp: int = 256, latent_dim: int = 64, n_res: int = 2,
                 n_mlp_blocks: int = 3, n_down_content: int = 3, n_down_class: int = 4):
        super().__init__()
        self.content_encoder = ContentEncoder(channels, nf, n_down_content, n_res)
        self.class_encoder = ClassEncoder(channels, nf, n_down_class, latent_dim)
        self.decoder = Decoder(channels, self.content_encoder.out_channels, n_down_content, n_res)
        n_params = sum(2 * a.channels for a in self.decoder.adain_layers())
        self.mlp = mlp(latent_dim, nf_mlp, n_params, n_mlp_blocks)
        self.stride = 2 ** max(n_down_content, 1)
        # The least side both encoders take: their 7x7 reflection pads need 4 pixels, each 4x4/2 conv of the
        # class encoder 2 at its input, and the content code 2 (its residual blocks pad by 1).
        self.min_size = max(4, 2**n_down_class, 2 ** (n_down_content + 1))

    def class_code(self, class_images: Tensor) -> Tensor:
        if class_images.dim() == 4:
            class_images = class_images.unsqueeze(1)
        n, k = class_images.shape[:2]
        codes = self.class_encoder(class_images.flatten(0, 1))
        return codes.view(n, k, -1).mean(dim=1)

    def decode(self, content_code: Tensor, class_code: Tensor) -> Tensor:
        params = self.mlp(class_code)
        for layer in self.decoder.adain_layers():
            c = layer.channels
            # FUNIT's order: mean (bias) first, then std (scale)
            layer.bias, layer.weight = params[:, :c], params[:, c : 2 * c]
            params = params[:, 2 * c :]
        return self.decoder(content_code)

    def forward(self, content: Tensor, class_images: Tensor) -> Tensor:
        return self.decode(self.content_encoder(content), self.class_code(class_images))


def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * model`` for parameters; buffers are copied."""
    with torch.no_grad():
        for p_ema, p in zip(ema.parameters(), model.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)

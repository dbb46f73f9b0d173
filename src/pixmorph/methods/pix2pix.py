"""pix2pix (Isola et al., CVPR 2017): a U-Net generator and a conditional PatchGAN trained on
aligned pairs with a GAN loss plus L1 to the ground truth. The paired reference."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.methods.base import Method, MethodConfig, Update, register, set_requires_grad
from pixmorph.nn.gan_loss import gan_loss
from pixmorph.nn.init import init_normal
from pixmorph.nn.patchgan import PatchDiscriminator
from pixmorph.nn.unet_generator import MIN_DOWNS, UnetGenerator


@dataclass
class Pix2PixConfig(MethodConfig):
    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    ndf: int = 64
    num_downs: int = 8  # U-Net 256
    d_layers: int = 3
    norm: str = "batch"
    dropout: bool = True
    gan_mode: str = "vanilla"
    lambda_L1: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    init_gain: float = 0.02


@register
class Pix2Pix(Method):
    name = "pix2pix"
    Config = Pix2PixConfig
    data_layout = "paired"
    default_task = {"data": {"root": "fashion-edges-paired"}, "model": {"num_downs": 5}}  # 32 px: 5 halvings

    def __init__(self, cfg: Pix2PixConfig):
        super().__init__(cfg)
        self.nets["G"] = UnetGenerator(cfg.in_channels, cfg.out_channels, cfg.ngf, cfg.num_downs, cfg.norm, cfg.dropout)
        # Conditional discriminator: sees the input and the output side by side in channels.
        self.nets["D"] = PatchDiscriminator(cfg.in_channels + cfg.out_channels, cfg.ndf, cfg.d_layers, cfg.norm)
        for net in self.nets.values():
            init_normal(net, cfg.init_gain)
        betas = (cfg.beta1, 0.999)
        self.optimizers = {"G": torch.optim.Adam(self.nets["G"].parameters(), cfg.lr, betas),
                           "D": torch.optim.Adam(self.nets["D"].parameters(), cfg.lr, betas)}

    def train_step(self, batch: dict[str, Tensor], update: Update) -> dict[str, Tensor]:
        cfg, G, D = self.cfg, self.nets["G"], self.nets["D"]
        real_A, real_B = batch["A"], batch["B"]
        self.check_training_size(real_A.shape[-1], real_A.shape[-2])
        fake_B = G(real_A)

        set_requires_grad(D, True)
        loss_D_fake = gan_loss(D(torch.cat([real_A, fake_B.detach()], 1)), False, cfg.gan_mode)
        loss_D_real = gan_loss(D(torch.cat([real_A, real_B], 1)), True, cfg.gan_mode)
        update(0.5 * (loss_D_fake + loss_D_real), "D")

        set_requires_grad(D, False)
        loss_G_GAN = gan_loss(D(torch.cat([real_A, fake_B], 1)), True, cfg.gan_mode, for_discriminator=False)
        loss_G_L1 = F.l1_loss(fake_B, real_B) * cfg.lambda_L1
        update(loss_G_GAN + loss_G_L1, "G")
        set_requires_grad(D, True)
        losses = {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1, "D_real": loss_D_real, "D_fake": loss_D_fake}
        return {k: v.detach() for k, v in losses.items()}

    def check_training_size(self, width: int, height: int) -> None:
        """Below the U-Net's stride: the settings that fit, a depth and a side that is a multiple of its stride."""
        stride, side = self.nets["G"].stride, min(width, height)
        if side >= stride:
            return
        depth = max(MIN_DOWNS, side.bit_length() - 1)
        crop = max(1, side // 2**depth) * 2**depth  # within the images
        raise ValueError(f"pix2pix: {width}x{height} training images are smaller than the U-Net's "
                         f"{self.cfg.num_downs} halvings need ({stride} px): train at --crop-size {stride} or more "
                         f"(a multiple of {stride}), or, starting a new run (a resumed one keeps its network), set "
                         f"model.num_downs={depth} and a crop size that is a multiple of {2**depth} (--crop-size {crop})")

    @torch.no_grad()
    def visuals(self, batch: dict[str, Tensor]) -> list[list[Tensor]]:
        real_A, real_B = batch["A"][:1], batch["B"][:1]
        return [[real_A[0], self.nets["G"](real_A)[0], real_B[0]]]

    def visual_columns(self) -> str:
        return "input | output | ground truth (A | B files: the halves data.options.direction takes)"

    def translators(self) -> dict[str, nn.Module]:
        return {"AtoB": self.nets["G"]}

"""CycleGAN (Zhu et al., ICCV 2017): G_A: A->B and G_B: B->A trained with adversarial,
cycle-consistency and identity losses against two PatchGAN discriminators."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.methods.base import Method, MethodConfig, Update, register, set_requires_grad
from pixmorph.nn.gan_loss import gan_loss
from pixmorph.nn.init import init_normal
from pixmorph.nn.patchgan import PatchDiscriminator
from pixmorph.nn.resnet_generator import ResnetGenerator
from pixmorph.train.image_pool import ImagePool


@dataclass
class CycleGANConfig(MethodConfig):
    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9  # 6 for 128 px
    n_downsampling: int = 2
    d_layers: int = 3  # 70x70 PatchGAN
    norm: str = "instance"
    dropout: float = 0.0
    gan_mode: str = "lsgan"
    lambda_A: float = 10.0  # cycle A -> B -> A
    lambda_B: float = 10.0  # cycle B -> A -> B
    lambda_identity: float = 0.5  # times lambda_A / lambda_B
    lr: float = 2e-4
    beta1: float = 0.5
    pool_size: int = 50
    init_gain: float = 0.02

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lambda_identity > 0 and self.in_channels != self.out_channels:
            raise ValueError(f"model.lambda_identity={self.lambda_identity} needs as many input as output channels "
                             f"(model.in_channels={self.in_channels}, model.out_channels={self.out_channels}): "
                             f"set model.lambda_identity=0")


@register
class CycleGAN(Method):
    name = "cyclegan"
    Config = CycleGANConfig
    data_layout = "unpaired"

    def __init__(self, cfg: CycleGANConfig):
        super().__init__(cfg)
        gen = dict(ngf=cfg.ngf, n_blocks=cfg.n_blocks, n_downsampling=cfg.n_downsampling, norm=cfg.norm,
                   dropout=cfg.dropout)
        self.nets["G_A"] = ResnetGenerator(cfg.in_channels, cfg.out_channels, **gen)
        self.nets["G_B"] = ResnetGenerator(cfg.out_channels, cfg.in_channels, **gen)
        self.nets["D_A"] = PatchDiscriminator(cfg.out_channels, cfg.ndf, cfg.d_layers, cfg.norm)  # judges B-side
        self.nets["D_B"] = PatchDiscriminator(cfg.in_channels, cfg.ndf, cfg.d_layers, cfg.norm)  # judges A-side
        for net in self.nets.values():
            init_normal(net, cfg.init_gain)
        betas = (cfg.beta1, 0.999)
        g_params = [*self.nets["G_A"].parameters(), *self.nets["G_B"].parameters()]
        d_params = [*self.nets["D_A"].parameters(), *self.nets["D_B"].parameters()]
        self.optimizers = {"G": torch.optim.Adam(g_params, cfg.lr, betas), "D": torch.optim.Adam(d_params, cfg.lr, betas)}
        self.pool_A = ImagePool(cfg.pool_size)  # generated A images (fake_A)
        self.pool_B = ImagePool(cfg.pool_size)

    def train_step(self, batch: dict[str, Tensor], update: Update) -> dict[str, Tensor]:
        cfg, n = self.cfg, self.nets
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = n["G_A"](real_A), n["G_B"](real_B)
        rec_A, rec_B = n["G_B"](fake_B), n["G_A"](fake_A)

        # Generators: fool both discriminators, close both cycles, keep colours (identity).
        set_requires_grad(n["D_A"], False)
        set_requires_grad(n["D_B"], False)
        loss_G_A = gan_loss(n["D_A"](fake_B), True, cfg.gan_mode, for_discriminator=False)
        loss_G_B = gan_loss(n["D_B"](fake_A), True, cfg.gan_mode, for_discriminator=False)
        loss_cycle_A = F.l1_loss(rec_A, real_A) * cfg.lambda_A
        loss_cycle_B = F.l1_loss(rec_B, real_B) * cfg.lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B
        losses = {"G_A": loss_G_A, "G_B": loss_G_B, "cycle_A": loss_cycle_A, "cycle_B": loss_cycle_B}
        if cfg.lambda_identity > 0:
            loss_idt_A = F.l1_loss(n["G_A"](real_B), real_B) * cfg.lambda_B * cfg.lambda_identity
            loss_idt_B = F.l1_loss(n["G_B"](real_A), real_A) * cfg.lambda_A * cfg.lambda_identity
            loss_G = loss_G + loss_idt_A + loss_idt_B
            losses.update(idt_A=loss_idt_A, idt_B=loss_idt_B)
        update(loss_G, "G")

        # Discriminators: real vs. a history of fakes.
        set_requires_grad(n["D_A"], True)
        set_requires_grad(n["D_B"], True)
        loss_D_A = self._discriminator_loss(n["D_A"], real_B, self.pool_B.query(fake_B))
        loss_D_B = self._discriminator_loss(n["D_B"], real_A, self.pool_A.query(fake_A))
        update(loss_D_A + loss_D_B, "D")
        losses.update(D_A=loss_D_A, D_B=loss_D_B)
        return {k: v.detach() for k, v in losses.items()}

    def _discriminator_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        mode = self.cfg.gan_mode
        return 0.5 * (gan_loss(D(real), True, mode) + gan_loss(D(fake.detach()), False, mode))

    @torch.no_grad()
    def visuals(self, batch: dict[str, Tensor]) -> list[list[Tensor]]:
        n = self.nets
        real_A, real_B = batch["A"][:1], batch["B"][:1]
        fake_B, fake_A = n["G_A"](real_A), n["G_B"](real_B)
        return [[real_A[0], fake_B[0], n["G_B"](fake_B)[0]], [real_B[0], fake_A[0], n["G_A"](fake_A)[0]]]

    def visual_columns(self) -> str:
        return "real | translated | translated back (rows in pairs: A to B to A, then B to A to B)"

    def translators(self) -> dict[str, nn.Module]:
        return {"AtoB": self.nets["G_A"], "BtoA": self.nets["G_B"]}

    def extra_state(self) -> dict:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_A.load_state_dict(state["pool_A"])
        self.pool_B.load_state_dict(state["pool_B"])

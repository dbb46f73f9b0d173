"""FUNIT: few-shot unsupervised image-to-image translation (Liu et al., ICCV 2019).

Trains on source classes only. Each step takes a content image x_a (class a) and a class image x_b
(class b): the translation ``G(x_a, x_b)`` must fool the multi-task discriminator's map of class b,
the reconstruction ``G(x_a, x_a)`` must equal x_a (L1) and fool map a, and the discriminator's pooled
features of translation/reconstruction must match those of x_b/x_a (feature matching). The
discriminator: hinge loss and the R1 gradient penalty on real images. RMSprop for both.

At test time the class code is the mean over K images of a class never seen in training. Translation
uses ``G_ema``, an exponential moving average of G kept by the method (saved with the weights).
Defaults are the paper's animal-faces config (128 px); CPU runs set small widths via ``--set model.*``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.methods.base import Method, MethodConfig, Update, register, set_requires_grad
from pixmorph.nn.funit_discriminator import MultiTaskDiscriminator
from pixmorph.nn.funit_generator import FewShotGenerator, update_ema


@dataclass
class FunitConfig(MethodConfig):
    channels: int = 3  # 1 for grayscale data (data.channels=1; the glyphs task)
    nf: int = 64  # generator width
    nf_mlp: int = 256
    latent_dim: int = 64  # class code
    n_res_blocks: int = 2  # content encoder and decoder
    n_mlp_blocks: int = 3
    n_down_content: int = 3
    n_down_class: int = 4
    nf_dis: int = 64
    n_res_blocks_dis: int = 10
    # The discriminator as NVlabs/FUNIT's code computes it (its in-place LeakyReLUs: identity shortcuts and the
    # features for feature matching pass a LeakyReLU; nn/funit_discriminator.py); off: as the paper draws it.
    dis_as_reference_code: bool = False
    num_classes: int = 119  # discriminator outputs; at least the number of source classes (Animal Faces: 119)
    gan_w: float = 1.0
    fm_w: float = 1.0  # feature matching
    r_w: float = 0.1  # reconstruction
    gp_w: float = 10.0  # R1 gradient penalty on real images
    lr_gen: float = 1e-4
    lr_dis: float = 1e-4
    weight_decay: float = 1e-4
    ema_beta: float = 0.999
    # EMA warm-up: the decay is min(ema_beta, (1 + t) / (10 + t)) at step t, so short runs are not
    # dominated by the random initial weights (identical to the paper's after a few thousand steps).
    ema_warmup: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channels not in (1, 3):
            raise ValueError(f"model.channels={self.channels}: use 3 (RGB) or 1 (grayscale)")
        if self.n_res_blocks_dis < 4 or self.n_res_blocks_dis % 2:  # (the discriminator's own check names no option)
            raise ValueError(f"model.n_res_blocks_dis={self.n_res_blocks_dis}: use an even number, 4 or more")
        if self.num_classes < 1:
            raise ValueError(f"model.num_classes={self.num_classes}: need at least 1 discriminator output")


# The built-in glyphs task (32-px gray characters; fonts are classes) sized to its images and to minutes on a CPU:
# the paper's widths and 10-block discriminator are for 128-px animal faces (86 s a step on 2 busy CPU cores, 1-2 s
# here). For a budget of thousands of steps, not 100k: a 10x learning rate, reconstruction weight 1 (paper 0.1) and
# two downsamplings in the content encoder (paper 3), so content survives early. The README's glyph figures use it.
GLYPHS_MODEL = dict(channels=1, nf=16, nf_mlp=64, latent_dim=32, n_res_blocks=1, n_mlp_blocks=3, n_down_content=2,
                    n_down_class=3, nf_dis=16, n_res_blocks_dis=4, lr_gen=1e-3, lr_dis=1e-3, r_w=1.0)


@register
class Funit(Method):
    name = "funit"
    Config = FunitConfig
    data_layout = "fewshot"
    default_task = {"data": {"root": "glyphs", "channels": 1}, "model": GLYPHS_MODEL,
                    "train": {"batch_size": 16, "max_steps": 3300}}
    # The animal-faces config: batch 64, a constant learning rate, 100k iterations, 128 px crops from 140 px.
    train_defaults = {"batch_size": 64, "lr_policy": "constant", "epochs": 1e6, "epochs_decay": 0, "max_steps": 100_000}
    reference_sizes = (140, 128)

    def __init__(self, cfg: FunitConfig):
        super().__init__(cfg)
        G = FewShotGenerator(cfg.channels, cfg.nf, cfg.nf_mlp, cfg.latent_dim, cfg.n_res_blocks, cfg.n_mlp_blocks,
                             cfg.n_down_content, cfg.n_down_class)
        D = MultiTaskDiscriminator(cfg.channels, cfg.num_classes, cfg.nf_dis, cfg.n_res_blocks_dis,
                                   cfg.dis_as_reference_code)
        for net in (G, D):
            net.apply(_init_kaiming)
        self.nets["G"], self.nets["D"] = G, D
        self.nets["G_ema"] = copy.deepcopy(G).requires_grad_(False)
        self.optimizers = {
            "G": torch.optim.RMSprop(G.parameters(), cfg.lr_gen, weight_decay=cfg.weight_decay),
            "D": torch.optim.RMSprop(D.parameters(), cfg.lr_dis, weight_decay=cfg.weight_decay),
        }
        self.step = 0

    def train_step(self, batch: dict[str, Tensor], update: Update) -> dict[str, Tensor]:
        cfg, G, D = self.cfg, self.nets["G"], self.nets["D"]
        xa, la, xb, lb = batch["content"], batch["content_label"].long(), batch["class"], batch["class_label"].long()
        self._check_batch(xa, torch.cat([la, lb]))

        # Discriminator: hinge on real x_b and on the translation, R1 penalty on the real images.
        set_requires_grad(D, True)
        xb_real = xb.detach().requires_grad_(True)
        # D.forward, not D(...): R1 differentiates this pass twice, which a compiled D cannot (torch.compile's
        # AOTAutograd has no double backward); forward runs eagerly even where the loop compiled D in place.
        resp_real, _ = D.forward(xb_real, lb)
        loss_real = F.relu(1.0 - resp_real).mean()
        grad = update.grad(resp_real.float().mean(), xb_real, "D")  # (loss-scaled in fp16: no underflow)
        loss_gp = grad.float().pow(2).sum() / xb.shape[0]
        with torch.no_grad():
            xt = G(xa, xb)
        resp_fake, _ = D(xt.detach(), lb)
        loss_fake = F.relu(1.0 + resp_fake).mean()
        update(cfg.gan_w * (loss_real + loss_fake) + cfg.gp_w * loss_gp, "D")

        # Generator: translation and reconstruction fool D; reconstruction and feature matching.
        set_requires_grad(D, False)
        content = G.content_encoder(xa)
        codes = G.class_code(torch.cat([xa, xb]))
        code_a, code_b = codes.chunk(2)
        xt, xr = G.decode(content, code_b), G.decode(content, code_a)
        resp_t, feat_t = D(xt, lb)
        resp_r, feat_r = D(xr, la)
        with torch.no_grad():
            _, feat_b = D(xb, lb)
            _, feat_a = D(xa, la)
        loss_adv = -0.5 * (resp_t.mean() + resp_r.mean())
        loss_fm = F.l1_loss(feat_r.mean((2, 3)), feat_a.mean((2, 3))) + F.l1_loss(feat_t.mean((2, 3)), feat_b.mean((2, 3)))
        loss_rec = F.l1_loss(xr, xa)
        update(cfg.gan_w * loss_adv + cfg.r_w * loss_rec + cfg.fm_w * loss_fm, "G")
        set_requires_grad(D, True)

        beta = min(cfg.ema_beta, (1 + self.step) / (10 + self.step)) if cfg.ema_warmup else cfg.ema_beta
        update_ema(self.nets["G_ema"], G, beta)
        self.step += 1
        losses = {"D_real": loss_real, "D_fake": loss_fake, "D_gp": loss_gp, "G_adv": loss_adv, "G_fm": loss_fm,
                  "G_rec": loss_rec}
        return {k: v.detach() for k, v in losses.items()}

    def step_modules(self) -> list[nn.Module]:
        # The G step calls G's parts (one content code decoded twice), not G; G_ema only draws sample grids.
        G = self.nets["G"]
        return [G.content_encoder, G.class_encoder, G.mlp, G.decoder, self.nets["D"]]

    def check_training_size(self, width: int, height: int) -> None:
        """The discriminator pools n_res_blocks_dis / 2 - 1 times (17 px at the least for the paper's 10 blocks), and a
        crop below the generator's stride escapes the loop's check: both failed at the first step inside a network."""
        G, D = self.nets["G"], self.nets["D"]
        need = max(G.min_size, D.min_size)
        side, blocks = min(width, height), self.cfg.n_res_blocks_dis
        if side < need:
            fits = -(-need // G.stride) * G.stride
            raise ValueError(f"data.crop_size={side}: the funit networks (the {blocks}-block discriminator: "
                             f"{D.min_size} px, the generator: {G.min_size}) take sides that are multiples of "
                             f"{G.stride} and at least {need}: use --crop-size {fits}")

    def check_start(self, dataset: Any, data_root: Path) -> None:
        """One discriminator output per source class: fewer failed at the first step, inside the discriminator."""
        found = len(dataset.classes)
        if found > self.cfg.num_classes:
            raise ValueError(f"model.num_classes={self.cfg.num_classes}: {data_root} has {found} source classes, one "
                             f"discriminator output each: set model.num_classes to at least {found}")

    def _check_batch(self, x: Tensor, labels: Tensor) -> None:
        if x.shape[1] != self.cfg.channels:
            raise ValueError(f"funit: the data gives {x.shape[1]}-channel images, the model is built for "
                             f"{self.cfg.channels}: set model.channels = data.channels")
        if int(labels.max()) >= self.cfg.num_classes:
            raise ValueError(f"funit: the data has more source classes than the discriminator's "
                             f"{self.cfg.num_classes} outputs: set model.num_classes to at least {int(labels.max()) + 1}")

    @torch.no_grad()
    def translate(self, content: Tensor, class_images: Tensor) -> Tensor:
        """Few-shot translation with the EMA generator: content N x C x H x W, class images N x K x C x h x w."""
        return self.nets["G_ema"](content, class_images)

    @torch.no_grad()
    def visuals(self, batch: dict[str, Tensor]) -> list[list[Tensor]]:
        """content, class image, translation (EMA generator), reconstruction (EMA generator)."""
        xa, xb = batch["content"][:1], batch["class"][:1]
        G = self.nets["G_ema"]
        return [[xa[0], xb[0], G(xa, xb)[0], G(xa, xa)[0]]]

    def visual_columns(self) -> str:
        return "content | class image | translation | reconstruction (the averaged generator)"

    def translators(self) -> dict[str, nn.Module]:
        # Few-shot translation needs class images (pixmorph fewshot); `translate` can only reconstruct.
        return {"reconstruct": Reconstructor(self.nets["G_ema"])}

    def extra_state(self) -> dict:
        return {"step": self.step}

    def load_extra_state(self, state: dict) -> None:
        self.step = int(state["step"])


class Reconstructor(nn.Module):
    """``x -> G(x, x)``: the image with its own class code (what ``pixmorph translate`` and export get)."""

    def __init__(self, generator: FewShotGenerator):
        super().__init__()
        self.generator = generator
        self.stride, self.min_size = generator.stride, generator.min_size

    def forward(self, x: Tensor) -> Tensor:
        return self.generator(x, x)


def _init_kaiming(m: nn.Module) -> None:
    """FUNIT's 'kaiming' init: normal, fan-in, zero biases."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        if m.bias is not None:
            nn.init.zeros_(m.bias)

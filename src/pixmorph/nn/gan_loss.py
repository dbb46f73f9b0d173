"""Adversarial losses: LSGAN (CycleGAN), vanilla/BCE (pix2pix) and hinge (FUNIT)."""

import torch
import torch.nn.functional as F
from torch import Tensor

GAN_MODES = ("lsgan", "vanilla", "hinge")


def gan_loss(prediction: Tensor, target_is_real: bool, mode: str = "lsgan", for_discriminator: bool = True) -> Tensor:
    """Loss of a discriminator output map against "real" or "fake"."""
    if mode == "lsgan":
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return F.mse_loss(prediction.float(), target.float())
    if mode == "vanilla":
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return F.binary_cross_entropy_with_logits(prediction.float(), target.float())
    if mode == "hinge":
        prediction = prediction.float()
        if not for_discriminator:  # the generator maximises the critic's score
            return -prediction.mean()
        return F.relu(1 - prediction).mean() if target_is_real else F.relu(1 + prediction).mean()
    raise ValueError(f"unknown GAN loss {mode!r}: use lsgan, vanilla or hinge")

"""Learning-rate schedules, per step."""

from __future__ import annotations

import torch


def lr_lambda(policy: str, constant_steps: int, decay_steps: int):
    """``linear``: constant for ``constant_steps`` then linear to 0 over ``decay_steps`` (CycleGAN);
    ``constant``: never changes."""
    if policy == "constant":
        return lambda step: 1.0
    if policy == "linear":
        return lambda step: 1.0 - max(0, step - constant_steps) / float(decay_steps + 1)
    raise ValueError(f"unknown lr_policy {policy!r}: use linear or constant")


def build_schedulers(optimizers: dict[str, torch.optim.Optimizer], policy: str, constant_steps: int,
                     decay_steps: int) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    fn = lr_lambda(policy, constant_steps, decay_steps)
    return {name: torch.optim.lr_scheduler.LambdaLR(opt, fn) for name, opt in optimizers.items()}

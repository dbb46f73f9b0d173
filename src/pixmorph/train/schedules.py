"""Learning-rate schedules, per step."""

from __future__ import annotations

from collections.abc import Callable

import torch


def lr_lambda(policy: str, constant_steps: int, decay_steps: int):
    """``linear``: constant for ``constant_steps`` then linear to 0 over ``decay_steps`` (CycleGAN);
    ``constant``: never changes."""
    if policy == "constant":
        return lambda step: 1.0
    if policy == "linear":
        return lambda step: 1.0 - max(0, step - constant_steps) / float(decay_steps + 1)
    raise ValueError(f"unknown lr_policy {policy!r}: use linear or constant")


def schedule_position(step: int, step0: int, images0: int, batch: int, unit: int) -> float:
    """Where ``step`` is in a schedule counted in steps of ``unit`` images, for a run that was at ``step0``
    after ``images0`` images and trains ``batch`` images a step from there (``step`` itself when the batch
    never changed)."""
    return (images0 + (step - step0) * batch) / unit


def build_schedulers(optimizers: dict[str, torch.optim.Optimizer], policy: str, constant_steps: int,
                     decay_steps: int, position: Callable[[int], float] | None = None
                     ) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One LambdaLR per optimizer; ``position`` maps the loop's step to the schedule's (a run resumed with
    another global batch)."""
    fn = lr_lambda(policy, constant_steps, decay_steps)
    schedule = fn if position is None else (lambda step: fn(position(step)))
    return {name: torch.optim.lr_scheduler.LambdaLR(opt, schedule) for name, opt in optimizers.items()}

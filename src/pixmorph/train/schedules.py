"""Learning-rate schedules, per step."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Plan:
    """A run's schedule in steps: ``constant`` then ``decay`` steps of ``unit`` images (the run's first global
    batch), ``steps_per_epoch`` of them an epoch; at the current global batch it ends at ``end``, and this
    invocation stops at ``last_step`` (``end``, or max_steps before it)."""
    unit: int
    steps_per_epoch: int
    constant: int
    decay: int
    end: int
    last_step: int


def plan(images: int, epochs: float, epochs_decay: float, max_steps: int | None, step: int, images_seen: int,
         global_batch: int, unit: int) -> Plan:
    """The schedule of a run over ``images`` training images, counted in steps of ``unit`` images (the first
    global batch: a run resumed with more or fewer processes goes on from the image it reached, so the images
    trained on and the learning-rate curve stay the same), at ``step`` after ``images_seen`` images."""
    steps_per_epoch = max(1, images // unit)
    constant, decay = round(epochs * steps_per_epoch), round(epochs_decay * steps_per_epoch)
    end = step + math.ceil(max(0, (constant + decay) * unit - images_seen) / global_batch)
    last_step = end if max_steps is None else min(end, max_steps)
    return Plan(unit, steps_per_epoch, constant, decay, end, last_step)

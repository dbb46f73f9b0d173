"""Normalisation layers by name, as the reference configs spell them."""

from functools import partial

from torch import nn


def norm_layer(name: str):
    """Return a constructor ``f(channels) -> nn.Module`` for ``instance``, ``batch`` or ``none``."""
    if name == "instance":
        # The CycleGAN reference uses affine-free instance norm without running stats.
        return partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "batch":
        return partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {name!r}: use instance, batch or none")


def uses_bias(name: str) -> bool:
    """Convolutions before a norm with its own shift need no bias (batch norm has one)."""
    return name != "batch"

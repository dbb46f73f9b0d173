"""Checks of the speed benches' options, shared by train_speed.py and translate_speed.py: a mistake ends in one
usage line naming the option (argparse's ``error``), not in a traceback or a silently different run."""

from __future__ import annotations

import argparse

import pixmorph  # noqa: F401  (before torch: it sets a short OpenMP spin, see pixmorph/__init__.py)
import torch

from pixmorph.train.loop import resolve_device


def device_or_error(p: argparse.ArgumentParser, name: str) -> torch.device:
    """``--device`` resolved, or a usage error when it is not here (``--device cuda`` without CUDA)."""
    try:
        return resolve_device(name)
    except ValueError as err:
        p.error(str(err))


def positive_ints(p: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    """A comma-separated list of whole numbers >= 1 (``--batch-sizes 1,4``), or a usage error naming ``option``."""
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        p.error(f"{option} {text!r}: give whole numbers separated by commas, e.g. 1,4")
    if min(values) < 1:
        p.error(f"{option} {text!r}: every value must be at least 1")
    return values


def size_problem(nets: torch.nn.ModuleDict, size: int) -> str | None:
    """Why square images of side ``size`` cannot pass through ``nets`` (a multiple of each generator's stride, at
    least each network's minimum size), or ``None`` when they can."""
    stride = max(getattr(net, "stride", 1) for net in nets.values())
    min_size = max(getattr(net, "min_size", 1) for net in nets.values())
    smallest = -(-min_size // stride) * stride
    if size < smallest or size % stride:
        return f"must be a multiple of {stride} and at least {smallest} for these networks"
    return None

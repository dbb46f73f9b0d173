"""``pixmorph train ... --devices N``: start torchrun on this machine for the user.

The command line is given again to ``torch.distributed.run --standalone --nproc_per_node N`` without
``--devices``; each of the N processes then trains as under a torchrun the user started (see
:mod:`pixmorph.train.distributed`). Several machines need torchrun itself (README: several GPUs or machines).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

import torch


def without_devices(argv: Sequence[str]) -> list[str]:
    """``argv`` less ``--devices N`` / ``--devices=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            out.append(arg)
    return out


def torchrun_command(devices: int, argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
            "-m", "pixmorph", *without_devices(argv)]


def check_devices(devices: int, device: str | None) -> None:
    """N processes need N GPUs, unless they train on the CPU."""
    on_cpu = device == "cpu" or (device in (None, "auto") and not torch.cuda.is_available())
    if not on_cpu and devices > torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: this machine has {torch.cuda.device_count()} GPU(s)"
                         + ("" if device == "cpu" else "; for CPU processes add --device cpu"))


def relaunch(devices: int, argv: Sequence[str], device: str | None) -> int:
    """Run the command under torchrun with ``devices`` processes; returns its exit code."""
    check_devices(devices, device)
    if not argv or argv[0] != "train":
        raise ValueError("--devices starts torchrun from the `pixmorph train` command line; from Python, "
                         "start your script with torchrun instead")
    process = subprocess.Popen(torchrun_command(devices, argv), env={**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [*sys.path, os.environ.get("PYTHONPATH", "")] if p)})
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:  # the processes got the Ctrl-C too: they save, then stop; wait for them
            continue

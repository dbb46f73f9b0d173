"""``pixmorph train ... --devices N``: start torchrun on this machine for the user.

The command line is given again to ``torch.distributed.run --standalone --nproc_per_node N`` without
``--devices``; each of the N processes then trains as under a torchrun the user started (see
:mod:`pixmorph.train.distributed`). Several machines need torchrun itself (README: several GPUs or machines).
"""

from __future__ import annotations

import logging
import os
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


def torchrun_arguments(devices: int, argv: Sequence[str]) -> list[str]:
    """What ``torchrun`` would be given: one machine, ``devices`` processes, this command less --devices."""
    return ["--standalone", f"--nproc_per_node={devices}", "-m", "pixmorph", *without_devices(argv)]


def check_devices(devices: int, device: str | None) -> None:
    """N processes need N GPUs, unless they train on the CPU."""
    on_cpu = device == "cpu" or (device in (None, "auto") and not torch.cuda.is_available())
    if not on_cpu and devices > torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: this machine has {torch.cuda.device_count()} GPU(s)"
                         + ("" if device == "cpu" else "; for CPU processes add --device cpu"))


def silence_launcher_logs() -> None:
    """Leave out torch's launcher logs (a Ctrl-C's "Received 2 death signal" line, a failure's report): the
    processes say what happened. torch's elastic modules set their own loggers' level, so the parent's is not
    enough: each one already made is set too."""
    import torch.distributed.run  # noqa: F401  (makes the launcher's loggers)

    names = ["torch.distributed", *(name for name in logging.root.manager.loggerDict
                                    if name.startswith("torch.distributed."))]
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def relaunch(devices: int, argv: Sequence[str], device: str | None) -> int:
    """Run the command under torch's launcher (what torchrun runs) with ``devices`` processes; returns the
    exit code. The processes print their own errors (rank 0 only); the launcher's report of a failed
    process is left out, as its summary would bury that one line."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import parse_args, run

    check_devices(devices, device)
    if not argv or argv[0] != "train":
        raise ValueError("--devices starts torchrun from the `pixmorph train` command line; from Python, "
                         "start your script with torchrun instead")
    if device in (None, "auto") and not torch.cuda.is_available():
        print(f"no GPU here: starting {devices} CPU processes")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [*sys.path, os.environ.get("PYTHONPATH", "")] if p)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
    silence_launcher_logs()
    try:
        run(parse_args(torchrun_arguments(devices, argv)))
        return 0
    except ChildFailedError as failed:
        return next((f.exitcode for f in failed.failures.values() if f.exitcode), 1)
    except SignalException:  # Ctrl-C: the processes got it too, saved and stopped
        return 130

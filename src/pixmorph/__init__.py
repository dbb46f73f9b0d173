"""pixmorph: image-to-image translation with one CLI, one API and one training loop."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixmorph.api import Translator

__version__ = "0.1.0"

# torch's CPU thread pool (GNU OpenMP) spins for a while each time it waits for work. On a CPU shared
# with other busy processes the spinning threads starve the working ones (2 cores at load 12: a 32x32
# CycleGAN step took 22-40 s instead of 0.9 s with sleeping waits), but on an idle machine sleeping
# waits cost up to 1.6x (the demo: 2.8 vs 1.7 steps/s). A short spin keeps both: 2.73 steps/s idle,
# 0.87 (spinning: 0.73, sleeping: 0.92) beside two busy processes (README, Speed). It takes effect
# only when pixmorph is imported before torch (the CLI is) and the user set neither variable.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "20000"


def load(checkpoint: str | os.PathLike, device: str = "cpu", runtime: str | None = None,
         onnx: str | os.PathLike | None = None, precision: str = "auto",
         channels_last: bool | None = None) -> Translator:
    """Load a run folder or checkpoint folder (or a file in it) and return a :class:`pixmorph.api.Translator`:
    ``translator(images, direction=None, size=None)``. ``device``: cpu, cuda, cuda:N or auto; ``precision``: auto
    (bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32), fp32, bf16 or fp16; ``runtime``/``onnx``: ONNX
    Runtime, see :func:`pixmorph.api.load`."""
    from pixmorph.api import load as _load  # here, not above: importing pixmorph must not import torch

    return _load(checkpoint, device=device, runtime=runtime, onnx=onnx, precision=precision,
                 channels_last=channels_last)


__all__ = ["load", "__version__"]

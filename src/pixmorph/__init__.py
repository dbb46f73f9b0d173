"""pixmorph: image-to-image translation with one CLI, one API and one training loop."""

import os

__version__ = "0.1.0"

# torch's CPU thread pool (GNU OpenMP) spins while it waits for work. On a CPU shared with other busy
# processes the spinning threads starve the working ones: a 2-core machine at load 12 ran a CycleGAN
# step 25x slower at 32x32 and Nx slower at 256x256 than with sleeping waits (README, Speed). It only
# takes effect when pixmorph is imported before torch (the CLI does); OMP_WAIT_POLICY set by the user,
# or PIXMORPH_OMP_PASSIVE=0, keeps OpenMP's own default.
if "OMP_WAIT_POLICY" not in os.environ and os.environ.get("PIXMORPH_OMP_PASSIVE", "1") != "0":
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def load(checkpoint, device: str = "cpu", **options):
    """Load a checkpoint folder and return a :class:`pixmorph.api.Translator` (options: runtime, onnx,
    precision, channels_last; see :func:`pixmorph.api.load`)."""
    from pixmorph.api import load as _load

    return _load(checkpoint, device=device, **options)


__all__ = ["load", "__version__"]

"""pixmorph: image-to-image translation with one CLI, one API and one training loop."""

import os

__version__ = "0.1.0"

# torch's CPU thread pool (GNU OpenMP) spins while it waits for work. On a CPU shared with other busy
# processes the spinning threads starve the working ones: on 2 cores at load 12 a 32x32 CycleGAN step
# took 22-40 s instead of 0.9 s with sleeping waits (256x256: 0.9-2.8x). On a quiet machine spinning can
# be up to 1.7x faster for small images (README, Speed). This only takes effect when pixmorph is
# imported before torch (the CLI is); OMP_WAIT_POLICY set by the user, or PIXMORPH_OMP_PASSIVE=0,
# keeps OpenMP's own default.
if "OMP_WAIT_POLICY" not in os.environ and os.environ.get("PIXMORPH_OMP_PASSIVE", "1") != "0":
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def load(checkpoint, device: str = "cpu", **options):
    """Load a checkpoint folder and return a :class:`pixmorph.api.Translator` (options: runtime, onnx,
    precision, channels_last; see :func:`pixmorph.api.load`)."""
    from pixmorph.api import load as _load

    return _load(checkpoint, device=device, **options)


__all__ = ["load", "__version__"]

"""pixmorph: image-to-image translation with one CLI, one API and one training loop."""

__version__ = "0.1.0"


def load(checkpoint, device: str = "cpu", **options):
    """Load a checkpoint folder and return a :class:`pixmorph.api.Translator` (options: runtime, onnx,
    precision, channels_last; see :func:`pixmorph.api.load`)."""
    from pixmorph.api import load as _load

    return _load(checkpoint, device=device, **options)


__all__ = ["load", "__version__"]

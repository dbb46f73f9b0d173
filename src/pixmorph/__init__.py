"""pixmorph: image-to-image translation with one CLI, one API and one training loop."""

__version__ = "0.1.0"


def load(checkpoint, device: str = "cpu"):
    """Load a checkpoint folder and return a :class:`pixmorph.api.Translator`."""
    from pixmorph.api import load as _load

    return _load(checkpoint, device=device)


__all__ = ["load", "__version__"]

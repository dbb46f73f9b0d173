"""Methods, found by name in an explicit registry (no string-mangled imports)."""

from pixmorph.methods.base import METHODS, Method, register

# Importing a method module registers it.
from pixmorph.methods import cyclegan, deepsim, pix2pix, twostep  # noqa: E402,F401
from pixmorph.methods import funit  # noqa: E402,F401


def get_method(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}: choose from {', '.join(sorted(METHODS))}") from None


__all__ = ["METHODS", "Method", "register", "get_method"]

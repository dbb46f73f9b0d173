"""Data layouts by name: each method declares the layout it trains on, and the loop builds it here.

A layout builder takes the data folder (or file), the ``DataConfig`` and the phase and returns a
dataset indexed by ``(index, seed)`` that yields a dict of CHW tensors in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from pixmorph.config import DataConfig

LayoutBuilder = Callable[[Path, DataConfig, str], Dataset]
LAYOUTS: dict[str, LayoutBuilder] = {}


def register_layout(name: str):
    def add(builder: LayoutBuilder) -> LayoutBuilder:
        LAYOUTS[name] = builder
        return builder

    return add


def build_dataset(layout: str, root: Path, cfg: DataConfig, phase: str = "train") -> Dataset:
    _import_layout_modules()
    try:
        builder = LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"no dataset for the data layout {layout!r} (known: {', '.join(sorted(LAYOUTS))})") from None
    return builder(root, cfg, phase)


def _import_layout_modules() -> None:
    """Importing a layout module registers its layouts (here, not at import time: they import this module)."""
    from pixmorph.data import classes, fewshot, folders, single_image  # noqa: F401

"""Data layouts by name: each method declares the layout it trains on, and the loop builds it here.

A layout builder takes the data folder (or file), the ``DataConfig`` and the phase and returns a
dataset indexed by ``(index, seed)`` that yields a dict of CHW tensors in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from pixmorph.config import DataConfig

LayoutBuilder = Callable[[Path, DataConfig, str], Dataset]
OptionsParser = Callable[[dict[str, Any]], dict[str, Any]]
LAYOUTS: dict[str, LayoutBuilder] = {}
FILE_LAYOUTS: set[str] = set()  # those whose data is a file (DeepSIM's one image); the others read a folder
OPTIONS: dict[str, OptionsParser] = {}


def register_layout(name: str, options: OptionsParser | None = None, reads_file: bool = False):
    """Register a layout's builder; ``options``: its parser of ``data.options`` (see :func:`layout_options`),
    which the builder uses too; ``reads_file``: its data is one file, not a folder."""
    def add(builder: LayoutBuilder) -> LayoutBuilder:
        LAYOUTS[name] = builder
        if reads_file:
            FILE_LAYOUTS.add(name)
        if options is not None:
            OPTIONS[name] = options
        return builder

    return add


def layout_options(layout: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """``data.options`` as the layout will use them, known without reading the data (what ``--dry-run``
    prints): its defaults filled in, an unknown or bad option refused as training refuses it. A layout
    without a parser takes them as given."""
    _import_layout_modules()
    parse = OPTIONS.get(layout)
    return parse(dict(options or {})) if parse else dict(options or {})


def build_dataset(layout: str, root: Path, cfg: DataConfig, phase: str = "train") -> Dataset:
    _import_layout_modules()
    try:
        builder = LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"no dataset for the data layout {layout!r} (known: {', '.join(sorted(LAYOUTS))})") from None
    if layout not in FILE_LAYOUTS and root.is_file():  # said before a builder looks for root/trainA/ and the like
        raise NotADirectoryError(f"{root}: a file, not a folder: --data takes the dataset's folder ({layout} layout)")
    return builder(root, cfg, phase)


def _import_layout_modules() -> None:
    """Importing a layout module registers its layouts (here, not at import time: they import this module)."""
    from pixmorph.data import classes, fewshot, folders, single_image  # noqa: F401

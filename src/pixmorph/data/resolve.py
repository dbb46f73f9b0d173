"""Turn ``data.root`` (a folder or a built-in task name) into a folder and image sizes."""

from __future__ import annotations

from pathlib import Path

from pixmorph.config import DataConfig
from pixmorph.data import builtin

REFERENCE_LOAD, REFERENCE_CROP = 286, 256


def resolve_root(root: str) -> tuple[Path, int | None]:
    """The data folder, and the native image size when it is a built-in task."""
    path = Path(root).expanduser()
    if path.exists():  # a folder, or a file for single-image layouts
        return path, None
    if builtin.is_builtin(root):
        return builtin.prepare_task(root), builtin.TASKS[root].image_size
    if path.suffix:  # looks like a file name (the one image of a single-image method)
        raise FileNotFoundError(f"{root}: no such file or folder")
    known = ", ".join(sorted(builtin.TASKS))
    raise FileNotFoundError(f"{root}: no such folder, and not a built-in task (built-in: {known})")


def resolve_data(cfg: DataConfig) -> tuple[Path, DataConfig]:
    """The folder, and the config with ``load_size``/``crop_size`` filled in (what gets saved)."""
    path, native = resolve_root(cfg.root)
    load = cfg.load_size or native or REFERENCE_LOAD
    crop = cfg.crop_size or native or min(REFERENCE_CROP, load)
    return path, DataConfig(**{**cfg.__dict__, "load_size": load, "crop_size": crop})

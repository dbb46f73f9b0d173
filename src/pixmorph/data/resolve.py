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


def native_size(root: str) -> int | None:
    """The image size a built-in task decides (as :func:`resolve_root` gives it), without preparing the
    task; None for a folder or file."""
    if Path(root).expanduser().exists() or not builtin.is_builtin(root):
        return None
    return builtin.TASKS[root].image_size


def resolve_sizes(cfg: DataConfig, native: int | None,
                  reference: tuple[int, int] = (REFERENCE_LOAD, REFERENCE_CROP)) -> DataConfig:
    """The config with ``load_size``/``crop_size`` filled in: given, else the built-in task's ``native``
    size, else the method's ``reference`` (load, crop): CycleGAN's 286/256, FUNIT's 140/128."""
    load = cfg.load_size or native or reference[0]
    crop = cfg.crop_size or native or min(reference[1], load)
    if crop > load:  # refused here, before the run (and by --dry-run), naming the options to change
        load_from = "" if cfg.load_size else f" (the {'task' if native else 'method'}'s; --load-size sets it)"
        raise ValueError(f"data.crop_size={crop} (--crop-size) is larger than data.load_size={load}{load_from}: "
                         f"crops are cut from the images resized to the load size; give --crop-size {load} or "
                         f"less, or --load-size {crop} or more")
    return DataConfig(**{**cfg.__dict__, "load_size": load, "crop_size": crop})


def resolve_data(cfg: DataConfig, reference: tuple[int, int] = (REFERENCE_LOAD, REFERENCE_CROP)
                 ) -> tuple[Path, DataConfig]:
    """The folder, and the config with ``load_size``/``crop_size`` filled in (what gets saved). A folder or
    file given by a relative path is saved absolute, so a run resumes and serves from any directory."""
    path, native = resolve_root(cfg.root)
    if native is None:
        path = path.resolve()
        cfg = DataConfig(**{**cfg.__dict__, "root": str(path)})
    return path, resolve_sizes(cfg, native, reference)

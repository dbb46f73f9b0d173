"""The ``classes`` layout: images with a class label, for class-conditional methods (two-step, ...).

Two folder layouts are read:

* class folders ``ROOT/<phase>/<class>/*`` (the built-in ``fashion-classes`` task);
* the CycleGAN layout ``ROOT/<phase>A`` + ``ROOT/<phase>B``, read as two classes named ``A`` and ``B``
  (so ``sneaker2boot`` and any CycleGAN folder work unchanged);
* for training, FUNIT's class folders ``ROOT/<class>/*`` (no split: every image trains).

Class names are the folder names, sorted; the label of a class is its index in that list. Options
(``data.options``): ``classes: [name, ...]`` keeps only those classes, in that order. Samples are
``{"image": C x H x W in [-1, 1], "label": long scalar}``; an epoch is every image of every class once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from pixmorph.config import DataConfig
from pixmorph.data import builtin
from pixmorph.data.fewshot import class_names_option
from pixmorph.data.layouts import register_layout
from pixmorph.data import folders as unpaired_folders
from pixmorph.data.transforms import TrainTransform
from pixmorph.images import IMAGE_EXTENSIONS, list_images, read_image

CYCLEGAN_CLASSES = ("A", "B")


def _class_folders(root: Path, phase: str) -> dict[str, Path]:
    """Class name -> folder, sorted by name, for either layout."""
    root = Path(root)
    if root.is_file():
        raise NotADirectoryError(f"{root}: a file, not a folder: --data takes the dataset's folder (classes layout)")
    base = root / phase
    if base.is_dir():
        folders = {p.name: p for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith(".")}
        if not folders:
            raise FileNotFoundError(f"{base}: no class folders: expected {base}/<class>/*.png")
        return folders
    if (root / f"{phase}A").is_dir() and (root / f"{phase}B").is_dir():
        return {name: root / f"{phase}{name}" for name in CYCLEGAN_CLASSES}
    if phase == "train" and (folders := _folders_of_images(root)):  # FUNIT's ROOT/<class>/: all of it trains
        return folders
    raise FileNotFoundError(f"{root}: no labelled data: expected class folders {phase}/<class>/ "
                            f"or the CycleGAN layout {phase}A/ + {phase}B/"
                            + (" (or, to train, <class>/ folders of images)" if phase == "train" else ""))


def _folders_of_images(root: Path) -> dict[str, Path]:
    """``ROOT/<class>/`` when a folder in ``root`` holds image files; else nothing. An empty class folder beside
    them is still a class (what ``data.options.classes`` can leave out, or :class:`ClassFolders` names)."""
    if not root.is_dir():
        return {}
    folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    holds_images = any(f.suffix.lower() in IMAGE_EXTENSIONS for folder in folders.values() for f in folder.iterdir())
    return folders if holds_images else {}


def _class_images(folder: Path, skip_bad: bool) -> list[Path]:
    """A class folder's images; an empty one is named with the ways round it."""
    try:
        list_images(folder)
    except ValueError:  # its "no image files", said as a class folder's
        raise ValueError(f"{folder}: an empty class folder (no image files): add its images, remove it, or list the "
                         f"classes to train with --set \"data.options.classes=[NAME, ...]\"") from None
    return unpaired_folders._images_in(folder, skip_bad)


def _select(folders: dict[str, Path], wanted: Sequence[str] | None, where: Path) -> dict[str, Path]:
    if not wanted:
        return folders
    missing = [c for c in wanted if c not in folders]
    if missing:
        raise ValueError(f"{where}: data.options.classes names {missing}, not among the classes {list(folders)}")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"data.options.classes lists a class twice: {list(wanted)}")
    return {c: folders[c] for c in wanted}


def classes_options(options: dict[str, Any]) -> dict[str, Any]:
    """The classes layout's ``data.options``: only ``classes``; another (FUNIT's ``target_classes``) would be ignored."""
    if unknown := sorted(set(options) - {"classes"}):
        raise ValueError(f"unknown data.options for the classes layout: {', '.join(unknown)}; known: classes "
                         f"(a list of the class folders to train on)")
    return dict(options)


def _wanted(options: dict[str, Any] | None) -> list[str] | None:
    """``data.options.classes`` as a list: on the command line ``=bag,boot`` or ``=[bag, boot]``, as FUNIT's lists."""
    wanted = classes_options(dict(options or {})).get("classes")
    return None if wanted is None else class_names_option(wanted, "classes")


def list_classes(root: str | Path, options: dict[str, Any] | None = None, phase: str = "train") -> list[str]:
    """The class names a ``classes`` dataset on ``root`` uses, in label order (what ``model.class_names`` needs)."""
    return list(_select(_class_folders(Path(root), phase), _wanted(options), Path(root)))


def builtin_classes(task: str, options: dict[str, Any] | None = None) -> list[str]:
    """The class names :func:`list_classes` gives for built-in task ``task`` once it is prepared, known
    without preparing it (what ``pixmorph train twostep --dry-run`` prints)."""
    layout = builtin.TASKS[task].layout
    if layout == "classes":  # fashion-classes: one folder per Fashion-MNIST class, named by its slug
        names = sorted(c.slug for c in builtin.FASHION_CLASSES)
    elif layout == "unpaired":
        names = list(CYCLEGAN_CLASSES)
    else:
        raise FileNotFoundError(f"{task}: a built-in task of the {layout} layout has no labelled data: expected "
                                "class folders or the CycleGAN layout (built-in: fashion-classes, sneaker2boot, ...)")
    return list(_select({name: Path(name) for name in names}, _wanted(options), Path(task)))


class ClassFolders(Dataset):
    """Labelled images from class folders (or a CycleGAN A/B folder pair); indexed by ``(index, seed)``."""

    def __init__(self, root: str | Path, transform: TrainTransform, phase: str = "train", skip_bad: bool = False,
                 mode: str = "RGB", classes: Sequence[str] | None = None):
        root = Path(root)
        folders = _select(_class_folders(root, phase), classes, root)
        self.classes = list(folders)
        self.items: list[tuple[Path, int]] = [(f, label) for label, folder in enumerate(folders.values())
                                              for f in _class_images(folder, skip_bad)]
        self.transform, self.mode = transform, mode

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        """The class of each index (what a class-balanced sampler draws by)."""
        return [label for _, label in self.items]

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        path, label = self.items[index]
        (image,) = self.transform([read_image(path, mode=self.mode)], torch.Generator().manual_seed(seed))
        return {"image": image, "label": torch.tensor(label, dtype=torch.long)}


@register_layout("classes", options=classes_options)
def classes(root: Path, cfg: DataConfig, phase: str) -> ClassFolders:
    return ClassFolders(root, unpaired_folders._transform(cfg), phase=phase, skip_bad=cfg.skip_bad, mode=unpaired_folders.image_mode(cfg),
                        classes=_wanted(cfg.options))

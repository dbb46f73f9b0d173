"""Class-structured data for few-shot translation (FUNIT): a split of classes into source classes (trained
on) and target classes (only seen at test time, K images each).

Two ways to give the data (``data.root`` = ROOT; settings in ``data.options``):

* FUNIT's list files: lines ``class/filename`` relative to ROOT (or ``options.image_root``); the source
  list is ``options.source_list`` (default ``ROOT/train_list.txt``), the target list
  ``options.target_list`` (default ``ROOT/test_list.txt`` when present). The built-in ``glyphs`` task
  is written this way.
* Class folders ``ROOT/<class>/*``: every folder is a source class except those named in
  ``options.target_classes`` (or, with ``options.source_classes``, only those are trained on).

``ROOT/fewshot.json`` may hold the same keys (the options win) and ``flip: false`` for data that a
mirror changes (glyphs). A class in both sets is an error, so a target class never leaks into training.

The training layout ``fewshot`` yields ``{"content", "content_label", "class", "class_label"}``: the
content image is the indexed one and the class image is drawn at random (from the sample's seed) from
all source images, as in FUNIT's two independent loaders.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pixmorph.config import DataConfig
from pixmorph.data.layouts import register_layout
from pixmorph.data.folders import _images_in, image_mode
from pixmorph.data.transforms import TrainTransform
from pixmorph.images import IMAGE_EXTENSIONS, read_image

DEFAULT_SOURCE_LIST, DEFAULT_TARGET_LIST = "train_list.txt", "test_list.txt"


@dataclass
class ClassSplit:
    """Images by class for the source classes (training) and the target classes (few-shot tests)."""

    source: dict[str, list[Path]] = field(default_factory=dict)
    target: dict[str, list[Path]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = sorted(set(self.source) & set(self.target))
        if both:
            raise ValueError(f"class(es) {', '.join(both)} are both source (training) and target (held-out) classes: "
                             "a target class must never be trained on")
        if not self.source:
            raise ValueError("no source classes to train on")


def read_list_file(path: Path, image_root: Path) -> dict[str, list[Path]]:
    """FUNIT list file: one ``class/filename`` line per image -> images by class, classes in order of appearance."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list file not found")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text list file ({e.reason} at byte {e.start})") from None
    by_class: dict[str, list[Path]] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cls, sep, name = line.partition("/")
        if not sep or not cls or not name:
            raise ValueError(f"{path}:{n}: {line!r} is not a 'class/filename' line")
        by_class.setdefault(cls, []).append(image_root / line)
    if not by_class:
        raise ValueError(f"{path}: no 'class/filename' lines")
    missing = [p for files in by_class.values() for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} listed image(s) missing, e.g. {missing[0]}")
    return by_class


def task_options(root: Path, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ROOT/fewshot.json`` (when present) overridden by ``options``."""
    info = root / "fewshot.json"
    if not (root.is_dir() and info.is_file()):
        return dict(options or {})
    try:
        merged = json.loads(info.read_text())
    except ValueError as e:  # not JSON, or not text
        raise ValueError(f"{info}: unreadable ({e})") from None
    if not isinstance(merged, dict):
        raise ValueError(f"{info}: expected a JSON object of data options ({', '.join(OPTIONS)}), not a "
                         f"{type(merged).__name__}")
    merged.update(options or {})
    return merged


def class_names_option(value: Any, key: str) -> list[str]:
    """Class names: a list, or one string of comma-separated names (``--set data.options.KEY=bag,boot``)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [c.strip() for c in value.split(",") if c.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        value = [value]  # a class folder named 3, as --set data.options.target_classes=3 reads
    if isinstance(value, list | tuple) and all(isinstance(c, int) and not isinstance(c, bool) for c in value):
        value = [str(c) for c in value]
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"data.options.{key}={value!r}: expected a list of class names")
    return list(value)


OPTIONS = ("image_root", "source_list", "target_list", "source_classes", "target_classes", "flip")


def parse_options(options: dict[str, Any]) -> dict[str, Any]:
    """The few-shot ``data.options`` checked, class lists as lists (their defaults depend on the data: see
    the module docstring)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown data.options for the fewshot layout: {', '.join(unknown)}; known: "
                         f"{', '.join(OPTIONS)}")
    if "flip" in options:
        check_flip(options["flip"], "data.options.flip")
    return {k: class_names_option(v, k) if k.endswith("_classes") else v for k, v in options.items()}


def _refuse_folders_of_class_folders(root: Path, folders: dict[str, Path]) -> None:
    """A ``ROOT/train/<class>/`` layout (two-step's, or a train/test split) given as class folders: its train/
    would be one class whose images are in subfolders, said only as "no image files" inside the class."""
    nested = {name: inner for name, folder in folders.items()
              if not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in folder.iterdir())
              and (inner := sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))}
    if nested:
        name = "train" if "train" in nested else next(iter(nested))  # the one to train on, where there is one
        shown = ", ".join(f"{n}/" for n in nested[name][:5]) + (", ..." if len(nested[name]) > 5 else "")
        raise ValueError(f"{root}: {name}/ holds folders ({shown}), not images: the few-shot layout is class "
                         f"folders of images, {root}/<class>/*.png; for the classes in {name}/ give --data "
                         f"{folders[name]}")


def check_flip(value: Any, where: str) -> bool:
    """``flip`` as a bool: a string such as "false" would read as true."""
    if not isinstance(value, bool):
        raise ValueError(f"{where}={value!r}: give true or false")
    return value


def flips_in_training(root: Path, cfg: DataConfig) -> bool:
    """Whether training mirrors the images: ``data.flip``, unless the data's own ``flip`` turns it off
    (``data.options.flip``, else ``ROOT/fewshot.json``'s)."""
    return cfg.flip and _data_flip(task_options(Path(root), cfg.options), root, cfg)


def dry_run_flip(cfg: DataConfig) -> bool:
    """:func:`flips_in_training` as ``--dry-run`` knows it: a built-in task (not prepared) by its own flip."""
    from pixmorph.data import builtin
    from pixmorph.data.resolve import native_size

    if native_size(cfg.root) is None:  # a folder
        return flips_in_training(Path(cfg.root).expanduser(), cfg)
    return cfg.flip and _data_flip({"flip": builtin.TASKS[cfg.root].flip, **(cfg.options or {})}, cfg.root, cfg)


def _data_flip(options: dict[str, Any], root: str | Path, cfg: DataConfig) -> bool:
    where = "data.options.flip" if "flip" in (cfg.options or {}) else f"{Path(root) / 'fewshot.json'}: flip"
    return check_flip(options.get("flip", True), where)


def split_classes(root: str | Path, options: dict[str, Any] | None = None, skip_bad: bool = False) -> ClassSplit:
    """The source/target split of ``root`` (see the module docstring for the two layouts)."""
    root = Path(root)
    opts = task_options(root, options)
    image_root = root / opts.get("image_root", ".")
    source_list = root / opts.get("source_list", DEFAULT_SOURCE_LIST)
    if "source_list" in opts or source_list.is_file():
        source = read_list_file(source_list, image_root)
        target_list = root / opts.get("target_list", DEFAULT_TARGET_LIST)
        target = read_list_file(target_list, image_root) if ("target_list" in opts or target_list.is_file()) else {}
        return ClassSplit(source, target)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of class folders")
    folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    if not folders:
        raise FileNotFoundError(f"{root}: no class folders (expected {root}/<class>/*.png) and no {DEFAULT_SOURCE_LIST}")
    _refuse_folders_of_class_folders(root, folders)
    targets = class_names_option(opts.get("target_classes"), "target_classes")
    sources = class_names_option(opts.get("source_classes"), "source_classes")
    unknown = [c for c in targets + sources if c not in folders]
    if unknown:
        raise ValueError(f"{root}: no class folder(s) {unknown} (classes: {', '.join(folders)})")
    both = sorted(set(targets) & set(sources))
    if both:
        raise ValueError(f"class(es) {', '.join(both)} named in both source_classes and target_classes")
    source_names = sources or [c for c in folders if c not in targets]
    return ClassSplit({c: _images_in(folders[c], skip_bad) for c in source_names},
                      {c: _images_in(folders[c], skip_bad) for c in targets})


class FewShotPairs(Dataset):
    """Source-class images as (content, class image) pairs; indexed by ``(index, seed)``."""

    def __init__(self, split: ClassSplit, transform: TrainTransform, mode: str = "RGB"):
        self.classes = list(split.source)
        self.items = [(p, label) for label, files in enumerate(split.source.values()) for p in files]
        self.transform, self.mode = transform, mode

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, i: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.items[i]
        (x,) = self.transform([read_image(path, mode=self.mode)], g)
        return x, torch.tensor(label, dtype=torch.long)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        g = torch.Generator().manual_seed(seed)
        content, content_label = self._load(index, g)
        cls, cls_label = self._load(int(torch.randint(0, len(self.items), (1,), generator=g)), g)
        return {"content": content, "content_label": content_label, "class": cls, "class_label": cls_label}


@register_layout("fewshot", options=parse_options)
def fewshot(root: Path, cfg: DataConfig, phase: str) -> FewShotPairs:
    parse_options(dict(cfg.options or {}))
    flip = flips_in_training(root, cfg)
    split = split_classes(root, cfg.options, cfg.skip_bad)
    if len(split.source) == 1:
        warnings.warn(f"{root}: one source class ({next(iter(split.source))}): FUNIT learns a class from its images "
                      f"by telling the training classes apart, and its discriminator judges each class; with one, it "
                      f"learns to reconstruct, not to translate: give two or more class folders (the paper: 119)")
    # the reference resizes the shorter side (a 4:3 photo stays 4:3), where CycleGAN's squashes to a square
    return FewShotPairs(split, TrainTransform(cfg.load_size, cfg.crop_size, flip, keep_aspect=True),
                        mode=image_mode(cfg))

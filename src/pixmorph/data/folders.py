"""Datasets over real image folders.

Every dataset is indexed by ``(index, seed)``: the seed drives all of that sample's randomness,
so training data is a pure function of (run seed, step) whatever the number of workers.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from pixmorph.config import DataConfig
from pixmorph.data.layouts import register_layout
from pixmorph.data.transforms import TrainTransform
from pixmorph.images import (BadImageWarning, ImageReadError, check_images, header_size, list_images, read_image,
                             warn_of_images_in_subfolders)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


SKIP_BAD_HINT = " (--set data.skip_bad=true leaves unreadable training images out, each with a warning)"


def _images_in(folder: Path, skip_bad: bool) -> list[Path]:
    """The folder's images; with ``skip_bad`` every file is decoded once up front (the check decodes only the
    files whose header and end may not show a cut) and the unreadable ones are left out with a warning."""
    try:
        files = check_images(list_images(folder), skip_bad=skip_bad)
    except ImageReadError as e:  # only without skip_bad: say that it exists
        raise type(e)(f"{e}{SKIP_BAD_HINT}") from None
    warn_of_images_in_subfolders(folder, "train on", stacklevel=2)
    if not skip_bad:
        return files
    good = []
    for f in files:
        try:
            read_image(f)
            good.append(f)
        except ImageReadError as e:
            warnings.warn(str(e), BadImageWarning, stacklevel=2)
    if not good:
        raise ValueError(f"{folder}: no readable image files")
    return good


class UnpairedFolders(Dataset):
    """CycleGAN layout: ``root/trainA`` and ``root/trainB`` (or testA/testB), no pairing.

    Epoch length is the larger domain; the B image of a sample is drawn at random, as in the reference.
    """

    def __init__(self, root: str | Path, transform: TrainTransform, phase: str = "train", skip_bad: bool = False,
                 mode: str = "RGB"):
        root = Path(root)
        self.mode = mode
        missing = [f"{phase}{d}/" for d in "AB" if not (root / f"{phase}{d}").is_dir()]
        if missing:
            raise FileNotFoundError(f"{root}: no {' or '.join(missing)} folder: the unpaired layout is "
                                    f"{root / phase}A/ and {root / phase}B/ holding the A and B images")
        self.files_A = _images_in(root / f"{phase}A", skip_bad)
        self.files_B = _images_in(root / f"{phase}B", skip_bad)
        self.transform = transform

    def __len__(self) -> int:
        return max(len(self.files_A), len(self.files_B))

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        g = _generator(seed)
        path_A = self.files_A[index % len(self.files_A)]
        path_B = self.files_B[int(torch.randint(0, len(self.files_B), (1,), generator=g))]
        (a,) = self.transform([read_image(path_A, mode=self.mode)], g)
        (b,) = self.transform([read_image(path_B, mode=self.mode)], g)
        return {"A": a, "B": b}


class PairedFolders(Dataset):
    """pix2pix data: ``root/train/*`` files holding A|B side by side, or ``root/trainA`` and
    ``root/trainB`` with matching file names. A pair gets the same crop and flip. ``reverse``: B is the input
    and A the target (``data.options.direction=BtoA``: facades files are photo|labels, trained labels -> photo)."""

    def __init__(self, root: str | Path, transform: TrainTransform, phase: str = "train", skip_bad: bool = False,
                 mode: str = "RGB", reverse: bool = False):
        root = Path(root)
        self.transform, self.mode, self.reverse = transform, mode, reverse
        if (root / phase).is_dir():
            self.pairs: list[tuple[Path, Path | None]] = [(p, None) for p in _images_in(root / phase, skip_bad)]
            _warn_unless_side_by_side(self.pairs[0][0])
        elif (root / f"{phase}A").is_dir() and (root / f"{phase}B").is_dir():
            self.pairs = _match_by_name(_images_in(root / f"{phase}A", skip_bad), _images_in(root / f"{phase}B", skip_bad))
        else:
            has_a, has_b = (root / f"{phase}A").is_dir(), (root / f"{phase}B").is_dir()
            problem = f"{phase}A/ but no {phase}B/" if has_a else f"{phase}B/ but no {phase}A/" if has_b \
                else "no paired data"
            raise FileNotFoundError(
                f"{root}: {problem}: expected {root / phase}/ (A|B side-by-side images) or "
                f"{root / phase}A/ + {root / phase}B/ (images with matching names)"
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        path_A, path_B = self.pairs[index]
        if path_B is None:
            a, b = split_side_by_side(path_A, self.mode)
        else:
            a, b = read_image(path_A, mode=self.mode), read_image(path_B, mode=self.mode)
        if self.reverse:
            a, b = b, a
        a, b = self.transform([a, b], _generator(seed))
        return {"A": a, "B": b}


def input_half(direction: str, data_options: dict | None) -> str:
    """The half of an A|B file that a translation in ``direction`` starts from: A for AtoB, B for BtoA, the
    other way for a pix2pix model trained with ``data.options.direction=BtoA``."""
    reversed_data = (data_options or {}).get("direction") == "BtoA"
    return "B" if (direction == "BtoA") != reversed_data else "A"


def read_input(path: Path, half: str | None = None) -> Image.Image:
    """An image file to translate, as read (any mode); ``half`` ``A`` or ``B``: that half of an A|B file."""
    if half is None:
        return read_image(path, mode=None)
    a, b = split_side_by_side(path, mode=None)
    return b if half == "B" else a


def input_size(path: Path, half: str | None = None) -> tuple[int, int] | None:
    """(width, height) of what :func:`read_input` gives, from the file's header alone; None when unreadable."""
    size = header_size(path)
    if size is None or half is None:
        return size
    return size[0] // 2, size[1]


def split_side_by_side(path: Path, mode: str | None = "RGB") -> tuple[Image.Image, Image.Image]:
    """The A (left) and B (right) halves of a pix2pix-layout file; ``mode=None``: as read. An odd width is
    split at its middle as the reference splits it, the last column left out so both halves are one size."""
    return split_halves(read_image(path, mode=mode), str(path))


def split_halves(img: Image.Image, name: str) -> tuple[Image.Image, Image.Image]:
    """The A (left) and B (right) halves of an A|B image (see :func:`split_side_by_side`); ``name`` for errors."""
    (a0, a1), (b0, b1) = half_columns(img.width, "A", name), half_columns(img.width, "B", name)
    return img.crop((a0, 0, a1, img.height)), img.crop((b0, 0, b1, img.height))


def half_columns(width: int, half: str, name: str) -> tuple[int, int]:
    """The columns ``[start, stop)`` of the ``half`` (``A``, left, or ``B``) of an A|B image ``width`` wide; an
    odd width is split at its middle, the last column left out (see :func:`split_side_by_side`)."""
    if width < 2:
        raise ValueError(f"{name}: width {width}: expected A and B side by side (A|B)")
    middle = width // 2
    return (0, middle) if half == "A" else (middle, 2 * middle)


def input_half_of(image: Image.Image | torch.Tensor, direction: str, data_options: dict | None,
                  name: str | None = None) -> Image.Image | torch.Tensor:
    """The half of an A|B image (PIL, or a tensor: its last dimension is the width) that ``direction`` starts
    from, cut as files are; one that is not about twice as wide as high is cut all the same, with a warning
    (as ``pixmorph translate --side-by-side`` warns). ``name`` (a file) starts the messages."""
    half = input_half(direction, data_options)
    width, height = image.size if isinstance(image, Image.Image) else (image.shape[-1], image.shape[-2])
    label = f"{width}x{height}" if name is None else f"{name}: {width}x{height}"
    start, stop = half_columns(width, half, label)
    if not (height and looks_side_by_side(width, height)):
        warnings.warn(f"{label}, not a side-by-side pair (A|B, twice as wide as high): only its "
                      f"{'left' if half == 'A' else 'right'} half was translated; give it without side_by_side to "
                      f"translate the whole image", stacklevel=2)
    return image.crop((start, 0, stop, height)) if isinstance(image, Image.Image) else image[..., start:stop]


def _warn_unless_side_by_side(path: Path) -> None:
    """One line when the first file of an A|B folder is not about twice as wide as high: plain images
    (a folder of photos given as pix2pix data) would train on their left and right halves."""
    if size := _size_unless_side_by_side(path):
        warnings.warn(f"{path}: {size}, not a side-by-side pair (A|B, twice as wide as high): its left and "
                      f"right halves are taken as A and B; separate images go in trainA/ and trainB/ with matching names")


def warn_unless_side_by_side_input(path: Path, half: str) -> None:
    """One line when the first file given to translate with ``--side-by-side`` is not about twice as wide as
    high: whole images would be cut in two, and only their ``half`` half translated (and scored). A file that
    does not read says nothing here: it is skipped (--skip-bad) or refused where it is read."""
    try:
        size = _size_unless_side_by_side(path)
    except (ImageReadError, OSError):
        return
    if size:
        warnings.warn(f"{path}: {size}, not a side-by-side pair (A|B, twice as wide as high): --side-by-side "
                      f"translates only its {'left' if half == 'A' else 'right'} half; drop --side-by-side to "
                      f"translate whole images")


def warn_if_side_by_side_input(path: str | os.PathLike, half: str, option: str = "--side-by-side") -> None:
    """One line when the first file given to a pix2pix model without ``option`` (``--side-by-side``) is about twice
    as wide as high: a pix2pix dataset file (A|B) would be translated whole, as one image (serve warns of such an
    upload)."""
    size = header_size(path)  # None: unreadable, said where it is read
    if size and looks_side_by_side(*size):
        warnings.warn(f"{path}: {size[0]}x{size[1]}, about twice as wide as high: if it is an A|B pair (a pix2pix "
                      f"dataset file), it is translated whole, as one image; {option} translates its {half} "
                      f"half (the {'left' if half == 'A' else 'right'} one) alone", stacklevel=3)


def _size_unless_side_by_side(path: Path) -> str | None:
    """``WxH`` of a file that is not about twice as wide as high, else None."""
    w, h = read_image(path).size
    return None if looks_side_by_side(w, h) else f"{w}x{h}"


def looks_side_by_side(width: int, height: int) -> bool:
    """About twice as wide as high, as an A|B pair of two square halves is."""
    return abs(width / (2 * height) - 1) <= 0.25


def _match_by_name(files_A: list[Path], files_B: list[Path]) -> list[tuple[Path, Path]]:
    by_stem = {p.stem: p for p in files_B}
    missing = [p for p in files_A if p.stem not in by_stem]
    if missing:
        raise ValueError(f"{missing[0]}: no image with the same name in {files_B[0].parent} "
                         f"({len(missing)} of {len(files_A)} A images unmatched)")
    return [(p, by_stem[p.stem]) for p in files_A]


def _transform(cfg: DataConfig) -> TrainTransform:
    return TrainTransform(cfg.load_size, cfg.crop_size, cfg.flip)


def image_mode(cfg: DataConfig) -> str:
    if cfg.channels not in (1, 3):
        raise ValueError(f"data.channels={cfg.channels}: use 3 (RGB) or 1 (grayscale)")
    return "L" if cfg.channels == 1 else "RGB"


def unpaired_options(options: dict[str, Any]) -> dict[str, Any]:
    """The unpaired layout has no ``data.options``: one given (a pix2pix ``direction``) would be ignored."""
    if options:
        raise ValueError(f"data.options {dict(options)}: the unpaired layout (trainA/, trainB/) takes no options "
                         f"(to translate B -> A, train as it is and translate with --direction BtoA)")
    return {}


@register_layout("unpaired", options=unpaired_options)
def unpaired(root: Path, cfg: DataConfig, phase: str) -> UnpairedFolders:
    unpaired_options(dict(cfg.options or {}))
    return UnpairedFolders(root, _transform(cfg), phase=phase, skip_bad=cfg.skip_bad, mode=image_mode(cfg))


def paired_options(options: dict[str, Any]) -> dict[str, Any]:
    """The paired layout's ``data.options``: ``direction``, AtoB by default."""
    direction = options.get("direction", "AtoB")
    if set(options) - {"direction"} or direction not in ("AtoB", "BtoA"):
        raise ValueError(f"data.options {dict(options)}: the paired layout takes direction=AtoB (A -> B, the "
                         f"default) or direction=BtoA (B -> A)")
    return {"direction": direction}


@register_layout("paired", options=paired_options)
def paired(root: Path, cfg: DataConfig, phase: str) -> PairedFolders:
    direction = paired_options(dict(cfg.options or {}))["direction"]
    return PairedFolders(root, _transform(cfg), phase=phase, skip_bad=cfg.skip_bad, mode=image_mode(cfg),
                         reverse=direction == "BtoA")

"""Reading the image folders that metrics compare, through :mod:`pixmorph.images`.

Every reader here reads all files first and reports every unreadable one at once, in one line.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from pixmorph.images import ImageReadError, list_images, read_image


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively: class sub-folders count), sorted by path."""
    return list_images(folder, recursive=True)


def read_uint8(files: list[Path]) -> list[torch.Tensor]:
    """Each file as a uint8 RGB CHW tensor (grayscale is repeated to three channels, alpha composited
    over white, as :func:`pixmorph.images.read_image` does). Raises :class:`ImageReadError` naming
    every unreadable file."""
    images, bad = [], []
    for f in files:
        try:
            images.append(torch.from_numpy(np.array(read_image(f, mode="RGB"))).permute(2, 0, 1).contiguous())
        except (ImageReadError, FileNotFoundError, IsADirectoryError) as e:
            bad.append(str(e))
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ImageReadError(f"{len(bad)} unreadable image(s): {shown}")
    return images


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 CHW -> float32 in [-1, 1] (what :func:`pixmorph.images.to_tensor` gives)."""
    return image.float() / 127.5 - 1.0


def size_groups(images: list[torch.Tensor]) -> dict[tuple[int, ...], list[int]]:
    """Indices of the images by shape, so equal sizes share a batch."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(i)
    return groups


def match_pairs(generated: list[Path], reference: list[Path]) -> list[tuple[Path, Path]]:
    """Pairs of (generated, reference) files with the same name stem (``pixmorph translate`` keeps
    stems and writes PNG). Unmatched files get a warning; no match at all is an error."""
    _refuse_repeated_stems(generated)  # two outputs of one name (in two sub-folders) would share a reference
    by_stem = _refuse_repeated_stems(reference)
    pairs = [(g, by_stem[g.stem]) for g in generated if g.stem in by_stem]
    if not pairs:
        raise ValueError(f"no pairs: none of the {len(generated)} generated file names "
                         f"(e.g. {generated[0].name}) matches a reference file name (e.g. {reference[0].name})")
    unmatched = [g for g in generated if g.stem not in by_stem]
    if unmatched:
        shown = ", ".join(map(str, unmatched[:3])) + (f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else "")
        warnings.warn(f"{len(unmatched)} of {len(generated)} generated images have no reference image of the same "
                      f"name and are left out of the paired metrics: {shown}", stacklevel=2)
    return pairs


def _refuse_repeated_stems(files: list[Path]) -> dict[str, Path]:
    """The files by name stem; two of one stem (``a/x.png``, ``b/x.png``) are refused in one line."""
    by_stem: dict[str, Path] = {}
    for f in files:
        if (other := by_stem.setdefault(f.stem, f)) != f:
            raise ValueError(f"{f}: same name stem as {other}; pairs are matched by file name, make them unique")
    return by_stem


def check_pair_sizes(pairs: list[tuple[Path, Path]], generated: list[torch.Tensor], reference: list[torch.Tensor],
                     reference_dir: str | os.PathLike) -> None:
    """A one-line error naming the first pair of unequal sizes (and how many more there are); references twice
    as wide as their outputs are taken for pix2pix's A|B files, and ``--side-by-side`` is suggested."""
    unequal = [i for i, (a, b) in enumerate(zip(generated, reference)) if a.shape[1:] != b.shape[1:]]
    if not unequal:
        return
    i = unequal[0]
    (g, r), (h, w), (rh, rw) = pairs[i], generated[i].shape[1:], reference[i].shape[1:]
    more = f" (and {len(unequal) - 1} more pairs)" if len(unequal) > 1 else ""
    hint = ""
    if all(reference[j].shape[1:] == (generated[j].shape[1], 2 * generated[j].shape[2]) for j in unequal):
        hint = (f"; twice as wide, the references look like A|B pairs side by side: score a model on them with "
                f"`pixmorph eval --checkpoint RUN --input {reference_dir} --side-by-side`, which translates one half "
                f"and compares it with the other")
    raise ValueError(f"{g} is {w}x{h} but its reference {r} is {rw}x{rh}{more}: paired metrics need equal sizes"
                     f"{hint}")

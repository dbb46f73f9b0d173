"""The single-image task of DeepSIM: one image and its primitive, yielded as the same pair every sample.

``data.root`` is the image file; ``data.options`` (every key optional):

=================  =============================================================================
``primitive``      a primitive file, ``auto-edges`` (Canny of the image, the default) or
                   ``auto-seg`` (SLIC superpixels of the image, a convenience)
``kind``           ``edges``, ``seg`` or ``seg+edges``; by default ``edges`` for ``auto-edges``,
                   ``seg`` for ``auto-seg``, and guessed from a file (gray two-level -> edges)
``edges``          for ``seg+edges``: an edge-map file, or ``auto`` (the default)
``max_side``       scale the image so its longer side is at most this; sides are then rounded to
                   a multiple of 16 (None: native size, rounded)
``canny_sigma``    sigma of the computed edges (2.0, the paper's test sigma)
``segments``       number of superpixels for ``auto-seg`` (24)
``epoch_length``   samples per epoch (80: the default 100 + 100 epochs are DeepSIM's 8k + 8k steps)
=================  =============================================================================

The warps (TPS / affine) and the Canny-sigma augmentation happen in the method's training step, on the
batch's device; the dataset only loads. Each item is ``{"A": primitive, "B": image, "auto_edges": one
flag per primitive channel (1 where it is computed Canny, which the method may redraw at a random
sigma), "seed": the item's seed (for the fixed warps of the sample grids)}``. The loop's
``data.load_size``, ``data.crop_size`` and ``data.flip`` do not apply to this layout: a run saves the
sizes as null, and its checkpoint's ``config.json`` the image's (width, height) as ``image_size``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from pixmorph.config import DataConfig
from pixmorph.data import primitives as P
from pixmorph.data.layouts import register_layout
from pixmorph.images import read_image, save_image, to_tensor

AUTO_EDGES, AUTO_SEG = "auto-edges", "auto-seg"


@dataclass
class SingleImageOptions:
    primitive: str = AUTO_EDGES
    kind: str | None = None
    edges: str = "auto"
    max_side: int | None = None
    canny_sigma: float = P.TEST_SIGMA
    segments: int = 24
    epoch_length: int = 80

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> SingleImageOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(options) - names
        if unknown:
            raise ValueError(f"unknown data.options for the single-image layout: {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(names))}")
        opts = cls(**options)
        opts.kind = resolve_kind(opts.primitive, opts.kind)
        if opts.max_side is not None and opts.max_side < P.MULTIPLE:
            raise ValueError(f"data.options.max_side={opts.max_side}: need at least {P.MULTIPLE}")
        if opts.epoch_length < 1:
            raise ValueError(f"data.options.epoch_length={opts.epoch_length}: need at least 1")
        return opts


def parse_options(options: dict[str, Any]) -> dict[str, Any]:
    """The single-image ``data.options`` with their defaults, the primitive's kind resolved."""
    return dataclasses.asdict(SingleImageOptions.from_dict(options))


def resolve_kind(primitive: str, kind: str | None) -> str:
    """The primitive kind: given, or implied by ``auto-*``, or guessed from the file."""
    if kind is not None:
        if kind not in P.KINDS:
            raise ValueError(f"primitive kind {kind!r}: choose from {', '.join(P.KINDS)}")
        if primitive == AUTO_EDGES and kind != "edges":
            raise ValueError(f"primitive {AUTO_EDGES} makes an edge map, not kind {kind!r}; "
                             f"for seg+edges give the segmentation (a file or {AUTO_SEG}) as the primitive")
        return kind
    if primitive == AUTO_EDGES:
        return "edges"
    if primitive == AUTO_SEG:
        return "seg"
    path = Path(primitive)
    if not path.exists():
        raise FileNotFoundError(f"{primitive}: no such primitive file (or use {AUTO_EDGES} / {AUTO_SEG})")
    return "edges" if P.looks_like_edges(path) else "seg"


def build_primitive(image: Tensor, opts: SingleImageOptions) -> tuple[Tensor, Tensor]:
    """The training primitive of ``image`` (CHW in [-1, 1], already at its rounded size) and the flags of
    its computed-edge channels."""
    h, w = image.shape[-2:]
    size = (w, h)
    if opts.kind == "edges":
        if opts.primitive == AUTO_EDGES:
            return P.canny_edges(image[None], opts.canny_sigma)[0], torch.ones(1)
        return P.load_edges(opts.primitive, size), torch.zeros(1)
    if opts.primitive == AUTO_SEG:
        seg = to_tensor(Image.fromarray(P.colour_labels(P.superpixels(image, opts.segments))))
    else:
        seg = P.load_seg(opts.primitive, size)
    if opts.kind == "seg":
        return seg, torch.zeros(3)
    if opts.edges == "auto":
        return torch.cat([seg, P.canny_edges(image[None], opts.canny_sigma)[0]]), torch.tensor([0.0, 0, 0, 1])
    return torch.cat([seg, P.load_edges(opts.edges, size)]), torch.zeros(4)


def check_same_shape(primitive: str | Path, image: str | Path, what: str = "image",
                     tolerance: float = 0.05) -> None:
    """A primitive is drawn over its image (an edge map over its segmentation, ``what``): one of another
    aspect ratio (another image's edges, say) would be stretched to fit, so refuse it; one pixmorph saved at a
    training size (sides rounded to 16s) passes. (Another size of
    the same aspect is resized, as at edit time.)"""
    (pw, ph), (w, h) = read_image(primitive).size, read_image(image).size
    rounded = (pw, ph) == P.round_size(w, h, max(pw, ph))  # saved at a training size (pixmorph's own primitive)
    if not rounded and abs((pw / ph) / (w / h) - 1) > tolerance:
        raise ValueError(f"{primitive}: its aspect ratio {pw / ph:.2f} ({pw}x{ph}) is not the {what}'s "
                         f"{w / h:.2f} ({w}x{h}): give the {'primitive' if what == 'image' else 'edge map'} "
                         f"drawn over this {what}")


class SingleImage(Dataset):
    """The same (primitive, image) pair for every ``(index, seed)``; ``len`` is ``epoch_length``."""

    def __init__(self, image: str | Path, options: SingleImageOptions | dict[str, Any] | None = None,
                 mode: str = "RGB"):
        self.options = opts = options if isinstance(options, SingleImageOptions) else \
            SingleImageOptions.from_dict(dict(options or {}))
        path = Path(image)
        if path.is_dir():
            raise IsADirectoryError(f"{path}: a folder; DeepSIM trains on one image file (--image IMG)")
        for given in (opts.primitive, opts.edges):
            if given not in (AUTO_EDGES, AUTO_SEG, "auto"):
                check_same_shape(given, path)
        self.image = P.load_image(path, opts.max_side, mode)
        self.source_size: tuple[int, int] = read_image(path).size  # (width, height) of the file, for messages
        self.primitive, self.auto_edges = build_primitive(self.image, opts)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) the pair is trained at."""
        return self.image.shape[-1], self.image.shape[-2]

    def __len__(self) -> int:
        return self.options.epoch_length

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Tensor]:
        _, seed = key
        return {"A": self.primitive, "B": self.image, "auto_edges": self.auto_edges,
                "seed": torch.tensor(seed, dtype=torch.int64)}


def training_size(image: str | Path, max_side: int | None = None) -> tuple[int, int] | None:
    """(width, height) that this layout trains ``image`` at (``max_side``, then multiples of 16), from the
    file's header alone; None when the file is not there or not readable."""
    try:
        with Image.open(image) as img:
            return P.round_size(*img.size, max_side)
    except OSError:
        return None


@register_layout("single", options=parse_options, reads_file=True)
def single(root: Path, cfg: DataConfig, phase: str) -> SingleImage:
    from pixmorph.data.folders import image_mode  # here: folders imports the layout registry too

    return SingleImage(root, cfg.options, mode=image_mode(cfg))


# ---------------------------------------------------------------------------
# The built-in example: a scikit-image photo, its Canny edges and two edits of them.

EXAMPLE_PHOTO = "coffee"  # skimage.data.coffee(): public domain, 600 x 400
EXAMPLE_SIZE = (320, 208)


def _components(edges: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Connected edge strokes (8-connected) and their labels, largest first, leaving out strokes that
    touch the border."""
    from skimage.measure import label, regionprops

    labels = label(edges, connectivity=2)
    h, w = edges.shape
    inner = [r for r in regionprops(labels)
             if r.bbox[0] > 0 and r.bbox[1] > 0 and r.bbox[2] < h and r.bbox[3] < w]
    return labels, [r.label for r in sorted(inner, key=lambda r: -r.area)]


def example_paths(folder: str | Path) -> dict[str, Any]:
    """Where :func:`write_example` writes into ``folder`` (nothing is written here)."""
    folder = Path(folder)
    return {"image": folder / "image.png", "edges": folder / "edges.png",
            "edited": [folder / "edited_removed.png", folder / "edited_moved.png"]}


def write_example(folder: str | Path) -> dict[str, Any]:
    """Write the built-in example into ``folder`` (a file already there is kept: it may hold edits):
    ``image.png`` (scikit-image's coffee photo at 320 x 208), ``edges.png`` (its Canny edges at sigma 2,
    black on white) and two edited edge maps made from them:
    ``edited_removed.png`` (the longest inner stroke erased) and ``edited_moved.png`` (the second
    longest moved 24 px right and 8 px up). Returns their paths. Needs no download."""
    from skimage import data as skdata

    photo = Image.fromarray(getattr(skdata, EXAMPLE_PHOTO)()).resize(EXAMPLE_SIZE, Image.Resampling.LANCZOS)
    image = to_tensor(photo)
    edge_map = P.canny_edges(image[None])[0, 0]  # -1 on edges
    on = (edge_map < 0).numpy()
    labels, strokes = _components(on)
    if len(strokes) < 2:
        raise RuntimeError("the example photo gave fewer than two inner edge strokes")
    removed = on & (labels != strokes[0])
    moved = on & (labels != strokes[1])
    ys, xs = np.nonzero(labels == strokes[1])
    ys, xs = np.clip(ys - 8, 0, on.shape[0] - 1), np.clip(xs + 24, 0, on.shape[1] - 1)
    moved[ys, xs] = True

    def edge_image(mask: np.ndarray) -> Image.Image:
        return Image.fromarray(np.where(mask, 0, 255).astype(np.uint8), "L")

    paths = example_paths(folder)
    images = [(photo, paths["image"]), (edge_image(on), paths["edges"]),
              *((edge_image(mask), path) for mask, path in zip((removed, moved), paths["edited"]))]
    for image, path in images:
        if not path.exists():  # the same files every time: one that is there may hold the user's edits
            save_image(image, path)
    return paths

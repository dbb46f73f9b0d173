"""Primitives of an image for DeepSIM: edge maps, segmentations, and both stacked.

A primitive is a CHW tensor in [-1, 1]:

* ``edges``: 1 channel, black lines (-1) on white (+1), as people draw them. Computed ones come from
  kornia's Canny on the device of the image (thresholds 0.1/0.2 on kornia's gradient magnitude, sigma 2
  at test time as in the paper), so training-time Canny-sigma augmentation and ``--edges auto`` draw the
  same kind of lines.
* ``seg``: 3 channels, a colour-coded segmentation. Files of label indices (single-channel, a few
  distinct values) are coloured with :data:`PALETTE`; computed ones are SLIC superpixels (scikit-image)
  coloured the same way.
* ``seg+edges``: the segmentation's 3 channels then the edge channel (4 channels).

Sizes: an image is scaled so its longer side is at most ``max_side`` (when given), then each side is
rounded to the nearest multiple of 16 (the global generator's stride); its primitive gets that size
too (nearest-neighbour for segmentations, so colours stay labels).
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from pixmorph.images import read_image, to_tensor

KINDS = ("edges", "seg", "seg+edges")
CHANNELS = {"edges": 1, "seg": 3, "seg+edges": 4}
MULTIPLE = 16
CANNY_LOW, CANNY_HIGH = 0.1, 0.2  # on kornia's (unnormalised Sobel) gradient magnitude of a [0, 1] image
TEST_SIGMA = 2.0
MAX_LABELS = 256


@functools.lru_cache(maxsize=2)
def _palette(n: int = MAX_LABELS) -> np.ndarray:
    """``n`` saturated colours (golden-ratio hues, alternating lightness; from 256 on, hues from a hash of
    the index, which spreads 16-bit ids such as 1000, 2000, ... too), each a function of its index alone, so
    a label keeps its colour whatever other labels a file holds; label 0 is black."""
    import colorsys
    import hashlib

    colours = [(0, 0, 0)]
    for i in range(1, n):
        h = (i * 0.618033988749895) % 1.0 if i < MAX_LABELS else int.from_bytes(
            hashlib.blake2b(i.to_bytes(4, "little"), digest_size=4).digest(), "little") / 2**32
        r, g, b = colorsys.hsv_to_rgb(h, 0.85 if i % 2 else 0.6, 0.95 if i % 3 else 0.7)
        colours.append((round(255 * r), round(255 * g), round(255 * b)))
    return np.array(colours, dtype=np.uint8)


PALETTE = _palette()


def round_size(width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
    """(width, height) scaled to a longer side of at most ``max_side``, each rounded to a multiple of 16."""
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0

    def r(v: float) -> int:
        return max(MULTIPLE, math.floor(v * scale / MULTIPLE + 0.5) * MULTIPLE)

    return r(width), r(height)


def load_image(path: str | Path, max_side: int | None = None, mode: str = "RGB") -> Tensor:
    """An image file (RGBA composited over white, grayscale, ...) as CHW in [-1, 1], at the rounded size."""
    img = read_image(path, mode=mode)
    size = round_size(*img.size, max_side)
    if img.size != size:
        img = img.resize(size, Image.Resampling.BICUBIC)
    return to_tensor(img)


# ---------------------------------------------------------------------------
# Edges


def canny_edges(images: Tensor, sigma: float | Tensor = TEST_SIGMA) -> Tensor:
    """Canny edges of NCHW images in [-1, 1] (RGB or gray) as N x 1 x H x W: -1 on edges, +1 elsewhere.

    ``sigma``: one value, or one per image (a tensor of N values). Runs on the images' device, in float32."""
    from kornia.filters import canny

    n = images.shape[0]
    sigmas = [float(s) for s in torch.as_tensor(sigma, dtype=torch.float32).flatten().expand(n)]
    with torch.autocast(images.device.type, enabled=False):
        x = (images.float() + 1) / 2
        parts = []
        for i, s in enumerate(sigmas):
            if i and s == sigmas[i - 1]:
                continue
            j = i + 1
            while j < n and sigmas[j] == s:  # runs of equal sigma go through together
                j += 1
            radius = min(math.ceil(3 * s), (min(x.shape[-2:]) - 1) // 2)  # reflection padding needs a smaller kernel
            parts.append(canny(x[i:j], CANNY_LOW, CANNY_HIGH, kernel_size=2 * radius + 1, sigma=(s, s))[1])
        edges = torch.cat(parts)
    return 1 - 2 * (edges > 0.5).float()


EDGE_INK = 0.3  # a pixel at least this much covered by a line (0: white, 1: black) is a line pixel


def binarize_edges(edges: Tensor) -> Tensor:
    """Edge maps in [-1, 1] made black (-1) where a line covers at least :data:`EDGE_INK` of a pixel, white (+1)
    elsewhere: DeepSIM's binary threshold, for maps greyed by warping. Below mid-grey, so that a 1-px line
    sampled half a pixel off (two pixels half covered) stays a line instead of vanishing."""
    return torch.where(edges <= 1 - 2 * EDGE_INK, -1.0, 1.0).to(edges.dtype)


def load_edges(path: str | Path, size: tuple[int, int]) -> Tensor:
    """An edge-map file (any mode; RGBA composited over white) as 1 x H x W at ``size`` (width, height), black
    and white, as training and editing both read it. Resized as line art: an output pixel is a line pixel when
    any line pixel falls in it (a smooth resize greys 1-px lines away when shrinking: a quarter of the ink at
    half size)."""
    img = read_image(path, mode="L")
    edges = binarize_edges(to_tensor(img))
    if img.size != size:
        ink = (edges < 0).float()[None]
        edges = 1 - 2 * F.adaptive_max_pool2d(ink, (size[1], size[0]))[0]
    return edges


# ---------------------------------------------------------------------------
# Segmentations


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """An H x W array of label indices (0..65535; :data:`PALETTE` below 256) as an H x W x 3 colour-coded
    uint8 image."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= 65536):
        raise ValueError(f"label indices must be in 0..65535, got {labels.min()}..{labels.max()}")
    table = PALETTE if not labels.size or labels.max() < MAX_LABELS else _palette(65536)
    return table[labels.astype(np.int64)]


def superpixels(image: Tensor, segments: int = 24) -> np.ndarray:
    """SLIC superpixels (scikit-image) of a CHW image in [-1, 1]: an H x W array of labels from 0."""
    from skimage.segmentation import slic

    array = ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    channel_axis = None if array.shape[2] == 1 else -1
    labels = slic(array[..., 0] if channel_axis is None else array, n_segments=segments, compactness=10.0,
                  start_label=0, channel_axis=channel_axis)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape) % MAX_LABELS


LABEL_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "1")  # single-channel modes a label map can be stored in


def label_indices(img: Image.Image, name: str | Path) -> np.ndarray | None:
    """The label indices of a single-channel image with few distinct values, else None (a colour image);
    ``name``: what the error calls it."""
    if img.mode not in LABEL_MODES:
        return None
    labels = np.array(img)
    values = np.unique(labels)
    if len(values) > MAX_LABELS or values.max() >= 65536:
        raise ValueError(f"{name}: a single-channel segmentation needs label indices (at most {MAX_LABELS} "
                         f"distinct values), found {len(values)}; give a colour-coded segmentation instead")
    # Indices as stored (0, 1, 2, ...; or spread out for viewing, 0, 40, 80, ...; or 16-bit ids): each value
    # is one label with one colour, so an edit that removes a label leaves the others' colours as they were.
    return labels.astype(np.int64)


def seg_image(img: Image.Image, name: str | Path = "<image>") -> Image.Image:
    """An in-memory segmentation as the RGB image a seg model takes: label indices coloured as training
    colours them, anything else by the usual rules (8-bit RGB, alpha over white)."""
    from pixmorph.images import as_rgb

    labels = label_indices(img, name)
    return Image.fromarray(colour_labels(labels)) if labels is not None else as_rgb(img)


Source = str | Path | Image.Image  # a primitive file, or an image in memory (pixmorph.load(run)(image))


def source_name(source: Source) -> str:
    """What messages call a primitive: its file; an image in memory by the file it was opened from, else
    ``<image>``."""
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or "<image>"
    return str(source)


def opened(source: Source) -> contextlib.AbstractContextManager[Image.Image]:
    """The image as stored (its own mode and alpha), opened from a file or as it is in memory."""
    return contextlib.nullcontext(source) if isinstance(source, Image.Image) else Image.open(source)


def read_source(source: Source, mode: str = "RGB") -> Image.Image:
    """An 8-bit image in ``mode``, read as every file is read (alpha over white, 16 bits scaled)."""
    from pixmorph.images import as_rgb

    if isinstance(source, Image.Image):
        return as_rgb(source).convert(mode)
    return read_image(source, mode=mode)


def _label_map(source: Source) -> np.ndarray | None:
    """:func:`label_indices` of a file or an image in memory."""
    with opened(source) as img:
        return label_indices(img, source_name(source))


def check_opaque_seg(source: Source) -> None:
    """A one-line error when a segmentation (a file, or an image in memory) has transparent pixels (alpha below
    128): a segmentation is its colours, and its alpha would be composited over white; seg+edges takes its edge
    map as a second file, never from the alpha channel. Nearly opaque files (the paper's car, alpha >= 253)
    pass."""
    with opened(source) as img:
        if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
            return
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
    if (alpha < 128).any():
        raise ValueError(f"{source_name(source)}: a segmentation with transparent pixels (alpha channel); expected "
                         f"flat region colours (RGB) or label indices, fully opaque. For seg+edges give the edge map "
                         f"as its own file (--edges EDGES.png), not as alpha")


def load_seg(path: str | Path, size: tuple[int, int]) -> Tensor:
    """A segmentation file (colour-coded, or label indices) as 3 x H x W at ``size`` (nearest-neighbour)."""
    path = Path(path)
    read_image(path)  # the checks and one-line errors of every image read
    check_opaque_seg(path)
    labels = _label_map(path)
    img = Image.fromarray(colour_labels(labels)) if labels is not None else read_image(path, mode="RGB")
    if img.size != size:
        img = img.resize(size, Image.Resampling.NEAREST)
    return to_tensor(img)


def looks_like_edges(source: Source) -> bool:
    """A guess at a file's (or an image's) kind: edges when it is gray on a light (or dark) ground and the rest
    of it, its lines, anti-aliased or not (an edge map drawn with a soft brush or resized), is thin strokes;
    coloured files, small label indices (0, 1, 2: a mask stored as indices) and gray files of solid regions (a
    0/255 mask) are segmentations."""
    a = np.asarray(read_source(source)).astype(np.int16)
    if _coloured(a):  # a segmentation
        return False
    with opened(source) as raw:
        bilevel = raw.mode == "1"  # a 1-bit file reads as 0 / 1: black and white, not indices
    try:
        labels = None if bilevel else _label_map(source)
    except ValueError:  # too many gray levels for label indices: a gray image, which the rest of the guess reads
        labels = None
    if labels is not None and labels.max() < 32:
        return False  # small indices (invisible as an image): a label map
    gray = a[..., 0]
    if (gray > 191).mean() >= 0.5:  # a light ground: every pixel that is not near white is ink
        return _thin(gray <= 191)
    if (gray < 64).mean() >= 0.5:  # white lines on black; none at all: dark labels (16-bit ids 1000, 2000, ...)
        return bool((gray >= 64).any()) and _thin(gray >= 64)
    return False  # mostly mid-gray: regions, not lines


def looks_like_inverted_edges(source: Source) -> bool:
    """Whether a file (or an image) is an edge map of white lines on a black ground (OpenCV's Canny writes them
    so): the other way round from the black lines on white that edge maps are read as."""
    return bool((np.asarray(read_source(source, mode="L")) < 64).mean() >= 0.5) and looks_like_edges(source)


PHOTO_COLOURS = 4096  # more distinct colours than this, most pixels outside the commonest 64: a photo


def looks_like_photo(source: Source) -> bool:
    """Whether a file (or an image) given as a segmentation looks like a photo: more than :data:`PHOTO_COLOURS`
    colours, and most of its pixels outside its 64 commonest. A segmentation is a few flat colours, and its
    anti-aliased or JPEG-noisy borders add many colours but few pixels (the paper's car: 2,134 colours, 98% of its
    pixels in 64; as a JPEG, 76%)."""
    rgb = np.asarray(read_source(source)).astype(np.int32)
    counts = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2], return_counts=True)[1]
    return len(counts) > PHOTO_COLOURS and np.sort(counts)[-64:].sum() < 0.6 * counts.sum()


def is_colour(source: Source) -> bool:
    """Whether an image file (or an image) is in colour (not gray, give or take a JPEG's noise)."""
    return _coloured(np.asarray(read_source(source)).astype(np.int16))


def _coloured(rgb: np.ndarray) -> bool:
    return bool(np.abs(rgb - rgb[..., :1]).max() > 8)


def _thin(lines: np.ndarray) -> bool:
    """Whether most of ``lines`` (a mask) is strokes a few pixels wide: few of its pixels survive an erosion
    by a 7 x 7 square, where a region's interior would."""
    if not lines.any():
        return True
    from scipy.ndimage import binary_erosion

    return bool(binary_erosion(lines, np.ones((7, 7), bool)).sum() < 0.2 * lines.sum())

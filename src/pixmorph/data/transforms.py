"""Training augmentation (resize, random crop, random flip) and full-size inference padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor
from torchvision.transforms import InterpolationMode

from pixmorph.images import to_tensor


class TrainTransform:
    """Resize to ``load_size`` square (or, with ``keep_aspect``, the shorter side to ``load_size``, as FUNIT's
    reference does), crop ``crop_size`` square at a random place, flip half the time.

    The randomness comes from the generator passed in, so a sample is a pure function of its seed
    (what makes resumed runs exact), and images of a pair get the same crop and flip.
    """

    def __init__(self, load_size: int, crop_size: int, flip: bool = True, keep_aspect: bool = False):
        if crop_size > load_size:
            raise ValueError(f"crop_size {crop_size} is larger than load_size {load_size}")
        self.load_size, self.crop_size, self.flip, self.keep_aspect = load_size, crop_size, flip, keep_aspect

    def __call__(self, images: list[Image.Image], generator: torch.Generator) -> list[Tensor]:
        images = [self._resized(img) for img in images]
        width, height = images[0].size
        top = int(torch.randint(0, height - self.crop_size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - self.crop_size + 1, (1,), generator=generator))
        flip = self.flip and bool(torch.rand(1, generator=generator) < 0.5)
        out = []
        for img in images:
            img = TF.crop(img, top, left, self.crop_size, self.crop_size)
            if flip:
                img = TF.hflip(img)
            out.append(to_tensor(img))
        return out

    def _resized(self, img: Image.Image) -> Image.Image:
        if self.keep_aspect:
            if min(img.size) == self.load_size:
                return img
            return TF.resize(img, self.load_size, InterpolationMode.BICUBIC)  # the shorter side
        if img.size == (self.load_size, self.load_size):
            return img
        return TF.resize(img, [self.load_size, self.load_size], InterpolationMode.BICUBIC)


def resize_tensor(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bicubic resize of an NCHW batch (antialiased when shrinking), in float32 (the CPU's antialiased
    bicubic has no bf16 kernel) and returned in ``x``'s dtype."""
    size = (size, size) if isinstance(size, int) else size
    resized = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    return resized.clamp(-1, 1).to(x.dtype)


def pad_to_multiple(x: Tensor, multiple: int, min_size: int = 1) -> tuple[Tensor, tuple[int, int]]:
    """Pad an NCHW batch at the bottom/right to a multiple of ``multiple`` and at least ``min_size``;
    returns it and the original size."""
    h, w = x.shape[-2:]
    ph, pw = max(-h % multiple, min_size - h), max(-w % multiple, min_size - w)
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection looks natural at the border but needs the pad to be smaller than the image.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_back(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x[..., : size[0], : size[1]]

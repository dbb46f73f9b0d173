"""The Python API: ``pixmorph.load(checkpoint)`` gives a :class:`Translator`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch
from PIL import Image
from torch import Tensor

from pixmorph.config import RunConfig
from pixmorph.data.transforms import crop_back, pad_to_multiple, resize_tensor
from pixmorph.images import as_rgb, to_pil, to_tensor
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import build_method, resolve_device

ImageLike = Union[Image.Image, Tensor]


class Translator:
    """Translates PIL images or tensors (CHW or NCHW in [-1, 1]) and returns the same kind.

    ``size=None`` translates at full size (padded to the generator's stride and cropped back);
    ``size=N`` resizes to N x N first and returns N x N.
    """

    def __init__(self, method, config: RunConfig, device: torch.device, step: int):
        self.method, self.config, self.device, self.step = method, config, device, step
        self.generators = method.translators()
        self.image_mode = "L" if config.data.channels == 1 else "RGB"  # what PIL inputs are converted to
        method.nets.to(device).eval()

    @property
    def directions(self) -> list[str]:
        return list(self.generators)

    def __call__(self, images: ImageLike | Sequence[ImageLike], direction: str = "AtoB", size: int | None = None,
                 batch_size: int = 8) -> ImageLike | list[ImageLike]:
        if isinstance(images, Tensor):
            batch = images.unsqueeze(0) if images.dim() == 3 else images
            out = torch.cat([self.translate_batch(batch[i : i + batch_size], direction, size)
                             for i in range(0, batch.shape[0], batch_size)])
            return out[0] if images.dim() == 3 else out
        if isinstance(images, Image.Image):
            return self([images], direction, size)[0]
        if all(isinstance(x, Tensor) for x in images):
            return [self(x, direction, size, batch_size) for x in images]
        return [to_pil(self.translate_batch(to_tensor(as_rgb(img).convert(self.image_mode)).unsqueeze(0), direction, size)[0])
                for img in images]

    @torch.no_grad()
    def translate_batch(self, batch: Tensor, direction: str = "AtoB", size: int | None = None) -> Tensor:
        """One NCHW batch of equal-sized images in [-1, 1] -> translated batch on the CPU."""
        try:
            generator = self.generators[direction]
        except KeyError:
            raise ValueError(f"direction {direction!r}: this {self.config.method} checkpoint has {', '.join(self.generators)}") from None
        x = batch.to(self.device, torch.float32)
        if size is not None:
            x = resize_tensor(x, size)
        x, original = pad_to_multiple(x, generator.stride, getattr(generator, "min_size", 1))
        return crop_back(generator(x), original).float().cpu()


def load(checkpoint: str | Path, device: str = "cpu") -> Translator:
    """Load a run folder or checkpoint folder for translation."""
    folder = ckpt.find_checkpoint(checkpoint)
    saved = ckpt.read_config(folder)
    config = RunConfig.from_dict(saved["run"])
    method = build_method(config)
    ckpt.load_weights(folder, method.nets)
    return Translator(method, config, resolve_device(device), int(saved.get("step", 0)))

"""Few-shot translation with a FUNIT checkpoint: ``load_fewshot(ckpt)(content, class_images)``.

The class code is the mean over the K class images (any K >= 1, any sizes: each image is resized to the
training size and encoded on its own); they may be given as files, folders of them (as ``--class-images``
takes them), PIL images or tensors. Images are converted to the model's channels (grayscale class
images for an RGB model are fine, and the reverse). Content images are translated at the training size
by default, or at ``size``.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Sequence, Union

import torch
from PIL import Image
from torch import Tensor

from pixmorph.api import Translator, check_image_tensor, check_size, load, not_an_image
from pixmorph.data.transforms import crop_back, pad_to_multiple, resize_tensor
from pixmorph.images import (check_images, files_and_folders, list_images, read_image, to_pil, to_tensor,
                             warn_of_images_in_subfolders)

ImageLike = Union[Image.Image, Tensor, str, os.PathLike]


class FewShotTranslator:
    """Wraps a loaded FUNIT checkpoint. ``class_code(images)`` and ``__call__(content, class_images)``."""

    def __init__(self, translator: Translator):
        if translator.config.method != "funit":
            method = translator.config.method
            command, python = (("pixmorph edit", "deepsim.render(CKPT, files)") if method == "deepsim"
                               else ("pixmorph translate", "pixmorph.load(CKPT)"))
            raise ValueError(f"{translator.checkpoint or 'this checkpoint'}: a {method} checkpoint; few-shot "
                             f"translation needs a funit one (use `{command}` for {method}, or {python} from Python)")
        self.translator = translator
        self.generator = translator.method.nets["G_ema"]
        self.device = translator.device
        self.image_size = int(translator.config.data.crop_size or 128)
        self.mode = translator.image_mode

    def __repr__(self) -> str:
        t = self.translator
        where = f", from {t.checkpoint}" if t.checkpoint else ""
        return (f"FewShotTranslator(funit, step {t.step}, {self.image_size} px; {t.device}, {t.runtime} "
                f"{t.precision}{where})")

    @functools.cached_property
    def source_files(self) -> dict[str, set]:
        """The training (source) classes' names and files (resolved), read once from the training data;
        empty when the data is not here any more."""
        from pixmorph.data.fewshot import split_classes
        from pixmorph.data.resolve import resolve_root

        data = self.translator.config.data
        try:
            root, _ = resolve_root(data.root)
            source = split_classes(root, data.options).source
        except Exception:  # the training data is not here any more: nothing to compare with
            return {"classes": set(), "files": set()}
        return {"classes": set(source), "files": {p.resolve() for files in source.values() for p in files}}

    def _tensor(self, image: ImageLike) -> Tensor:
        """One CHW tensor in [-1, 1] with the model's channels."""
        if not isinstance(image, (Image.Image, Tensor, str, os.PathLike)):
            raise TypeError(not_an_image(image))
        if isinstance(image, (str, os.PathLike)):
            image = read_image(image, mode=self.mode)
        if isinstance(image, Image.Image):
            image = to_tensor(image.convert(self.mode))
        check_image_tensor(image)
        x = image.float()
        if x.dim() == 4 and x.shape[0] == 1:
            x = x[0]
        if x.dim() != 3:
            raise ValueError(f"expected one C x H x W image, got a tensor of shape {tuple(image.shape)}")
        channels = 1 if self.mode == "L" else 3
        if x.shape[0] != channels:
            x = x.mean(0, keepdim=True) if channels == 1 else x.expand(3, -1, -1)
        return x

    def class_code(self, class_images: ImageLike | Sequence[ImageLike]) -> Tensor:
        """The mean code of K >= 1 images of one class (1 x latent_dim); their order does not matter. Images: one
        or a sequence of files, folders (their images), PIL images and CHW tensors, or an NCHW tensor. Files of
        one of the model's training (source) classes give a warning: that is not a few-shot test."""
        return self._class_code(class_images)

    def _class_code(self, class_images: ImageLike | Sequence[ImageLike]) -> Tensor:
        """:meth:`class_code` for it and for ``__call__``: its warnings point at their caller's line (stacklevel 3)."""
        class_images = _image_items(class_images, "use", stacklevel=4)
        class_images, repeated = once_each(class_images)
        if repeated:
            warnings.warn(repeated_note(repeated, len(class_images)), stacklevel=3)
        if len(class_images) == 0:
            raise ValueError("K = 0: few-shot translation needs at least one image of the target class")
        files = [Path(im) for im in class_images if isinstance(im, (str, os.PathLike))]
        warn_if_source_class(self, files, stacklevel=4)
        t = self.translator
        with torch.no_grad(), t.autocast():  # (not a decorator: its frame would count in the stacklevels above)
            codes = [self.generator.class_code(t.layout(resize_tensor(self._tensor(im)[None].to(self.device), self.image_size)))
                     for im in class_images]
        return torch.cat(codes).float().mean(0, keepdim=True)

    @torch.no_grad()
    def translate_code(self, content: Tensor, code: Tensor, size: int | None = None) -> Tensor:
        """NCHW content batch (one size) and a class code -> translated batch on the CPU."""
        x = content.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        x = resize_tensor(x, size or self.image_size)
        x, original = pad_to_multiple(x, self.generator.stride, self.generator.min_size)
        with self.translator.autocast():
            y = self.generator.decode(self.generator.content_encoder(self.translator.layout(x)), code.expand(x.shape[0], -1))
        return crop_back(y, original).float().contiguous().cpu()

    def __call__(self, content: ImageLike | Sequence[ImageLike], class_images: ImageLike | Sequence[ImageLike],
                 size: int | None = None, batch_size: int = 8) -> list[Image.Image] | Tensor:
        """Translate content image(s) into the class shown by ``class_images`` (K images as :meth:`class_code`
        takes them, or a code from it, 1 x latent_dim, to reuse). A tensor in -> a tensor out (C x S x S for a CHW
        image, N x C x S x S for a batch), as :class:`pixmorph.api.Translator` gives them; PIL images, files or
        folders (their images, in :func:`~pixmorph.images.list_images`'s order) in -> a list of PIL images, one per
        image. ``batch_size`` content images share a generator call."""
        check_size(size)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: give 1 or more")
        is_code = isinstance(class_images, Tensor) and (class_images.dim() == 1 or (class_images.dim() == 2 and
                                                                                   class_images.shape[0] == 1))
        code = class_images.reshape(1, -1).float() if is_code else self._class_code(class_images)
        if code.shape[1] != self.translator.method.cfg.latent_dim:
            raise ValueError(f"a class code of {code.shape[1]} values; this model's codes have "
                             f"{self.translator.method.cfg.latent_dim} (class_code(images) makes one)")
        if isinstance(content, Tensor):
            check_image_tensor(content)
            batch = content[None] if content.dim() == 3 else content
            channels = 1 if self.mode == "L" else 3
            if batch.shape[1] != channels:  # as the translator refuses them (PIL content images are converted)
                raise ValueError(f"this funit model takes {channels}-channel images and got {batch.shape[1]}-channel "
                                 f"ones (a tensor of shape {tuple(content.shape)})")
            translated = torch.cat([self.translate_code(batch[i : i + batch_size], code, size)
                                    for i in range(0, max(len(batch), 1), batch_size)])
            return translated[0] if content.dim() == 3 else translated
        if not isinstance(content, (Image.Image, str, os.PathLike, list, tuple)):
            raise TypeError(not_an_image(content))
        items = _image_items(content, "translate", stacklevel=3)
        side = size or self.image_size
        out: list[Image.Image] = []
        for i in range(0, len(items), batch_size):  # resized here so that images of any size share a batch
            chunk = items[i : i + batch_size]
            batch = torch.cat([resize_tensor(self._tensor(c)[None].to(self.device), side) for c in chunk])
            out.extend(to_pil(y) for y in self.translate_code(batch, code, size))
        return out


def _image_items(images: ImageLike | Sequence[ImageLike], use: str, stacklevel: int) -> list[ImageLike]:
    """Class or content images one by one: a lone file, folder, PIL image or CHW tensor is one item (a path is not a
    sequence of characters), a folder stands for its images (as ``pixmorph fewshot`` lists them), an NCHW tensor for
    its N images, and images in its subfolders are warned of as left out (``use``: what moving them up would do;
    ``stacklevel``: the user's line, counted from here). The files, given or in folders, are checked as ``pixmorph
    fewshot`` checks them: a bad one stops the call, naming the others."""
    if isinstance(images, Tensor):
        check_image_tensor(images)  # an H x W image (not a code, whatever its size) or 5-d: said as the shape given
    if isinstance(images, (str, os.PathLike, Image.Image)) or (isinstance(images, Tensor) and images.dim() == 3):
        images = [images]
    items: list[ImageLike] = []
    for image in images:
        if isinstance(image, (str, os.PathLike)) and Path(image).is_dir():
            items.extend(list_images(image))
            warn_of_images_in_subfolders(image, use, stacklevel=stacklevel)
        else:
            items.append(image)
    check_images([x for x in items if isinstance(x, (str, os.PathLike))])
    return items


def once_each(images: Sequence[ImageLike]) -> tuple[list[ImageLike], list[ImageLike]]:
    """Class images with each file once (the same file named twice, or by name and in its folder, would weigh twice
    in the mean code), and the repeats left out."""
    seen: set[Path] = set()
    kept: list[ImageLike] = []
    repeated: list[ImageLike] = []
    for image in images:
        key = Path(image).resolve() if isinstance(image, (str, os.PathLike)) else None
        if key is not None and key in seen:
            repeated.append(image)
            continue
        seen.add(key)
        kept.append(image)
    return kept, repeated


def repeated_note(repeated: Sequence[ImageLike], k: int) -> str:
    more = f" and {len(repeated) - 1} more" if len(repeated) > 1 else ""
    return f"class image {repeated[0]}{more} given more than once: each counted once (K = {k})"


def load_fewshot(checkpoint: str | Path, device: str = "cpu", precision: str = "auto") -> FewShotTranslator:
    """Load a FUNIT run folder or checkpoint folder for few-shot translation; ``precision`` as in
    :func:`pixmorph.load` (``auto``: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32)."""
    return FewShotTranslator(load(checkpoint, device=device, precision=precision))


def class_image_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Files and folders (their images) -> the list of class image files."""
    files = files_and_folders(inputs, "use", stacklevel=2)
    if not files:
        raise ValueError("K = 0: no class images given (--class-images FILES_OR_DIR)")
    return files


def source_class_overlap(translator: FewShotTranslator, class_files: Sequence[Path]) -> str | None:
    """A warning text when the class images come from the model's training (source) classes, else None."""
    trained = translator.source_files
    seen = sorted({f.parent.name for f in class_files if f.resolve() in trained["files"]})
    named = sorted({f.parent.name for f in class_files} & trained["classes"])
    if seen or named:
        return (f"the class image(s) of {', '.join(seen or named)} come from a source class this model was trained on: "
                "this is not a few-shot test of an unseen class")
    return None


def warn_if_source_class(translator: FewShotTranslator, class_files: Sequence[Path], stacklevel: int = 2) -> None:
    """The :func:`source_class_overlap` warning, if any; ``stacklevel`` as ``warnings.warn`` takes it, counted
    from the caller of this function (2: that caller's caller)."""
    message = source_class_overlap(translator, class_files)
    if message:
        warnings.warn(message, stacklevel=stacklevel)

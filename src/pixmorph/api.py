"""The Python API: ``pixmorph.load(checkpoint)`` gives a :class:`Translator`."""

from __future__ import annotations

import functools
import numbers
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable, Iterable, Sequence, Union

import torch
from PIL import Image
from torch import Tensor

from pixmorph.config import RunConfig
from pixmorph.data.transforms import crop_back, pad_to_multiple, resize_tensor
from pixmorph.images import as_rgb, check_images, read_image, to_pil, to_tensor
from pixmorph.nn.norm import normalise_per_image
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import build_method, resolve_device
from pixmorph.train.speed import bf16_is_fast

if TYPE_CHECKING:
    from pixmorph.latent import LatentModel

ImageLike = Union[Image.Image, Tensor, str, os.PathLike]  # a path is read as `pixmorph translate` reads it
IMAGE_TYPES = (Image.Image, str, os.PathLike)  # what a list may hold besides tensors
RUNTIMES = ("torch", "onnx")
RANGE_SLACK = 1.5  # tensor values beyond +-1.5 are not images in [-1, 1]
INFERENCE_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is bf16 where it is faster (CUDA with bf16, a CPU with AMX or AVX512-BF16), fp16 on other CUDA GPUs and
    fp32 on other CPUs, where half precision is slower than float32."""
    if precision == "auto":
        if bf16_is_fast(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use auto, fp32, bf16 or fp16")
    return precision


class Translator:
    """Translates PIL images or tensors (CHW or NCHW in [-1, 1]) and returns the same kind; image files
    (``str`` or ``Path``) are read as ``pixmorph translate`` reads them and come back as PIL images.

    ``size=None`` translates at full size (padded to the generator's stride and cropped back);
    ``size=N`` resizes to N x N first and returns N x N.

    Speed: ``precision`` (``auto``: see :func:`resolve_precision`) runs the PyTorch generators under
    autocast, ``channels_last`` (``None`` = on CUDA, and on the CPU in bf16, where oneDNN's convolutions
    work in channels_last) picks the memory layout, and
    ``runtime="onnx"`` runs them with ONNX Runtime instead (see :mod:`pixmorph.export`).
    """

    def __init__(self, method, config: RunConfig, device: torch.device, step: int, precision: str = "auto",
                 channels_last: bool | None = None, image_size: Sequence[int] | None = None,
                 checkpoint: Path | None = None, batch_norm_per_image: bool | None = None):
        self.method, self.config, self.device, self.step = method, config, device, step
        self.checkpoint = checkpoint  # the folder the weights came from: what ONNX files are checked against
        self.image_size = tuple(image_size) if image_size else None  # (width, height) of a one-size dataset
        self.generators = method.translators()
        self.input_channels = {d: _input_channels(g) for d, g in self.generators.items()}  # what translate_batch takes
        self.image_mode = "L" if config.data.channels == 1 else "RGB"  # what PIL inputs are converted to
        self.precision = resolve_precision(precision, device)
        if channels_last is None:
            channels_last = device.type == "cuda" or self.precision == "bf16"
        self.channels_last = channels_last
        self.runtime = "torch"
        method.nets.to(device).eval()
        if batch_norm_per_image is None:  # a checkpoint that does not say: as its last run's batch
            batch_norm_per_image = config.train.batch_size == 1
        normalise_per_image(method.nets, batch_norm_per_image)
        if self.channels_last:
            method.nets.to(memory_format=torch.channels_last)

    def __repr__(self) -> str:
        where = f", from {self.checkpoint}" if self.checkpoint else ""
        return (f"Translator({self.config.method}, step {self.step}, directions: {', '.join(self.directions)}; "
                f"{self.device}, {self.runtime} {self.precision}{where})")

    def use_onnx(self, prefix: str | Path | None = None, direction: str | None = None) -> "Translator":
        """Run the generators with ONNX Runtime: from the files ``pixmorph export --onnx PREFIX`` wrote (``PREFIX``
        or one of those files), or (``prefix=None``) exported now into a temporary folder. ``direction``: only
        that direction's file is loaded (the others need not be there), and only that direction translates.

        Files exported from another checkpoint are refused; files exported before pixmorph recorded their
        checkpoint load with a warning that they cannot be checked."""
        from pixmorph.export import (OnnxGenerator, check_batch, check_onnx_channels, check_onnx_size, check_onnx_source,
                                     checkpoint_source, direction_file, export_generator, missing_direction_file,
                                     onnx_prefix, require)

        require("onnxruntime")
        directions = self.directions if direction is None else [direction]
        self.generator(directions[0])  # an unknown direction: one line naming those there are
        given = prefix is not None
        if given:
            named = Path(prefix)
            prefix = onnx_prefix(prefix, self.directions)
            if prefix == named and (missing := missing_direction_file(named, self.directions, self.config.method)):
                raise FileNotFoundError(missing)  # else it would be looked for as model.BtoA.AtoB.onnx
            if named.is_file() and prefix == named and not any(direction_file(prefix, d).is_file()
                                                             for d in self.directions):
                raise FileNotFoundError(f"{named}: not an export of this {self.config.method} checkpoint's "
                                        f"directions ({', '.join(self.directions)}): pixmorph export CKPT --onnx "
                                        f"PREFIX writes PREFIX.<direction>.onnx for each")
        else:
            self._onnx_dir = tempfile.TemporaryDirectory(prefix="pixmorph-onnx-")  # removed with the translator
            prefix = Path(self._onnx_dir.name) / "model.onnx"
            for d in directions:  # traced at the training size, as `pixmorph export` does
                g = self.generators[d]
                export_generator(g, direction_file(prefix, d), check_batch(g, self.training_size, batch=1))
            self.method.nets.to(self.device)  # export moved them to the CPU
        from pixmorph.methods.deepsim import PrimitiveRenderer

        source = (checkpoint_source(self.checkpoint, self.config.method, self.step)
                  if given and self.checkpoint is not None else None)
        onnx, unchecked = {}, []
        # the files that are there first: one exported from another checkpoint is the mistake to name, rather than
        # a file of another direction that its export never wrote (a pix2pix model.AtoB.onnx given to a CycleGAN)
        for d in sorted(directions, key=lambda d: not direction_file(prefix, d).is_file()):
            g = self.generators[d]
            onnx[d] = OnnxGenerator(direction_file(prefix, d), self.device, stride=getattr(g, "stride", 1),
                                    min_size=getattr(g, "min_size", 1), gray_rgb=isinstance(g, PrimitiveRenderer))
            if source is not None and not check_onnx_source(onnx[d], source, d):
                unchecked.append(str(onnx[d].path))
        onnx = {d: onnx[d] for d in directions}  # in the checkpoint's order
        if given:  # files from `pixmorph export`: of this checkpoint, or at least with its image channels
            if unchecked:
                warnings.warn(f"{', '.join(unchecked)}: exported without a record of its checkpoint (before pixmorph "
                              "kept one): not checked to come from this one (re-export to check)", stacklevel=2)
            for d in directions:
                check_onnx_channels(onnx[d], self.generators[d], d, self.config.method)
                check_onnx_size(onnx[d], self.generators[d])
        self.generators = onnx
        self.runtime = "onnx"
        self.precision, self.channels_last = "fp32", False  # what the exported files run (auto had said bf16)
        return self

    @property
    def training_size(self) -> tuple[int, int]:
        """(height, width) the generators were trained at: DeepSIM's image, else the square crop (256 when
        the config does not say)."""
        if self.image_size:
            return self.image_size[1], self.image_size[0]
        side = self.config.data.crop_size or 256
        return side, side

    @property
    def directions(self) -> list[str]:
        """What ``direction`` may be: AtoB, BtoA, reconstruct (FUNIT, two-step), to:CLASS (two-step)."""
        return list(self.generators)

    @property
    def latent(self) -> LatentModel:
        """A two-step model's encoder and generator (encode, classify, translate, reconstruct, sample) on this
        translator's device and in its precision: a :class:`pixmorph.latent.LatentModel`."""
        from pixmorph.latent import LatentModel

        return LatentModel(self)

    def direction_note(self) -> str:
        """What a model's direction names mean when its data were read the other way round (pix2pix trained with
        data.options.direction=BtoA: its one direction is called AtoB, from the input to the output)."""
        if (self.config.data.options or {}).get("direction") == "BtoA":
            return " (trained B -> A with data.options.direction=BtoA: AtoB is input -> output, B half -> A half)"
        if self.config.method == "funit":  # its classes are shown by example images, not named
            return (" (to render images as a class, give K images of it: pixmorph fewshot CKPT --content IMG... "
                    "--class-images FILES_OR_DIR --out DIR; from Python "
                    "pixmorph.fewshot.load_fewshot(CKPT)(content, class_images))")
        return ""

    def default_direction(self) -> str:
        """The direction when none is given: AtoB, or a model's only one (FUNIT reconstructs, DeepSIM
        renders); a two-step model translates to a class, which has to be named."""
        if "AtoB" in self.generators or len(self.generators) == 1:
            return "AtoB" if "AtoB" in self.generators else self.directions[0]
        classes = ", ".join(d.removeprefix("to:") for d in self.directions if d.startswith("to:"))
        raise ValueError(f"this {self.config.method} model translates to a class: name one ({classes}); "
                         f"its directions: {', '.join(self.directions)}")

    def __call__(self, images: ImageLike | Sequence[ImageLike], direction: str | None = None, size: int | None = None,
                 batch_size: int = 8, side_by_side: bool = False) -> ImageLike | list[ImageLike]:
        """Translate ``images`` and give back the same kind: a PIL image or an image file path -> a PIL image; a
        CHW or NCHW float tensor in [-1, 1] -> a tensor of that shape (float32, on the CPU); a list or tuple -> a
        list, each item as above; a folder (alone or in a list) stands for its images, as ``pixmorph translate``
        lists them: a PIL image each, in a list. ``direction``: one of :attr:`directions`, or None for :meth:`default_direction`
        (AtoB, or the model's only one; a two-step model needs its target class, ``"to:NAME"``). ``size``: see
        the class. ``batch_size``: images per generator call: a list's images of one shape (after ``size``)
        share calls, and an NCHW tensor is cut into calls of that many; files are checked first and read when their
        batch comes (their translations, returned together, still add up). ``side_by_side``: each image holds A and
        B side by side (pix2pix's dataset files), and the half ``direction`` starts from is translated, as
        ``pixmorph translate --side-by-side`` does: the output is that half's size."""
        check_size(size)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: give 1 or more")
        if _is_folder(images):
            images = [images]  # a folder stands for its images: a list back
        if isinstance(images, (*IMAGE_TYPES, Tensor)):
            return self([images], direction, size, batch_size, side_by_side)[0]
        if not isinstance(images, (list, tuple)) or not all(isinstance(x, (*IMAGE_TYPES, Tensor)) for x in images):
            raise TypeError(not_an_image(images))
        images = _with_folders_expanded(images)
        if direction is None:
            direction = self.default_direction()
        self.generator(direction)  # an unknown direction: said before any image is read
        files = check_images([x for x in images if _is_file(x)])  # a bad one: named before any translation
        from pixmorph.methods.deepsim import check_primitives

        # a DeepSIM model's files and PIL images, as `pixmorph translate` and `edit` check them (before any alpha is
        # composited away)
        check_primitives(self, [x for x in images if _is_file(x) or isinstance(x, Image.Image)], size is None)
        # files stay paths until their batch comes (a folder of any length is read one batch at a time)
        items = [x if _is_file(x) else self._item(x, direction, side_by_side) for x in images]
        if files and not side_by_side and self.config.method == "pix2pix":  # as `pixmorph translate` warns
            from pixmorph.data.folders import input_half, warn_if_side_by_side_input

            warn_if_side_by_side_input(files[0], input_half(direction, self.config.data.options), "side_by_side=True")
        singles = [i for i, x in enumerate(items) if not (isinstance(x, Tensor) and x.dim() == 4)]
        done = dict(zip(singles, self._translate_images([items[i] for i in singles], direction, size, batch_size,
                                                        side_by_side)))
        return [done[i] if i in done else self._translate_tensor(x, direction, size, batch_size)
                for i, x in enumerate(items)]

    def _item(self, image: ImageLike, direction: str, side_by_side: bool) -> Image.Image | Tensor:
        """One item of a call's list as it is translated: a PIL image (a file read) as the generators read it, or a
        checked tensor; with ``side_by_side``, the half ``direction`` starts from."""
        from pixmorph.data.folders import input_half_of

        options = self.config.data.options
        if isinstance(image, Tensor):
            check_image_tensor(image)
            return input_half_of(image, direction, options) if side_by_side else image
        name = os.fspath(image) if isinstance(image, (str, os.PathLike)) else None
        image = _read(image)
        if side_by_side:
            image = input_half_of(image, direction, options, name)
        return self.input_image(image)

    def _translate_images(self, images: Sequence[Image.Image | Tensor | str | os.PathLike], direction: str,
                          size: int | None, batch_size: int, side_by_side: bool = False) -> list[Image.Image | Tensor]:
        """PIL images (as :meth:`input_image` gives them), CHW tensors and image files -> their translations, each as
        it came (a tensor: CHW on the CPU; a file: a PIL image), in the same order; images of one shape once at
        ``size`` (a file's from its header) share generator calls, ``batch_size`` at a time. A file is read only
        when its batch comes, so the files take the memory of one batch (the translations still add up)."""
        from pixmorph.batches import equal_shape_batches

        out: list = [None] * len(images)
        planned = [self._planned_shape(x, direction, size, side_by_side) for x in images]
        for batch in equal_shape_batches(planned, batch_size):
            ready = [self._item(images[i], direction, side_by_side) if _is_file(images[i]) else images[i]
                     for i in batch]
            # one call per shape: a file's decoded shape can differ from its header's (a malformed EXIF rotation)
            for same in equal_shape_batches([_shape_at(x, size) for x in ready], batch_size):
                x = torch.stack([self._on_device(ready[j], size) for j in same])
                for j, y in zip(same, self.translate_batch(x, direction)):  # a tensor cloned: not a view of its batch
                    out[batch[j]] = to_pil(y) if isinstance(ready[j], Image.Image) else y.clone()
        return out

    def _planned_shape(self, image: Image.Image | Tensor | str | os.PathLike, direction: str, size: int | None,
                       side_by_side: bool) -> Hashable:
        """What :meth:`_translate_images` batches ``image`` by: its shape once at ``size``, a file's as its header
        gives it (with the channels :meth:`input_image` gives every file)."""
        if not _is_file(image):
            return _shape_at(image, size)
        if size is not None:
            return self._file_channels, size, size
        from pixmorph.data.folders import input_half, input_size

        half = input_half(direction, self.config.data.options) if side_by_side else None
        width_height = input_size(Path(image), half)
        # a header that does not read: a batch of its own (reading the file says why)
        return ("unread", os.fspath(image)) if width_height is None else (self._file_channels, *width_height[::-1])

    @functools.cached_property
    def _file_channels(self) -> int:
        """The channels :meth:`input_image` gives a file (whatever its own mode): the data's, or a DeepSIM model's."""
        return len(self.input_image(Image.new("RGB", (1, 1), "white")).getbands())

    def _on_device(self, image: Image.Image | Tensor, size: int | None) -> Tensor:
        """One CHW image in float32 on the translator's device, resized to ``size`` as :meth:`translate_batch` would."""
        x = (to_tensor(image) if isinstance(image, Image.Image) else image).to(self.device, torch.float32)
        return x if size is None else resize_tensor(x[None], size)[0]

    def _translate_tensor(self, images: Tensor, direction: str, size: int | None, batch_size: int) -> Tensor:
        """A checked NCHW batch (of any length, 0 too), ``batch_size`` images per generator call."""
        return torch.cat([self.translate_batch(images[i : i + batch_size], direction, size)
                          for i in range(0, max(len(images), 1), batch_size)])

    def input_image(self, image: Image.Image) -> Image.Image:
        """A PIL image in any mode as the generators take it (8-bit ``L`` or ``RGB``): the method's own reading where
        it has one (a DeepSIM segmentation model colours label indices as training did), else alpha over white in
        the training data's channels."""
        own = self.method.input_image(image)
        return own if own is not None else as_rgb(image).convert(self.image_mode)

    def input_tensor(self, image: Image.Image) -> Tensor:
        """A PIL image in any mode as the generators take it, as a CHW tensor in [-1, 1] (see :meth:`input_image`)."""
        return to_tensor(self.input_image(image))

    def translate_files(self, batches: Iterable[Sequence[Path]], direction: str, out_dir: Path,
                        read: Callable[[Path], Tensor | None], done: Callable[[int], None] | None = None) -> int:
        """Batches of files (of one size each, as their headers give it: :func:`file_batches`) translated into
        ``out_dir/<stem>.png``. A file is read (``read(file)``: its CHW input, or None to skip it) only when its
        batch comes, so a folder of any length takes the memory of one batch. ``done(n)`` after each batch (a
        progress bar). Returns how many files were translated."""
        from pixmorph.batches import equal_shape_batches
        from pixmorph.images import save_image

        translated = 0
        for files in batches:
            items = [(f, x) for f in files if (x := read(f)) is not None]
            # one call per shape: the decoded size can still differ from the header's (a malformed EXIF rotation)
            for same in equal_shape_batches([tuple(x.shape) for _, x in items], max(len(items), 1)):
                chunk = [items[i] for i in same]
                try:
                    y = self.translate_batch(torch.stack([x for _, x in chunk]), direction)
                except ValueError as err:  # say which files: the batch alone cannot
                    names = ", ".join(str(f) for f, _ in chunk[:2]) + (f" (+{len(chunk) - 2} more)" if len(chunk) > 2 else "")
                    raise ValueError(f"{names}: {err}") from None
                for (f, _), img in zip(chunk, y):
                    save_image(img, Path(out_dir) / f"{f.stem}.png")
            translated += len(items)
            if done is not None:
                done(len(files))
        return translated

    @torch.no_grad()
    def translate_batch(self, batch: Tensor, direction: str = "AtoB", size: int | None = None) -> Tensor:
        """One NCHW batch of equal-sized images in [-1, 1] -> translated batch on the CPU."""
        generator = self.generator(direction)
        check_size(size)
        if batch.dim() != 4:
            raise ValueError(f"translate_batch takes an NCHW batch of images; got a tensor of shape "
                             f"{tuple(batch.shape)}")
        if self.runtime == "onnx" and not generator.accepts(batch.shape[1]):  # the file says
            raise self._channel_error(generator.input_channels, batch)
        x = batch.to(self.device, torch.float32, non_blocking=True)
        if size is not None:
            x = resize_tensor(x, size)
        x, original = pad_to_multiple(x, generator.stride, getattr(generator, "min_size", 1))
        if self.runtime == "onnx":
            return crop_back(generator(x), original).float().cpu()
        try:
            with self.autocast():
                y = generator(self.layout(x))
        except RuntimeError:  # a PyTorch generator may adapt channels (DeepSIM: 1 <-> 3), so ask it first
            wanted = self.input_channels.get(direction)
            if wanted is not None and batch.shape[1] != wanted:
                raise self._channel_error(wanted, batch) from None
            raise
        return crop_back(y, original).float().contiguous().cpu()

    def generator(self, direction: str) -> Callable[[Tensor], Tensor]:
        """The generator of ``direction``; an unknown one is a ValueError naming those there are."""
        try:
            return self.generators[direction]
        except KeyError:
            raise ValueError(f"direction {direction!r}: this {self.config.method} checkpoint has "
                             f"{', '.join(self.generators)}{self.direction_note()}") from None

    def _channel_error(self, wanted: int, batch: Tensor) -> ValueError:
        from pixmorph.methods.deepsim import SEG_EDGES_HINT

        hint = f" {SEG_EDGES_HINT}" if self.config.method == "deepsim" else ""
        return ValueError(f"this {self.config.method} model takes {wanted}-channel images and got "
                          f"{batch.shape[1]}-channel ones (a batch of shape {tuple(batch.shape)}){hint}")

    def autocast(self) -> torch.autocast:
        """The PyTorch runtime's precision, as a context for calls of its networks."""
        dtype = INFERENCE_PRECISIONS[self.precision]
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def layout(self, x: Tensor) -> Tensor:
        """An NCHW batch in the networks' memory layout."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def check_size(size: int | None) -> None:
    """``size`` as the translators take it: one side in pixels (the output is size x size), or None."""
    if size is not None and (not isinstance(size, numbers.Integral) or isinstance(size, bool)):
        raise TypeError(f"size={size!r}: give one side in pixels (an int; the output is size x size), or None for "
                        f"the full size")
    if size is not None and size < 1:
        raise ValueError(f"size={size}: give a side of 1 pixel or more, or None for the full size")


def check_image_tensor(images: Tensor) -> None:
    """A tensor the generators can take as images: floating point, CHW or NCHW, values in [-1, 1]. Integer tensors
    (8-bit pixels, 0-255) and floats of 0-255 would translate to noise without a word."""
    if not images.is_floating_point():
        raise ValueError(f"a {images.dtype} tensor: tensors are images in [-1, 1] (floating point); from 8-bit "
                         f"pixels: x.float() / 127.5 - 1")
    if images.dim() not in (3, 4):
        hint = " (one grayscale H x W image: x[None])" if images.dim() == 2 else ""
        raise ValueError(f"a tensor of shape {tuple(images.shape)}: give one image as C x H x W or a batch as "
                         f"N x C x H x W{hint}")
    if images.numel():
        low, high = images.aminmax()
        # some slack: a bicubic resize of [-1, 1] images overshoots a little
        if low < -RANGE_SLACK or high > RANGE_SLACK:
            raise ValueError(f"a tensor with values from {float(low):.4g} to {float(high):.4g}: tensors are images in "
                             f"[-1, 1]; from 8-bit pixels (0-255): x / 127.5 - 1")


def not_an_image(images: object) -> str:
    """What a call was given instead of images, and what it takes."""
    given = type(images).__name__
    if isinstance(images, (list, tuple)):
        given = f"a {given} holding {', '.join(sorted({type(x).__name__ for x in images}))}"
    return (f"{given}: give a PIL image, an image file path, a CHW or NCHW tensor in [-1, 1], or a list of them "
            f"(a NumPy HWC uint8 array: PIL.Image.fromarray(array))")


def file_batches(files: Sequence[Path], batch_size: int, half: str | None = None, size: int | None = None
                 ) -> list[list[Path]]:
    """``files`` in batches of up to ``batch_size`` that translate at one size (``size`` x ``size`` when given, else
    each file's, or its ``half``'s of an A|B file, read from its header): what :meth:`Translator.translate_files`
    takes. An unreadable header is a batch of its own (reading the file says why)."""
    from pixmorph.batches import equal_shape_batches
    from pixmorph.data.folders import input_size

    keys = [(size, size) if size is not None else (input_size(f, half) or ("unreadable", i)) for i, f in enumerate(files)]
    return [[files[i] for i in batch] for batch in equal_shape_batches(keys, batch_size)]


def _is_folder(image: object) -> bool:
    return isinstance(image, (str, os.PathLike)) and Path(image).is_dir()


def _is_file(image: object) -> bool:
    """An image file given by its path (a folder was expanded to its files before)."""
    return isinstance(image, (str, os.PathLike))


def _with_folders_expanded(images: Sequence[ImageLike]) -> list[ImageLike]:
    """A call's images with each folder among them in its place as its images, as ``pixmorph translate`` lists them
    (none: an error; images in its subfolders are left out with a warning, shown at the user's call)."""
    from pixmorph.images import list_images, warn_of_images_in_subfolders

    expanded: list[ImageLike] = []
    for image in images:
        if _is_folder(image):
            expanded.extend(list_images(image))
            warn_of_images_in_subfolders(image, "translate", stacklevel=3)
        else:
            expanded.append(image)
    return expanded


def _shape_at(image: Image.Image | Tensor, size: int | None) -> tuple[int, int, int]:
    """(channels, height, width) of a CHW image once resized to ``size``: images of one such shape share a batch."""
    channels = len(image.getbands()) if isinstance(image, Image.Image) else image.shape[0]
    if size is not None:
        return channels, size, size
    return (channels, image.height, image.width) if isinstance(image, Image.Image) else tuple(image.shape)


def _read(image: Image.Image | str | os.PathLike) -> Image.Image:
    """A PIL image as it is; an image file read in its own mode, as `pixmorph translate` reads it."""
    return read_image(image, mode=None) if isinstance(image, (str, os.PathLike)) else image


def _input_channels(generator) -> int | None:
    from pixmorph.export import input_channels

    try:
        return input_channels(generator)
    except ValueError:  # no convolution to tell: let the network itself complain
        return None


def load(checkpoint: str | Path, device: str = "cpu", runtime: str | None = None, onnx: str | Path | None = None,
         precision: str = "auto", channels_last: bool | None = None) -> Translator:
    """Load a run folder or checkpoint folder for translation.

    ``runtime="onnx"`` runs the generators with ONNX Runtime, from the files exported to the prefix
    ``onnx`` (``pixmorph export CKPT --onnx PREFIX``), or exported now when ``onnx`` is None; ``runtime=None``
    (the default) is ``"onnx"`` when ``onnx`` is given, else ``"torch"``. ``onnx`` may also name one of the
    files written (``PREFIX.AtoB.onnx``). Files exported from another checkpoint are refused (by the checkpoint
    recorded in them, or for files without that record, by their image channels, with a warning).
    ``precision`` (auto, as ``pixmorph translate``: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32; or fp32, bf16, fp16)
    and ``channels_last`` apply to the PyTorch runtime.
    """
    if runtime is None:  # an ONNX file asks for ONNX Runtime
        runtime = "onnx" if onnx is not None else "torch"
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: use torch or onnx")
    if onnx is not None and runtime != "onnx":
        raise ValueError(f"onnx={str(onnx)!r} is for runtime='onnx'; runtime={runtime!r} would ignore it")
    if runtime == "onnx" and (precision in ("bf16", "fp16") or channels_last):
        given = f"precision={precision!r}" if precision in ("bf16", "fp16") else "channels_last=True"
        raise ValueError(f"{given} is for runtime='torch'; ONNX Runtime runs the exported float32 files and would "
                         f"ignore it")
    folder = ckpt.find_checkpoint(checkpoint)
    saved = ckpt.read_config(folder)
    if not isinstance(saved.get("run"), dict):
        from pixmorph.metrics.classify import KIND as CLASSIFIER

        if saved.get("kind") == CLASSIFIER:  # `pixmorph eval --classifier` refuses the reverse case likewise
            raise ckpt.CheckpointError(f"{folder}: a classifier checkpoint (pixmorph classifier), not a translation "
                                       "model; give it to `pixmorph eval --classifier`")
        raise ckpt.CheckpointError(f"{folder / ckpt.CONFIG}: no run config ('run'): "
                                   "not a pixmorph translation checkpoint")
    try:  # a config edited by hand, or written by another version of pixmorph
        config = RunConfig.from_dict(saved["run"])
        method = build_method(config)
    except (ValueError, TypeError) as e:
        raise ckpt.CheckpointError(f"{folder / ckpt.CONFIG}: {e}") from None
    ckpt.load_weights(folder, method.nets)
    if (unfinished := method.unfinished(int(saved.get("step", 0)))) is not None:
        warnings.warn(f"{folder}: {unfinished}", stacklevel=2)
    translator = Translator(method, config, resolve_device(device), int(saved.get("step", 0)), precision, channels_last,
                            image_size=saved.get("image_size"), checkpoint=folder,
                            batch_norm_per_image=saved.get("batch_norm_per_image"))
    return translator.use_onnx(onnx) if runtime == "onnx" else translator

"""ONNX export of a checkpoint's generators and an ONNX Runtime stand-in for them.

``export_onnx(checkpoint, "out/model.onnx")`` writes one file per direction the method translates
(``out/model.AtoB.onnx``, ``out/model.BtoA.onnx`` for CycleGAN; ``model.to-B.onnx`` for a class),
each with a dynamic batch, height and width, and checks it against PyTorch on random images. The graph itself
pads each image to the generator's stride (reflection, bottom/right) and crops the output back, so ONNX Runtime
gives the input's size at any size. A two-step model's networks take one size only: its files declare that
fixed height and width, and pixmorph resizes other sizes to it and back (as its PyTorch translator does;
recorded in the file's metadata). Each file records the checkpoint it came from (ONNX metadata: the SHA-256
of its ``weights.safetensors``, its method and step), so a file of another checkpoint is refused when loaded
for this one.
``OnnxGenerator`` runs such a file with onnxruntime behind the generator's call signature, so
:class:`pixmorph.api.Translator` uses it unchanged (``pixmorph translate --runtime onnx``).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from pixmorph.images import write_error

if TYPE_CHECKING:
    from pixmorph.api import Translator

OPSET = 17
INSTALL_HINT = "pip install 'pixmorph[onnx]' (or: pip install onnx onnxruntime)"
SOURCE = "pixmorph.weights_sha256"  # the metadata key that identifies the checkpoint a file was exported from
PADS = "pixmorph.pads_to_stride"  # metadata: the graph pads to this stride itself (files before it did not)
MODEL_SIZE = "pixmorph.model_size"  # metadata: "HxW", the only size a fixed-size file takes


def require(module: str):
    """Import ``onnx`` or ``onnxruntime``, or say how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"ONNX support needs the {module} package, which is not installed: {INSTALL_HINT}") from None


def direction_file(prefix: str | Path, direction: str) -> Path:
    """``out/model.onnx`` + ``AtoB`` -> ``out/model.AtoB.onnx`` (``to:cat`` -> ``model.to-cat.onnx``)."""
    prefix = Path(prefix)
    stem = prefix.name[: -len(".onnx")] if prefix.name.endswith(".onnx") else prefix.name
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in direction)
    return prefix.with_name(f"{stem}.{safe}.onnx")


def onnx_prefix(path: str | Path, directions: list[str]) -> Path:
    """The prefix given to ``pixmorph export``, from itself or from a file it wrote for one of ``directions``:
    ``out/model.AtoB.onnx`` -> ``out/model.onnx``."""
    path = Path(path)
    for direction in directions:
        suffix = direction_file("x", direction).name[1:]  # ".AtoB.onnx"
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.with_name(path.name[: -len(suffix)] + ".onnx")
    return path


def named_direction(path: str | Path, directions: list[str]) -> str | None:
    """The direction a file written by ``pixmorph export`` is for (``model.BtoA.onnx`` -> ``BtoA``), else None."""
    name = Path(path).name
    return next((d for d in directions if name.endswith(direction_file("x", d).name[1:])
                 and len(name) > len(direction_file("x", d).name[1:])), None)


def missing_direction_file(path: str | Path, directions: list[str], method: str) -> str | None:
    """A missing ``model.BtoA.onnx`` for a checkpoint without that direction, beside files of the directions it has:
    the line saying so (else None; a missing prefix or file of its own directions is said where it is opened)."""
    path = Path(path)
    if path.exists() or not path.name.endswith(".onnx") or not Path(path.stem).suffix:
        return None
    if any(direction_file(path, d).is_file() for d in directions):  # a prefix with a dot: model.v2.onnx
        return None
    prefix = path.with_name(Path(path.stem).stem + ".onnx")  # model.BtoA.onnx -> model.onnx
    found = [str(f) for f in (direction_file(prefix, d) for d in directions) if f.is_file()]
    if not found:
        return None
    return (f"{path}: no such file; this {method} checkpoint translates {', '.join(directions)}, exported as "
            f"{', '.join(found)}")


def checkpoint_source(folder: Path, method: str, step: int) -> dict[str, str]:
    """What an exported file records of its checkpoint ``folder``: the SHA-256 of its weights, method, step."""
    from pixmorph.train.checkpoint import WEIGHTS

    with open(folder / WEIGHTS, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {SOURCE: digest, "pixmorph.method": method, "pixmorph.step": str(step),
            "pixmorph.checkpoint": str(Path(folder).resolve())}


def check_onnx_source(onnx: "OnnxGenerator", source: dict[str, str], direction: str) -> bool:
    """Refuse, in one line naming the file, an ONNX file exported from another checkpoint than ``source``
    (:func:`checkpoint_source`) or for another direction. False: the file does not say (an older export)."""
    got = onnx.metadata
    if SOURCE not in got:
        return False
    if got[SOURCE] != source[SOURCE]:
        raise ValueError(f"{onnx.path}: exported from the {got.get('pixmorph.method', '?')} checkpoint "
                         f"{got.get('pixmorph.checkpoint', '?')} (step {got.get('pixmorph.step', '?')}), not this "
                         f"{source['pixmorph.method']} checkpoint {source['pixmorph.checkpoint']} (step "
                         f"{source['pixmorph.step']}): other weights; re-export with: pixmorph export CKPT --onnx FILE")
    if got.get("pixmorph.direction", direction) != direction:
        raise ValueError(f"{onnx.path}: the {got['pixmorph.direction']} generator of this checkpoint, not its "
                         f"{direction} one (a renamed file? re-export with: pixmorph export CKPT --onnx FILE)")
    return True


def input_channels(generator: nn.Module) -> int:
    """The channel count of the generator's first convolution (its input)."""
    for m in generator.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            return m.in_channels
    raise ValueError(f"{type(generator).__name__}: no convolution found to tell its input channels")


def output_channels(generator: nn.Module) -> int | None:
    """The channel count of the generator's output: its ``out_channels``, else its last convolution's (inside
    a translator wrapper, of the ``generator`` it wraps; a two-step reconstruction also holds a classifier)."""
    inner = getattr(generator, "generator", generator)
    if isinstance(getattr(inner, "out_channels", None), int):
        return inner.out_channels
    last = None
    for m in inner.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            last = m
    return None if last is None else last.out_channels


def check_onnx_channels(onnx: "OnnxGenerator", generator: nn.Module, direction: str,
                        method: str = "checkpoint") -> None:
    """Refuse, in one line naming the file, an ONNX file whose image channels (in, out) are not those of the
    checkpoint's ``generator`` for ``direction``: a file exported from another checkpoint."""
    try:
        want = (input_channels(generator), output_channels(generator))
    except ValueError:
        return
    got = (onnx.input_channels, onnx.output_channels)
    if all(g is None or w is None or g == w for g, w in zip(got, want)):
        return
    shown = lambda c: "?" if c is None else str(c)  # noqa: E731
    raise ValueError(f"{onnx.path}: its generator takes {shown(got[0])}-channel images and gives {shown(got[1])}, "
                     f"but this {method} checkpoint's {direction} generator takes {shown(want[0])} and gives "
                     f"{shown(want[1])}: an export of another checkpoint? "
                     "(re-export with: pixmorph export CKPT --onnx FILE)")


def check_onnx_size(onnx: "OnnxGenerator", generator: nn.Module) -> None:
    """Refuse, in one line naming the file, an export of a fixed-size generator (two-step) that does not declare
    that size: written before pixmorph fixed it, it fails inside ONNX Runtime at any other size."""
    fixed = fixed_size(generator)
    if fixed is not None and onnx.fixed_size != fixed:
        raise ValueError(f"{onnx.path}: does not declare this model's {fixed[0]}x{fixed[1]} size, the only one its "
                         "networks take (an export by an older pixmorph): re-export with: "
                         "pixmorph export CKPT --onnx FILE")


@dataclass
class Exported:
    direction: str
    path: Path
    max_abs_diff: float  # ONNX Runtime vs. PyTorch on the check batch


class SelfPadding(nn.Module):
    """``generator`` with pixmorph's padding inside: each image reflect-padded at the bottom/right to a multiple of
    ``stride`` and at least ``min_size`` (replicated where the pad is not smaller than the image), as
    :func:`pixmorph.data.transforms.pad_to_multiple` pads, and the output cropped back. The pads are computed
    from the input's shape with tensor ops (no Python branches), so a traced graph keeps them dynamic."""

    def __init__(self, generator: nn.Module, stride: int, min_size: int):
        super().__init__()
        self.generator, self.stride, self.min_size = generator, stride, min_size

    def forward(self, x: Tensor) -> Tensor:
        h, w = torch.as_tensor(x.shape[-2]), torch.as_tensor(x.shape[-1])  # traced: shape ops, not constants
        ph, pw = self._pad(h), self._pad(w)
        reflect = (ph < h) & (pw < w)
        padded = x.index_select(2, _pad_index(h, ph, reflect)).index_select(3, _pad_index(w, pw, reflect))
        return self.generator(padded)[..., :h, :w]

    def _pad(self, side: Tensor) -> Tensor:
        return torch.maximum((self.stride - side % self.stride) % self.stride, (self.min_size - side).clamp(min=0))


def _pad_index(side: Tensor, pad: Tensor, reflect: Tensor) -> Tensor:
    """Source rows (or columns) of a side padded by ``pad`` at its end: mirrored without the edge, or repeated."""
    i = torch.arange(side + pad)
    return torch.where(reflect, torch.where(i < side, i, 2 * (side - 1) - i), i.clamp(max=side - 1))


class AtModelSize(nn.Module):
    """A two-step translator's networks alone, for images at its fixed ``model_size``."""

    def __init__(self, translator: nn.Module):
        super().__init__()
        self.translator = translator

    def forward(self, x: Tensor) -> Tensor:
        return self.translator.at_model_size(x)


def fixed_size(generator: nn.Module) -> tuple[int, int] | None:
    """The only (height, width) ``generator``'s networks take (a two-step model's), else None."""
    size = getattr(generator, "model_size", None)
    return None if size is None else tuple(size)


def graph_of(generator: nn.Module) -> tuple[nn.Module, dict[str, dict[int, str]], dict[str, str]]:
    """What is traced for ``generator``, its dynamic axes and what the file records of them: the networks at
    the fixed size (dynamic batch only), else the generator padding to its stride inside the graph."""
    size = fixed_size(generator)
    if size is not None:
        axes = {"image": {0: "batch"}, "translated": {0: "batch"}}
        return AtModelSize(generator), axes, {
            MODEL_SIZE: f"{size[0]}x{size[1]}",
            "pixmorph.resize": "pixmorph resizes other sizes to pixmorph.model_size and the output back: "
                               "torch.nn.functional.interpolate(mode='bicubic', antialias=True, align_corners=False), "
                               "clamped to [-1, 1]"}
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "translated": {0: "batch", 2: "height", 3: "width"}}
    stride, min_size = getattr(generator, "stride", 1), getattr(generator, "min_size", 1)
    if stride == 1 and min_size == 1:
        return generator, axes, {}
    return SelfPadding(generator, stride, min_size), axes, {PADS: str(stride), "pixmorph.min_size": str(min_size)}


def export_generator(generator: nn.Module, path: str | Path, example: Tensor,
                     metadata: dict[str, str] | None = None) -> Path:
    """Write ``generator`` (eval mode, fp32, CPU) as ONNX with dynamic batch, height and width (padded to its
    stride inside the graph), or for a two-step translator, dynamic batch at its fixed model size; ``metadata``
    and what :func:`graph_of` records become the model's metadata_props."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = generator.eval().float().cpu()
    module, axes, recorded = graph_of(generator)
    # eval(): the exporter restores the mode a new wrapper has (training), and recursively: batch norm would
    # then update its running statistics at the generator's next call.
    module.eval()
    size = fixed_size(generator)
    if size is not None and tuple(example.shape[-2:]) != size:
        raise ValueError(f"{path}: this translator's networks take {size[0]}x{size[1]} images only, "
                         f"not an example of {example.shape[-2]}x{example.shape[-1]}")
    # Written beside it and moved in when complete: an export stopped half-way (Ctrl-C, a full disk) leaves no
    # truncated file, or one without its checkpoint's record, and a re-export leaves the last file as it was.
    partial = path.with_name(f".{path.name}.partial")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            # dynamo=False: the TorchScript exporter needs no onnxscript and keeps the traced shape ops dynamic.
            torch.onnx.export(module, (example.float().cpu(),), str(partial), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=["translated"], dynamic_axes=axes)
        onnx = require("onnx")
        if metadata or recorded:
            model = onnx.load(str(partial))
            onnx.helper.set_model_props(model, {**recorded, **(metadata or {})})
            onnx.save(model, str(partial))
        onnx.checker.check_model(str(partial))
        os.replace(partial, path)
    except OSError as err:  # a full disk, a file size limit
        raise write_error(path, err) from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def check_batch(generator: nn.Module, size: int | tuple[int, int], batch: int = 2, seed: int = 0) -> Tensor:
    """Random images in [-1, 1] of ``size`` (a side, or height and width), rounded to a size the generator
    accepts (its stride and minimum size); a fixed-size generator's own size whatever ``size`` is."""
    stride, min_size = getattr(generator, "stride", 1), getattr(generator, "min_size", 1)
    h, w = fixed_size(generator) or (max(min_size, -(-side // stride) * stride)
                                     for side in ((size, size) if isinstance(size, int) else size))
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, input_channels(generator), h, w, generator=g) * 2 - 1


def max_abs_diff(generator: nn.Module, path: str | Path, x: Tensor) -> float:
    """Largest absolute difference between ONNX Runtime and PyTorch (fp32, CPU) on ``x``."""
    with torch.no_grad():
        expected = generator.eval().float().cpu()(x)
    got = OnnxGenerator(path)(x)
    return float((got - expected).abs().max())


def export_onnx(checkpoint: str | Path, prefix: str | Path, size: int | None = None) -> list[Exported]:
    """Export every generator of ``checkpoint`` next to ``prefix`` (or next to the prefix of a file it names,
    ``out/model.AtoB.onnx``), each recording the checkpoint; checked at ``size`` x ``size`` (default: the
    training size: the crop, or DeepSIM's image) with a batch of 2."""
    return list(export_each(checkpoint, prefix, size))


def export_each(checkpoint: str | Path, prefix: str | Path, size: int | None = None) -> Iterator[Exported]:
    """:func:`export_onnx`, giving each generator's file as soon as it is written and checked. The checkpoint is
    loaded and checked by this call (not a generator itself), so its errors come before anything is said or
    written; the iterator it returns exports."""
    from pixmorph.api import load

    if size is not None and size < 1:  # not the default size in disguise (0 was taken as no size given)
        raise ValueError(f"size={size}: give a check size of 1 pixel or more, or None for the training size")
    require("onnxruntime")
    translator = load(checkpoint, device="cpu", precision="fp32", channels_last=False)  # the exported graph is fp32
    prefix = onnx_prefix(prefix, translator.directions)
    for generator in translator.generators.values():
        check_fixed_size(generator, size, translator.config.method)
    source = checkpoint_source(translator.checkpoint, translator.config.method, translator.step)
    return _export_generators(translator, prefix, size, source)


def _export_generators(translator: Translator, prefix: Path, size: int | None,
                       source: dict[str, str]) -> Iterator[Exported]:
    for direction, generator in translator.generators.items():
        x = check_batch(generator, size or translator.training_size)
        path = export_generator(generator, direction_file(prefix, direction), x[:1],
                                {**source, "pixmorph.direction": direction})
        yield Exported(direction, path, max_abs_diff(generator, path, x))


def check_fixed_size(generator: nn.Module, size: int | None, method: str) -> None:
    """Refuse a check ``size`` other than the fixed size of ``generator``'s networks, which its file declares."""
    fixed = fixed_size(generator)
    if size is not None and fixed is not None and (size, size) != fixed:
        raise ValueError(f"check size {size}: this {method} model's ONNX files take only its {fixed[0]}x{fixed[1]} "
                         f"model size (pixmorph resizes other sizes to it and back), so they can be checked only at "
                         f"{fixed[0]}: give that or leave the check size out")


def convert_gray_rgb(x: Tensor, channels: int) -> Tensor:
    """An NCHW batch with 3 channels as 1 (their mean) or with 1 as 3 (repeated), for a generator that takes
    ``channels``; other counts unchanged. The arithmetic of DeepSIM's ``PrimitiveRenderer``, so its PyTorch and
    ONNX outputs agree."""
    if x.shape[1] == 3 and channels == 1:
        return x.mean(1, keepdim=True)
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    return x


class OnnxGenerator:
    """An exported generator run by ONNX Runtime; called like the PyTorch one (NCHW tensors in, out)."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu", threads: int | None = None,
                 stride: int = 1, min_size: int = 1, gray_rgb: bool = False):
        """``gray_rgb``: take 1- and 3-channel images whatever the file takes, converted by :func:`convert_gray_rgb`
        (the export of a DeepSIM renderer traced only the primitive's own channels)."""
        ort = require("onnxruntime")
        self.path, self.stride, self.min_size, self.gray_rgb = Path(path), stride, min_size, gray_rgb
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file (write it with: pixmorph export CKPT --onnx FILE)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # Sleep rather than spin between operators: spinning starves other work on a shared CPU, and on
        # a busy 2-core machine it made a 64x64 call ~1.5x slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # onnxruntime's own types (InvalidProtobuf, Fail, ...): a damaged or foreign file
            reason = " ".join(str(e).split()).split("failed:")[-1].strip()[:200]
            raise ValueError(f"{self.path}: not a readable ONNX file ({reason}): export it again with "
                             f"`pixmorph export CKPT --onnx FILE`") from None
        self.providers = self.session.get_providers()
        self.input_channels = _channel_dim(self.session.get_inputs()[0].shape)  # None when not fixed
        self.output_channels = _channel_dim(self.session.get_outputs()[0].shape)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)  # what export_onnx recorded
        if PADS in self.metadata:  # the graph pads to the stride itself: callers must not pad again
            self.stride, self.min_size = 1, 1
        self.fixed_size = _fixed_dims(self.session.get_inputs()[0].shape)  # resized to and back, as in PyTorch

    def accepts(self, channels: int) -> bool:
        """Whether images with ``channels`` channels can be given."""
        want = self.input_channels
        return want in (None, channels) or (self.gray_rgb and {want, channels} == {1, 3})

    def __call__(self, x: Tensor) -> Tensor:
        if self.gray_rgb and self.input_channels is not None and x.dim() == 4:
            x = convert_gray_rgb(x, self.input_channels)
        if self.input_channels is not None and (x.dim() != 4 or x.shape[1] != self.input_channels):
            raise ValueError(f"{self.path}: takes {self.input_channels}-channel images (NCHW), got a tensor of shape "
                             f"{tuple(x.shape)}")
        if self.fixed_size is not None:
            from pixmorph.methods.twostep import resized_around

            return resized_around(self._run, x, self.fixed_size)
        return self._run(x)

    def _run(self, x: Tensor) -> Tensor:
        # ONNX Runtime reads host memory; the Translator moves the result back to the CPU anyway.
        array = x.detach().float().cpu().contiguous().numpy()
        (y,) = self.session.run(None, {"image": array})
        return torch.from_numpy(y)

    def eval(self) -> "OnnxGenerator":
        return self


def _fixed_dims(shape) -> tuple[int, int] | None:
    """(height, width) of an NCHW ONNX input shape when the file fixes both."""
    return tuple(shape[2:]) if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]) else None


def _channel_dim(shape) -> int | None:
    """The channel count of an NCHW ONNX input or output shape, when the file fixes it."""
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None

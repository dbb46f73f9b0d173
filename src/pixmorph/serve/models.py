"""The checkpoints a server serves: each loaded once, named, and described for the page.

A model is one of three tasks, by its method: ``translate`` (CycleGAN, pix2pix, two-step: an image in,
an image out, in a direction), ``fewshot`` (FUNIT: a content image and K class images) or ``edit``
(DeepSIM: an edited primitive in, the photo out). Requests name a model; only these names resolve.
"""

from __future__ import annotations

import io
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from pixmorph.api import Translator, load
from pixmorph.train import checkpoint as ckpt

TASKS = {"cyclegan": "translate", "pix2pix": "translate", "twostep": "translate", "funit": "fewshot",
         "deepsim": "edit"}
MAX_PALETTE = 64  # colours offered for painting a segmentation


@dataclass
class ServedModel:
    """One loaded checkpoint and what the page needs to know of it."""

    name: str
    path: Path
    translator: Translator
    task: str
    primitive_kind: str | None = None  # edit models: edges, seg or seg+edges
    primitive: dict[str, Image.Image] = field(default_factory=dict)  # edit models: "seg"/"edges" layers
    palette: list[tuple[int, int, int]] = field(default_factory=list)  # edit models with a segmentation
    primitive_from_training: bool = False  # rebuilt from the files it was trained on (else blank)
    _fewshot: Any = None

    @property
    def method(self) -> str:
        return self.translator.config.method

    def describe(self) -> dict[str, Any]:
        t = self.translator
        info: dict[str, Any] = {"name": self.name, "method": self.method, "task": self.task, "step": t.step,
                                "channels": 1 if t.image_mode == "L" else 3}
        if self.task == "translate":
            info["directions"] = t.directions
        if self.task == "fewshot":
            info["image_size"] = [self._fewshot_translator().image_size] * 2
        if self.task == "edit":
            width, height = t.image_size or (t.training_size[1], t.training_size[0])
            info["image_size"] = [width, height]
            info["primitive"] = {"kind": self.primitive_kind, "layers": list(self.primitive),
                                 "palette": [list(c) for c in self.palette],
                                 "from_training": self.primitive_from_training}
        return info

    # -- the work, each a blocking call made from the server's worker thread ---------------------------

    def translate(self, image: Image.Image, direction: str | None) -> Image.Image:
        directions = self.translator.directions
        direction = direction or self.translator.default_direction()
        if direction not in directions:
            raise ValueError(f"direction {direction!r}: model {self.name} has {', '.join(directions)}")
        return self.translator(image, direction=direction)

    def fewshot(self, content: Image.Image, class_images: Sequence[Image.Image]) -> Image.Image:
        return self._fewshot_translator()(content, list(class_images))[0]

    def edit(self, primitive: bytes, edges: bytes | None, names: tuple[str, str | None]) -> Image.Image:
        """Render an edited primitive given as the bytes of an image file (already checked by decoding):
        read exactly as ``pixmorph edit`` reads a file, so a segmentation's label colours and the size rule
        are the same."""
        from pixmorph.images import to_pil
        from pixmorph.methods.deepsim import render

        with tempfile.TemporaryDirectory(prefix="pixmorph-edit-") as tmp:
            primitive_file = Path(tmp) / "primitive.png"
            primitive_file.write_bytes(primitive)
            edges_files = None
            if edges is not None:
                edges_files = [Path(tmp) / "edges.png"]
                edges_files[0].write_bytes(edges)

            def named(text: object) -> str:  # the uploads' names, not the temporary files'
                text = str(text).replace(str(primitive_file), names[0])
                return text.replace(str(edges_files[0]), names[1] or "edges") if edges_files else text

            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    image = render(self.translator, [primitive_file], edges_files)[0]
            except ValueError as err:
                raise ValueError(named(err)) from None
        for w in caught:
            warnings.warn_explicit(named(w.message), w.category, w.filename, w.lineno)
        return to_pil(image)

    def _fewshot_translator(self):
        if self._fewshot is None:
            from pixmorph.fewshot import FewShotTranslator

            self._fewshot = FewShotTranslator(self.translator)
        return self._fewshot


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def model_name(path: Path) -> str:
    """A run folder's name, URL-safe: its parent's when given the checkpoint folder itself (or a file in
    it), or a folder named just ``run`` (the demo's ``runs/demo/run`` is ``demo``)."""
    folder = path.resolve()
    if folder.is_file():
        folder = folder.parent
    if folder.name in ("checkpoint", ".checkpoint.old"):
        folder = folder.parent
    if folder.name == "run" and folder.parent.name:
        folder = folder.parent
    return re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-") or "model"


def load_models(specs: Sequence[str], device: str = "cpu", precision: str = "auto") -> dict[str, ServedModel]:
    """``specs``: run or checkpoint folders, each optionally ``NAME=PATH``. Names must be unique."""
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, _, path_text = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        path = Path(path_text)
        name = name or model_name(path)
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"{spec}: model name {name!r} may hold only letters, digits, '.', '_' and '-'")
        if name in models:
            raise ValueError(f"{spec}: two models named {name!r}; name them: NAME=PATH")
        models[name] = load_model(name, path, device, precision)
    if not models:
        raise ValueError("no checkpoint to serve: give one or more run folders")
    return models


def load_model(name: str, path: Path, device: str = "cpu", precision: str = "auto") -> ServedModel:
    translator = load(path, device=device, precision=precision)
    method = translator.config.method
    task = TASKS.get(method)
    if task is None:
        raise ValueError(f"{path}: a {method} checkpoint; the server takes {', '.join(TASKS)}")
    model = ServedModel(name, ckpt.find_checkpoint(path), translator, task)
    if task == "edit":
        _describe_primitive(model)
    return model


def _describe_primitive(model: ServedModel) -> None:
    """The primitive an edit model was trained on (rebuilt from its image and primitive files, when they
    are still there; else blank at the training size) and the colours of its segmentation."""
    from pixmorph.data import primitives as P
    from pixmorph.data.single_image import SingleImage
    from pixmorph.images import to_pil
    from pixmorph.methods.deepsim import KIND_OF_CHANNELS

    t = model.translator
    model.primitive_kind = kind = KIND_OF_CHANNELS[t.method.cfg.in_channels]
    width, height = t.image_size or (t.training_size[1], t.training_size[0])
    try:
        dataset = SingleImage(t.config.data.root, t.config.data.options, mode=t.image_mode)
        primitive = dataset.primitive
        if tuple(primitive.shape[-2:]) != (height, width):
            raise ValueError("the files changed since training")
    except (OSError, ValueError):
        primitive = None
    model.primitive_from_training = primitive is not None
    if kind in ("seg", "seg+edges"):
        seg = to_pil(primitive[:3]) if primitive is not None else Image.new("RGB", (width, height), (0, 0, 0))
        model.primitive["seg"] = seg
        if primitive is None:  # no training segmentation to take its colours from: the fixed palette
            colours = P.PALETTE[:16]
        else:
            colours = region_colours(np.asarray(seg))
        model.palette = [tuple(int(v) for v in c) for c in colours]
    if kind in ("edges", "seg+edges"):
        edges = to_pil(primitive[-1:]) if primitive is not None else Image.new("L", (width, height), 255)
        model.primitive["edges"] = edges


def region_colours(seg: np.ndarray, most: int = MAX_PALETTE, apart: int = 32) -> np.ndarray:
    """A segmentation's region colours for painting, the most frequent first, each more than ``apart``
    from every one before it in some channel: an anti-aliased border's blends and a region's near-copies
    (the paper's car has 2,134 colours, (0, 253, 9) and (0, 253, 11) among them) are not offered."""
    colours, counts = np.unique(seg.reshape(-1, 3), axis=0, return_counts=True)
    kept: list[np.ndarray] = []
    for colour in colours[np.argsort(-counts, kind="stable")].astype(np.int16):
        if all(np.abs(colour - k).max() > apart for k in kept):
            kept.append(colour)
            if len(kept) == most:
                break
    return np.array(kept, dtype=np.uint8).reshape(-1, 3)

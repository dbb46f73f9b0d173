"""The checkpoints a server serves: each loaded once, named, and described for the page.

A model is one of three tasks, by its method: ``translate`` (CycleGAN, pix2pix, two-step: an image in,
an image out, in a direction), ``fewshot`` (FUNIT: a content image and K class images) or ``edit``
(DeepSIM: an edited primitive in, the photo out). Requests name a model; only these names resolve.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
from torch import Tensor

from pixmorph.api import Translator, load
from pixmorph.train import checkpoint as ckpt

TASKS = {"cyclegan": "translate", "pix2pix": "translate", "twostep": "translate", "funit": "fewshot",
         "deepsim": "edit"}
MAX_PALETTE = 64  # colours offered for painting a segmentation
LABEL_SHARE = 0.005  # of the pixels: the least a label colour's region interiors cover (in a segmentation of more)


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
    primitive_missing: list[tuple[str, str]] = field(default_factory=list)  # (file, role) of what was not found
    primitive_blank: list[str] = field(default_factory=list)  # the layers that start blank for want of them
    _fewshot: Any = None

    @property
    def method(self) -> str:
        return self.translator.config.method

    def primitive_note(self) -> str | None:
        """One line saying which training files of an edit model are gone and what the page offers instead."""
        if not self.primitive_missing:
            return None
        files = "; ".join(f"{path} (its {role}) is "
                          f"{'changed or unreadable' if Path(path).exists() else 'not where it was'}"
                          for path, role in self.primitive_missing)
        blank = "the page's canvas starts blank" if set(self.primitive_blank) == set(self.primitive) else \
            f"the page's {' and '.join(self.primitive_blank)} layer starts blank"
        palette = ", with 16 generic colours to paint" if "seg" in self.primitive_blank else ""
        put_back = "it" if len(self.primitive_missing) == 1 else "them"
        return f"{files}: {blank}{palette}; put {put_back} back to edit the training primitive"

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

    def translate(self, image: Image.Image, direction: str | None, side_by_side: bool = False) -> Image.Image:
        """``side_by_side``: ``image`` is an A|B pair (pix2pix's layout), and the half ``direction`` starts from
        is translated, as ``pixmorph translate --side-by-side`` does."""
        directions = self.translator.directions
        direction = direction or self.translator.default_direction()
        if direction not in directions:
            raise ValueError(f"direction {direction!r}: model {self.name} has {', '.join(directions)}")
        if self.method == "pix2pix" and not side_by_side:
            _warn_if_a_pair(image, direction, self.translator.config.data.options)
        return self.translator(image, direction=direction, side_by_side=side_by_side)

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


def _warn_if_a_pair(image: Image.Image, direction: str, data_options: dict | None) -> None:
    """An upload shaped like a pix2pix dataset file (A|B side by side) is translated whole, as any image is: say
    which half to give (``pixmorph translate --side-by-side`` cuts it; the page takes images as they are)."""
    from pixmorph.data.folders import input_half, looks_side_by_side

    if looks_side_by_side(*image.size):
        half = input_half(direction, data_options)
        warnings.warn(f"{image.width}x{image.height}, about twice as wide as high: if this is an A|B pair (a pix2pix "
                      f"dataset file), the pair was translated as one image; give its {half} half (the "
                      f"{'left' if half == 'A' else 'right'} one) alone, or send it with side_by_side (the page: "
                      f"'A|B pairs')")


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


def load_models(specs: Sequence[str | os.PathLike] | str | os.PathLike, device: str = "cpu",
                precision: str = "auto") -> dict[str, ServedModel]:
    """``specs``: run or checkpoint folders (str or Path; one alone or a list), each optionally ``NAME=PATH``.
    Names must be unique."""
    if isinstance(specs, (str, os.PathLike)):  # one run: not the characters of its path, one by one
        specs = [specs]
    models: dict[str, ServedModel] = {}
    for spec in map(os.fspath, specs):
        named = "=" in spec and not Path(spec).exists()
        name, _, path_text = spec.rpartition("=") if named else ("", "", spec)
        path = Path(path_text)
        if named and not name:  # (=PATH: a name forgotten, not the folder's name wanted)
            raise ValueError(f"{spec}: the model name before '=' is empty: give NAME=PATH, or PATH alone")
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
    """The primitive an edit model was trained on (rebuilt from its image and primitive files, or from the copy
    of a computed one in RUN/primitive, when they are still there; else blank at the training size) and the
    colours of its segmentation."""
    from pixmorph.data import primitives as P
    from pixmorph.images import to_pil
    from pixmorph.methods.deepsim import KIND_OF_CHANNELS

    t = model.translator
    model.primitive_kind = kind = KIND_OF_CHANNELS[t.method.cfg.in_channels]
    width, height = t.image_size or (t.training_size[1], t.training_size[0])
    layers, model.primitive_missing = training_layers(t, kind, model.path.parent, (width, height))
    model.primitive_from_training = not model.primitive_missing
    if kind in ("seg", "seg+edges"):
        found = layers.get("seg")
        if found is None:
            model.primitive_blank.append("seg")
        model.primitive["seg"] = to_pil(found) if found is not None else Image.new("RGB", (width, height), (0, 0, 0))
        # without the training segmentation to take its colours from: the fixed palette
        colours = region_colours(np.asarray(model.primitive["seg"])) if found is not None else P.PALETTE[:16]
        model.palette = [tuple(int(v) for v in c) for c in colours]
    if kind in ("edges", "seg+edges"):
        found = layers.get("edges")
        if found is None:
            model.primitive_blank.append("edges")
        model.primitive["edges"] = to_pil(found) if found is not None else Image.new("L", (width, height), 255)


LAYER_ROLES = {"image": "training image", "seg": "training segmentation", "edges": "training edge map"}


def training_layers(translator: Translator, kind: str, run_dir: Path,
                    size: tuple[int, int]) -> tuple[dict[str, Tensor], list[tuple[str, str]]]:
    """The training primitive of a DeepSIM model as its layers (``seg``, ``edges``: CHW tensors at ``size``),
    and the (file, role) of each one not found. A layer comes from its training file, from the training image
    (a computed one), or from the copy the CLI kept in ``run_dir/primitive``."""
    from pixmorph.data.single_image import SingleImage

    data = translator.config.data
    try:
        primitive = SingleImage(data.root, data.options, mode=translator.image_mode).primitive
        if tuple(primitive.shape[-2:]) == (size[1], size[0]):
            return _split_layers(primitive), []
    except (OSError, ValueError):
        pass
    layers: dict[str, Any] = {}
    missing: list[tuple[str, str]] = []
    for layer, source in _layer_sources(data.options or {}, kind).items():
        found = _load_layer(layer, source, translator, run_dir, size)
        if found is not None:
            layers[layer] = found
        elif _missing_file(layer, source, data.root) not in missing:
            missing.append(_missing_file(layer, source, data.root))
    return layers, missing


def _split_layers(primitive: Tensor) -> dict[str, Tensor]:
    if primitive.shape[0] == 1:
        return {"edges": primitive}
    return {"seg": primitive[:3], **({"edges": primitive[3:]} if primitive.shape[0] == 4 else {})}


def _layer_sources(options: dict[str, Any], kind: str) -> dict[str, str]:
    """Each layer's training source: a file, or ``auto*`` (computed from the image)."""
    from pixmorph.data.single_image import AUTO_EDGES

    primitive = str(options.get("primitive", AUTO_EDGES))
    if kind == "seg+edges":
        return {"seg": primitive, "edges": str(options.get("edges", "auto"))}
    return {kind: primitive}


def _is_computed(source: str) -> bool:
    from pixmorph.data.single_image import AUTO_EDGES, AUTO_SEG

    return source in (AUTO_EDGES, AUTO_SEG, "auto")


def _load_layer(layer: str, source: str, translator: Translator, run_dir: Path,
                size: tuple[int, int]) -> Tensor | None:
    """One layer at ``size`` from its training file, the training image (computed), or the run's copy (which the
    CLI keeps of every layer); None when none of them is there."""
    from pixmorph.data import primitives as P
    from pixmorph.data.single_image import AUTO_EDGES, AUTO_SEG, SingleImage
    from pixmorph.train.set_aside import last_run_output

    load = P.load_seg if layer == "seg" else P.load_edges
    data = translator.config.data
    try:
        if not _is_computed(source) and Path(source).is_file():
            return load(source, size)
        if _is_computed(source) and Path(data.root).is_file():
            keep = {k: v for k, v in (data.options or {}).items() if k in ("max_side", "canny_sigma", "segments")}
            options = {**keep, "primitive": AUTO_SEG if layer == "seg" else AUTO_EDGES, "kind": layer}
            computed = SingleImage(data.root, options, mode=translator.image_mode).primitive
            if tuple(computed.shape[-2:]) == (size[1], size[0]):
                return computed
        copy = last_run_output(run_dir, "primitive") / f"{Path(data.root).stem}_{layer}.png"
        return load(copy, size) if copy.is_file() else None
    except (OSError, ValueError):
        return None


def _missing_file(layer: str, source: str, image: str) -> tuple[str, str]:
    """What to name for a layer that was not found: its file, or the image it was computed from."""
    return (image, LAYER_ROLES["image"]) if _is_computed(source) else (source, LAYER_ROLES[layer])


def region_colours(seg: np.ndarray, most: int = MAX_PALETTE, apart: int = 32,
                   min_share: float = LABEL_SHARE) -> np.ndarray:
    """A segmentation's label colours for painting, the most frequent first, each more than ``apart`` from every
    one before it in some channel. A segmentation of more than ``most`` colours (anti-aliased, or a JPEG) offers
    only the colours whose region interiors cover ``min_share`` of its pixels: an anti-aliased border's blends
    and a JPEG's ringing make many colours, but hardly a pixel whose neighbours all share its colour."""
    codes = _colour_codes(seg)
    values, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    if len(values) > most:
        inside = np.bincount(inverse.ravel(), _interior(codes).ravel(), len(values))
        labels = inside >= min_share * codes.size
        if labels.any():
            values, counts = values[labels], counts[labels]
    kept: list[np.ndarray] = []
    for code in values[np.argsort(-counts, kind="stable")]:
        colour = np.array([code >> 16, (code >> 8) & 255, code & 255], dtype=np.int16)
        if all(np.abs(colour - k).max() > apart for k in kept):
            kept.append(colour)
            if len(kept) == most:
                break
    return np.array(kept, dtype=np.uint8).reshape(-1, 3)


def _colour_codes(seg: np.ndarray) -> np.ndarray:
    """An H x W x 3 uint8 image as H x W integers, one per colour."""
    rgb = seg.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _interior(codes: np.ndarray) -> np.ndarray:
    """Where a pixel's 3 x 3 neighbourhood is all of its colour."""
    from scipy import ndimage

    return ndimage.maximum_filter(codes, 3, mode="nearest") == ndimage.minimum_filter(codes, 3, mode="nearest")

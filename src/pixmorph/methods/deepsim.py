"""DeepSIM (Vinker, Horwitz, Zabari & Hoshen, 2020/ICCV 2021): a conditional GAN trained on ONE image
and its primitive (edges, segmentation or both), augmented with thin-plate-spline warps, renders edited
primitives as edited images.

Networks and losses are pix2pixHD's: the global generator, a two-scale discriminator that sees the
primitive and the image side by side, LSGAN + 10 x discriminator feature matching + 10 x VGG perceptual
loss. Each step warps the pair (TPS with probability 0.99, else affine) on the batch's own device, and
redraws computed Canny edges at a random sigma. The data layout is ``single`` (data/single_image.py).

Python API::

    import pixmorph
    from pixmorph.methods import deepsim
    from pixmorph.train.loop import train
    run = train(deepsim.make_config("car.png", primitive="car_seg.png", out="runs/car"))
    deepsim.edit(run, ["car_edited_seg.png"], out="edits/")        # files, at the training size rule
    images = deepsim.render(pixmorph.load(run), ["car_edited_seg.png"])  # CHW tensors in [-1, 1]
    photo = pixmorph.load(run)(Image.open("car_edited_seg.png"))   # a PIL primitive, at its own size
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from pixmorph.data import primitives as P
from pixmorph.data import tps
from pixmorph.data.single_image import check_same_shape
from pixmorph.images import as_rgb, read_image
from pixmorph.methods.base import Method, MethodConfig, Update, register, set_requires_grad
from pixmorph.nn.gan_loss import gan_loss
from pixmorph.nn.global_generator import GlobalGenerator
from pixmorph.nn.init import init_normal
from pixmorph.nn.multiscale_discriminator import MultiscaleDiscriminator, feature_matching_loss

if TYPE_CHECKING:
    from pixmorph.api import Translator
    from pixmorph.config import RunConfig


PERCEPTUAL_MIN_SIDE = 32  # shift-tolerant VGG16 fails below 24 px; sides are multiples of 16


@dataclass
class DeepSIMConfig(MethodConfig):
    in_channels: int = 1  # primitive channels: edges 1, seg 3, seg+edges 4
    out_channels: int = 3
    ngf: int = 64
    n_downsampling: int = 4
    n_blocks: int = 9
    ndf: int = 64
    num_D: int = 2
    d_layers: int = 3
    norm: str = "instance"
    gan_mode: str = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    perceptual: str = "auto"  # auto | vgg19 | stlpips-vgg16 (see nn/perceptual.py)
    lr: float = 2e-4
    beta1: float = 0.5
    init_gain: float = 0.02
    augment: str = "tps"  # tps (else affine with 1 - tps_prob) | affine | crop | none
    flip: bool = True  # mirror the pair left-right half the time (DeepSIM's and pix2pixHD's default; crop flips anyway)
    tps_prob: float = 0.99
    tps_max_shift: float = 0.1  # of the width, along each axis (DeepSIM's 0.1 W)
    # TPS control grid: inner, at 1/4..3/4 (held-out views scored better at 2,000 steps: README) | full, edge
    # to edge with a mirror fill, as DeepSIM's code draws it (data/tps.py)
    tps_grid: str = "inner"
    affine_shear: float = 0.3
    affine_translate: float = 0.2
    affine_rotate: float = 10.0  # degrees
    canny_sigma_aug: bool = True  # redraw computed edges at sigma ~ U[canny_sigma_min, canny_sigma_max)
    canny_sigma_min: float = 1.2
    canny_sigma_max: float = 3.0


# where a seg+edges model's two files go, from the command line and from Python
SEG_EDGES_HINT = ("(seg+edges models: pixmorph edit RUN SEG --edges EDGES; from Python "
                  "deepsim.render(model, SEG, edges=EDGES))")


class PrimitiveRenderer(nn.Module):
    """The generator as translators see it: takes a 1- or 3-channel input for an edge (1) or
    segmentation (3) model, so ``pixmorph translate`` and :class:`pixmorph.api.Translator` (which read
    files as RGB) work; seg+edges models need :func:`edit`, which builds 4-channel primitives."""

    def __init__(self, generator: GlobalGenerator):
        super().__init__()
        self.generator = generator
        self.stride, self.min_size = generator.stride, generator.min_size

    def forward(self, x: Tensor) -> Tensor:
        want = self.generator.in_channels
        if x.shape[1] != want:
            if want == 1 and x.shape[1] == 3:
                x = x.mean(1, keepdim=True)
            elif want == 3 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            else:
                raise ValueError(f"this DeepSIM model takes {want}-channel primitives, got {x.shape[1]} channels "
                                 f"{SEG_EDGES_HINT}")
        return self.generator(x)


@register
class DeepSIM(Method):
    name = "deepsim"
    Config = DeepSIMConfig
    data_layout = "single"

    def __init__(self, cfg: DeepSIMConfig):
        super().__init__(cfg)
        if cfg.augment not in tps.MODES:
            raise ValueError(f"model.augment={cfg.augment!r}: choose from {', '.join(tps.MODES)}")
        if cfg.tps_grid not in tps.GRIDS:
            raise ValueError(f"model.tps_grid={cfg.tps_grid!r}: choose from {', '.join(tps.GRIDS)}")
        self.nets["G"] = GlobalGenerator(cfg.in_channels, cfg.out_channels, cfg.ngf, cfg.n_downsampling,
                                         cfg.n_blocks, cfg.norm)
        self.nets["D"] = MultiscaleDiscriminator(cfg.in_channels + cfg.out_channels, cfg.ndf, cfg.d_layers,
                                                 cfg.num_D, cfg.norm)
        for net in self.nets.values():
            init_normal(net, cfg.init_gain, zero_bias=False)  # pix2pixHD's init: convolution weights only
        betas = (cfg.beta1, 0.999)
        self.optimizers = {"G": torch.optim.Adam(self.nets["G"].parameters(), cfg.lr, betas),
                           "D": torch.optim.Adam(self.nets["D"].parameters(), cfg.lr, betas)}
        self.renderer = PrimitiveRenderer(self.nets["G"])
        self._perceptual: nn.Module | None = None  # loaded at the first training step, on its device
        self._perceptual_name: str | None = None

    # -- augmentation ---------------------------------------------------------------------------

    def augment(self, A: Tensor, B: Tensor, auto_edges: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The same random warp (and mirror, with ``flip``) on the primitive ``A`` and the image ``B`` (float32,
        on their device). Edge channels are made black and white again, as DeepSIM thresholds its warped edge
        maps (interpolation greys the lines; the edges given at test time are not grey); then the computed-edge
        channels of ``A`` (``auto_edges``, one flag per channel) are redrawn from the warped image at a random
        Canny sigma. Random numbers: ``generator``, else the torch global RNG (CPU)."""
        cfg = self.cfg
        cb = B.shape[1]
        x = tps.random_warp(torch.cat([B, A], 1), cfg.augment, cfg.tps_prob, cfg.tps_max_shift, cfg.affine_shear,
                            cfg.affine_translate, cfg.affine_rotate, generator, crop_flip=cfg.flip,
                            tps_grid=cfg.tps_grid)
        if cfg.flip and cfg.augment != "crop":  # (crop mirrors within its own warp)
            mirror = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)[:, None, None, None]
            x = torch.where(mirror, x.flip(-1), x)
        B, A = x[:, :cb], x[:, cb:]
        edge_channel = {1: 0, 4: 3}.get(A.shape[1])  # edges: 1 channel; seg+edges: the 4th; seg: none
        if edge_channel is not None:
            A = torch.cat([A[:, :edge_channel], P.binarize_edges(A[:, edge_channel : edge_channel + 1]),
                           A[:, edge_channel + 1 :]], 1)
        if cfg.canny_sigma_aug and auto_edges is not None:
            channels = [int(c) for c in torch.nonzero(auto_edges.reshape(-1, A.shape[1])[0] > 0.5).flatten()]
            if channels:
                sigma = cfg.canny_sigma_min + (cfg.canny_sigma_max - cfg.canny_sigma_min) * torch.rand(
                    A.shape[0], generator=generator)
                edges = P.canny_edges(B, sigma)
                A = torch.cat([edges if c in channels else A[:, c : c + 1] for c in range(A.shape[1])], 1)
        return A, B

    # -- training ---------------------------------------------------------------------------------

    def perceptual(self, device: torch.device) -> nn.Module:
        if self._perceptual is None:
            from pixmorph.nn.perceptual import load_perceptual

            net, message = load_perceptual(self.cfg.perceptual, device=device)
            tqdm.write(message, file=sys.stderr)  # on its own line, above the training loop's progress bar
            if self._perceptual_name not in (None, net.name):
                warnings.warn(f"this run was trained with the perceptual network {self._perceptual_name}, "
                              f"continuing with {net.name}", stacklevel=2)
            self._perceptual, self._perceptual_name = net, net.name
        return self._perceptual

    def _check(self, A: Tensor, B: Tensor) -> None:
        cfg = self.cfg
        if A.shape[1] != cfg.in_channels:
            raise ValueError(f"the primitive has {A.shape[1]} channels but model.in_channels={cfg.in_channels}: "
                             f"set model.in_channels={A.shape[1]} (edges 1, seg 3, seg+edges 4)")
        if B.shape[1] != cfg.out_channels:
            raise ValueError(f"the image has {B.shape[1]} channels but model.out_channels={cfg.out_channels}")
        stride = self.nets["G"].stride
        if A.shape[-1] % stride or A.shape[-2] % stride:
            raise ValueError(f"image size {A.shape[-1]}x{A.shape[-2]} is not a multiple of {stride}")
        self.check_training_size(A.shape[-1], A.shape[-2])

    def check_training_size(self, width: int, height: int) -> None:
        if self.cfg.lambda_vgg and min(width, height) < PERCEPTUAL_MIN_SIDE:
            long_side = -(-PERCEPTUAL_MIN_SIDE * max(width, height) // min(width, height))  # keeps the aspect
            long_side = -(-long_side // P.MULTIPLE) * P.MULTIPLE
            raise ValueError(f"image size {width}x{height}: the perceptual loss needs sides of at least "
                             f"{PERCEPTUAL_MIN_SIDE} (the offline VGG16's pooling): use a larger image (a --max-side "
                             f"of {long_side} or more where one shrank it), or --set model.lambda_vgg=0")

    def train_step(self, batch: dict[str, Tensor], update: Update) -> dict[str, Tensor]:
        cfg, G, D = self.cfg, self.nets["G"], self.nets["D"]
        self._check(batch["A"], batch["B"])
        A, B = self.augment(batch["A"], batch["B"], batch.get("auto_edges"))
        fake = G(A)

        # pix2pixHD's order: every discriminator output from the same D, then the G step, then the D step.
        set_requires_grad(D, False)
        pred_fake = D(torch.cat([A, fake], 1))
        set_requires_grad(D, True)
        pred_real = D(torch.cat([A, B], 1))
        pred_fake_pool = D(torch.cat([A, fake.detach()], 1))

        loss_G_GAN = sum(gan_loss(p[-1], True, cfg.gan_mode, for_discriminator=False) for p in pred_fake)
        zero = fake.new_zeros((), dtype=torch.float32)
        loss_G_feat = feature_matching_loss(pred_fake, pred_real, cfg.d_layers) * cfg.lambda_feat \
            if cfg.lambda_feat else zero
        loss_G_VGG = self.perceptual(fake.device)(fake, B) * cfg.lambda_vgg if cfg.lambda_vgg else zero
        update(loss_G_GAN + loss_G_feat + loss_G_VGG, "G")

        loss_D_real = sum(gan_loss(p[-1], True, cfg.gan_mode) for p in pred_real)
        loss_D_fake = sum(gan_loss(p[-1], False, cfg.gan_mode) for p in pred_fake_pool)
        update(0.5 * (loss_D_real + loss_D_fake), "D")
        losses = {"G_GAN": loss_G_GAN, "G_feat": loss_G_feat, "G_VGG": loss_G_VGG, "D_real": loss_D_real,
                  "D_fake": loss_D_fake}
        return {k: v.detach() for k, v in losses.items()}

    # -- looking and translating ------------------------------------------------------------------

    @staticmethod
    def _cells(A: Tensor) -> list[Tensor]:
        return [A[:3], A[3:]] if A.shape[0] == 4 else [A]

    @torch.no_grad()
    def visuals(self, batch: dict[str, Tensor]) -> list[list[Tensor]]:
        """One row per sample: primitive, output, image; then a warp of the pair fixed by the sample's seed
        (drawn from its own generator: the training RNG is not touched) and the output for it."""
        G = self.nets["G"]
        A, B = batch["A"][:1].float(), batch["B"][:1].float()
        row = [*self._cells(A[0]), G(A)[0], B[0]]
        if "seed" in batch:
            g = torch.Generator().manual_seed(int(batch["seed"].reshape(-1)[0]))
            A_w, B_w = self.augment(A, B, batch.get("auto_edges"), generator=g)
            row += [*self._cells(A_w[0]), G(A_w)[0], B_w[0]]
        return [row]

    def visual_columns(self) -> str:
        primitive = "segmentation | edges" if self.cfg.in_channels == 4 else "primitive"
        return f"{primitive} | render | image, then the same for a warp of the pair (augmentation as in training)"

    def translators(self) -> dict[str, nn.Module]:
        return {"AtoB": self.renderer}

    def input_image(self, image: Image.Image) -> Image.Image | None:
        """A segmentation model colours a label-index image as training coloured its label file; an edge model
        reads the edge map black and white, as training read its edge file (:func:`P.binarize_edges`)."""
        if self.cfg.in_channels == P.CHANNELS["seg"]:
            return P.seg_image(image)
        if self.cfg.in_channels == P.CHANNELS["edges"]:
            return as_rgb(image).convert("L").point(lambda v: 0 if v / 255 <= 1 - P.EDGE_INK else 255)
        return None

    def extra_state(self) -> dict[str, Any]:
        return {"perceptual": self._perceptual_name or ""}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._perceptual_name = state.get("perceptual") or None


# ---------------------------------------------------------------------------
# Python API: a run config from files, and rendering edited primitives with a checkpoint.


def make_config(image: str | os.PathLike, primitive: str | os.PathLike | None = None, kind: str | None = None,
                edges: str | os.PathLike | None = None, out: str | os.PathLike = "runs/deepsim",
                max_side: int | None = None, model: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                train: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> RunConfig:
    """A :class:`~pixmorph.config.RunConfig` for DeepSIM on ``image``, read as ``pixmorph train deepsim --image
    IMAGE --primitive P --edges E --kind K --max-side N`` reads them: ``primitive`` a file, ``auto-edges`` or
    ``auto-seg`` (neither given: Canny edges of the image); ``edges`` alone (a file, or ``auto``) is the edge map
    the model takes, and beside a ``primitive`` the edge map of a seg+edges pair; ``image="example"`` writes the
    built-in example into ``out/example`` and trains on it. ``model.in_channels`` is set to the primitive's
    channels. ``model``/``data``/``train``/``options`` set any other field (``options``: data.options)."""
    from pixmorph.config import RunConfig

    data = dict(data or {})
    data["options"] = {**data.get("options", {}), **(options or {})}
    d = {"model": dict(model or {}), "data": data, "train": {"out": str(out), **(train or {})}}
    d = apply_cli_options(d, os.fspath(image), None if primitive is None else os.fspath(primitive),
                          None if edges is None else os.fspath(edges), kind, max_side)
    if os.fspath(image) == "example":
        print(example_note(out), file=sys.stderr)
    return RunConfig.from_dict({"method": DeepSIM.name, **d})


def example_note(out: str | os.PathLike) -> str:
    """Where ``--image example`` wrote the built-in example in run folder ``out``, and how to edit it."""
    from pixmorph.data.single_image import example_paths

    folder = Path(out) / "example"
    edited = " ".join(map(str, example_paths(folder)["edited"]))
    return f"built-in example in {folder}: edit it with `pixmorph edit {out} {edited} --out DIR`"


def apply_cli_options(d: dict[str, Any], image: str | None, primitive: str | None, edges: str | None,
                      kind: str | None, max_side: int | None, dry_run: bool = False) -> dict[str, Any]:
    """Fold ``pixmorph train deepsim``'s --image/--primitive/--edges/--kind/--max-side into a config dict
    (before --set overrides). ``--image example`` writes the built-in example into the run folder (in a
    ``dry_run`` only names its files) and trains on its photo and edges; ``--edges auto`` without
    --primitive is Canny edges of the image."""
    from pixmorph.data.single_image import SingleImageOptions, example_paths, write_example

    data = d.setdefault("data", {})
    data.setdefault("num_workers", 0)  # one fixed pair in memory: loader processes would only copy it
    opts = dict(data.get("options") or {})
    if image == "example":
        folder = Path(d["train"]["out"]) / "example"
        paths = example_paths(folder) if dry_run else write_example(folder)
        if primitive is None and edges is None and kind is None:
            kind = "edges"  # the example's edge map: known without reading it (a dry run has no file to read)
        image, primitive = str(paths["image"]), primitive or str(paths["edges"])
    if image is not None:
        data["root"] = image
    if primitive is not None:
        opts["primitive"] = primitive
    if edges is not None:
        if primitive is None and "primitive" not in opts:  # --edges alone: the edge map is the primitive
            opts["primitive"] = "auto-edges" if edges == "auto" else edges
            opts.setdefault("kind", "edges")
        else:
            opts["edges"] = edges
            if kind is None:
                kind = "seg+edges"
    if kind is not None:
        opts["kind"] = kind
    if max_side is not None:
        opts["max_side"] = max_side
    resolved = SingleImageOptions.from_dict(opts)
    opts["kind"] = resolved.kind
    _absolute_files(opts)
    data["options"] = opts
    d.setdefault("model", {}).setdefault("in_channels", P.CHANNELS[resolved.kind])
    return d


def _absolute_files(opts: dict[str, Any]) -> None:
    """The primitive and edge-map files as absolute paths (the saved config must work from any directory;
    the loop does the same for the image, ``data.root``)."""
    for key in ("primitive", "edges"):
        value = opts.get(key)
        if isinstance(value, str) and not value.startswith("auto") and Path(value).expanduser().exists():
            opts[key] = str(Path(value).expanduser().resolve())


KIND_OF_CHANNELS = {c: k for k, c in P.CHANNELS.items()}


def load_primitives(paths: Sequence[str | Path], kind: str, max_side: int | None = None,
                    edges: Sequence[str | Path] | None = None) -> list[Tensor]:
    """Edited primitive files as a model of ``kind`` was trained on them: the same label colours and size
    rule (``max_side``, then multiples of 16). Each CHW in [-1, 1]; ``edges``: for seg+edges, one edge map
    per segmentation."""
    if kind == "seg+edges":
        if not edges or len(edges) != len(paths):
            drawn = next((p for p in paths if looks_like_drawn_edges(p)), None)
            hint = f"; {drawn} looks like an edge map: give the segmentation first and it with --edges" \
                if drawn and not edges else ""
            raise ValueError(f"this model takes seg+edges (a segmentation and its edge map, two files): give one edge "
                             f"map per segmentation (--edges; edges= from Python; {len(paths)} needed for "
                             f"{', '.join(map(str, paths))}, "
                             f"{len(edges or [])} given){hint}")
    elif edges:
        raise ValueError(f"a second file, an edge map (--edges; the edges field of /api/edit), is for seg+edges "
                         f"models; this one takes {kind} alone")
    for i, path in enumerate(paths):
        warn_if_not_primitive(path, "edges" if kind == "edges" else "seg", kind)
        if kind == "seg+edges":
            warn_if_not_primitive(edges[i], "edges", kind)
    out = []
    for i, path in enumerate(paths):
        size = P.round_size(*read_image(path).size, max_side)
        if kind == "edges":
            out.append(P.load_edges(path, size))
        elif kind == "seg":
            out.append(P.load_seg(path, size))
        else:
            seg = P.load_seg(path, size)
            check_same_shape(edges[i], path, "segmentation")  # training refuses it too: it would be stretched
            out.append(torch.cat([seg, P.load_edges(edges[i], size)]))
    return out


def looks_like_drawn_edges(source: P.Source) -> bool:
    """Whether a file (or an image in memory) looks like a drawn edge map: gray, two levels, mostly white (not a
    label map of small indices, which is dark)."""
    if not P.looks_like_edges(source):
        return False
    return bool((np.asarray(P.read_source(source, mode="L")) > 191).mean() > 0.5)


def warn_if_not_primitive(source: P.Source, role: str, kind: str, reader: str = "model") -> None:
    """A one-line warning when a file (or an image in memory, named by :func:`P.source_name`) given as a ``kind``
    model's segmentation (``role`` seg) looks like an edge map or a photo, or one given as its edge map (``role``
    edges) is in colour (a photo, a segmentation?), white lines on black, or gray regions (a gray photo?): it would
    be rendered, but not as the user meant. ``pixmorph edit``, ``/api/edit``, ``pixmorph translate`` and
    ``pixmorph.load(run)(images)`` share it; training (``reader`` run) too."""
    where = " (the segmentation goes first, its edge map with --edges)" if kind == "seg+edges" else ""
    path = P.source_name(source)
    if role == "seg" and looks_like_drawn_edges(source):
        warnings.warn(f"{path}: looks like an edge map (gray, black lines on white), but this {kind} {reader} reads "
                      f"it as a segmentation{where}", stacklevel=3)
    elif role == "seg" and P.looks_like_photo(source):
        warnings.warn(f"{path}: looks like a photo (thousands of colours, not flat regions), but this {kind} {reader} "
                      f"reads it as a segmentation{where}", stacklevel=3)
    elif role == "edges" and P.is_colour(source):
        warnings.warn(f"{path}: a colour image, but this {kind} {reader} reads it as an edge map (black lines on "
                      f"white, read as gray){where}", stacklevel=3)
    elif role == "edges" and P.looks_like_inverted_edges(source):
        warnings.warn(f"{path}: white lines on black, but this {kind} {reader} reads an edge map as black lines on "
                      f"white (invert it){where}", stacklevel=3)
    elif role == "edges" and not P.looks_like_edges(source):
        warnings.warn(f"{path}: gray regions, not thin lines (a photo, a label map?), but this {kind} {reader} reads "
                      f"it as an edge map (black lines on white){where}", stacklevel=3)


def check_primitives(translator: Translator, primitives: Sequence[P.Source], at_own_size: bool = True) -> None:
    """Files (or PIL images) given to a DeepSIM model of one layer (edges or seg) as they are translated
    (``pixmorph translate``, ``pixmorph.load(run)(images)``), checked as ``pixmorph edit`` and training check
    them: a segmentation with transparent pixels is refused (one line naming it), and a primitive that does not
    look like the model's is warned of (:func:`warn_if_not_primitive`); a seg+edges model, which takes two files
    per image, refuses them (one line naming the first); ``at_own_size`` (no ``size``): one far from the training
    image's size is warned of (:func:`warn_if_other_scale`). Any other model's images pass."""
    if translator.config.method != DeepSIM.name:
        return
    kind = KIND_OF_CHANNELS.get(translator.method.cfg.in_channels)
    if kind == "seg+edges" and primitives:  # an image is one file: its 3 (or 1) channels cannot be read as 4
        raise ValueError(f"{P.source_name(primitives[0])}: one image, but this seg+edges model takes 4-channel "
                         f"primitives, a segmentation and its edge map (two files) {SEG_EDGES_HINT}")
    if kind not in ("edges", "seg"):
        return
    for primitive in primitives:
        if kind == "seg":
            P.check_opaque_seg(primitive)
        warn_if_not_primitive(primitive, kind, kind)
        if at_own_size:
            warn_if_other_scale(primitive, translator.image_size)


def warn_if_other_scale(source: P.Source, trained: Sequence[int] | None) -> None:
    """A one-line warning when a primitive that renders at its own size (translate, ``pixmorph.load(run)``) is
    far from the size of the image the model trained on (``trained``: width, height): DeepSIM draws its image's
    shapes at the scale it learned them, so a primitive at twice the size renders as a patchwork."""
    if not trained:
        return
    with P.opened(source) as img:
        width, height = img.size
    scale = (width * height / (trained[0] * trained[1])) ** 0.5
    if not 2 / 3 <= scale <= 3 / 2:
        warnings.warn(f"{P.source_name(source)}: {width}x{height}, {scale:.2g}x the scale of the {trained[0]}x"
                      f"{trained[1]} image this model trained on; it renders at its own size, and DeepSIM draws "
                      f"shapes at the scale it learned: resize it to about {trained[0]}x{trained[1]}", stacklevel=3)


def render(model: str | os.PathLike | Translator, primitives: str | os.PathLike | Sequence[str | os.PathLike],
           edges: str | os.PathLike | Sequence[str | os.PathLike] | None = None, device: str = "cpu",
           progress: bool = False, batch_size: int = 8) -> list[Tensor]:
    """Render edited primitive files with a DeepSIM model: ``model`` is a run or checkpoint folder, or a
    :class:`pixmorph.api.Translator` from ``pixmorph.load``. The files (a list, or one path alone) are read as
    training read its primitive (label colours, ``max_side`` and multiples of 16); ``edges``: for seg+edges
    models, one edge map per segmentation. Primitives of one shape share generator calls, ``batch_size`` at a
    time (each renders as it would alone: no norm of the generator mixes the images of a batch). Returns one CHW image in
    [-1, 1] per primitive, in order; ``progress``: a bar over them."""
    from pixmorph.api import Translator, load
    from pixmorph.batches import equal_shape_batches
    from pixmorph.fullsize_memory import batch_that_fits

    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: give 1 or more")

    primitives, edges = _file_list(primitives), None if edges is None else _file_list(edges)
    translator = model if isinstance(model, Translator) else load(model, device=device)
    config = translator.config
    name = translator.checkpoint or "this model" if isinstance(model, Translator) else model  # not an object's repr
    if config.method != DeepSIM.name:
        raise ValueError(f"{name}: a {config.method} checkpoint; edit renders DeepSIM ones "
                         "(use `pixmorph translate`, or pixmorph.load(CKPT) from Python, for other methods)")
    kind = KIND_OF_CHANNELS.get(translator.method.cfg.in_channels)
    if kind is None:
        raise ValueError(f"{name}: model.in_channels={translator.method.cfg.in_channels} is no primitive kind "
                         f"({', '.join(f'{k} {c}' for k, c in P.CHANNELS.items())})")
    max_side = (config.data.options or {}).get("max_side")
    inputs = load_primitives(primitives, kind, max_side, edges)
    if translator.image_size:
        for path, x in zip(primitives, inputs):
            _warn_if_other_shape(path, x.shape[-1], x.shape[-2], translator.image_size)
    if len(inputs) > 1:  # no batch larger than fits in memory (a CPU's running out is a kill): one at a time ran
        batch_size = batch_that_fits(translator.method.renderer, inputs[0].shape[0],
                                     max(x.shape[-1] * x.shape[-2] for x in inputs), batch_size, translator.device)
    out: list = [None] * len(inputs)
    with tqdm(total=len(inputs), unit="image", disable=not progress or len(inputs) < 2, leave=False) as bar:
        for batch in equal_shape_batches([tuple(x.shape) for x in inputs], batch_size):
            rendered = translator.translate_batch(torch.stack([inputs[i] for i in batch]))
            for i, y in zip(batch, rendered):
                out[i] = y.clone()  # not a view that keeps its whole batch alive
            bar.update(len(batch))
    return out


def _file_list(files: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    """Files as a list: one path alone is one file, not a sequence of characters. Anything but paths (a PIL
    image) is one line saying what is taken."""
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    for f in files:
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError(f"{type(f).__name__}: give primitive files (paths); to render an image in memory, "
                            f"pixmorph.load(run)(image)")
    return files


def _warn_if_other_shape(path: str | Path, w: int, h: int, training_size: Sequence[int]) -> None:
    """One line when an edited primitive, read as training read its primitive (``max_side``, multiples of 16:
    ``w`` x ``h``), has another aspect ratio than the training image: it renders at its own shape, but the
    model only ever saw the training image's."""
    tw, th = training_size
    if abs((w / h) / (tw / th) - 1) > 0.05:
        fw, fh = read_image(path).size
        warnings.warn(f"{path}: its aspect ratio {fw / fh:.2f} ({fw}x{fh}) is not the training image's "
                      f"{tw / th:.2f} ({tw}x{th}): rendered at its own shape ({w}x{h}), which the model never "
                      f"trained on", stacklevel=3)


def edit(checkpoint: str | os.PathLike | Translator, primitives: str | os.PathLike | Sequence[str | os.PathLike],
         out: str | os.PathLike, edges: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
         device: str = "cpu", batch_size: int = 8) -> list[Path]:
    """:func:`render` the edited primitive files into ``out`` as ``<name>.png``; returns the written paths.
    ``checkpoint``: a run or checkpoint folder, or a :class:`pixmorph.api.Translator` from ``pixmorph.load``."""
    from pixmorph.images import check_distinct_outputs, save_image

    primitives = _file_list(primitives)
    check_distinct_outputs(primitives, out, keep=[] if edges is None else _file_list(edges))
    names = [Path(p).stem for p in primitives]
    images = render(checkpoint, primitives, edges, device, progress=True, batch_size=batch_size)
    return [save_image(y, Path(out) / f"{name}.png") for name, y in zip(names, images)]

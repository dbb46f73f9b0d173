"""What every method provides to the training loop, the checkpoint and the translator.

A method owns its networks, optimizers and losses for one batch. It never touches devices,
precision, distribution or files: the loop hands it batches already on the device and an
``update`` callable that does backward + optimizer step (with gradient scaling, and later
gradient synchronisation) for a named optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from PIL import Image
from torch import Tensor, nn

class Update(Protocol):
    """What ``train_step`` is given. ``update(loss, name)``: backward of ``loss``, then one step of optimizer
    ``name``. ``update.grad(output, inputs, name)``: d ``output`` / d ``inputs`` (a scalar output), kept
    differentiable for a penalty on it (FUNIT's R1), taken as ``name``'s backward takes its loss's gradients
    (with the loop's loss scaling, so that in fp16 they do not underflow)."""

    def __call__(self, loss: Tensor, name: str) -> None: ...

    def grad(self, output: Tensor, inputs: Tensor, name: str) -> Tensor: ...

METHODS: dict[str, type["Method"]] = {}


def register(cls: type["Method"]) -> type["Method"]:
    METHODS[cls.name] = cls
    return cls


# Channel widths and counts of the methods' networks that must be at least 1 (0 fails inside torch).
WIDTHS = frozenset({"ngf", "ndf", "nf", "nf_mlp", "nf_dis", "latent_dim", "z_dim", "embed_dim", "in_channels",
                    "out_channels", "num_D"})


@dataclass
class MethodConfig:
    """Base of the method configs; each method subclasses it with its paper's defaults."""

    def __post_init__(self) -> None:
        from pixmorph.nn.gan_loss import GAN_MODES

        mode = getattr(self, "gan_mode", None)
        if mode is not None and mode not in GAN_MODES:  # else it fails at the first step, under the progress bar
            raise ValueError(f"model.gan_mode={mode!r}: use {', '.join(GAN_MODES)}")
        for name, value in self.__dict__.items():  # depths, counts, sizes: never below 0; widths: at least 1
            if isinstance(value, int) and not isinstance(value, bool) and value < (name in WIDTHS):
                raise ValueError(f"model.{name}={value}: give {int(name in WIDTHS)} or more")


class Method:
    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]]
    data_layout: ClassVar[str]  # which dataset it trains on: "unpaired", "paired", ...
    # The paper's train settings where they differ from the generic ones (CycleGAN's: batch 1, 100 + 100
    # epochs, linear decay), used for those a config leaves out (RunConfig.from_dict, so `pixmorph train`).
    train_defaults: ClassVar[dict[str, Any]] = {}
    # The built-in task it trains on when a config gives no data.root (DataConfig's default, fashion-edges, is
    # unpaired: CycleGAN's): {"data": ..., "model": ..., "train": ...}, the settings that task wants where a config
    # leaves them out, also when the config names that task as its data.root.
    default_task: ClassVar[dict[str, dict[str, Any]]] = {}
    # (load, crop) size of images from a folder when data.load_size/crop_size are not given (a built-in task
    # decides its own size).
    reference_sizes: ClassVar[tuple[int, int]] = (286, 256)
    # Whether batches hold each class equally often when data.balance_classes is not given (labelled layouts).
    balanced_batches: ClassVar[bool] = False

    def __init__(self, cfg: MethodConfig):
        self.cfg = cfg
        self.nets = nn.ModuleDict()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def train_step(self, batch: dict[str, Tensor], update: Update) -> dict[str, Tensor]:
        """One training step on ``batch``; returns detached scalar losses by name."""
        raise NotImplementedError

    def step_modules(self) -> list[nn.Module]:
        """The modules ``train_step`` calls (``train.compile`` compiles these): its networks, or the parts of
        one that it calls directly instead of the network."""
        return list(self.nets.values())

    @torch.no_grad()
    def visuals(self, batch: dict[str, Tensor]) -> list[list[Tensor]]:
        """Rows of images (each CHW in [-1, 1]) for the sample grid."""
        raise NotImplementedError

    def check_training_size(self, width: int, height: int) -> None:
        """Refuse, in one line, training images of a size this method cannot take (besides its generators'
        stride and least input, which the loop checks); called before the first step."""

    def check_start(self, dataset: Any, data_root: Path) -> None:
        """Refuse, in one line, a run this method cannot train: training data its networks are not built for
        (``dataset``, read from ``data_root``), or a resumed state it cannot go on from. Called before the first
        step and before the run folder is written to, once a resumed run's state is restored."""

    def train_on_hint(self, schedule_end: int | None = None) -> str:
        """How to train a run on that is at its last step (said by a ``--resume`` with nothing to train);
        ``schedule_end``: the step its epochs end at, when the run is there (a larger --steps is cut back to it)."""
        if schedule_end is not None:
            return (f"the schedule's epochs end at step {schedule_end}: for more steps give more --epochs / "
                    f"--epochs-decay, train.epochs / epochs_decay from Python")
        return "raise --steps, train.max_steps from Python, or the epochs"

    def visual_columns(self) -> str:
        """What the columns of a ``visuals`` row show, for the samples page (``input | output``)."""
        return ""

    def translators(self) -> dict[str, nn.Module]:
        """Generator per direction ("AtoB", "BtoA", ...) used for translation and export."""
        raise NotImplementedError

    def input_image(self, image: Image.Image) -> Image.Image | None:
        """An input image (any PIL mode, as read) the way this method's generators read it, where the usual
        rule (8-bit, alpha over white, the data's channels) is not it; None: the usual rule."""
        return None

    def unfinished(self, step: int) -> str | None:
        """Why weights saved at ``step`` cannot translate yet (a part that has not trained), for a warning
        when they are loaded; None: they can."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """Training state beyond weights and optimizers (image pools, ...); tensors and primitives only."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)

"""Two-step latent translation (Dong et al. 2017, arXiv 1701.02676).

Step 1 trains a class-conditional GAN over all domains at once: a DCGAN generator ``G(z, c)`` from
``[z ⊕ embedding(c)]`` and a discriminator with a real/fake head and a class head (ACGAN: G is trained
to make the class head see the class it was asked for; the class head learns from real images and their
labels, see below). Step 2 freezes G (and D) and trains an encoder ``E`` (the discriminator's trunk with a
dense head to z, its trunk copied from D's by default) to invert G: MSE between ``E(G(z, c))`` and
``z`` on generated images; optionally (``recon_weight > 0``) also the L1 reconstruction
``G(E(x), c)`` vs ``x`` of real images, back-propagated through the frozen G into E.

Step 1 follows the reference code (zsdonghao/Unsup-Im2Im's ``train.py``): D's loss is the sum of the
real, fake and class terms, and each fake is generated for the class of the real image beside it in the
batch; every batch holds each class equally often (``balanced_batches``: the loop's class-balanced sampler,
unless ``data.balance_classes=false``). The reference also gives G two updates per D update on
the same z (its comment: to keep D's loss from collapsing to zero): ``g_updates=2``. The default is the
paper's one: on two classes the second update trained faster, but on Fashion-MNIST's ten G collapsed
with it (its samples of a class stopped varying with z; the README has the figures).

Translation: ``x -> E(x) -> G(E(x), c')`` for any target class ``c'``; reconstruction ``G(E(x), c)``
with the source class ``c`` (from the label when known, else the discriminator's class head).

The two steps run in one method: the first ``step1_steps`` calls of :meth:`TwoStep.train_step` are
step 1, the next ``step2_steps`` step 2. The method counts its own steps and saves the count with the
checkpoint, so a run stopped anywhere (inside step 1, between the steps, inside step 2) resumes exactly.
``model.stage`` runs them together (``both``) or one at a time (``1``, then ``2`` with ``--resume``):
:meth:`TwoStep.complete_run_config`, which the loop's ``train()`` calls, ends the run at the stage's last step
and fills in what the model reads from its data (class names, channels, image size).

The auxiliary classifier learns classes from real images only by default (``d_cls_fake=False``). With
ACGAN's original rule (D also learns the class each fake was generated for, ``d_cls_fake=True``) G and D
both minimise the same loss on fakes and can agree on a class code that is not the class's look: on the
tests' bars G's images ignored ``c`` (``z`` alone set the orientation), while with real labels only ``c``
set it. On Fashion-MNIST after 500 steps of 64 (far from trained) a classifier trained on real images
recognised the class of 16% of G's samples with the fake-class rule and 19% without (chance: 10%; measured
under the earlier step-1 rules: D's loss halved, fakes of uniform classes, one G update).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.data.transforms import resize_tensor
from pixmorph.methods.base import Method, MethodConfig, Update, register, set_requires_grad
from pixmorph.nn.dcgan import ACDiscriminator, ConditionalGenerator, LatentEncoder
from pixmorph.nn.init import init_normal

ENCODER_INITS = ("discriminator", "random")
STEP1_RULES = "reference"  # saved with the step: checkpoints before it trained step 1 under other rules
STAGES = ("both", "1", "2")


@dataclass
class TwoStepConfig(MethodConfig):
    class_names: list[str] = field(default_factory=list)  # label order of the data; `to:<name>` directions
    num_classes: int = 0  # 0: len(class_names)
    channels: int = 3  # 1 for grayscale data (data.channels=1)
    image_size: int = 32  # square, a power of two >= 8; must equal data.crop_size
    z_dim: int = 100
    embed_dim: int = 50  # class embedding concatenated to z
    ngf: int = 64
    ndf: int = 64  # discriminator and encoder width
    lr: float = 2e-4  # G and D (step 1)
    beta1: float = 0.5
    lr_encoder: float = 1e-4  # E (step 2)
    lambda_cls: float = 1.0  # weight of the auxiliary classifier loss (G and D)
    g_updates: int = 1  # generator updates per discriminator update in step 1 (the paper's 1; the reference code's 2)
    d_cls_fake: bool = False  # True: ACGAN's rule, D also learns the class of generated images (see above)
    step1_steps: int = 20000
    step2_steps: int = 10000
    encoder_init: str = "discriminator"  # "discriminator": E's trunk starts as D's trained trunk; or "random"
    recon_weight: float = 0.0  # step 2: weight of L1(G(E(x), c), x) on real images (0 = the paper's z-MSE only)
    init_gain: float = 0.02
    stage: str = "both"  # "both" steps in one run, or one at a time: "1", then "2" (resumed from step 1's checkpoint)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stage = str(self.stage)
        if self.stage not in STAGES:
            raise ValueError(f"model.stage={self.stage!r}: use both, 1 or 2")
        self.class_names = [str(c) for c in self.class_names]
        if self.num_classes == 0:
            self.num_classes = len(self.class_names)
        if not self.class_names and self.num_classes > 0:
            self.class_names = [str(i) for i in range(self.num_classes)]
        if self.num_classes < 1:
            raise ValueError("twostep needs its classes: set model.class_names (the class folders, sorted; "
                             "`pixmorph train twostep` and train() fill it in from the data) or model.num_classes")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"model.num_classes={self.num_classes} but model.class_names has "
                             f"{len(self.class_names)} names: {self.class_names}")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"model.class_names has a name twice: {self.class_names}")
        if self.encoder_init not in ENCODER_INITS:
            raise ValueError(f"model.encoder_init={self.encoder_init!r}: use {' or '.join(ENCODER_INITS)}")
        if self.g_updates < 1:
            raise ValueError(f"model.g_updates={self.g_updates}: need >= 1 generator update per step")
        if self.step1_steps < 0 or self.step2_steps < 0:
            raise ValueError(f"model.step1_steps={self.step1_steps}, model.step2_steps={self.step2_steps}: need >= 0")

    @property
    def total_steps(self) -> int:
        return self.step1_steps + self.step2_steps

    @property
    def stage_range(self) -> tuple[int, int]:
        """The method steps ``(first, last]`` that ``stage`` trains."""
        return {"both": (0, self.total_steps), "1": (0, self.step1_steps),
                "2": (self.step1_steps, self.total_steps)}[self.stage]


@register
class TwoStep(Method):
    name = "twostep"
    Config = TwoStepConfig
    data_layout = "classes"
    balanced_batches = True  # the reference draws batch_size / C images of each class
    default_task = {"data": {"root": "fashion-classes", "channels": 1}}
    train_defaults = {"batch_size": 64, "lr_policy": "constant", "epochs": 1e6, "epochs_decay": 0}  # the steps end a run

    def __init__(self, cfg: TwoStepConfig):
        super().__init__(cfg)
        self.nets["G"] = ConditionalGenerator(cfg.z_dim, cfg.num_classes, cfg.embed_dim, cfg.ngf, cfg.channels,
                                              cfg.image_size)
        self.nets["D"] = ACDiscriminator(cfg.channels, cfg.ndf, cfg.image_size, cfg.num_classes)
        self.nets["E"] = LatentEncoder(cfg.channels, cfg.ndf, cfg.image_size, cfg.z_dim)
        for net in self.nets.values():
            init_normal(net, cfg.init_gain)
        betas = (cfg.beta1, 0.999)
        self.optimizers = {
            "G": torch.optim.Adam(self.nets["G"].parameters(), cfg.lr, betas),
            "D": torch.optim.Adam(self.nets["D"].parameters(), cfg.lr, betas),
            "E": torch.optim.Adam(self.nets["E"].parameters(), cfg.lr_encoder, betas),
        }
        self.step = 0  # train_step calls so far (saved in extra_state)

    # ------------------------------------------------------------------ training

    @property
    def phase(self) -> int:
        """1 while training the GAN, 2 while training the encoder (also past step1_steps + step2_steps)."""
        return 1 if self.step < self.cfg.step1_steps else 2

    def train_step(self, batch: dict[str, Tensor], update: Update) -> dict[str, Tensor]:
        x, labels = batch["image"], batch["label"].long()
        self._check_batch(x, labels)
        self._refuse_stage_two_before_step_one_ends()
        if self.phase == 1:
            losses = self._gan_step(x, labels, update)
        else:
            if self.step == self.cfg.step1_steps and self.cfg.encoder_init == "discriminator":
                self.nets["E"].trunk.load_state_dict(self.nets["D"].trunk.state_dict())
            losses = self._encoder_step(x, labels, update)
        self.step += 1
        return {k: v.detach() for k, v in losses.items()}

    def check_start(self, dataset: Any, data_root: Path) -> None:
        self._refuse_stage_two_before_step_one_ends()  # (a resumed run's step is known here, before the first step)

    def _refuse_stage_two_before_step_one_ends(self) -> None:
        if self.cfg.stage == "2" and self.step < self.cfg.step1_steps:
            raise ValueError(f"model.stage=2 trains the encoder of a finished step 1, but this run is at step {self.step} "
                             f"of {self.cfg.step1_steps}: {self.train_on_command(self.step)}")

    def _gan_step(self, x: Tensor, labels: Tensor, update: Update) -> dict[str, Tensor]:
        cfg, G, D = self.cfg, self.nets["G"], self.nets["D"]
        set_requires_grad(G, True)
        z, c = torch.randn(x.shape[0], cfg.z_dim, device=x.device), labels  # fakes of the batch's classes
        fake = G(z, c)

        # D: real vs fake, and the class of both (ACGAN), summed as the reference sums them.
        set_requires_grad(D, True)
        rf_real, cls_real = D(x)
        rf_fake, cls_fake = D(fake.detach())
        loss_D_gan = _bce(rf_real, True) + _bce(rf_fake, False)
        loss_D_cls = F.cross_entropy(cls_real.float(), labels)
        if cfg.d_cls_fake:
            loss_D_cls = loss_D_cls + F.cross_entropy(cls_fake.float(), c)
        update(loss_D_gan + cfg.lambda_cls * loss_D_cls, "D")

        # G: fool D and be recognised as the class asked for, g_updates times on the same z and classes
        # (the losses logged are their mean over the updates).
        set_requires_grad(D, False)
        sum_G_gan = sum_G_cls = 0.0
        for i in range(cfg.g_updates):
            rf, cls = D(fake if i == 0 else G(z, c))
            loss_G_gan = _bce(rf, True)
            loss_G_cls = F.cross_entropy(cls.float(), c)
            update(loss_G_gan + cfg.lambda_cls * loss_G_cls, "G")
            sum_G_gan, sum_G_cls = sum_G_gan + loss_G_gan.detach(), sum_G_cls + loss_G_cls.detach()
        with torch.no_grad():
            acc_real = (cls_real.argmax(1) == labels).float().mean()
        return {"G_gan": sum_G_gan / cfg.g_updates, "G_cls": sum_G_cls / cfg.g_updates, "D_gan": loss_D_gan,
                "D_cls": loss_D_cls, "D_acc_real": acc_real}

    def _encoder_step(self, x: Tensor, labels: Tensor, update: Update) -> dict[str, Tensor]:
        cfg, G, D, E = self.cfg, self.nets["G"], self.nets["D"], self.nets["E"]
        # Frozen: no gradients, and eval mode so batch norm does not move its running statistics.
        for frozen in (G, D):
            set_requires_grad(frozen, False)
            frozen.eval()
        set_requires_grad(E, True)
        E.train()
        n = x.shape[0]
        z = torch.randn(n, cfg.z_dim, device=x.device)
        c = torch.randint(0, cfg.num_classes, (n,), device=x.device)
        with torch.no_grad():
            generated = G(z, c)
        loss_z = F.mse_loss(E(generated).float(), z.float())
        losses = {"E_z": loss_z}
        loss = loss_z
        if cfg.recon_weight > 0:
            loss_rec = F.l1_loss(G(E(x), labels).float(), x.float())
            loss = loss + cfg.recon_weight * loss_rec
            losses["E_rec"] = loss_rec
        update(loss, "E")
        return losses

    def _check_batch(self, x: Tensor, labels: Tensor) -> None:
        cfg = self.cfg
        if x.shape[1] != cfg.channels or x.shape[-2:] != (cfg.image_size, cfg.image_size):
            raise ValueError(f"twostep: the data gives {x.shape[1]} x {x.shape[-2]} x {x.shape[-1]} images, the model "
                             f"is built for {cfg.channels} x {cfg.image_size} x {cfg.image_size}: set model.image_size "
                             f"= data.crop_size and model.channels = data.channels")
        if int(labels.max()) >= cfg.num_classes or int(labels.min()) < 0:
            raise ValueError(f"twostep: a label {int(labels.max())} in the data, but the model has {cfg.num_classes} "
                             f"classes {cfg.class_names}: set model.class_names to the data's classes")

    @staticmethod
    def complete_run_config(d: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """What ``pixmorph train twostep`` adds to a config dict (sections model/data/train) before it runs:

        * ``model.class_names`` (the data's classes, when neither they nor ``num_classes`` are given),
          ``model.channels`` = ``data.channels`` and ``model.image_size`` = the crop size, unless given;
        * ``train.max_steps``: the last step of ``model.stage``, unless a step inside that stage is given
          (so ``--resume --set model.stage=2`` continues a stage-1 run to the end of step 2);
        (``train_defaults``, batch 64 and a constant learning rate, are filled in by ``RunConfig.from_dict``.)

        A ``dry_run`` writes nothing: a built-in task is not prepared, its classes and size are known without
        it; a folder is still checked for class folders.
        """
        from pixmorph.config import DataConfig, build_method_config, check_values
        from pixmorph.data.classes import builtin_classes, list_classes
        from pixmorph.data.resolve import native_size, resolve_data, resolve_sizes

        model, data, run = (d.setdefault(k, None) or {} for k in ("model", "data", "train"))
        d.update(model=model, data=data, train=run)
        cfg = DataConfig(**check_values(DataConfig, data, "data"))  # "abc" for a number: one line naming it
        find_classes = not model.get("class_names") and not model.get("num_classes")
        if dry_run and native_size(cfg.root) is not None:  # a built-in task (not a folder): leave it unprepared
            resolved = resolve_sizes(cfg, native_size(cfg.root))
            if find_classes:
                model["class_names"] = builtin_classes(cfg.root, cfg.options)
        else:
            root, resolved = resolve_data(cfg)
            if find_classes:
                model["class_names"] = list_classes(root, resolved.options)
        model.setdefault("channels", resolved.channels)
        if "image_size" not in model and not _is_dcgan_size(resolved.crop_size):  # name the option the user gave
            raise ValueError(f"crop size {resolved.crop_size} (--crop-size, data.crop_size): two-step's DCGAN nets take "
                             f"a square of a power of two >= 8 (8, 16, 32, 64, ...): give one, with --load-size at least "
                             f"that")
        model.setdefault("image_size", resolved.crop_size)
        first, last = build_method_config(TwoStepConfig, model).stage_range
        if str(model.get("stage")) == "2" and not run.get("resume"):
            raise ValueError("model.stage=2 trains the encoder of a finished step 1: run model.stage=1 first (or "
                             "both), then --resume with stage 2")
        if run.get("max_steps") is None or not first < run["max_steps"] <= last:
            run["max_steps"] = last
        step1 = build_method_config(TwoStepConfig, model).step1_steps
        if str(model.get("stage", "both")) == "both" and run["max_steps"] <= step1:
            warnings.warn(f"--steps {run['max_steps']} (train.max_steps) ends inside step 1 "
                          f"(model.step1_steps={step1}): the encoder (step 2) does not train in this run, and the "
                          f"model cannot translate until it has; for a short run lower model.step1_steps and "
                          f"model.step2_steps", stacklevel=2)
        return d

    def train_on_hint(self, schedule_end: int | None = None) -> str:
        """--steps past the stage's end is cut back to it (complete_run_config): raising it trains nothing."""
        c = self.cfg
        if c.stage == "1" and self.step >= c.step1_steps:
            return "model.stage=1 ends at step 1's end: --resume --set model.stage=2 trains the encoder"
        if self.step < c.stage_range[1]:  # stopped by the --steps it was given, which a --resume keeps
            return f"--steps {self.step} ended it: {self.train_on_command(self.step)}"
        return (f"two-step ends at model.step1_steps + model.step2_steps = {c.total_steps}: raise model.step2_steps "
                f"and --steps to the new end")

    def train_on_command(self, step: int) -> str:
        """How a run at ``step``, before its stage's end, trains on: a plain --resume keeps the run's --steps, and
        model.stage=1 ends at step 1."""
        c = self.cfg
        if c.stage == "1" and step >= c.step1_steps:
            return "train it with --resume --set model.stage=2"
        if c.stage == "both" or step >= c.step1_steps:
            return f"train on with --resume --steps {c.stage_range[1]}"
        finish = f"finish step 1 with --resume --set model.stage=1 --steps {c.step1_steps}"
        return finish if c.stage == "1" else f"{finish}, then --resume --set model.stage=2"

    # ------------------------------------------------------------------ inference

    def class_index(self, name: str | int) -> int:
        if isinstance(name, numbers.Integral):  # numpy integers too
            if not 0 <= name < self.cfg.num_classes:
                raise ValueError(f"class {name}: this model has classes 0..{self.cfg.num_classes - 1}")
            return int(name)
        try:
            return self.cfg.class_names.index(str(name))
        except ValueError:
            raise ValueError(f"unknown class {name!r}: this model knows {', '.join(self.cfg.class_names)}") from None

    def class_labels(self, c: Tensor | int | str, n: int) -> Tensor:
        """``n`` class indices from a class name, an index, or a tensor of one or ``n`` indices."""
        if not isinstance(c, Tensor):
            return torch.full((n,), self.class_index(c), dtype=torch.long)
        if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
            raise ValueError(f"class labels must be integer class indices, got a {c.dtype} tensor")
        labels = c.reshape(-1).long()
        if labels.numel() == 1:
            labels = labels.expand(n)
        if labels.numel() != n:
            raise ValueError(f"{labels.numel()} class labels for {n} images: give one label or one per image")
        for bad in labels[(labels < 0) | (labels >= self.cfg.num_classes)][:1].tolist():
            self.class_index(bad)  # raises, naming the classes
        return labels

    def _check_images(self, x: Tensor) -> None:
        """E and D take images at the model's size only (their dense heads fix it): say so, not a matmul error."""
        c, s = self.cfg.channels, self.cfg.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"images of shape {tuple(x.shape)}: this model's networks take N x {c} x {s} x {s}; "
                             f"pixmorph.load(run)(images, 'to:CLASS') resizes any size to it and back")

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """``E(x)``: the latent codes (N x z_dim) of images (N x C x S x S, at the model's size)."""
        self._check_images(x)
        return self.nets["E"](x)

    @torch.no_grad()
    def classify(self, x: Tensor) -> Tensor:
        """The discriminator's class guess for images (N x C x S x S, at the model's size)."""
        self._check_images(x)
        return self.nets["D"](x)[1].argmax(1)

    @torch.no_grad()
    def translate(self, x: Tensor, target: Tensor | int | str) -> Tensor:
        """``G(E(x), target)`` at the model's size; ``target``: a class (name or index) or N indices."""
        return self.nets["G"](self.encode(x), self.class_labels(target, x.shape[0]).to(x.device))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Tensor | int | str | None = None) -> Tensor:
        """``G(E(x), c)``; ``c`` = ``labels`` (a class name or index, or N indices) or, when not given, the
        discriminator's class guess."""
        return self.translate(x, self.classify(x) if labels is None else labels)

    @torch.no_grad()
    def sample(self, z: Tensor, c: Tensor | int | str) -> Tensor:
        """``G(z, c)``; ``z``: N x z_dim codes; ``c``: a class (name or index) or N indices."""
        if z.dim() != 2 or z.shape[1] != self.cfg.z_dim:
            raise ValueError(f"z of shape {tuple(z.shape)}: this model's generator takes N x {self.cfg.z_dim} codes "
                             f"(torch.randn(n, {self.cfg.z_dim}))")
        return self.nets["G"](z, self.class_labels(c, z.shape[0]).to(z.device))

    @torch.no_grad()
    def visuals(self, batch: dict[str, Tensor]) -> list[list[Tensor]]:
        """Row 1: the image, its reconstruction, its translation to every class; row 2: G(z, c) for every class
        from one z (drawn from a private generator, never the training RNG)."""
        x, labels = batch["image"][:1], batch["label"][:1].long()
        k = self.cfg.num_classes
        classes = torch.arange(k, device=x.device)
        seed = int(labels[0]) * 7919 + int((x.float().sum() * 1000).round()) % 1_000_003
        z = torch.randn(1, self.cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(x.device)
        translations = self.nets["G"](self.encode(x).expand(k, -1), classes)
        samples = self.nets["G"](z.expand(k, -1), classes)
        blank = torch.full_like(x[0], -1.0)
        return [[x[0], self.reconstruct(x, labels)[0], *translations], [blank, blank, *samples]]

    def visual_columns(self) -> str:
        classes = " | ".join(self.cfg.class_names)
        return (f"image | reconstruction | translated to {classes}; and in the row below, G(z, class) for one z: "
                f"blank | blank | {classes}")

    def translators(self) -> dict[str, nn.Module]:
        n = self.nets
        out: dict[str, nn.Module] = {f"to:{name}": LatentTranslator(n["E"], n["G"], self.cfg.image_size, target=i)
                                     for i, name in enumerate(self.cfg.class_names)}
        out["reconstruct"] = LatentTranslator(n["E"], n["G"], self.cfg.image_size, classifier=n["D"])
        if self.cfg.class_names == ["A", "B"]:  # the CycleGAN layout: its directions too
            out["AtoB"], out["BtoA"] = out["to:B"], out["to:A"]
        return out

    def unfinished(self, step: int) -> str | None:
        if step > self.cfg.step1_steps:
            return None
        train_on = self.train_on_command(step)
        if self.cfg.stage == "1" and step < self.cfg.step1_steps:
            train_on += ", then --resume --set model.stage=2"
        return (f"saved at step {step}, before the encoder trained (it trains after step 1's {self.cfg.step1_steps} "
                f"steps, in step 2): its translations come from an untrained encoder; {train_on}, or "
                f"for a short run lower model.step1_steps and model.step2_steps")

    def extra_state(self) -> dict:
        return {"step": self.step, "step1_rules": STEP1_RULES}

    def load_extra_state(self, state: dict) -> None:
        self.step = int(state["step"])
        if state.get("step1_rules") != STEP1_RULES and self.step < self.cfg.step1_steps:
            warnings.warn(f"this run's step 1 began under pixmorph's earlier rules (D's loss halved, fakes of uniform "
                          f"classes) and goes on from step {self.step} under the reference code's (the sum, the batch's "
                          f"classes); start it again for a step 1 under one set of rules", stacklevel=2)


class LatentTranslator(nn.Module):
    """``x -> G(E(x), c)`` with a fixed target class ``c``, or (``classifier`` given) the class the discriminator
    sees in ``x`` (reconstruction). Inputs of another size are resized to the model's square ``model_size`` and
    the output resized back (antialiased bicubic, :func:`resize_tensor`), so ``stride`` is 1 and any size is
    accepted; :meth:`at_model_size` is the networks alone (what ONNX export traces, at that size only)."""

    stride = 1

    def __init__(self, encoder: nn.Module, generator: nn.Module, image_size: int, target: int | None = None,
                 classifier: nn.Module | None = None):
        super().__init__()
        if (target is None) == (classifier is None):
            raise ValueError("LatentTranslator: give a target class or a classifier, not both")
        self.encoder, self.generator, self.classifier = encoder, generator, classifier
        self.image_size, self.target = image_size, target

    @property
    def model_size(self) -> tuple[int, int]:
        """(height, width) the networks take: the encoder's dense head fixes it."""
        return self.image_size, self.image_size

    def forward(self, x: Tensor) -> Tensor:
        return resized_around(self.at_model_size, x, self.model_size)

    def at_model_size(self, x: Tensor) -> Tensor:
        """``G(E(x), c)`` of images at :attr:`model_size`."""
        if self.target is None:
            c = self.classifier(x)[1].argmax(1)
        else:
            c = torch.full((x.shape[0],), self.target, dtype=torch.long, device=x.device)
        return self.generator(self.encoder(x), c)


def resized_around(run: Callable[[Tensor], Tensor], x: Tensor, size: tuple[int, int]) -> Tensor:
    """``run`` on ``x`` resized to ``size``, its output resized back to ``x``'s size (no resize where they agree):
    how a two-step model translates other sizes, in PyTorch and (on an export of ``run``) in ONNX Runtime."""
    own = tuple(x.shape[-2:])
    if own == tuple(size):
        return run(x)
    return resize_tensor(run(resize_tensor(x, size)), own)


def _is_dcgan_size(size: int) -> bool:
    return size >= 8 and size & (size - 1) == 0


def _bce(logits: Tensor, real: bool) -> Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())

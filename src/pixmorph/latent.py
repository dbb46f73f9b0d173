"""Two-step's latent space from Python: ``pixmorph.load(run).latent`` encodes images to z, generates from z and
translates to a class, with the tensors moved to the model's device and its networks run in the translator's
precision, as the translator runs its generators. The method's own functions (``translator.method.encode``, ...)
take tensors already on that device and run in float32."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from pixmorph.api import Translator, check_image_tensor

Labels = Tensor | int | str  # a class name or index, or N indices


class LatentModel:
    """A loaded two-step model's encoder E, generator G and class head, on the translator's device and in its
    precision. Images are N x C x S x S in [-1, 1] at the model's size (``translator.config.model["image_size"]``;
    the translator's ``"to:CLASS"`` resizes other sizes); results come back on the CPU in float32 (classes as int64)."""

    def __init__(self, translator: Translator):
        if translator.config.method != "twostep":
            raise ValueError(f"a {translator.config.method} model has no latent space to give: latent is the two-step "
                             f"model's (E(x) -> z, G(z, c)); translate with the translator itself")
        self.translator = translator
        self.method = translator.method

    def __repr__(self) -> str:
        cfg, t = self.method.cfg, self.translator
        return (f"LatentModel(twostep, z {cfg.z_dim}-d, classes: {', '.join(cfg.class_names)}; {t.device}, "
                f"{t.precision})")

    def encode(self, x: Tensor) -> Tensor:
        """``E(x)``: the latent codes (N x z_dim) of images."""
        return self._run(self.method.encode, self._images(x, "encode"))

    def classify(self, x: Tensor) -> Tensor:
        """The discriminator's class guess (N indices) for images."""
        return self._run(self.method.classify, self._images(x, "classify"))

    def translate(self, x: Tensor, target: Labels) -> Tensor:
        """``G(E(x), target)``; ``target``: a class (name or index) or N indices."""
        return self._run(self.method.translate, self._images(x, "translate"), target)

    def reconstruct(self, x: Tensor, labels: Labels | None = None) -> Tensor:
        """``G(E(x), c)``, ``c`` = ``labels`` or, when not given, the discriminator's class guess."""
        return self._run(self.method.reconstruct, self._images(x, "reconstruct"), labels)

    def sample(self, z: Tensor, c: Labels) -> Tensor:
        """``G(z, c)``; ``z``: N x z_dim codes (``torch.randn(n, z_dim)``); ``c``: a class or N indices."""
        if not isinstance(z, Tensor):
            raise TypeError(f"z as {type(z).__name__}: give an N x {self.method.cfg.z_dim} tensor (torch.as_tensor(z))")
        return self._run(self.method.sample, z.to(self.translator.device, torch.float32), c)

    def _images(self, x: Tensor, caller: str) -> Tensor:
        if not isinstance(x, Tensor):  # the translator's TypeError, not an AttributeError from inside the check
            raise TypeError(f"{type(x).__name__}: latent takes an N x C x S x S tensor in [-1, 1] (a NumPy array: "
                            f"torch.as_tensor(x)); PIL images and files: the translator itself, (images, 'to:CLASS')")
        self._refuse_codes(x, caller)
        check_image_tensor(x)  # floating point in [-1, 1]; the method checks the shape
        x = x.to(self.translator.device, torch.float32)
        return self.translator.layout(x) if x.dim() == 4 else x

    def _refuse_codes(self, x: Tensor, caller: str) -> None:
        """Latent codes (N x z_dim) given for images: said as codes, naming ``sample``, not as an image's bad shape."""
        z_dim, c, s = self.method.cfg.z_dim, self.method.cfg.channels, self.method.cfg.image_size
        if x.dim() == 2 and x.shape[1] == z_dim:
            raise ValueError(f"a tensor of shape {tuple(x.shape)}: {x.shape[0]} latent codes of {z_dim} values? "
                             f"latent.{caller} takes images, N x {c} x {s} x {s}; latent.sample(z, c) generates images "
                             f"from N x {z_dim} codes")

    def _run(self, call: Callable[..., Tensor], *args) -> Tensor:
        with torch.no_grad(), self.translator.autocast():
            out = call(*args)
        return (out.float() if out.is_floating_point() else out).cpu()

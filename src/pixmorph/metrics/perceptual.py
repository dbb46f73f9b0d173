"""LPIPS perceptual distance (Zhang et al., CVPR 2018), version 0.1, with an AlexNet trunk.

Two networks, both computed by the same code here (the published packages need a network or
undeclared imports to load):

* ``alex``: the original LPIPS. Its trunk is torchvision's ImageNet AlexNet
  (``alexnet-owt-7be5be79.pth``: ``$PIXMORPH_ALEXNET_WEIGHTS``, the torch hub cache, or a download)
  and its linear layers ship with torchmetrics (or the ``lpips`` package).
* ``stlpips-alex``: shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), AlexNet with blur-pooling,
  trunk and linear layers both shipped in ``stlpips-pytorch``. It works offline after ``pip install``;
  its values are on a similar scale but not equal to the original's.

``net="auto"`` takes ``alex`` when its trunk is on this machine, else ``stlpips-alex``, else tries to
download the AlexNet trunk. Results always name the network used: compare values of one network only.

Inputs: N x 3 x H x W in [-1, 1] (grayscale is repeated to three channels), at their own size.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.metrics import weights as W
from pixmorph.nn.pad import ReflectionPad2d

NETS = ("alex", "stlpips-alex")
# The smallest image side each trunk takes (AlexNet's stride-4 convolution and two pools leave nothing of less;
# the shift-tolerant trunk pools with a blur instead): measured, the next pixel smaller fails inside torch.
MIN_SIDE = {"alex": 31, "stlpips-alex": 21}
CHANNELS = (64, 192, 384, 256, 256)


class _BlurPool(nn.Module):
    """Reflect-pad by 2, blur with the 3x3 binomial filter, subsample by 2 (stlpips' ``Downsample(pad_more=True)``)."""

    def __init__(self, channels: int):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        filt = a[:, None] * a[None, :]
        self.register_buffer("filt", (filt / filt.sum())[None, None].repeat(channels, 1, 1, 1))
        self.pad = ReflectionPad2d(2)  # in the input's dtype under autocast (see pixmorph.nn.pad)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


def _alex_slices(shift_tolerant: bool) -> nn.Module:
    """AlexNet's five ReLU stages as ``slice1..slice5`` with the layer indices of the weight files."""
    relu = lambda: nn.ReLU(inplace=False)
    if shift_tolerant:
        layers = [nn.Conv2d(3, 64, 11, 1, 2), _BlurPool(64), relu(),
                  nn.MaxPool2d(3, 1), _BlurPool(64), nn.Conv2d(64, 192, 5, padding=2), relu(),
                  nn.MaxPool2d(3, 1), _BlurPool(192), nn.Conv2d(192, 384, 3, padding=1), relu(),
                  nn.Conv2d(384, 256, 3, padding=1), relu(),
                  nn.Conv2d(256, 256, 3, padding=1), relu()]
        bounds = (0, 3, 7, 11, 13, 15)
    else:
        layers = [nn.Conv2d(3, 64, 11, 4, 2), relu(),
                  nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), relu(),
                  nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), relu(),
                  nn.Conv2d(384, 256, 3, padding=1), relu(),
                  nn.Conv2d(256, 256, 3, padding=1), relu()]
        bounds = (0, 2, 5, 8, 10, 12)
    trunk = nn.Module()
    for s, stage in enumerate(stages(layers, bounds), start=1):
        trunk.add_module(f"slice{s}", stage)
    return trunk


def stages(layers: list[nn.Module], bounds: tuple[int, ...]) -> list[nn.Sequential]:
    """``layers[bounds[s]:bounds[s + 1]]`` as stage s, each layer named by its index in ``layers`` (as the
    LPIPS weight files name them: ``slice{s}.{i}``)."""
    return [nn.Sequential(OrderedDict((str(i), layers[i]) for i in range(start, end)))
            for start, end in zip(bounds, bounds[1:])]


class _Linear(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))  # index 0: dropout in training


class LPIPS(nn.Module):
    """``LPIPS(net)(x, y)`` -> one distance per image pair (N,). Build it with :func:`load_lpips`."""

    def __init__(self, net: str = "stlpips-alex"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"unknown LPIPS network {net!r}: choose from {', '.join(NETS)}")
        self.name = net
        self.min_side = MIN_SIDE[net]
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        self.net = _alex_slices(shift_tolerant=net == "stlpips-alex")
        self.lins = nn.ModuleList(_Linear(c) for c in CHANNELS)
        self.requires_grad_(False)
        self.eval()

    def _stages(self, x: Tensor) -> list[Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for s in range(1, 6):
            x = getattr(self.net, f"slice{s}")(x)
            out.append(x)
        return out

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape:
            raise ValueError(f"LPIPS compares images of one size, got {tuple(x.shape)} and {tuple(y.shape)}")
        if min(x.shape[-2:]) < self.min_side:
            raise ValueError(f"LPIPS ({self.name}) needs images of at least {self.min_side}x{self.min_side} pixels, "
                             f"got {x.shape[-1]}x{x.shape[-2]}")
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        total = torch.zeros(x.shape[0], device=x.device)
        for lin, fx, fy in zip(self.lins, self._stages(x), self._stages(y)):
            fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += lin.model((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def _load(path: Path) -> dict[str, Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- pickle, zip and torch errors alike
        raise W.WeightsNotFoundError(f"{path}: unreadable weight file ({' '.join(str(e).split())[:200]})") from None


def _set_weights(model: LPIPS, weights: dict[str, Tensor], source: str) -> LPIPS:
    expected = model.state_dict()
    buffers = {"shift", "scale"}
    missing = sorted(k for k in expected if k not in weights and k not in buffers)
    wrong = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or wrong:
        detail = f"missing {missing[:3]}" if missing else f"{wrong[0]} has shape {tuple(weights[wrong[0]].shape)}"
        raise W.WeightsNotFoundError(f"{source}: not {model.name} LPIPS weights ({detail})")
    model.load_state_dict({k: weights.get(k, v) for k, v in expected.items()})
    return model


def _renamed_stlpips(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """stlpips-pytorch's file: ``scaling_layer.*``, ``net.slice*``, ``lin{i}.model.1.weight``."""
    out = {}
    for k, v in weights.items():
        if k.startswith("scaling_layer."):
            out[k.removeprefix("scaling_layer.")] = v
        elif k.startswith("lin"):
            i, rest = k[3:].split(".", 1)
            out[f"lins.{i}.{rest}"] = v
        else:
            out[k] = v
    return out


def _alexnet_trunk(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision AlexNet ``features.{i}.*`` -> ``net.slice{s}.{i}.*``."""
    stage_of = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    return {f"net.slice{stage_of[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v
            for k, v in weights.items() if k.startswith("features.")}


def load_lpips(net: str = "auto", weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LPIPS:
    """An LPIPS network with its weights found offline (see the module docstring).

    ``weights`` names the file: for ``alex`` torchvision's AlexNet state dict, for ``stlpips-alex``
    stlpips-pytorch's ``alex_shift_tolerant.pth``."""
    if net == "auto":
        if weights is not None:
            raise ValueError("name the LPIPS network (alex or stlpips-alex) when giving its weights file")
        if W.find_weights(W.ALEXNET, download=False, required=False) is not None:
            net = "alex"
        elif W.find_weights(W.STLPIPS_ALEX, download=False, required=False) is not None:
            net = "stlpips-alex"
        else:
            try:
                W.find_weights(W.ALEXNET)
                net = "alex"
            except W.WeightsNotFoundError as e:
                raise W.WeightsNotFoundError(
                    f"LPIPS: no network available offline: pip install stlpips-pytorch (complete shift-tolerant "
                    f"LPIPS), or for the original LPIPS {e}") from None
    model = LPIPS(net)
    if net == "stlpips-alex":
        path = W.find_weights(W.STLPIPS_ALEX, weights)
        _set_weights(model, _renamed_stlpips(_load(path)), str(path))
    else:
        trunk = W.find_weights(W.ALEXNET, weights)
        linear = W.find_weights(W.LPIPS_LINEAR_ALEX)
        merged = {**_alexnet_trunk(_load(trunk)), **_renamed_stlpips(_load(linear))}
        _set_weights(model, merged, f"{trunk} + {linear}")
    return model.to(device)

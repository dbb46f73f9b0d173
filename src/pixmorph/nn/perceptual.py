"""The perceptual (VGG) loss of pix2pixHD and DeepSIM, with weights found offline.

pix2pixHD compares the activations of an ImageNet VGG19 at relu1_1, relu2_1, relu3_1, relu4_1 and
relu5_1 by L1, weighted 1/32, 1/16, 1/8, 1/4 and 1. Two networks can serve:

* ``vgg19``: torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``), read from ``$PIXMORPH_VGG19_WEIGHTS``
  or the torch hub cache; never downloaded here (548 MB).
* ``stlpips-vgg16``: the VGG16 trunk of shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), with its
  ImageNet-trained weights shipped in the PyPI package ``stlpips-pytorch``: the same VGG16 convolutions
  with each max-pool replaced by a stride-1 max-pool and a blurred subsampling. Its five stages end at
  relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, weighted as above. It works offline after
  ``pip install stlpips-pytorch``.

``net="auto"`` takes ``vgg19`` when its file is on this machine, else ``stlpips-vgg16``; the message
returned with the loss says which one and why. Inputs are N x 3 x H x W in [-1, 1] (one channel is
repeated to three).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixmorph.metrics import weights as W

NETS = ("vgg19", "stlpips-vgg16")
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

VGG19 = W.WeightSource(
    name="torchvision VGG19 (ImageNet), pix2pixHD's perceptual network",
    env="PIXMORPH_VGG19_WEIGHTS",
    hub_files=("vgg19-dcbb9e9d.pth",),
    hint="copy torchvision's vgg19-dcbb9e9d.pth into the torch hub cache",
)

STLPIPS_VGG = W.WeightSource(
    name="shift-tolerant LPIPS VGG16 trunk",
    env="PIXMORPH_STLPIPS_VGG_WEIGHTS",
    package_files=(("stlpips_pytorch", "weights/vST0.0/vgg_shift_tolerant.pth"),),
    hint="pip install stlpips-pytorch (ships the complete network)",
)


def _vgg19_slices() -> nn.ModuleList:
    """torchvision's VGG19 ``features`` cut after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (pix2pixHD)."""
    from torchvision.models import vgg19

    features = vgg19(weights=None).features
    for m in features:
        if isinstance(m, nn.ReLU):
            m.inplace = False
    bounds = (0, 2, 7, 12, 21, 30)
    return nn.ModuleList(nn.Sequential(*[features[i] for i in range(bounds[s], bounds[s + 1])]) for s in range(5))


def _stlpips_vgg16_slices() -> nn.ModuleList:
    """stlpips' shift-tolerant VGG16, with the layer indices of its weight file (``net.slice{s}.{i}``)."""
    from pixmorph.metrics.perceptual import _BlurPool, stages  # _BlurPool: stlpips' Downsample(filt_size=3, pad_more=True)

    layers: list[nn.Module] = []
    c_in = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if v == "M":
            layers += [nn.MaxPool2d(2, stride=1), _BlurPool(c_in)]
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = v
    return nn.ModuleList(stages(layers, (0, 4, 10, 18, 26, 34)))


class PerceptualLoss(nn.Module):
    """``loss(x, y)``: sum over the five stages of weight * L1(features(x), features(y)); ``y`` is the
    target (no gradient). Frozen; build it with :func:`load_perceptual`."""

    def __init__(self, net: str = "stlpips-vgg16"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"unknown perceptual network {net!r}: choose from {', '.join(NETS)}")
        self.name = net
        if net == "vgg19":
            # [-1, 1] images straight in, as pix2pixHD's and DeepSIM's VGGLoss feed them: the paper's weight 10
            # is for that scale (ImageNet normalisation would scale the inputs, so the features, by about 2.2)
            shift, scale = torch.zeros(3), torch.ones(3)
            self.slices = _vgg19_slices()
        else:  # LPIPS' scaling layer
            shift, scale = torch.tensor([-0.030, -0.088, -0.188]), torch.tensor([0.458, 0.448, 0.450])
            self.slices = _stlpips_vgg16_slices()
        self.register_buffer("shift", shift[None, :, None, None])
        self.register_buffer("scale", scale[None, :, None, None])
        self.requires_grad_(False)
        self.eval()

    def features(self, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        out = []
        for stage in self.slices:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            fy = self.features(y)
        total = x.new_zeros((), dtype=torch.float32)
        for w, a, b in zip(LAYER_WEIGHTS, self.features(x), fy):
            total = total + w * F.l1_loss(a.float(), b.float())
        return total

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # always in eval mode


def _state(path) -> dict[str, Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike
        raise W.WeightsNotFoundError(f"{path}: unreadable weight file ({' '.join(str(e).split())[:200]})") from None


def _load_into(model: PerceptualLoss, weights: dict[str, Tensor], prefix_map, source: str) -> None:
    expected = model.slices.state_dict()
    found = {}
    for key in expected:
        src = prefix_map(key)
        if src not in weights or weights[src].shape != expected[key].shape:
            raise W.WeightsNotFoundError(f"{source}: not {model.name} weights (no {src} of shape "
                                         f"{tuple(expected[key].shape)})")
        found[key] = weights[src]
    model.slices.load_state_dict(found)


def load_perceptual(net: str = "auto", weights: str | os.PathLike | None = None,
                    device: str | torch.device = "cpu") -> tuple[PerceptualLoss, str]:
    """The perceptual loss and a one-line message saying which network it uses and why."""
    why = ""
    if net == "auto":
        if weights is not None:
            raise ValueError("name the perceptual network (vgg19 or stlpips-vgg16) when giving its weights file")
        if W.find_weights(VGG19, download=False, required=False) is not None:
            net, why = "vgg19", "found in the torch hub cache / $PIXMORPH_VGG19_WEIGHTS"
        else:
            net = "stlpips-vgg16"
            why = (f"VGG19 weights ({VGG19.hub_files[0]}) are not in {W.hub_checkpoints_dir()} and "
                   f"${VGG19.env} is unset, so the offline network shipped in stlpips-pytorch is used; "
                   f"for pix2pixHD's exact loss {VGG19.hint}")
    with torch.random.fork_rng(devices=[]):  # building it must not move the training RNG (exact resume)
        model = PerceptualLoss(net)
    if net == "vgg19":
        path = W.find_weights(VGG19, weights, download=False)
        bounds = (0, 2, 7, 12, 21, 30)

        def torchvision_key(key: str) -> str:  # "{slice}.{j}.weight" -> "features.{index}.weight"
            s, j, rest = key.split(".", 2)
            return f"features.{bounds[int(s)] + int(j)}.{rest}"

        _load_into(model, _state(path), torchvision_key, str(path))
    else:
        path = W.find_weights(STLPIPS_VGG, weights, download=False)
        _load_into(model, _state(path), lambda key: f"net.slice{int(key.split('.')[0]) + 1}.{key.split('.', 1)[1]}",
                   str(path))
    label = {"vgg19": "VGG19 (ImageNet, pix2pixHD's)", "stlpips-vgg16": "VGG16 trunk of shift-tolerant LPIPS"}[net]
    message = f"perceptual loss: {net}, the {label}, from {path}" + (f" ({why})" if why else "")
    return model.to(device), message

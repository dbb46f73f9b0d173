"""Small classifiers for the built-in domains, to score translations by the class they show.

A classifier is a checkpoint folder like any pixmorph checkpoint (``weights.safetensors`` +
``config.json``); its config records the classes, the architecture and the accuracy it reached on
the domain's real test images. ``pixmorph classifier train fashion`` builds the Fashion-MNIST one:
a 5-convolution CNN on 32x32 images (the built-in tasks' size: 28x28 items padded with black),
trained on the 60,000 training items and tested on the 10,000 test items. Inputs are N x C x H x W in
[-1, 1] as :func:`pixmorph.images.to_tensor` gives; RGB is averaged to gray (Fashion-MNIST is gray)
and other sizes are resized to 32x32.

Domains are registered in :data:`DOMAINS`; one entry adds another (glyph fonts and characters later).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import pixmorph
from pixmorph.train import checkpoint as ckpt

KIND = "pixmorph-classifier"
IMAGE_SIZE = 32
_BUILTIN_NAME = re.compile(r"^(train|test)_(\d{6})$")


class SmallCNN(nn.Module):
    """conv-conv-pool, conv-conv-pool, conv-pool, global average, linear; BatchNorm and ReLU throughout."""

    def __init__(self, n_classes: int, width: int = 32, in_channels: int = 1):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        w = width
        self.in_channels = in_channels
        self.features = nn.Sequential(*block(in_channels, w), *block(w, w), nn.MaxPool2d(2),
                                      *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
                                      *block(2 * w, 4 * w), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * w, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3), keepdim=True))


def prepare_input(x: Tensor, in_channels: int = 1, size: int = IMAGE_SIZE) -> Tensor:
    """N x C x H x W in [-1, 1] -> what the classifier reads: gray (RGB averaged), size x size."""
    if x.dim() == 3:
        x = x.unsqueeze(0)
    x = x.float()
    if x.shape[1] == 3 and in_channels == 1:
        x = x.mean(dim=1, keepdim=True)
    elif x.shape[1] == 1 and in_channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class Classifier:
    """A trained classifier: ``logits(images)``, ``topk_accuracy(images, labels)``, ``classes``."""

    def __init__(self, net: SmallCNN, classes: Sequence[str], names: Sequence[str], config: dict,
                 device: str | torch.device = "cpu"):
        self.net, self.classes, self.names, self.config = net, list(classes), list(names), config
        self.device = torch.device(device)
        self.net.to(self.device).eval()

    @torch.no_grad()
    def logits(self, images: Tensor, batch_size: int = 256) -> Tensor:
        out = [self.net(prepare_input(images[i : i + batch_size], self.net.in_channels).to(self.device)).float().cpu()
               for i in range(0, images.shape[0], batch_size)]
        return torch.cat(out)

    def topk_accuracy(self, images: Tensor, labels: Tensor | Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[int, float]:
        return topk_accuracy(self.logits(images), torch.as_tensor(labels), ks)

    def label_index(self, label: str | int) -> int:
        """A class given by index, slug (``boot``) or name (``Ankle boot``), case-insensitive."""
        text = str(label).strip()
        if text.isdigit() and int(text) < len(self.classes):
            return int(text)
        for i, (slug, name) in enumerate(zip(self.classes, self.names)):
            if text.lower() in (slug.lower(), name.lower()):
                return i
        raise ValueError(f"unknown class {label!r}: this classifier knows {', '.join(self.classes)}")

    @property
    def test_accuracy(self) -> dict:
        return dict(self.config.get("test_accuracy", {}))


def topk_accuracy(logits: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the k highest logits, for each k."""
    labels = labels.to(torch.long).view(-1, 1)
    order = logits.argsort(dim=1, descending=True)
    return {k: float((order[:, : min(k, logits.shape[1])] == labels).any(dim=1).float().mean()) for k in ks}


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    """Load a classifier checkpoint folder written by :func:`train_classifier`."""
    folder = ckpt.find_checkpoint(path)
    config = ckpt.read_config(folder)
    if config.get("kind") != KIND:
        raise ckpt.CheckpointError(f"{folder}: not a pixmorph classifier (a translation checkpoint?); "
                                   "build one with `pixmorph classifier train fashion`")
    arch = config["classifier"]
    net = SmallCNN(len(arch["classes"]), arch["width"], arch["in_channels"])
    ckpt.load_weights(folder, nn.ModuleDict({"classifier": net}))
    return Classifier(net, arch["classes"], arch["names"], config, device)


# ---------------------------------------------------------------------------
# Domains and training


@dataclass(frozen=True)
class Domain:
    """Real images of a domain: ``load(split) -> (uint8 N x H x W or N x H x W x 3, int64 labels)``."""

    name: str
    classes: tuple[str, ...]
    names: tuple[str, ...]
    load: Callable[[str], tuple[np.ndarray, np.ndarray]]
    flip: bool  # horizontal flips keep the class
    description: str


def _fashion_load(split: str) -> tuple[np.ndarray, np.ndarray]:
    from pixmorph.data.builtin import PAD, load_fashion_mnist

    images, labels = load_fashion_mnist(split)
    return np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD))), labels  # as pad_to_32, all at once


def _fashion_domain() -> Domain:
    from pixmorph.data.builtin import FASHION_CLASSES

    return Domain("fashion", tuple(c.slug for c in FASHION_CLASSES), tuple(c.name for c in FASHION_CLASSES),
                  _fashion_load, flip=True,
                  description="Fashion-MNIST items padded to 32x32 as in the built-in tasks")


DOMAINS: dict[str, Callable[[], Domain]] = {"fashion": _fashion_domain}


def get_domain(name: str) -> Domain:
    try:
        return DOMAINS[name]()
    except KeyError:
        raise ValueError(f"no classifier domain {name!r}: known {', '.join(sorted(DOMAINS))}") from None


def images_to_tensor(images: np.ndarray) -> Tensor:
    """uint8 N x H x W (or N x H x W x 3) -> float N x C x H x W in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 127.5 - 1.0
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)


def _augment(x: Tensor, g: torch.Generator, flip: bool, shift: int = 2) -> Tensor:
    """Random shifts of up to ``shift`` pixels (padding with black) and, where allowed, mirror flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * shift + 1, (2,), generator=g).tolist()  # one shift per batch: cheap and enough
    x = padded[:, :, dy : dy + h, dx : dx + w]
    if flip:
        mirror = torch.rand(n, generator=g) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(3), x)
    return x


def default_classifier_dir(domain: str = "fashion") -> Path:
    """``<cache>/classifiers/<domain>`` (``$PIXMORPH_CACHE``, default ``~/.cache/pixmorph``)."""
    from pixmorph.data.builtin import cache_base

    return cache_base() / "classifiers" / domain


def train_classifier(domain: str, out: str | Path, *, epochs: float = 3, width: int = 32, batch_size: int = 128,
                     lr: float = 2e-3, n_train: int | None = None, n_test: int | None = None, seed: int = 0,
                     device: str = "cpu", progress: bool = True) -> Classifier:
    """Train a classifier on ``domain``'s real training images, test it on its test images, save it to ``out``.

    ``n_train``/``n_test`` take the first items of each split (for quick runs); ``epochs`` may be
    fractional. Adam with a cosine learning-rate decay; shifts and flips as augmentation."""
    from tqdm import tqdm

    d = get_domain(domain)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_x, train_y = d.load("train")
    test_x, test_y = d.load("test")
    train_x, train_y = train_x[:n_train], train_y[:n_train]
    test_x, test_y = test_x[:n_test], test_y[:n_test]
    x, y = images_to_tensor(train_x), torch.from_numpy(train_y)
    in_channels = x.shape[1]
    dev = torch.device(device)
    net = SmallCNN(len(d.classes), width, in_channels).to(dev)
    steps_per_epoch = max(1, len(x) // batch_size)
    total = max(1, round(epochs * steps_per_epoch))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    t0, step = time.perf_counter(), 0
    net.train()
    with tqdm(total=total, disable=not progress, unit="step", desc=f"classifier {domain}") as bar:
        while step < total:
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(order) - batch_size + 1, batch_size):
                idx = order[i : i + batch_size]
                xb = _augment(x[idx], g, d.flip).to(dev)
                loss = F.cross_entropy(net(xb), y[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                if step >= total:
                    break
    seconds = time.perf_counter() - t0
    classifier = Classifier(net, d.classes, d.names, {}, dev)
    acc = classifier.topk_accuracy(images_to_tensor(test_x), torch.from_numpy(test_y))
    config = {
        "kind": KIND, "pixmorph_version": pixmorph.__version__, "domain": domain,
        "classifier": {"arch": "SmallCNN", "width": width, "in_channels": in_channels, "image_size": IMAGE_SIZE,
                       "classes": list(d.classes), "names": list(d.names), "input": d.description},
        "training": {"n_train": len(x), "epochs": epochs, "steps": total, "batch_size": batch_size, "lr": lr,
                     "seed": seed, "seconds": round(seconds, 1), "device": str(dev)},
        "test_accuracy": {"top1": acc[1], "top5": acc[5], "n_test": len(test_x)},
    }
    classifier.config = config
    ckpt.save_checkpoint(out, nn.ModuleDict({"classifier": net}), config, state=None)
    return classifier


def labels_from_file_names(files: Sequence[Path], domain: str = "fashion") -> Tensor:
    """Class of each built-in file from its name (``test_000123.png`` is Fashion-MNIST test item 123)."""
    d = get_domain(domain)
    labels_of: dict[str, np.ndarray] = {}
    out = []
    for f in files:
        m = _BUILTIN_NAME.match(Path(f).stem)
        if not m:
            raise ValueError(f"{f}: the class cannot be read from this name: --label auto needs the built-in "
                             f"tasks' names (test_000123.png); give --label CLASS instead")
        split, index = m.group(1), int(m.group(2))
        if split not in labels_of:
            labels_of[split] = d.load(split)[1]
        if index >= len(labels_of[split]):
            raise ValueError(f"{f}: index {index} is past the {len(labels_of[split])} {split} items of {domain}")
        out.append(int(labels_of[split][index]))
    return torch.tensor(out, dtype=torch.long)

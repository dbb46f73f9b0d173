"""Small classifiers of image domains, to score translations by the class they show.

Train one on any class-folder root and use it with ``pixmorph eval --classifier``::

    from pixmorph.metrics.classify import train_classifier
    clf = train_classifier("path/to/ROOT", "runs/classifiers/glyph-fonts", epochs=5)
    clf.test_accuracy   # {"top1": ..., "top5": ..., "n_test": ...} on ROOT's held-out real images

``ROOT`` is either ``ROOT/train/<class>/*.png`` + ``ROOT/test/<class>/*.png`` (the built-in
``fashion-classes`` layout), or ``ROOT/<class>/*.png``, of which every 10th file of each class
(``test_fraction``) is held out for the test. Class names are the folder names, sorted. A
registered domain name (``"fashion"``, or one added by :func:`register_domain`) works in place of
``ROOT``. The CLI is ``pixmorph classifier train fashion|ROOT``.

A classifier is a checkpoint folder like any pixmorph checkpoint (``weights.safetensors`` +
``config.json``); its config records the classes, the architecture, where the data came from and
the top-1/top-5 accuracy it reached on the domain's real test images. The network is a
5-convolution CNN at ``image_size`` (32 by default: the built-in tasks' size, Fashion-MNIST's 28x28
items padded with black). Inputs are N x C x H x W in [-1, 1] as :func:`pixmorph.images.to_tensor`
gives; RGB is averaged to gray for a gray domain, and other sizes are resized to ``image_size``.
"""

from __future__ import annotations

import functools
import math
import os
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
from pixmorph.messages import one_line
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
    """A trained classifier: ``logits(images)``, ``topk_accuracy(images, labels)``, ``classes``; ``path``: the
    checkpoint it was loaded from (None: not loaded from one)."""

    def __init__(self, net: SmallCNN, classes: Sequence[str], names: Sequence[str], config: dict,
                 device: str | torch.device = "cpu", image_size: int = IMAGE_SIZE,
                 path: str | os.PathLike | None = None):
        self.net, self.classes, self.names, self.config = net, list(classes), list(names), config
        self.path = path
        self.image_size = image_size
        self.device = torch.device(device)
        self.net.to(self.device).eval()

    @torch.no_grad()
    def logits(self, images: Tensor, batch_size: int = 256) -> Tensor:
        prepare = lambda x: prepare_input(x, self.net.in_channels, self.image_size).to(self.device)
        out = [self.net(prepare(images[i : i + batch_size])).float().cpu() for i in range(0, images.shape[0], batch_size)]
        return torch.cat(out)

    def topk_accuracy(self, images: Tensor, labels: Tensor | Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[int, float]:
        return topk_accuracy(self.logits(images), torch.as_tensor(labels), ks)

    def label_index(self, label: str | int) -> int:
        """A class given by index, slug (``boot``) or name (``Ankle boot``), case-insensitive."""
        text = str(label).strip()
        for i, (slug, name) in enumerate(zip(self.classes, self.names)):
            if text.lower() in (slug.lower(), name.lower()):
                return i
        if text.isdigit() and int(text) < len(self.classes):
            return int(text)
        which = "this classifier" if self.path is None else f"the classifier {self.path}"
        raise ValueError(f"unknown class {label!r}: {which} knows {', '.join(self.classes)}")

    @property
    def test_accuracy(self) -> dict:
        recorded = self.config.get("test_accuracy")  # a dict as saved; a hand-edited other value: none recorded
        return dict(recorded) if isinstance(recorded, dict) else {}


def topk_accuracy(logits: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of rows whose label is among the k highest logits, for each k that says something: a k > 1
    that reaches the number of classes is left out (every label is among them, so it is 1 whatever the images)."""
    labels = labels.to(torch.long).view(-1, 1)
    order = logits.argsort(dim=1, descending=True)
    return {k: float((order[:, :k] == labels).any(dim=1).float().mean()) for k in ks if k == 1 or k < logits.shape[1]}


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> Classifier:
    """Load a classifier checkpoint folder written by :func:`train_classifier`."""
    folder = ckpt.find_checkpoint(path)
    config = ckpt.read_config(folder)
    if config.get("kind") != KIND:
        raise ckpt.CheckpointError(f"{folder}: not a pixmorph classifier (a translation checkpoint?); "
                                   "build one with `pixmorph classifier train fashion`")
    try:
        arch = config["classifier"]
        net = SmallCNN(len(arch["classes"]), arch["width"], arch["in_channels"])
        classes, names, image_size = arch["classes"], arch["names"], arch.get("image_size", IMAGE_SIZE)
    except (KeyError, TypeError, ValueError) as e:  # edited by hand, or cut short
        detail = f"no {e}" if isinstance(e, KeyError) else str(e)
        raise ckpt.CheckpointError(f"{folder / ckpt.CONFIG}: not a complete classifier config ({detail})") from None
    ckpt.load_weights(folder, nn.ModuleDict({"classifier": net}))
    return Classifier(net, classes, names, config, device, image_size, path)


# ---------------------------------------------------------------------------
# Domains: where the real images of each class come from


@dataclass(frozen=True)
class Domain:
    """Real images of a domain: ``load(split) -> (uint8 N x H x W or N x H x W x 3, int64 labels)``,
    all images of one size, in an order where the first items mix the classes (``n_train`` cuts)."""

    name: str
    classes: tuple[str, ...]
    names: tuple[str, ...]
    load: Callable[[str], tuple[np.ndarray, np.ndarray]]
    flip: bool  # horizontal flips keep the class
    description: str
    source: dict | None = None  # how to rebuild a folder domain (recorded in the classifier's config)


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


def register_domain(name: str, factory: Callable[[], Domain]) -> None:
    """Make ``name`` a built-in domain (``pixmorph classifier train NAME``). ``factory`` builds the data
    when called, e.g. ``lambda: class_folder_domain(prepare_glyphs(), name="glyph-fonts")``."""
    DOMAINS[name] = factory


def _class_dirs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _read_split(files: list[Path], size: int) -> np.ndarray:
    """uint8 N x size x size x 3 (each file resized to size x size, bilinear, aspect not kept)."""
    from PIL import Image

    from pixmorph.metrics.folders import read_uint8

    out = np.empty((len(files), size, size, 3), np.uint8)
    for i, image in enumerate(read_uint8(files)):  # names every unreadable file at once
        array = image.permute(1, 2, 0).numpy()
        if array.shape[:2] != (size, size):
            array = np.asarray(Image.fromarray(array).resize((size, size), Image.BILINEAR))
        out[i] = array
    return out


UNPAIRED_FOLDERS = ("trainA", "trainB", "testA", "testB")


def _unpaired_class_files(root: Path) -> dict[str, tuple[list[Path], list[Path]]] | None:
    """The CycleGAN layout as two classes, A and B, with their own test folders (not four classes named trainA,
    trainB, testA and testB, of which two are the same domain); None for any other layout."""
    from pixmorph.metrics.folders import image_files

    if not all((root / name).is_dir() for name in UNPAIRED_FOLDERS):
        return None
    return {c: (image_files(root / f"train{c}"), image_files(root / f"test{c}")) for c in "AB"}


def class_folder_domain(root: str | os.PathLike, *, test_fraction: float = 0.1, image_size: int = IMAGE_SIZE,
                        flip: bool = False, name: str | None = None) -> Domain:
    """A domain from class folders: ``ROOT/{train,test}/<class>/*``, the CycleGAN layout ``ROOT/{train,test}{A,B}``
    (classes A and B), or ``ROOT/<class>/*`` (then every ``round(1 / test_fraction)``-th file of each class, in
    name order, is a test image). Images are read
    as RGB and kept gray when every one of them is gray. ``flip``: mirror images keep their class
    (not so for characters)."""
    from pixmorph.metrics.folders import image_files

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected class folders ROOT/<class>/*.png)")
    if (unpaired := _unpaired_class_files(root)) is not None:
        split_files, layout = unpaired, "trainA/testA as class A, trainB/testB as class B"
        no_test = "testA and testB hold no images"
    elif (root / "train").is_dir() and (root / "test").is_dir():
        train_dirs, test_dirs = _class_dirs(root / "train"), _class_dirs(root / "test")
        layout = "train/<class>, test/<class>"
        no_test = f"the class folders of {root / 'test'} hold no images"
        if extra := sorted(set(test_dirs) - set(train_dirs)):
            raise ValueError(f"{root}/test: classes {extra} have no training folder in {root}/train")
        split_files = {c: (image_files(d), image_files(test_dirs[c]) if c in test_dirs else []) for c, d in train_dirs.items()}
    else:
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        every = max(2, round(1 / test_fraction))
        layout = f"<class>, every {every}th file held out for the test"
        no_test = (f"every {every}th image of each class is held out for the test (--test-fraction {test_fraction:g}), "
                   f"so a class needs {every} or more, or give ROOT/train/<class> and ROOT/test/<class> folders")
        split_files = {}
        for c, d in _class_dirs(root).items():
            files = image_files(d)
            split_files[c] = ([f for i, f in enumerate(files) if i % every != every - 1],
                              [f for i, f in enumerate(files) if i % every == every - 1])
    if len(split_files) < 2:
        raise ValueError(f"{root}: {len(split_files)} class folder(s); a classifier needs at least 2 "
                         "(ROOT/<class>/*.png or ROOT/train/<class>/*.png)")
    if empty := [c for c, (train, _) in split_files.items() if not train]:
        raise ValueError(f"{root}: no training images for class(es) {', '.join(empty)}")
    if not any(test for _, test in split_files.values()):
        raise ValueError(f"{root}: no test images: {no_test}")
    classes = tuple(split_files)

    @functools.cache
    def load_all() -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for s, split in enumerate(("train", "test")):
            files = [f for c in classes for f in split_files[c][s]]
            labels = np.array([i for i, c in enumerate(classes) for _ in split_files[c][s]], np.int64)
            order = np.random.default_rng(s).permutation(len(files))  # classes mixed: n_train takes from all
            out[split] = (_read_split([files[i] for i in order], image_size), labels[order])
        if all((x[..., :1] == x).all() for x, _ in out.values()):
            out = {k: (x[..., 0], y) for k, (x, y) in out.items()}
        return out

    return Domain(name or root.name, classes, classes, lambda split: load_all()[split], flip,
                  description=f"class folders under {root} ({layout}) at {image_size}x{image_size}",
                  source={"root": str(root.resolve()), "test_fraction": test_fraction, "image_size": image_size,
                          "flip": flip})


def get_domain(domain: str | os.PathLike | Domain, **folder_options) -> Domain:
    """A :class:`Domain` from a registered name, a class-folder root, or itself."""
    if isinstance(domain, Domain):
        return domain
    if str(domain) in DOMAINS:
        return DOMAINS[str(domain)]()
    if Path(domain).expanduser().is_dir():
        return class_folder_domain(domain, **folder_options)
    tasks = _class_folder_tasks()
    if str(domain) in tasks:  # the name a user gives as --data: its folder, built first when needed
        from pixmorph.data.builtin import prepare_task

        return class_folder_domain(prepare_task(str(domain)), name=str(domain), **folder_options)
    raise ValueError(f"no classifier domain {str(domain)!r}: give a class-folder root (ROOT/<class>/*.png), "
                     f"one of {', '.join(sorted(DOMAINS))} or a built-in task of class folders or A and B "
                     f"({', '.join(tasks)})")


def _class_folder_tasks() -> list[str]:
    """Built-in tasks whose folders a classifier reads: class folders (the glyphs' fonts too: FUNIT's accuracy
    is a classifier's over every class, the held-out ones included), or unpaired A and B."""
    from pixmorph.data.builtin import TASKS

    return sorted(name for name, task in TASKS.items() if task.layout in ("classes", "fewshot", "unpaired"))


def domain_of(config: dict) -> Domain:
    """The domain a classifier was trained on, from its config."""
    source = config.get("data_source")
    if source:
        return class_folder_domain(source["root"], test_fraction=source["test_fraction"],
                                   image_size=source["image_size"], flip=source["flip"], name=config["domain"])
    return get_domain(config["domain"])


# ---------------------------------------------------------------------------
# Training


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


def train_classifier(domain: str | os.PathLike | Domain, out: str | os.PathLike, *, epochs: float = 3,
                     width: int = 32, batch_size: int = 128, lr: float = 2e-3, n_train: int | None = None,
                     n_test: int | None = None, seed: int = 0, device: str = "cpu", progress: bool = True,
                     overwrite: bool = False, **folder_options) -> Classifier:
    """Train a classifier on ``domain``'s real training images, test it on its test images, save it to ``out``.

    ``domain``: a registered name (``"fashion"``), a class-folder root (see the module docstring;
    ``folder_options`` are :func:`class_folder_domain`'s: ``test_fraction``, ``image_size``, ``flip``,
    ``name``), or a :class:`Domain`. ``n_train``/``n_test`` take the first items of each split (quick
    runs); ``epochs`` may be fractional. Adam with a cosine learning-rate decay; shifts (and flips where
    the domain allows) as augmentation. The returned classifier's ``test_accuracy`` is also in the
    checkpoint's config. An ``out`` that holds a classifier is replaced only with ``overwrite``; a folder
    that holds anything else is never replaced."""
    _check_out(Path(out), overwrite)
    for name, value in (("epochs", epochs), ("width", width), ("batch_size", batch_size), ("lr", lr)):
        if value <= 0:
            raise ValueError(f"{name}={value}: give a value above 0")
    from tqdm import tqdm

    d = get_domain(domain, **folder_options)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_x, train_y = d.load("train")
    test_x, test_y = d.load("test")
    train_x, train_y = train_x[:n_train], train_y[:n_train]
    test_x, test_y = test_x[:n_test], test_y[:n_test]
    x, y = images_to_tensor(train_x), torch.from_numpy(train_y)
    in_channels, image_size = x.shape[1], x.shape[-1]
    batch_size = min(batch_size, len(x))
    dev = torch.device(device)
    net = SmallCNN(len(d.classes), width, in_channels).to(dev)
    steps_per_epoch = max(1, len(x) // batch_size)
    total = max(1, round(epochs * steps_per_epoch))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    shift = max(1, image_size // 16)
    t0, step = time.perf_counter(), 0
    net.train()
    with tqdm(total=total, disable=not progress, unit="step", desc=f"classifier {d.name}") as bar:
        while step < total:
            order = torch.randperm(len(x), generator=g)
            for i in range(0, len(order) - batch_size + 1, batch_size):
                idx = order[i : i + batch_size]
                xb = _augment(x[idx], g, d.flip, shift).to(dev)
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
    classifier = Classifier(net, d.classes, d.names, {}, dev, image_size)
    acc = classifier.topk_accuracy(images_to_tensor(test_x), torch.from_numpy(test_y))
    config = {
        "kind": KIND, "pixmorph_version": pixmorph.__version__, "domain": d.name,
        "classifier": {"arch": "SmallCNN", "width": width, "in_channels": in_channels, "image_size": image_size,
                       "classes": list(d.classes), "names": list(d.names), "input": d.description},
        "training": {"n_train": len(x), "epochs": epochs, "steps": total, "batch_size": batch_size, "lr": lr,
                     "seed": seed, "seconds": round(seconds, 1), "device": str(dev)},
        "test_accuracy": {f"top{k}": value for k, value in acc.items()} | {"n_test": len(test_x)},
    }
    if d.source:
        config["data_source"] = d.source
    classifier.config = config
    # absolute: the save writes beside the folder by its name, which "x/.." does not have
    ckpt.save_checkpoint(Path(os.path.abspath(out)), nn.ModuleDict({"classifier": net}), config, state=None)
    return classifier


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any training, an ``out`` the save would replace: the checkpoint is written as the folder
    itself, so whatever else the folder held (a translation run, ``--out .``) would be deleted with it."""
    if file := next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None):
        raise NotADirectoryError(f"{out}: {file} is a file, not a folder: give a new folder as --out")
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:  # empty or not: the save would replace it
        which = "the current folder" if out.resolve() == here else "a folder above the current one"
        raise FileExistsError(f"{out}: {which}, which saving the classifier would replace as a whole (it is saved "
                              f"as a folder of its own): give a new folder as --out, such as {out / 'classifier'}")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not held:
        return
    try:
        config = ckpt.read_config(out) if (out / ckpt.CONFIG).is_file() else {}
    except ckpt.CheckpointError as e:  # cut short by a kill, or hand-edited: not known to be a classifier's
        raise FileExistsError(f"{e}: not known to be a classifier, so not replaced: delete {out} to train one there, "
                              f"or give another --out") from None
    others = [name for name in held if name not in (ckpt.WEIGHTS, ckpt.CONFIG)]
    if config.get("kind") != KIND or others:
        shown = ", ".join((others or held)[:4]) + (", ..." if len(others or held) > 4 else "")
        raise FileExistsError(f"{out}: holds {shown}, which saving the classifier there would delete (the folder is "
                              "replaced as a whole): give a new or empty folder as --out")
    if not overwrite:
        accuracy = config.get("test_accuracy")  # a dict as saved; anything else (hand-edited) is left unsaid
        top1 = accuracy.get("top1") if isinstance(accuracy, dict) else None
        domain = one_line(config.get("domain", "?"))
        trained = f"{domain}, top-1 {top1:.4f}" if isinstance(top1, float) else domain
        raise FileExistsError(f"{out} already holds a classifier ({trained}): --overwrite to replace it, "
                              "or another --out")


# ---------------------------------------------------------------------------
# Labels of files to score


def labels_from_file_names(files: Sequence[Path], domain: str = "fashion") -> Tensor:
    """Class of each built-in file from its name (``test_000123.png`` is Fashion-MNIST test item 123)."""
    d = get_domain(domain)
    labels_of: dict[str, np.ndarray] = {}
    out = []
    for f in files:
        m = _BUILTIN_NAME.match(Path(f).stem)
        if not m:
            raise ValueError(f"{f}: the class cannot be read from this name: --label auto needs the built-in "
                             f"tasks' names (test_000123.png) or class folders (<class>/x.png); "
                             f"give --label CLASS instead")
        split, index = m.group(1), int(m.group(2))
        if split not in labels_of:
            labels_of[split] = d.load(split)[1]
        if index >= len(labels_of[split]):
            raise ValueError(f"{f}: index {index} is past the {len(labels_of[split])} {split} items of {domain}")
        out.append(int(labels_of[split][index]))
    return torch.tensor(out, dtype=torch.long)


def auto_labels(files: Sequence[Path], classifier: Classifier) -> Tensor:
    """The true class of each file: its folder's name when that is one of the classifier's classes
    (``<class>/x.png``), else, for a classifier of Fashion-MNIST classes (``fashion``, or one trained on the
    ``fashion-classes`` folders, whose classes are the same slugs in another order), its built-in file name."""
    from pixmorph.data.builtin import FASHION_CLASSES

    known = {c: i for i, c in enumerate(classifier.classes)}
    if all(Path(f).parent.name in known for f in files):
        return torch.tensor([known[Path(f).parent.name] for f in files], dtype=torch.long)
    slugs = [c.slug for c in FASHION_CLASSES]
    if classifier.config.get("domain") == "fashion" or (known and set(known) <= set(slugs)):
        labels = labels_from_file_names(files).tolist()  # Fashion-MNIST's numbering: as a slug, then the classifier's
        stray = next((i for i, label in enumerate(labels) if slugs[label] not in known), None)
        if stray is not None:
            raise ValueError(f"{files[stray]}: a Fashion-MNIST {slugs[labels[stray]]} by its name, a class this "
                             f"classifier does not know ({', '.join(classifier.classes)}): give --label CLASS instead")
        return torch.tensor([known[slugs[label]] for label in labels], dtype=torch.long)
    stray = next(f for f in files if Path(f).parent.name not in known)
    raise ValueError(f"{stray}: --label auto reads the class from the folder name, and {Path(stray).parent.name!r} "
                     f"is not one of {', '.join(classifier.classes)}; give --label CLASS instead")

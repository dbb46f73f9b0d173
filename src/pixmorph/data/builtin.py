"""Built-in datasets made from Fashion-MNIST, written as real PNG folders.

Nothing here downloads by default on Debian: the raw idx files come from
Debian's ``dataset-fashion-mnist`` package (or a folder you name), and each
task is materialised once into a cache folder in the standard layouts
(CycleGAN ``trainA/trainB/testA/testB``, pix2pix side-by-side pairs, class
folders), so the ordinary folder loaders read them like any user data.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from PIL import Image

Split = Literal["train", "test"]
Layout = Literal["unpaired", "paired", "classes", "fewshot"]

ENV_DATA_DIR = "PIXMORPH_FASHION_MNIST_DIR"
ENV_CACHE = "PIXMORPH_CACHE"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

IMAGE_SIZE = 32
PAD = (IMAGE_SIZE - 28) // 2

# Canny on the padded 32x32 image scaled to [0, 1]. Thresholds are absolute
# gradient magnitudes: item outlines reach ~2, so 0.1/0.2 keeps the outline
# plus inner edges (sleeves, collars, soles) without the fabric texture that
# lower values pick up.
EDGE_SIGMA = 1.0
EDGE_LOW = 0.1
EDGE_HIGH = 0.2

# Bump when the way files are produced changes, so old cache folders are not reused.
RECIPE_VERSION = 1

_MISSING_MESSAGE = (
    "Fashion-MNIST not found: install Debian's package dataset-fashion-mnist "
    "(apt-get install dataset-fashion-mnist) or allow torchvision to download it, "
    f"or set {ENV_DATA_DIR}"
)


class FashionClass(NamedTuple):
    slug: str
    name: str


FASHION_CLASSES: tuple[FashionClass, ...] = (
    FashionClass("tshirt", "T-shirt/top"),
    FashionClass("trouser", "Trouser"),
    FashionClass("pullover", "Pullover"),
    FashionClass("dress", "Dress"),
    FashionClass("coat", "Coat"),
    FashionClass("sandal", "Sandal"),
    FashionClass("shirt", "Shirt"),
    FashionClass("sneaker", "Sneaker"),
    FashionClass("bag", "Bag"),
    FashionClass("boot", "Ankle boot"),
)
_LABEL_OF_SLUG = {c.slug: label for label, c in enumerate(FASHION_CLASSES)}


# ---------------------------------------------------------------------------
# Raw data
# ---------------------------------------------------------------------------

_IDX_STEMS = {"train": "train", "test": "t10k"}


def cache_base() -> Path:
    """``$PIXMORPH_CACHE`` or ``~/.cache/pixmorph``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pixmorph"


def _torchvision_root() -> Path:
    return cache_base() / "torchvision"


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _split_files(folder: Path, split: Split) -> tuple[Path, Path] | None:
    stem = _IDX_STEMS[split]
    images = _idx_file(folder, f"{stem}-images-idx3-ubyte")
    labels = _idx_file(folder, f"{stem}-labels-idx1-ubyte")
    return (images, labels) if images and labels else None


def _candidate_dirs() -> list[Path]:
    dirs = []
    if os.environ.get(ENV_DATA_DIR):
        dirs.append(Path(os.environ[ENV_DATA_DIR]).expanduser())
    dirs.append(DEBIAN_DIR)
    dirs.append(_torchvision_root() / "FashionMNIST" / "raw")
    return dirs


def _download_with_torchvision() -> None:
    """Let torchvision fetch the raw files into our cache; any failure is swallowed."""
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(_torchvision_root()), train=True, download=True)
    except Exception:  # no network, blocked mirror, missing torchvision...
        pass


def _find_split_files(split: Split) -> tuple[Path, Path]:
    for folder in _candidate_dirs():
        found = _split_files(folder, split)
        if found:
            return found
    _download_with_torchvision()
    found = _split_files(_torchvision_root() / "FashionMNIST" / "raw", split)
    if found:
        return found
    raise FileNotFoundError(_MISSING_MESSAGE + _data_dir_note(split))


def _data_dir_note(split: Split) -> str:
    """Why a folder the user named was passed over (a parent of the files, say): the files it lacks."""
    folder = os.environ.get(ENV_DATA_DIR)
    if not folder:
        return ""
    stem = _IDX_STEMS[split]
    return (f" (it is set, to {folder}, which holds no {stem}-images-idx3-ubyte and {stem}-labels-idx1-ubyte, "
            ".gz or not: give the folder of those files)")


@functools.lru_cache(maxsize=4)
def _read_idx(path: Path) -> np.ndarray:
    """Parse an idx file of unsigned bytes (optionally gzipped); result is read-only."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as e:  # a download cut short; gzip's BadGzipFile is an OSError
        raise ValueError(f"{path}: unreadable ({e}): the file is cut short or damaged; get it again") from None
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes")
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    array = np.frombuffer(data, dtype=np.uint8, offset=header)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {array.size} values where its header says {' x '.join(map(str, shape))} "
                         f"({int(np.prod(shape))}): the file is cut short or damaged; get it again")
    return array.reshape(shape)  # frombuffer over bytes is already read-only


def _fashion_arrays(split: Split) -> tuple[np.ndarray, np.ndarray]:
    if split not in _IDX_STEMS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images_path, labels_path = _find_split_files(split)
    images, labels = _read_idx(images_path), _read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"inconsistent Fashion-MNIST files: {images_path}, {labels_path}")
    return images, labels


def load_fashion_mnist(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Return Fashion-MNIST ``(images uint8 (N, 28, 28), labels int64 (N,))``.

    Looks in ``$PIXMORPH_FASHION_MNIST_DIR``, Debian's
    ``/usr/share/datasets/fashion-mnist``, then the torchvision cache under
    ``$PIXMORPH_CACHE`` (``~/.cache/pixmorph``), trying a torchvision download
    there as a last resort.
    """
    images, labels = _fashion_arrays(split)
    return images.copy(), labels.astype(np.int64)


# ---------------------------------------------------------------------------
# Image helpers
# ---------------------------------------------------------------------------


def pad_to_32(image: np.ndarray) -> np.ndarray:
    """Pad a 28x28 item with black to the 32x32 size every built-in task uses."""
    return np.pad(image, PAD, mode="constant", constant_values=0)


def edge_map(image: np.ndarray) -> np.ndarray:
    """Canny edges of a uint8 grayscale image as white (255) lines on black (0)."""
    from skimage.feature import canny

    edges = canny(
        image.astype(np.float64) / 255.0,
        sigma=EDGE_SIGMA,
        low_threshold=EDGE_LOW,
        high_threshold=EDGE_HIGH,
    )
    return edges.astype(np.uint8) * 255


def _file_name(split: Split, index: int) -> str:
    # The Fashion-MNIST index in the name lets anyone trace a file to its source item.
    return f"{split}_{index:06d}.png"


def _save_png(array: np.ndarray, path: Path) -> None:
    # Fixed settings and no metadata: same pixels give byte-identical files.
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(
        path, format="PNG", compress_level=6
    )


# ---------------------------------------------------------------------------
# Task builders
# ---------------------------------------------------------------------------


def _first_indices(candidates: np.ndarray, count: int, what: str) -> np.ndarray:
    if count < 0:
        raise ValueError(f"{what}: size must be >= 0, got {count}")
    if count > len(candidates):
        raise ValueError(f"{what}: asked for {count} items, only {len(candidates)} available")
    return candidates[:count]


def _class_indices(labels: np.ndarray, slug: str, count: int, split: Split) -> np.ndarray:
    found = np.flatnonzero(labels == _LABEL_OF_SLUG[slug])
    return _first_indices(found, count, f"{slug} ({split})")


def _write_items(
    folder: Path,
    split: Split,
    indices: Iterable[int],
    render: Callable[[np.ndarray], np.ndarray],
) -> None:
    images, _ = _fashion_arrays(split)
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        _save_png(render(pad_to_32(images[index])), folder / _file_name(split, int(index)))


def _photo(image: np.ndarray) -> np.ndarray:
    return image


def _side_by_side(image: np.ndarray) -> np.ndarray:
    return np.concatenate([edge_map(image), image], axis=1)


def _build_fashion_edges(out: Path, n_train: int, n_test: int) -> None:
    _, train_labels = _fashion_arrays("train")
    _, test_labels = _fashion_arrays("test")
    # Disjoint halves: A sees the edges of one set of items, B photos of another,
    # so no training pair can be matched up.
    train = _first_indices(np.arange(len(train_labels)), 2 * n_train, "fashion-edges train")
    _write_items(out / "trainA", "train", train[:n_train], edge_map)
    _write_items(out / "trainB", "train", train[n_train:], _photo)
    test = _first_indices(np.arange(len(test_labels)), n_test, "fashion-edges test")
    _write_items(out / "testA", "test", test, edge_map)
    _write_items(out / "testB", "test", test, _photo)


def _build_fashion_edges_paired(out: Path, n_train: int, n_test: int) -> None:
    _, train_labels = _fashion_arrays("train")
    _, test_labels = _fashion_arrays("test")
    train = _first_indices(np.arange(len(train_labels)), n_train, "fashion-edges-paired train")
    test = _first_indices(np.arange(len(test_labels)), n_test, "fashion-edges-paired test")
    _write_items(out / "train", "train", train, _side_by_side)
    _write_items(out / "test", "test", test, _side_by_side)


def _class_pair_builder(slug_a: str, slug_b: str) -> Callable[[Path, int, int], None]:
    def build(out: Path, n_train: int, n_test: int) -> None:
        for split, count in (("train", n_train), ("test", n_test)):
            _, labels = _fashion_arrays(split)
            for side, slug in (("A", slug_a), ("B", slug_b)):
                indices = _class_indices(labels, slug, count, split)
                _write_items(out / f"{split}{side}", split, indices, _photo)

    return build


def _build_fashion_classes(out: Path, n_train: int, n_test: int) -> None:
    for split, count in (("train", n_train), ("test", n_test)):
        _, labels = _fashion_arrays(split)
        for cls in FASHION_CLASSES:
            indices = _class_indices(labels, cls.slug, count, split)
            _write_items(out / split / cls.slug, split, indices, _photo)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltinTask:
    """A built-in dataset; ``n_train``/``n_test`` are the default sizes (see description). ``folder``: its cache
    folder's name when the sizes do not tell one version from another (glyphs: the fonts installed)."""

    name: str
    layout: Layout
    description: str
    image_size: int = IMAGE_SIZE
    n_train: int = 3000
    n_test: int = 500
    folder: str | None = None
    flip: bool = True  # whether training may mirror its images (what its fewshot.json says, known unprepared)


def _class_pair_task(slug_a: str, slug_b: str) -> BuiltinTask:
    name_a, name_b = (FASHION_CLASSES[_LABEL_OF_SLUG[s]].name for s in (slug_a, slug_b))
    return BuiltinTask(
        name=f"{slug_a}2{slug_b}",
        layout="unpaired",
        description=(
            f"Fashion-MNIST {name_a} (A) <-> {name_b} (B), 32x32 grayscale; "
            "n_train/n_test images per side."
        ),
    )


_CLASS_PAIRS = (("sneaker", "boot"), ("tshirt", "pullover"), ("sandal", "sneaker"))

TASKS: dict[str, BuiltinTask] = {
    "fashion-edges": BuiltinTask(
        name="fashion-edges",
        layout="unpaired",
        description=(
            "Fashion-MNIST Canny edge maps (A) <-> item photos (B), 32x32 grayscale. "
            "trainA/trainB hold n_train different items each; testA/testB hold the "
            "same n_test items under the same file names."
        ),
    ),
    "fashion-edges-paired": BuiltinTask(
        name="fashion-edges-paired",
        layout="paired",
        description=(
            "pix2pix layout: each file is a 64x32 pair, edge map left, photo right; "
            "n_train/n_test pairs."
        ),
    ),
    **{f"{a}2{b}": _class_pair_task(a, b) for a, b in _CLASS_PAIRS},
    "fashion-classes": BuiltinTask(
        name="fashion-classes",
        layout="classes",
        description=(
            "Fashion-MNIST in class folders train/<slug>/ and test/<slug>/, 32x32 "
            "grayscale; n_train/n_test images per class."
        ),
        n_train=300,
        n_test=100,
    ),
}

_BUILDERS: dict[str, Callable[[Path, int, int], None]] = {
    "fashion-edges": _build_fashion_edges,
    "fashion-edges-paired": _build_fashion_edges_paired,
    **{f"{a}2{b}": _class_pair_builder(a, b) for a, b in _CLASS_PAIRS},
    "fashion-classes": _build_fashion_classes,
}


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a built-in task."""
    return name in TASKS


def default_root() -> Path:
    """Where tasks are materialised by default: ``<cache_base()>/builtin``."""
    return cache_base() / "builtin"


def task_folder_name(name: str, n_train: int, n_test: int) -> str:
    return f"{name}-v{RECIPE_VERSION}-train{n_train}-test{n_test}"


def task_folder(name: str, root: str | Path | None = None, *, n_train: int | None = None,
                n_test: int | None = None) -> Path:
    """The folder :func:`prepare_task` fills for task ``name`` (it may not exist yet)."""
    if name not in TASKS:
        raise ValueError(f"unknown built-in task {name!r}; known: {', '.join(sorted(TASKS))}")
    task = TASKS[name]
    n_train = task.n_train if n_train is None else n_train
    n_test = task.n_test if n_test is None else n_test
    root = Path(root).expanduser() if root is not None else default_root()
    return root / (task.folder or task_folder_name(name, n_train, n_test))


def prepare_task(
    name: str,
    root: str | Path | None = None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Path:
    """Materialise built-in task ``name`` under ``root`` and return its folder.

    The folder name encodes the task and its sizes; an existing folder is
    returned as is. The build goes to a hidden temporary folder that is renamed
    into place only when complete.
    """
    final = task_folder(name, root, n_train=n_train, n_test=n_test)
    n_train = TASKS[name].n_train if n_train is None else n_train
    n_test = TASKS[name].n_test if n_test is None else n_test
    root = final.parent
    if final.is_dir():
        return final

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=root))
    try:
        _BUILDERS[name](staging, n_train, n_test)
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # not a concurrent build winning the race
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


__all__ = [
    "BuiltinTask",
    "EDGE_HIGH",
    "EDGE_LOW",
    "EDGE_SIGMA",
    "FASHION_CLASSES",
    "FashionClass",
    "TASKS",
    "default_root",
    "edge_map",
    "is_builtin",
    "load_fashion_mnist",
    "prepare_task",
]


# The few-shot glyphs task lives in its own module and adds itself to TASKS.
from pixmorph.data import glyphs  # noqa: E402,F401

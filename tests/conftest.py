"""Shared fixtures for the end-to-end tests: real image files and tiny, fast run configs."""

from __future__ import annotations

import pixmorph  # noqa: F401  (first: it sets the OpenMP spin before torch loads, as the CLI does)

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

CYCLEGAN_MODEL = {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 1}
PIX2PIX_MODEL = {"ngf": 8, "ndf": 8, "num_downs": 5}
SIZES = {"cyclegan": 16, "pix2pix": 32}


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``main()`` (the console script) in-process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["pixmorph", *map(str, args)])
    from pixmorph.cli import main

    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def save_image_file(path: Path, width: int, height: int, mode: str = "RGB", seed: int = 0) -> Path:
    """Write a random image file; the format comes from the extension."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
        array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        img = Image.fromarray(array[:, :, 0] if channels == 1 else array, mode)
    img.save(path)
    return path


def damage_png_pixels(path: Path) -> Path:
    """Garble a PNG's compressed pixels and give the chunk its right checksum: the file passes every check short of
    decoding (``check_images``), and fails when read, as a file changed after the check would."""
    import struct
    import zlib

    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    pixels = data[at + 4 : at + 4 + length]
    pixels[length // 2 : length // 2 + 16] = b"\xff" * 16
    data[at + 4 : at + 8 + length] = pixels + struct.pack(">I", zlib.crc32(b"IDAT" + pixels))
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def one_thread():
    """One intra-op thread for tiny nets: they are overhead-bound, and on a 2-core machine shared with other
    work two OpenMP threads that wait for each other make a step up to ~50x slower (measured: 2.2 s vs 0.03 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_image():
    return save_image_file


def make_unpaired(root: Path, n: int = 3, size: tuple[int, int] = (24, 20)) -> Path:
    for i, sub in enumerate(("trainA", "trainB", "testA", "testB")):
        for j in range(n):
            save_image_file(root / sub / f"{sub}_{j}.png", *size, seed=10 * i + j)
    return root


def make_side_by_side(root: Path, n: int = 3, size: int = 32) -> Path:
    for j in range(n):
        save_image_file(root / "train" / f"pair_{j}.png", 2 * size, size, seed=j)
    return root


def make_paired_folders(root: Path, n: int = 3, size: int = 32) -> Path:
    for j in range(n):
        save_image_file(root / "trainA" / f"img_{j}.png", size, size, seed=j)
        save_image_file(root / "trainB" / f"img_{j}.png", size, size, seed=100 + j)
    return root


@pytest.fixture
def layouts() -> SimpleNamespace:
    """Builders of data folders: unpaired (CycleGAN), side_by_side and paired_folders (pix2pix)."""
    return SimpleNamespace(unpaired=make_unpaired, side_by_side=make_side_by_side, paired_folders=make_paired_folders)


@pytest.fixture
def cyclegan_data(tmp_path) -> Path:
    return make_unpaired(tmp_path / "data")


@pytest.fixture
def make_config():
    """``make_config(method, data, out, model={...}, data={...}, **train_options)`` -> a tiny RunConfig."""
    from pixmorph.config import RunConfig

    def make(method: str, data: Path, out: Path, model: dict | None = None, data_options: dict | None = None,
             **train) -> RunConfig:
        size = SIZES.get(method, 16)
        base_model = {"cyclegan": CYCLEGAN_MODEL, "pix2pix": PIX2PIX_MODEL}.get(method, {})
        return RunConfig.from_dict({
            "method": method,
            "model": {**base_model, **(model or {})},
            "data": {"root": str(data), "load_size": size, "crop_size": size, "num_workers": 0, **(data_options or {})},
            "train": {"out": str(out), "batch_size": 2, "max_steps": 3, "tensorboard": False, **train},
        })

    return make


@pytest.fixture(scope="session")
def cyclegan_run(tmp_path_factory) -> Path:
    """A CycleGAN run folder trained for 3 steps, shared: copy it before changing anything in it."""
    from pixmorph.config import RunConfig
    from pixmorph.train.loop import train

    base = tmp_path_factory.mktemp("shared_cyclegan")
    data = make_unpaired(base / "data")
    cfg = RunConfig.from_dict({
        "method": "cyclegan", "model": dict(CYCLEGAN_MODEL),
        "data": {"root": str(data), "load_size": 16, "crop_size": 16, "num_workers": 0},
        "train": {"out": str(base / "run"), "batch_size": 2, "max_steps": 3, "tensorboard": False},
    })
    return train(cfg, progress=False)

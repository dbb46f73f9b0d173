"""Fixtures of the server tests: tiny trained runs of every served kind, and `pixmorph serve`'s app running
in a real uvicorn server on 127.0.0.1 (a free port) in a thread of the test process.

Import the fixtures into a test module: ``from serving import server, served_runs  # noqa: F401``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from pixmorph.config import RunConfig
from pixmorph.methods import deepsim
from pixmorph.serve.background import running  # noqa: F401  (the tests' way to start a server)
from pixmorph.train.loop import train

DEEPSIM_TINY = {"ngf": 4, "ndf": 4, "n_blocks": 1, "d_layers": 2, "n_downsampling": 4, "lambda_vgg": 0}
FUNIT_TINY = dict(channels=1, nf=8, nf_mlp=16, latent_dim=8, n_res_blocks=1, n_down_content=1, n_down_class=2,
                  nf_dis=8, n_res_blocks_dis=4, num_classes=4)
TRAIN = {"max_steps": 2, "tensorboard": False, "device": "cpu", "log_every": 1, "sample_every": 10**6}


def _image(path: Path, width: int, height: int, seed: int, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if mode == "L" else 3
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    Image.fromarray(array[..., 0] if channels == 1 else array).save(path)
    return path


def _photo(path: Path, width: int = 64, height: int = 48) -> Path:
    """A smooth picture with edges worth drawing: a disc and a bar on a gradient."""
    y, x = np.mgrid[0:height, 0:width]
    r = np.clip(x * 255 // width, 0, 255)
    g = np.where((x - width / 3) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2, 230, 40)
    b = np.where((x > 0.6 * width) & (x < 0.8 * width), 200, 60)
    Image.fromarray(np.stack([r, g, b], -1).astype(np.uint8)).save(path)
    return path


def _train(cfg: RunConfig) -> Path:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, progress=False)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory) -> SimpleNamespace:
    """Run folders trained for 2 steps: cyclegan (16 px RGB), funit (16 px gray, 4 source classes),
    deepsim on edges and on seg+edges (64 x 48 photo), and the files they were trained on."""
    base = tmp_path_factory.mktemp("served")
    unpaired = base / "unpaired"
    for i, sub in enumerate(("trainA", "trainB")):
        for j in range(3):
            _image(unpaired / sub / f"{j}.png", 20, 20, 10 * i + j)
    cyclegan = _train(RunConfig.from_dict({
        "method": "cyclegan", "model": {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 1},
        "data": {"root": str(unpaired), "load_size": 16, "crop_size": 16, "num_workers": 0},
        "train": {"out": str(base / "cyclegan"), "batch_size": 2, **TRAIN}}))

    classes = base / "classes"
    for c in range(6):
        for j in range(3):
            _image(classes / f"class{c}" / f"{j}.png", 16, 16, 100 * c + j, mode="L")
    (classes / "fewshot.json").write_text(json.dumps({"flip": False, "target_classes": ["class4", "class5"]}))
    funit = _train(RunConfig.from_dict({
        "method": "funit", "model": FUNIT_TINY,
        "data": {"root": str(classes), "load_size": 16, "crop_size": 16, "flip": False, "channels": 1,
                 "num_workers": 0},
        "train": {"out": str(base / "funit"), "batch_size": 4, "lr_policy": "constant", **TRAIN}}))

    photo = _photo(base / "photo.png")
    edges_run = _train(deepsim.make_config(photo, out=base / "deepsim_edges", model=DEEPSIM_TINY, train=TRAIN))
    seg_edges_run = _train(deepsim.make_config(photo, "auto-seg", kind="seg+edges", out=base / "deepsim_seg_edges",
                                               model=DEEPSIM_TINY, train=TRAIN))
    return SimpleNamespace(cyclegan=cyclegan, funit=funit, deepsim_edges=edges_run, deepsim_seg_edges=seg_edges_run,
                           photo=photo, classes=classes, base=base)


@pytest.fixture(scope="session")
def served_models(served_runs):
    from pixmorph.serve.models import load_models

    r = served_runs
    return load_models([f"cyclegan={r.cyclegan}", f"funit={r.funit}", f"edges={r.deepsim_edges}",
                        f"segedges={r.deepsim_seg_edges}"], device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def server(served_models) -> Iterator[str]:
    """The base URL of a server of the four tiny models, with the default limits."""
    from pixmorph.serve.app import create_app

    with running(create_app(served_models)) as url:
        yield url


def png(width: int = 24, height: int = 20, seed: int = 0, mode: str = "RGB") -> bytes:
    """The bytes of a random PNG image."""
    import io

    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if channels == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()

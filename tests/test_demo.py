"""`pixmorph demo --out DIR` writes over its own earlier output only, never over a user's files of the same
names (its grid, its page's images/, its run/), and says so in one line before any training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from pixmorph import demo
from pixmorph.demo import _write_grid, _write_page, refuse_foreign_files, run_demo


def _demo_output(out: Path) -> None:
    """What an earlier demo left in ``out``: its grid, its page and the page's images."""
    names = [out / f"test_{i:06d}.png" for i in range(2)]
    edges, outputs, truth = (torch.rand(2, 1, 32, 32) * 2 - 1 for _ in range(3))
    out.mkdir(parents=True, exist_ok=True)
    _write_grid(out / "demo_grid.png", edges, outputs, truth)
    _write_page(out, names, edges, outputs, truth, {"l1_model": 0.1, "l1_identity": 0.5, "l1_untrained": 0.7})


@pytest.mark.parametrize("name", ["demo_grid.png", "images/test_000001_output.png"])
def test_the_demo_does_not_write_over_a_users_image(tmp_path: Path, name: str) -> None:
    """A user's demo_grid.png or images/test_000001_output.png (a name the demo's page gives its held-out items'
    images) in --out was written over after minutes of training."""
    mine = tmp_path / "out" / name
    mine.parent.mkdir(parents=True)
    Image.new("RGB", (4, 4), (1, 2, 3)).save(mine)
    before = mine.read_bytes()
    with pytest.raises(FileExistsError) as caught:
        run_demo(tmp_path / "out", minutes=0.01, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and name in message and "are not the demo's" in message and "--out" in message
    assert mine.read_bytes() == before and not (tmp_path / "out" / "run").exists()  # refused before training


def test_the_demo_leaves_other_images_of_an_images_folder_alone(tmp_path: Path) -> None:
    """An images/ folder of the user's own photos (cat_output.png) holds nothing the demo writes: not refused."""
    (tmp_path / "out" / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "out" / "images" / "cat_output.png")
    refuse_foreign_files(tmp_path / "out")


def test_the_demo_does_not_start_over_another_run(tmp_path: Path) -> None:
    run = tmp_path / "out" / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"method": "pix2pix", "data": {"root": "my/facades"}, "train": {}}))
    with pytest.raises(FileExistsError, match=r"out: its run/ \(another run\) are not the demo's"):
        refuse_foreign_files(tmp_path / "out")
    (run / "config.json").write_text(json.dumps({"method": "cyclegan", "data": {"root": "fashion-edges"}, "train": {}}))
    refuse_foreign_files(tmp_path / "out")  # an earlier demo's run


def test_the_demo_writes_over_its_own_earlier_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _demo_output(out)
    refuse_foreign_files(out)  # a finished demo's folder
    (out / "index.html").unlink()  # one stopped between its images and its page
    refuse_foreign_files(out)
    (out / "images" / "test_000009_truth.png").write_text("notes, not an image")
    with pytest.raises(FileExistsError, match=r"its images/test_000009_truth.png are not the demo's"):
        refuse_foreign_files(out)  # a file of its names that it did not write


def test_the_demo_again_in_its_folder_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_demo into its own earlier folder goes past the check (the training itself is test_builtin's)."""
    _demo_output(tmp_path / "out")
    started = []
    monkeypatch.setattr(demo, "train", lambda cfg: started.append(cfg) or (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "out", minutes=0.01, device="cpu")
    assert len(started) == 1

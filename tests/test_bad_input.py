"""Bad input gives one clear error naming the file or folder, and loses nothing already saved."""

from __future__ import annotations

import errno
import json
import math
import re
import resource
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

import pixmorph
from conftest import damage_png_pixels
from pixmorph.cli import cli, main
from pixmorph.images import BadImageWarning, ImageReadError
from pixmorph.methods.cyclegan import CycleGAN
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import TrainingDiverged, train


def snapshot(run: Path) -> dict[str, bytes]:
    """The bytes of every file in a run's checkpoint folder."""
    return {p.name: p.read_bytes() for p in sorted((run / "checkpoint").iterdir())}


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def assert_intact(run: Path, before: dict[str, bytes], step: int = 3) -> None:
    assert snapshot(run) == before, "the previous checkpoint was changed"
    assert ckpt.read_config(run / "checkpoint")["step"] == step
    assert pixmorph.load(run).step == step
    assert not list(run.glob(".checkpoint*")), "a temporary checkpoint folder was left behind"


@pytest.fixture
def existing_run(tmp_path, cyclegan_run) -> Path:
    """A private copy of a trained 3-step CycleGAN run (its data is at ``cyclegan_run.parent / 'data'``)."""
    return Path(shutil.copytree(cyclegan_run, tmp_path / "existing"))


@pytest.fixture
def shared_data(cyclegan_run) -> Path:
    return cyclegan_run.parent / "data"


def nan_train_step(from_call: int = 1, poison_weights: bool = False, calls_at: set[int] | None = None):
    """A CycleGAN.train_step that trains normally, then (from call ``from_call`` on, or at the calls ``calls_at``)
    returns NaN losses."""
    original = CycleGAN.train_step
    calls = {"n": 0}

    def train_step(self, batch, update):
        calls["n"] += 1
        losses = original(self, batch, update)
        if calls["n"] in calls_at if calls_at is not None else calls["n"] >= from_call:
            if poison_weights:
                with torch.no_grad():
                    for p in self.nets.parameters():
                        p.fill_(float("nan"))
            losses = {k: torch.full_like(v, float("nan")) for k, v in losses.items()}
        return losses

    return train_step


# ---------------------------------------------------------------------------
# Bad data and config: a clear error, and an existing run in --out is untouched


def _empty_trainA(root, layouts, write_image):
    layouts.unpaired(root)
    for p in (root / "trainA").iterdir():
        p.unlink()
    return "cyclegan", {}, {}, ValueError, [str(root / "trainA"), "no image files"]


def _missing_trainB(root, layouts, write_image):
    layouts.unpaired(root)
    shutil.rmtree(root / "trainB")
    return "cyclegan", {}, {}, FileNotFoundError, [str(root / "trainB")]


def _missing_folder(root, layouts, write_image):
    return "cyclegan", {}, {}, FileNotFoundError, [str(root), "not a built-in task", "fashion-edges"]


def _truncated_png(root, layouts, write_image):
    layouts.unpaired(root)
    bad = truncate(write_image(root / "trainA" / "zz_bad.png", 24, 20))
    return "cyclegan", {}, {}, ImageReadError, [str(bad)]


def _truncated_jpeg(root, layouts, write_image):
    layouts.unpaired(root)
    bad = truncate(write_image(root / "trainA" / "a_bad.jpg", 64, 64))  # header intact, pixel data cut
    return "cyclegan", {}, {}, ImageReadError, [str(bad)]


def _not_an_image(root, layouts, write_image):
    layouts.unpaired(root)
    (root / "trainB" / "notes.png").write_text("not a picture")
    return "cyclegan", {}, {}, ImageReadError, [str(root / "trainB" / "notes.png")]


def _batch_larger_than_dataset(root, layouts, write_image):
    layouts.unpaired(root)
    return "cyclegan", {}, {"batch_size": 8}, ValueError, [str(root), "3 training images", "batch size 8"]


def _unknown_method(root, layouts, write_image):
    layouts.unpaired(root)
    return "cyclegun", {}, {}, ValueError, ["cyclegun", "cyclegan", "pix2pix"]


def _crop_larger_than_load(root, layouts, write_image):
    layouts.unpaired(root)
    return "cyclegan", {"load_size": 16, "crop_size": 32}, {}, ValueError, ["data.crop_size=32", "data.load_size=16"]


def _paired_name_mismatch(root, layouts, write_image):
    layouts.paired_folders(root)
    (root / "trainB" / "img_1.png").rename(root / "trainB" / "other.png")
    return "pix2pix", {}, {}, ValueError, [str(root / "trainA" / "img_1.png"), str(root / "trainB")]


def _no_paired_layout(root, layouts, write_image):
    layouts.unpaired(root)
    shutil.rmtree(root / "trainA")
    return "pix2pix", {}, {}, FileNotFoundError, [str(root), "train/", "trainA/"]


def _empty_data_folder(root, layouts, write_image):
    root.mkdir(parents=True)
    return "cyclegan", {}, {}, FileNotFoundError, [str(root), str(root / "trainA"), str(root / "trainB"), "layout"]


def _empty_data_folder_paired(root, layouts, write_image):
    root.mkdir(parents=True)
    return "pix2pix", {}, {}, FileNotFoundError, [str(root / "train"), str(root / "trainA"), str(root / "trainB")]


def _paired_without_trainB(root, layouts, write_image):
    layouts.paired_folders(root)
    shutil.rmtree(root / "trainB")
    return "pix2pix", {}, {}, FileNotFoundError, [str(root), "trainA/ but no trainB/", str(root / "train")]


def _bad_precision(root, layouts, write_image):
    layouts.unpaired(root)
    return "cyclegan", {}, {"precision": "fp8"}, ValueError, ["fp8"]


BAD_DATA = [_empty_trainA, _missing_trainB, _missing_folder, _truncated_png, _truncated_jpeg, _not_an_image,
            _batch_larger_than_dataset, _unknown_method, _crop_larger_than_load,
            _paired_name_mismatch, _no_paired_layout, _empty_data_folder, _empty_data_folder_paired,
            _paired_without_trainB, _bad_precision]


@pytest.mark.parametrize("case", BAD_DATA, ids=lambda f: f.__name__.strip("_"))
def test_bad_data_gives_clear_error_and_loses_nothing(case, tmp_path, layouts, write_image, make_config, existing_run):
    method, data_options, train_options, error, fragments = case(tmp_path / "data", layouts, write_image)
    before = snapshot(existing_run)
    # overwrite=True: even a run told to start over in a folder with a checkpoint keeps it when the data is bad
    with pytest.raises(error) as info:  # from the config (an unknown precision) or from training
        cfg = make_config(method, tmp_path / "data", existing_run, data_options=data_options, overwrite=True,
                          **train_options)
        train(cfg, progress=False)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message
    assert_intact(existing_run, before)


def test_bad_data_one_line_error_from_console_script(tmp_path, layouts, monkeypatch, capsys):
    data = layouts.unpaired(tmp_path / "data")
    bad = truncate(data / "trainA" / "trainA_1.png")
    monkeypatch.setattr(sys, "argv", ["pixmorph", "train", "cyclegan", "--data", str(data), "--out",
                                      str(tmp_path / "run"), "--workers", "0", "--device", "cpu"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(bad) in lines[0], lines


def test_empty_data_folder_one_line_error_names_the_layout(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setattr(sys, "argv", ["pixmorph", "train", "cyclegan", "--data", str(empty), "--out",
                                      str(tmp_path / "run"), "--workers", "0", "--device", "cpu"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert all(s in lines[0] for s in (str(empty / "trainA"), str(empty / "trainB"), "images")), lines
    assert not (tmp_path / "run").exists()  # the failed run left no empty folder behind


def test_skip_bad_trains_without_the_truncated_png(tmp_path, layouts, make_config):
    data = layouts.unpaired(tmp_path / "data")
    bad = truncate(data / "trainA" / "trainA_1.png")
    cfg = make_config("cyclegan", data, tmp_path / "run", data_options={"skip_bad": True})
    with pytest.warns(BadImageWarning, match="trainA_1.png"):
        run = train(cfg, progress=False)
    assert ckpt.read_config(run / "checkpoint")["step"] == 3
    assert bad.read_bytes(), "the bad file itself is left alone"


def test_images_in_a_training_folders_subfolders_are_named_as_left_out(tmp_path, layouts, write_image, make_config):
    """trainA/sub/*.png was left out without a word (the reference's loader walks subfolders): one warning names
    the folder, how many images and which subfolders; hidden ones and subfolders without images are not named."""
    data = layouts.unpaired(tmp_path / "data")
    for name in ("2019/x.png", "2019/deeper/y.png", "2020/z.jpg", ".cache/w.png"):
        write_image(data / "trainA" / name, 24, 20)
    (data / "trainA" / "notes").mkdir()
    (data / "trainA" / "notes" / "readme.txt").write_text("no images here")
    with pytest.warns(UserWarning) as caught:
        run = train(make_config("cyclegan", data, tmp_path / "run"), progress=False)
    said = [str(w.message) for w in caught if "subfolders" in str(w.message)]
    assert said == [f"{data / 'trainA'}: 3 images in its subfolders (2019/, 2020/) left out: subfolders are not "
                    f"searched (move the images up into trainA/ to train on them)"], said
    assert ckpt.read_config(run / "checkpoint")["step"] == 3


def test_a_bad_training_image_says_how_to_leave_it_out(tmp_path, layouts, make_config):
    data = layouts.unpaired(tmp_path / "data")
    truncate(data / "trainA" / "trainA_1.png")
    with pytest.raises(ImageReadError, match=r"trainA_1.png: truncated or corrupt image .* \(--set data.skip_bad=true "
                                             r"leaves unreadable training images out, each with a warning\)$"):
        train(make_config("cyclegan", data, tmp_path / "run"), progress=False)


@pytest.mark.parametrize("name", ["a_bad.png", "z_bad.png"])  # among the sample grid's items, or read by a step
def test_an_image_that_fails_only_when_decoded_says_how_to_leave_it_out(tmp_path, layouts, write_image, make_config,
                                                                       name):
    """A file the up-front check passes (it does not decode a PNG) and that fails when decoded: its error lacked
    the data.skip_bad hint that every other unreadable training image gets (pix2pix, FUNIT and two-step alike)."""
    data = layouts.unpaired(tmp_path / "data", n=5)
    damage_png_pixels(write_image(data / "trainA" / name, 64, 64))
    with pytest.raises(ImageReadError, match=rf"{name}: truncated or corrupt image .* \(--set data.skip_bad=true "
                                             r"leaves unreadable training images out, each with a warning\)$"):
        train(make_config("cyclegan", data, tmp_path / "run"), progress=False)


def test_skip_bad_trains_without_a_truncated_jpeg(tmp_path, layouts, write_image, make_config):
    data = layouts.unpaired(tmp_path / "data")
    truncate(write_image(data / "trainA" / "a_bad.jpg", 64, 64))  # header intact, pixel data cut
    cfg = make_config("cyclegan", data, tmp_path / "run", data_options={"skip_bad": True})
    with pytest.warns(BadImageWarning, match="a_bad.jpg"):
        run = train(cfg, progress=False)
    assert ckpt.read_config(run / "checkpoint")["step"] == 3


def test_bad_file_found_by_a_worker_gives_one_line_error(tmp_path, layouts, write_image, make_config):
    data = layouts.side_by_side(tmp_path / "data", n=5)
    bad = data / "train" / "z_bad.png"  # index 5: not among the 4 sample-grid items
    damage_png_pixels(write_image(bad, 64, 32))  # it passes the check; its pixels do not decode
    cfg = make_config("pix2pix", data, tmp_path / "run", data_options={"num_workers": 2})
    with pytest.raises(ValueError) as info:
        train(cfg, progress=False)
    assert str(bad) in str(info.value)
    assert "\n" not in str(info.value), str(info.value)


def test_zero_batch_size_is_a_clear_error(tmp_path, cyclegan_data, make_config):
    with pytest.raises(ValueError, match="batch"):
        train(make_config("cyclegan", cyclegan_data, tmp_path / "run", batch_size=0), progress=False)


# ---------------------------------------------------------------------------
# Unusual but valid images


def test_an_odd_width_side_by_side_file_trains(tmp_path, layouts, write_image, make_config):
    """Split at its middle as the reference splits it (it was refused)."""
    data = layouts.side_by_side(tmp_path / "data")
    write_image(data / "train" / "pair_odd.png", 63, 32)
    run = train(make_config("pix2pix", data, tmp_path / "run"), progress=False)
    assert ckpt.read_config(ckpt.find_checkpoint(run))["step"] == 3


def test_one_pixel_image_trains(tmp_path, layouts, write_image, make_config):
    data = layouts.unpaired(tmp_path / "data")
    write_image(data / "trainA" / "dot.png", 1, 1)
    write_image(data / "trainB" / "dot.png", 1, 1)
    run = train(make_config("cyclegan", data, tmp_path / "run"), progress=False)
    weights = load_file(str(run / "checkpoint" / ckpt.WEIGHTS))
    assert all(torch.isfinite(w).all() for w in weights.values())


@pytest.mark.parametrize("size", [(1, 1), (4, 3)])
def test_translate_tiny_image(tmp_path, cyclegan_run, write_image, size):
    image = write_image(tmp_path / "inputs" / "tiny.png", *size)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(image), "--out", str(out),
                                      "--device", "cpu"])
    if result.exit_code == 0:  # translated, at its own size
        with Image.open(out / "tiny.png") as im:
            assert im.size == size
    else:  # or a clear error naming the file
        assert str(image) in str(result.exception)


def test_grayscale_16bit_and_rgba_images_train(tmp_path, layouts, write_image, make_config):
    data = layouts.unpaired(tmp_path / "data", n=1)
    files = [write_image(data / "trainA" / "gray.png", 24, 20, mode="L"),
             write_image(data / "trainA" / "deep.png", 20, 24, mode="I;16"),
             write_image(data / "trainB" / "alpha.png", 24, 20, mode="RGBA"),
             write_image(data / "trainB" / "gray.jpg", 17, 19, mode="L")]
    with Image.open(files[1]) as im:
        assert im.mode.startswith("I"), "the test file should really be 16-bit"
    run = train(make_config("cyclegan", data, tmp_path / "run"), progress=False)
    assert ckpt.read_config(run / "checkpoint")["step"] == 3
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 3 and all(v == v for v in stats[-1].values())  # no NaN


# ---------------------------------------------------------------------------
# Checkpoints


@pytest.mark.parametrize("change", [{"ngf": 16}, {"n_blocks": 2}])
def test_checkpoint_weights_not_matching_config(existing_run, change, monkeypatch, capsys):
    config_file = existing_run / "checkpoint" / ckpt.CONFIG
    saved = json.loads(config_file.read_text())
    saved["run"]["model"].update(change)
    config_file.write_text(json.dumps(saved))
    weights = existing_run / "checkpoint" / ckpt.WEIGHTS
    with pytest.raises(ckpt.CheckpointError) as info:
        pixmorph.load(existing_run)
    assert str(weights) in str(info.value)
    assert "\n" not in str(info.value)

    monkeypatch.setattr(sys, "argv", ["pixmorph", "translate", str(existing_run), str(config_file.parent),
                                      "--out", str(existing_run / "out")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(weights) in lines[0], lines


def test_resume_with_other_model_settings_names_the_settings(existing_run, shared_data, make_config):
    before = snapshot(existing_run)
    cfg = make_config("cyclegan", shared_data, existing_run, model={"ngf": 16}, max_steps=5, resume=True)
    with pytest.raises(ckpt.CheckpointError, match=r"model\.ngf=16 \(trained with \d+\)") as info:
        train(cfg, progress=False)
    assert str(existing_run / "checkpoint") in str(info.value) and "\n" not in str(info.value)
    assert_intact(existing_run, before)


def test_corrupt_weights_file(existing_run):
    weights = existing_run / "checkpoint" / ckpt.WEIGHTS
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ckpt.CheckpointError, match="unreadable weights") as info:
        pixmorph.load(existing_run)
    assert str(weights) in str(info.value)


def _edited_checkpoint_config(saved: dict, edit: str):
    if edit == "unknown option":
        saved["run"]["model"]["bogus"] = 1
    elif edit == "another method":
        saved["run"]["method"] = "pix2pix"
    else:  # valid JSON, not an object
        saved = [1, 2]
    return saved


@pytest.mark.parametrize("edit, says", [
    ("unknown option", "unknown model option(s): bogus; known: "),
    ("another method", "unknown model option(s): lambda_A, "),
    ("a list", "unreadable checkpoint config (a JSON list, not an object)"),
])
def test_a_checkpoint_config_that_does_not_build_names_the_file(existing_run, edit, says, monkeypatch, capsys):
    """A checkpoint config.json edited by hand (or from another pixmorph version) with an option this version
    lacks said `error: unknown model option(s): bogus; ...` without naming the file, and one holding a JSON list
    ended in a traceback (AttributeError: 'list' object has no attribute 'get'). Both now name the file."""
    config_file = existing_run / "checkpoint" / ckpt.CONFIG
    config_file.write_text(json.dumps(_edited_checkpoint_config(json.loads(config_file.read_text()), edit)))
    monkeypatch.setattr(sys, "argv", ["pixmorph", "translate", str(existing_run), str(existing_run / "checkpoint"),
                                      "--out", str(existing_run / "out")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {config_file}: {says}"), lines


def test_resume_from_weights_only_checkpoint_names_state_file(existing_run, shared_data, make_config):
    (existing_run / "checkpoint" / ckpt.STATE).unlink()
    cfg = make_config("cyclegan", shared_data, existing_run, max_steps=5, resume=True)
    with pytest.raises(ckpt.CheckpointError) as info:
        train(cfg, progress=False)
    assert str(existing_run / "checkpoint" / ckpt.STATE) in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_resume_from_an_unreadable_state_file_is_one_line_and_keeps_the_run(existing_run, shared_data, make_config,
                                                                           damage, monkeypatch, capsys):
    """A cut-short state.pt (a copy interrupted, a full disk outside pixmorph) ended `--resume` in torch's
    traceback (PytorchStreamReader failed reading zip archive ...), and an empty one in `aborted` with exit
    code 130 (click takes an EOFError for Ctrl-D). Both are one line naming the file; the run is untouched."""
    state = existing_run / "checkpoint" / ckpt.STATE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2] if damage == "truncated" else b"")
    before = snapshot(existing_run)
    cfg = make_config("cyclegan", shared_data, existing_run, max_steps=5, resume=True)
    with pytest.raises(ckpt.CheckpointError, match=r"unreadable training state .*: training cannot resume from it"):
        train(cfg, progress=False)
    monkeypatch.setattr(sys, "argv", ["pixmorph", "train", "cyclegan", "--out", str(existing_run), "--resume",
                                      "--steps", "5"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {state}: unreadable training state ("), lines
    assert_intact(existing_run, before)


def test_folder_that_is_not_a_checkpoint(tmp_path, write_image, monkeypatch, capsys):
    folder = tmp_path / "photos"
    write_image(folder / "a.png", 8, 8)
    with pytest.raises(ckpt.CheckpointError, match="not a pixmorph checkpoint") as info:
        pixmorph.load(folder)
    assert str(folder) in str(info.value)
    with pytest.raises(ckpt.CheckpointError, match="no such") as info:
        pixmorph.load(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)

    monkeypatch.setattr(sys, "argv", ["pixmorph", "translate", str(folder), str(folder), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(folder) in lines[0], lines
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------
# Divergence and a full disk while training


def test_nan_loss_raises_and_keeps_previous_checkpoint(existing_run, shared_data, make_config, monkeypatch):
    before = snapshot(existing_run)
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=1, poison_weights=True))
    cfg = make_config("cyclegan", shared_data, existing_run, max_steps=5, resume=True)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, progress=False)
    assert "nan" in str(info.value).lower()
    assert str(existing_run / "checkpoint") in str(info.value)
    assert_intact(existing_run, before)


@pytest.mark.parametrize("precision, advice", [("fp32", "(try a lower learning rate)"),
                                               ("bf16", "(try a lower learning rate, or train.precision=fp32)")])
def test_a_diverged_run_suggests_fp32_only_when_it_did_not_train_in_it(tmp_path, cyclegan_data, make_config,
                                                                       monkeypatch, precision, advice):
    """A run trained in fp32 was told to 'try ... train.precision=fp32' when a loss became NaN."""
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=1))
    cfg = make_config("cyclegan", cyclegan_data, tmp_path / "run", precision=precision, log_every=1)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, progress=False)
    assert str(info.value).endswith(advice), str(info.value)


def test_an_fp16_step_that_overflowed_is_skipped_not_a_divergence(tmp_path, cyclegan_data, make_config, monkeypatch):
    """In fp16 the loss scaler skips a step whose losses overflowed (and lowers its scale): FUNIT's loss-scaled R1
    gradient can overflow so at a high scale. One such step stopped the run as diverged; it is left out of the
    logged means. A loss that overflows in every step since the last log still stops it."""
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(calls_at={2}))
    run = train(make_config("cyclegan", cyclegan_data, tmp_path / "run", precision="fp16", max_steps=4, log_every=4),
                progress=False)
    logged = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert logged["step"] == 4 and all(math.isfinite(v) for v in logged.values())
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=1))
    cfg = make_config("cyclegan", cyclegan_data, tmp_path / "run2", precision="fp16", max_steps=4, log_every=2)
    with pytest.raises(TrainingDiverged, match=r"in every step since the last log"):
        train(cfg, progress=False)


def test_nan_weights_never_replace_a_good_checkpoint(tmp_path, cyclegan_data, make_config, monkeypatch):
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=2, poison_weights=True))
    cfg = make_config("cyclegan", cyclegan_data, tmp_path / "run", max_steps=4, log_every=4, checkpoint_every=1)
    with pytest.raises(TrainingDiverged):
        train(cfg, progress=False)
    weights = load_file(str(tmp_path / "run" / "checkpoint" / ckpt.WEIGHTS))
    assert all(torch.isfinite(w).all() for w in weights.values()), "the 'last good checkpoint' holds NaN weights"


def test_nan_before_first_checkpoint_does_not_point_to_a_missing_checkpoint(tmp_path, cyclegan_data, make_config,
                                                                            monkeypatch):
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=1))
    cfg = make_config("cyclegan", cyclegan_data, tmp_path / "run", log_every=1)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, progress=False)
    assert not (tmp_path / "run" / "checkpoint").exists()
    assert "last good checkpoint is in" not in str(info.value)



def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path, cyclegan_data, monkeypatch):
    """The loop writes config.json before the first step; a run folder this command created and that holds
    nothing more when the run fails is removed, so the next try needs no --overwrite."""
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=1))
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "cyclegan", "--data", str(cyclegan_data), "--out", str(run),
                                      "--device", "cpu", "--workers", "0", "--set", "train.log_every=1",
                                      "--set", "train.tensorboard=false", "--set", "model.ngf=4",
                                      "--set", "model.ndf=4", "--set", "model.n_blocks=1", "--load-size", "32",
                                      "--crop-size", "32"])
    assert isinstance(result.exception, TrainingDiverged), result.output
    assert not run.exists()


def test_a_new_run_that_diverges_before_its_first_checkpoint_keeps_its_logs(tmp_path, cyclegan_data, make_config,
                                                                            monkeypatch):
    """A run that logged its losses and then diverged keeps them (they show how it diverged) and says where;
    it was removed with the folder like a run that trained nothing."""
    monkeypatch.setattr(CycleGAN, "train_step", nan_train_step(from_call=3))
    run = tmp_path / "new" / "run"
    cfg = make_config("cyclegan", cyclegan_data, run, log_every=1, max_steps=5)
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, progress=False)
    assert f"the losses until then are in {run / 'stats.jsonl'}" in str(info.value)
    assert [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()] == [1, 2]

@pytest.mark.parametrize("bad", ["model", "data"])
def test_a_refused_start_leaves_no_new_folder_behind(tmp_path, cyclegan_data, make_config, bad):
    """The run lock creates the run folder (and its missing parents) before the config and the data are
    checked: a start refused there, from the CLI or from Python, removes what it created and leaves a folder
    that existed."""
    def refused(out: Path) -> None:
        cfg = make_config("cyclegan", tmp_path / "nowhere" if bad == "data" else cyclegan_data, out,
                          model={"ngf": 0} if bad == "model" else None)
        with pytest.raises((ValueError, FileNotFoundError)):
            train(cfg, progress=False)

    refused(tmp_path / "new" / "runs" / "run")
    assert not (tmp_path / "new").exists()
    (tmp_path / "existing").mkdir()
    refused(tmp_path / "existing" / "run")
    assert (tmp_path / "existing").is_dir() and not any((tmp_path / "existing").iterdir())
    refused(tmp_path / "existing")
    assert (tmp_path / "existing").is_dir()
    result = CliRunner().invoke(cli, ["train", "cyclegan", "--data", str(tmp_path / "nowhere"), "--out",
                                      str(tmp_path / "cli" / "run"), "--device", "cpu"])
    assert isinstance(result.exception, FileNotFoundError), result.output
    assert not (tmp_path / "cli").exists()


def test_a_new_run_in_a_folder_of_someone_elses_files_replaces_none_of_them(tmp_path, cyclegan_data, make_config):
    """`train --out FOLDER` where FOLDER held a config.json and a samples/ folder of the user's (another program's)
    replaced the config.json with the run's and, as the run failed before its first checkpoint, deleted samples/
    (its 'logs'). Such a folder is refused before anything is written; one of other files trains beside them."""
    folder = tmp_path / "mine"
    (folder / "samples").mkdir(parents=True)
    (folder / "samples" / "keep.txt").write_text("mine")
    (folder / "config.json").write_text('{"mine": 1}')
    with pytest.raises(FileExistsError, match=r"mine: its config.json, samples/ are not a pixmorph run's, and a run "
                                              r"there would replace or delete them: give another --out"):
        train(make_config("cyclegan", cyclegan_data, folder, overwrite=True), progress=False)
    assert (folder / "config.json").read_text() == '{"mine": 1}' and (folder / "samples" / "keep.txt").is_file()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "samples"]
    (folder / "config.json").unlink()  # a project's own samples/ alone: refused as well
    with pytest.raises(FileExistsError, match=r"mine: its samples/ is not a pixmorph run's, and a run there would "
                                              r"replace or delete it: give another --out \(or move it away\)$"):
        train(make_config("cyclegan", cyclegan_data, folder), progress=False)
    assert (folder / "samples" / "keep.txt").is_file()
    shutil.rmtree(folder / "samples")
    (folder / "stats.jsonl").write_text('{"step": 1}\n')  # a failed start's own log: cleared as before
    (folder / "notes.txt").write_text("mine")
    run = train(make_config("cyclegan", cyclegan_data, folder), progress=False)
    assert (run / "notes.txt").read_text() == "mine" and (run / "checkpoint").is_dir()
    log = run / "stats.jsonl"
    assert not log.is_file() or log.read_text() != '{"step": 1}\n'


def test_a_failed_starts_own_logs_are_not_taken_for_someone_elses(tmp_path):
    """A run that failed before its first checkpoint left logs that are its own: a stats.jsonl whose first line a
    full disk cut short, a samples/ folder in which a file browser left its .DS_Store or Thumbs.db. Both were
    refused as 'not a pixmorph run's', so the same command could not be run again there."""
    from pixmorph.train.foreign_files import refuse_another_programs_files

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "step_0000100.png").write_bytes(b"")
    for name in (".DS_Store", "._step_0000100.png", "Thumbs.db", "desktop.ini"):
        (run / "samples" / name).write_bytes(b"\0")
    for cut in ('{"step": 100, "loss_G": 0.7', '{"st'):
        (run / "stats.jsonl").write_text(cut)
        refuse_another_programs_files(run)
    (run / "stats.jsonl").write_text("epoch,loss\n1,0.5\n")  # someone else's file is still refused
    with pytest.raises(FileExistsError, match="its stats.jsonl is not a pixmorph run's"):  # (said "are")
        refuse_another_programs_files(run)


def test_a_start_refused_by_the_lock_leaves_the_running_trainings_folder_alone(tmp_path, cyclegan_data, make_config,
                                                                             monkeypatch):
    """A second training in a folder where one trains is refused by the run lock, and changes nothing there:
    it neither puts back the last run's outputs that the running start over set aside (RUN/.replaced), nor
    removes the new folder the running training created (it looked missing to the refused one a moment before)."""
    from contextlib import contextmanager

    from pixmorph.train import loop
    from pixmorph.train.run_lock import RunFolderInUse, run_lock

    run = tmp_path / "run"
    (run / ".replaced").mkdir(parents=True)
    (run / "checkpoint").mkdir()
    (run / "stats.jsonl").write_text("the running start over\n")
    (run / ".replaced" / "stats.jsonl").write_text("the last run\n")
    with run_lock(run), pytest.raises(RunFolderInUse):
        train(make_config("cyclegan", cyclegan_data, run, overwrite=True), progress=False)
    assert (run / "stats.jsonl").read_text() == "the running start over\n"
    assert (run / ".replaced" / "stats.jsonl").read_text() == "the last run\n"

    new, real_lock = tmp_path / "new" / "run", loop.run_lock

    @contextmanager
    def started_meanwhile(run_dir, take=True):  # the other training takes the lock just before this one
        with real_lock(run_dir):
            (run_dir / "config.json").write_text("{}")
            with real_lock(run_dir, take=take):
                yield

    monkeypatch.setattr(loop, "run_lock", started_meanwhile)
    with pytest.raises(RunFolderInUse):
        train(make_config("cyclegan", cyclegan_data, new), progress=False)
    assert (new / "config.json").is_file()


def _raise_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["save_file", "torch.save"])
def test_disk_full_during_checkpoint_keeps_previous(target, existing_run, shared_data, make_config, monkeypatch):
    before = snapshot(existing_run)
    if target == "save_file":
        monkeypatch.setattr(ckpt, "save_file", _raise_enospc)
    else:
        monkeypatch.setattr(ckpt.torch, "save", _raise_enospc)
    cfg = make_config("cyclegan", shared_data, existing_run, max_steps=5, resume=True)
    with pytest.raises(ckpt.CheckpointError) as info:
        train(cfg, progress=False)
    message = str(info.value)
    assert "No space left on device" in message
    assert "intact" in message and str(existing_run / "checkpoint") in message
    monkeypatch.undo()
    assert_intact(existing_run, before)


@pytest.mark.parametrize("fails_in", [ckpt.WEIGHTS, ckpt.STATE])
def test_real_write_failure_during_checkpoint(fails_in, existing_run):
    """A real failing write (the file size limit, EFBIG), in the weights or in the state file."""
    before = snapshot(existing_run)
    translator = pixmorph.load(existing_run)
    folder = existing_run / "checkpoint"
    config, state = ckpt.read_config(folder), ckpt.load_state(folder)
    weights_size = (folder / ckpt.WEIGHTS).stat().st_size
    assert (folder / ckpt.STATE).stat().st_size > weights_size + 8192
    limit = 4096 if fails_in == ckpt.WEIGHTS else weights_size + 4096
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))
    try:
        with pytest.raises(ckpt.CheckpointError, match="intact"):
            ckpt.save_checkpoint(folder, translator.method.nets, config, state)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert_intact(existing_run, before)


def test_a_failing_config_write_keeps_the_old_config(tmp_path):
    """RUN/config.json is rewritten on every resume: a full disk mid-write must not leave it cut short."""
    from pixmorph.config import save_json

    path = tmp_path / "config.json"
    save_json({"old": 1}, path)
    before = path.read_text()
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, old_limit[1]))
    try:
        with pytest.raises(OSError):
            save_json({"new": "x" * 10_000}, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_full_disk_while_translating_names_the_output_file(existing_run, tmp_path, write_image, monkeypatch, capsys):
    """A real failing write (the file size limit, EFBIG; a full disk's ENOSPC takes the same path) of a
    translation said `error: [Errno 27] File too large`, naming no file. Now the output file is named, the
    outputs written before it stay, and no temporary file is left beside them."""
    small = write_image(tmp_path / "in" / "a.png", 16, 16)
    write_image(tmp_path / "in" / "b.png", 256, 256, seed=1)  # noise: its PNG is far over the limit
    out = tmp_path / "out"
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32768, old_limit[1]))
    try:
        monkeypatch.setattr(sys, "argv", ["pixmorph", "translate", str(existing_run), str(small.parent), "--out",
                                          str(out), "--device", "cpu", "--batch-size", "1"])
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert exit_info.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "%|" not in line]
    assert lines == [f"error: {out / 'b.png'}: could not write it (File too large)"], lines
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_a_full_disk_while_logging_names_the_log_and_keeps_the_checkpoint(existing_run, shared_data, make_config,
                                                                          monkeypatch):
    """A full disk when a step's losses are appended to stats.jsonl stopped training with `[Errno 28] No space
    left on device`, naming no file; now stats.jsonl is named. The last checkpoint is intact."""
    from pixmorph.train import report

    def full_disk(path, mode="r", *args, **kwargs):
        if "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, mode, *args, **kwargs)

    before = snapshot(existing_run)
    monkeypatch.setattr(report, "open", full_disk, raising=False)
    cfg = make_config("cyclegan", shared_data, existing_run, max_steps=5, resume=True, log_every=1)
    with pytest.raises(OSError, match=rf"^{re.escape(str(existing_run / 'stats.jsonl'))}: could not write it "
                                      r"\(No space left on device\)$"):
        train(cfg, progress=False)
    monkeypatch.undo()
    assert_intact(existing_run, before)


def test_training_into_a_run_with_a_checkpoint_needs_resume_or_overwrite(tmp_path, layouts, make_config, existing_run):
    before = snapshot(existing_run)
    cfg = make_config("cyclegan", layouts.unpaired(tmp_path / "data"), existing_run)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, progress=False)
    assert_intact(existing_run, before)


def test_pix2pix_images_too_small_for_the_unet_say_which_setting():
    """The default U-Net 256 (8 halvings) on 32 px images: one line naming model.num_downs, not a norm error."""
    from pixmorph.methods.pix2pix import Pix2Pix, Pix2PixConfig

    method = Pix2Pix(Pix2PixConfig(ngf=8, ndf=8))
    batch = {"A": torch.zeros(1, 3, 32, 32), "B": torch.zeros(1, 3, 32, 32)}
    with pytest.raises(ValueError, match=r"32x32 .* set model.num_downs=5"):
        method.train_step(batch, lambda loss, name: None)


@pytest.mark.parametrize("method, layout", [("cyclegan", "unpaired"), ("pix2pix", "paired"), ("funit", "fewshot"),
                                            ("twostep", "classes")])
def test_data_that_is_a_file_is_said_to_be_a_file(method, layout, tmp_path, write_image, monkeypatch, capsys):
    """`--data photo.png` for a folder layout said 'no trainA/ or trainB/ folder: ... photo.png/trainA/'."""
    from conftest import run_main

    photo = write_image(tmp_path / "photo.png", 16, 16)
    code, _, err = run_main(monkeypatch, capsys, "train", method, "--data", photo, "--out", tmp_path / "run",
                            "--steps", 1, "--device", "cpu")
    assert code == 1
    assert err.splitlines()[-1] == (f"error: {photo}: a file, not a folder: --data takes the dataset's folder "
                                    f"({layout} layout)")
    assert not (tmp_path / "run").exists()


def test_missing_image_file_is_named_as_a_file(tmp_path):
    from pixmorph.data.resolve import resolve_root

    with pytest.raises(FileNotFoundError, match=r"nosuch\.png: no such file or folder$"):
        resolve_root(str(tmp_path / "nosuch.png"))
    with pytest.raises(FileNotFoundError, match="not a built-in task"):
        resolve_root(str(tmp_path / "nosuchdir"))


@pytest.mark.parametrize("method, crop, fits", [("cyclegan", 30, 32), ("pix2pix", 48, 64)])
def test_a_crop_the_generators_cannot_take_is_one_line_before_training(tmp_path, method, crop, fits):
    """A ResNet generator takes multiples of 4, a U-Net with 5 halvings multiples of 32: a crop of 30 or 48
    failed inside the network (tensor size mismatch) with a traceback."""
    from conftest import make_paired_folders

    data = make_paired_folders(tmp_path / "data")  # matching names: a paired and an unpaired layout both
    model = {"cyclegan": ["model.n_blocks=1"], "pix2pix": ["model.num_downs=5"]}[method]
    result = CliRunner().invoke(cli, ["train", method, "--data", str(data), "--out", str(tmp_path / "run"),
                                      "--device", "cpu", "--workers", "0", "--load-size", "64", "--crop-size",
                                      str(crop), "--set", "model.ngf=4", "--set", "model.ndf=4",
                                      *[a for m in model for a in ("--set", m)]])
    assert isinstance(result.exception, ValueError), result.output
    message = str(result.exception)
    assert "\n" not in message and f"data.crop_size={crop}" in message and f"--crop-size {fits}" in message
    assert not (tmp_path / "run").exists()


def test_pix2pix_crop_below_the_unet_gets_settings_that_fit_before_training(tmp_path, layouts, make_config):
    """A 60 px crop for a 6-level U-Net (64): it said num_downs=5 alone, after the progress bar had started,
    and 60 is no multiple of 32 either, which the next run then said. Now: both settings, before any step."""
    from pixmorph.methods.pix2pix import Pix2Pix, Pix2PixConfig

    method = Pix2Pix(Pix2PixConfig(ngf=8, ndf=8, num_downs=6))
    with pytest.raises(ValueError, match=r"--crop-size 64 or more .* new run .* set model.num_downs=5 and a crop size "
                                         r"that is a multiple of 32 \(--crop-size 32\)$"):
        method.check_training_size(60, 60)
    cfg = make_config("pix2pix", layouts.paired_folders(tmp_path / "data", size=64), tmp_path / "run")
    cfg.model.update(ngf=8, ndf=8, num_downs=6)
    cfg.data.load_size, cfg.data.crop_size = 64, 60
    with pytest.raises(ValueError, match="num_downs=5"):
        train(cfg, progress=False)
    assert not (tmp_path / "run" / "stats.jsonl").exists()


def test_translate_refuses_an_image_too_large_for_the_memory(tmp_path, cyclegan_run, monkeypatch, capsys):
    """A 256-megapixel-limit image the CPU cannot translate at full size was OOM-killed without a word; it is
    refused before any pixel is read, in one line with its size, the estimate and --size."""
    from conftest import run_main

    from pixmorph import fullsize_memory

    big = tmp_path / "in" / "big.png"
    big.parent.mkdir()
    Image.new("RGB", (2048, 1536), (200, 10, 10)).save(big)
    monkeypatch.setattr(fullsize_memory, "available_memory", lambda: 64 * 2**20)  # 64 MiB left on this machine
    code, _, err = run_main(monkeypatch, capsys, "translate", cyclegan_run, big, "--out", tmp_path / "out",
                            "--device", "cpu")
    line = err.strip()
    assert code == 1 and "\n" not in line and not (tmp_path / "out" / "big.png").exists(), err
    assert re.fullmatch(rf"error: {re.escape(str(big))}: 2048x1536 pixels: translating it at full size needs about "
                        r"\d+\.\d GiB of memory and 0\.1 GiB is available: give --size \d+ .*", line), line
    size = re.search(r"--size (\d+)", line).group(1)
    code, out, err = run_main(monkeypatch, capsys, "translate", cyclegan_run, big, "--out", tmp_path / "out",
                              "--device", "cpu", "--size", size)  # the way out it names fits
    assert code == 0 and Image.open(tmp_path / "out" / "big.png").size == (int(size),) * 2, err


def test_the_full_size_estimate_covers_the_reference_generators_peak():
    """The estimate per pixel of the reference CycleGAN generator (ngf 64, 9 blocks) is at least the ~908 B/px
    of peak RSS measured for a float32 pass at 1024x1024 (see pixmorph/fullsize_memory.py), and the available
    memory figure is read on this machine."""
    from pixmorph import fullsize_memory
    from pixmorph.config import RunConfig
    from pixmorph.train.loop import build_method

    generator = build_method(RunConfig.from_dict({"method": "cyclegan"})).translators()["AtoB"]
    fixed, per_pixel = fullsize_memory.bytes_per_pixel(generator, 3)
    assert 908 <= fullsize_memory.PEAK_FACTOR * per_pixel <= 2 * 908
    assert fullsize_memory.available_memory() > 0


def test_the_memory_check_counts_reading_a_huge_file_before_its_resize():
    """--size N shrinks the pass, not the read: each file is decoded at full size first, so a 16000x15000 photo
    (240 MP, under the read limit) took ~4 GiB whatever --size was, and the check passed it at --size 256."""
    from pixmorph import fullsize_memory
    from pixmorph.config import RunConfig
    from pixmorph.train.loop import build_method

    generator = build_method(RunConfig.from_dict({"method": "cyclegan"})).translators()["AtoB"]
    huge = [(Path("in/huge.jpg"), 16000, 15000)]
    with pytest.raises(fullsize_memory.TooLargeForMemory,
                       match=r"^in/huge.jpg: 16000x15000 pixels: reading it needs about 4\.0 GiB of memory \(before "
                             r"any --size resize\) and 2\.0 GiB is available: give a smaller copy of the file"):
        fullsize_memory.check_fits(huge, generator, 3, batch_size=1, size=256, available=2 * 2**30)
    fullsize_memory.check_fits(huge, generator, 3, batch_size=1, size=256, available=6 * 2**30)


def test_the_memory_check_counts_a_batch_of_images_of_one_size():
    """Eight 1024x1024 images translate in one batch: the check is for the batch, not one image, and names
    --batch-size; one image of them alone fits."""
    from pixmorph import fullsize_memory
    from pixmorph.config import RunConfig
    from pixmorph.train.loop import build_method

    generator = build_method(RunConfig.from_dict({"method": "cyclegan"})).translators()["AtoB"]
    files = [(Path(f"in/{i}.png"), 1024, 1024) for i in range(8)]
    one = 4 * 1100 * 1024 * 1024  # about what one 1024x1024 image needs (4 x ~270 B/px)
    fullsize_memory.check_fits(files[:1], generator, 3, batch_size=8, available=one)
    with pytest.raises(fullsize_memory.TooLargeForMemory,
                       match=r"^in/0.png: 1024x1024 pixels: translating it at full size in batches of 8 needs about "
                             r"\d+\.\d GiB of memory and 4\.3 GiB is "
                             r"available: give --size \d+ \(or a smaller --batch-size, or a "
                             r"machine with more memory\)$"):
        fullsize_memory.check_fits(files, generator, 3, batch_size=8, available=one)
    with pytest.raises(fullsize_memory.TooLargeForMemory, match=r"translating it at --size 4096 needs about"):
        fullsize_memory.check_fits(files[:1], generator, 3, batch_size=8, size=4096, available=one)
    many = [(Path(f"in/{i}.png"), 512 + i, 512) for i in range(400)]  # 400 sizes, one image of each: read
    fullsize_memory.check_fits(many, generator, 3, batch_size=1, available=2**30)  # one at a time, 0.3 GiB a pass


def test_the_memory_left_in_a_container_counts_its_page_cache_as_free(tmp_path, monkeypatch):
    """cgroup v2's memory.current counts the page cache of files read earlier (a dataset, the checkpoint), which
    the kernel gives back before an OOM kill: taken as used, a container that had read 7 GiB of files under an
    8 GiB limit was said to have under 1 GiB left, and translate refused images that fit."""
    from pixmorph import fullsize_memory

    gib = 2**30
    (tmp_path / "memory.max").write_text(f"{8 * gib}\n")
    (tmp_path / "memory.current").write_text(f"{7 * gib + gib // 2}\n")
    (tmp_path / "memory.stat").write_text(f"anon {gib // 2}\nfile {7 * gib}\nactive_file {gib}\n"
                                          f"inactive_file {6 * gib}\n")
    monkeypatch.setattr(fullsize_memory, "CGROUP", tmp_path)
    monkeypatch.setitem(sys.modules, "psutil", None)  # (the figure of the container's files alone)
    monkeypatch.setattr(fullsize_memory, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("none")),
                        raising=False)
    monkeypatch.setattr(fullsize_memory.os, "sysconf", lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert fullsize_memory.available_memory() == 8 * gib - (7 * gib + gib // 2) + 6 * gib

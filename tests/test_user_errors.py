"""Mistakes a new user makes get one line naming the option, file or folder, and a non-zero exit code:
mistyped --set and YAML values, a classifier given as a translation model, an ONNX file of another
checkpoint, --resume with another method, a built-in task given to `data get`, and the wrong number of
image channels through the Python API; and checkpoint weights readable like the other files."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import pixmorph
from pixmorph.cli import cli, main
from pixmorph.config import RunConfig, apply_overrides, build_method_config, save_json
from pixmorph.data.download import DownloadError
from pixmorph.methods import get_method
from pixmorph.methods.cyclegan import CycleGANConfig
from pixmorph.train import checkpoint as ckpt
from pixmorph.train.loop import build_method, checkpoint_config, train
from conftest import damage_png_pixels, run_main, save_image_file

TINY_CYCLEGAN = ["--batch-size", "2", "--workers", "0", "--load-size", "16", "--crop-size", "16", "--device", "cpu",
                 "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
                 "--set", "model.d_layers=1", "--set", "train.tensorboard=false"]
TINY_PIX2PIX_MODEL = {"ngf": 8, "ndf": 8, "num_downs": 5}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def main_error(monkeypatch, capsys, *args) -> tuple[int, list[str]]:
    """``main()`` (the console script) in-process: its exit code and the lines it wrote to stderr."""
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert "Traceback" not in err, err
    return code, err.strip().splitlines()


def one_line_error(monkeypatch, capsys, *args) -> str:
    code, lines = main_error(monkeypatch, capsys, *args)
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), (code, lines)
    return lines[0]


def make_checkpoint(run: Path, method: str = "pix2pix", model: dict | None = None, data: dict | None = None) -> Path:
    """A run folder with an untrained checkpoint (no training: instant) and its config.json."""
    base = TINY_PIX2PIX_MODEL if method == "pix2pix" else {}
    cfg = RunConfig.from_dict({"method": method, "model": {**base, **(model or {})},
                               "data": {"root": "fashion-edges", "load_size": 32, "crop_size": 32, **(data or {})},
                               "train": {"out": str(run), "tensorboard": False}})
    m = build_method(cfg)
    ckpt.save_checkpoint(run / "checkpoint", m.nets, checkpoint_config(cfg, 0), state=None)
    save_json(cfg.to_dict(), run / "config.json")
    return run


# ---------------------------------------------------------------------------
# 1. --set and YAML values of the wrong type


@pytest.mark.parametrize("override, expected", [
    ("model.lr=abc", "--set model.lr=abc: expected a number (float)"),
    ("train.batch_size=two", "--set train.batch_size=two: expected a whole number (int)"),
    ("train.tensorboard=maybe", "--set train.tensorboard=maybe: expected true or false (bool)"),
    ("data.load_size=big", "--set data.load_size=big: expected a whole number (int) or null"),
])
def test_mistyped_set_value_is_one_line_naming_it(tmp_path, cyclegan_data, monkeypatch, capsys, override, expected):
    run = tmp_path / "run"
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 1, *TINY_CYCLEGAN,
                    "--set", override)
    assert result.exit_code != 0 and isinstance(result.exception, ValueError), result.output
    assert str(result.exception) == expected
    assert not run.exists()
    dry = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--set", override, "--dry-run")
    assert dry.exit_code != 0 and str(dry.exception) == expected, dry.output
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", run,
                          "--set", override, "--dry-run")
    assert line == f"error: {expected}"


@pytest.mark.parametrize("args, expected, code", [
    (["--epochs", "inf"], "Invalid value for '--epochs': 'inf' is not a finite number", 2),  # OverflowError traceback
    (["--epochs", "nan"], "Invalid value for '--epochs': 'nan' is not a finite number", 2),  # 'cannot convert float NaN'
    (["--time-budget", "nan"], "Invalid value for '--time-budget': 'nan' is not a finite number", 2),
    (["--set", "model.lr=nan"], "--set model.lr=nan: give a finite number", 1),  # torch's 'Invalid learning rate: nan'
    (["--set", "model.lambda_A=inf"], "--set model.lambda_A=inf: give a finite number", 1),  # trained on, into NaN
])
def test_nan_and_infinite_numbers_are_refused_naming_the_option(tmp_path, cyclegan_data, monkeypatch, capsys, args,
                                                                 expected, code):
    out = tmp_path / "run"
    got, lines = main_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", out,
                            "--steps", "1", *TINY_CYCLEGAN, *args)
    assert got == code and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), lines
    assert not out.exists()


def test_a_finite_number_option_is_still_called_a_float(tmp_path):
    """--epochs became a FiniteFloat (a click FloatRange), and with it 'FLOAT RANGE' in --help and "'abc' is not
    a valid float range." for a mistyped value; it was, and is again, a float."""
    result = invoke("train", "cyclegan", "--out", tmp_path / "run", "--epochs", "abc", "--dry-run")
    assert result.exit_code == 2 and "'abc' is not a valid float." in result.output, result.output
    shown = invoke("train", "--help").output
    assert "--epochs FLOAT " in shown and "--time-budget FLOAT " in shown and "FLOAT RANGE" not in shown, shown


def test_a_negative_step_count_names_that_option_alone(tmp_path, monkeypatch, capsys):
    """--steps -3 said "train.batch_size=1, train.max_steps=-3, train.epochs=100, train.epochs_decay=100: need
    batch_size >= 1, the others >= 0", naming three options the user did not give. It then exited 1 (pixmorph's
    error) where a negative --time-budget or --workers is a usage error (2): all five are usage errors now, and a
    negative value from a config file (or --set) is still refused by the config's own check."""
    out = tmp_path / "run"
    for flag, shown in (("--steps", "-3"), ("--epochs", "-3.0"), ("--epochs-decay", "-3.0"), ("--time-budget", "-3.0"),
                        ("--workers", "-3")):
        code, lines = main_error(monkeypatch, capsys, "train", "cyclegan", "--out", out, flag, "-3", "--dry-run")
        assert (code, lines) == (2, [f"error: Invalid value for '{flag}': {shown} is not in the range x>=0. "
                                     f"(see `pixmorph train --help`)"])
    config = tmp_path / "my.yaml"
    for option, flag in (("max_steps", "--steps"), ("epochs", "--epochs"), ("epochs_decay", "--epochs-decay")):
        config.write_text(f"train: {{{option}: -3}}\n")
        assert one_line_error(monkeypatch, capsys, "train", "cyclegan", "--out", out, "--config", config,
                              "--dry-run") == f"error: train.{option}=-3 ({flag}): give 0 or more"
    assert not out.exists()


@pytest.mark.parametrize("args, expected", [
    (["--load-size", "72", "--crop-size", "100"], "data.crop_size=100 (--crop-size) is larger than "
     "data.load_size=72: crops are cut from the images resized to the load size; give --crop-size 72 or less, "
     "or --load-size 100 or more"),
    (["--crop-size", "300"], "data.crop_size=300 (--crop-size) is larger than data.load_size=286 (the method's; "
     "--load-size sets it): crops are cut"),
])
def test_a_crop_larger_than_the_load_size_is_refused_by_the_dry_run_naming_both_options(
        tmp_path, cyclegan_data, monkeypatch, capsys, args, expected):
    """--dry-run printed such a config as one that would run (the README: it refuses a bad setting as the run
    would), and the run then said "crop_size 100 is larger than load_size 72", naming neither option."""
    out = tmp_path / "run"
    for extra in (["--dry-run"], ["--steps", "1", *TINY_CYCLEGAN[:4]]):
        line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", out,
                              *extra, *args)
        assert line.startswith(f"error: {expected}"), line
    assert not out.exists()


def test_a_crop_that_is_no_multiple_of_the_stride_says_only_what_binds(tmp_path, layouts, monkeypatch, capsys):
    """pix2pix at --crop-size 48 with 5 downsamplings said "multiples of 32 and at least 1": the least side, 1,
    is no limit beside the stride."""
    data = layouts.side_by_side(tmp_path / "data")
    line = one_line_error(monkeypatch, capsys, "train", "pix2pix", "--data", data, "--out", tmp_path / "run",
                          "--steps", "1", "--load-size", "48", "--crop-size", "48", "--set", "model.num_downs=5",
                          "--set", "model.ngf=8", "--set", "model.ndf=8", "--workers", "0", "--device", "cpu")
    assert line == ("error: data.crop_size=48: the pix2pix generators take sides that are multiples of 32: use "
                    "--crop-size 64 (or a generator with fewer downsamplings)"), line


def test_nan_in_a_config_file_and_a_binary_config_file_name_the_file(tmp_path, monkeypatch, capsys):
    nan, binary = tmp_path / "nan.yaml", tmp_path / "photo.yaml"
    nan.write_text("model: {lr: .nan}\n")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")  # said only: 'utf-8' codec can't decode byte 0x89 ...
    assert one_line_error(monkeypatch, capsys, "train", "cyclegan", "--config", nan, "--dry-run") == \
        f"error: {nan}: model.lr=nan: give a finite number"
    assert one_line_error(monkeypatch, capsys, "train", "cyclegan", "--config", binary, "--dry-run") == \
        f"error: {binary}: not a YAML text file (invalid start byte at byte 0)"


def test_classifier_epochs_must_be_finite(tmp_path):
    result = invoke("classifier", "train", tmp_path, "--out", tmp_path / "clf", "--epochs", "inf")
    assert result.exit_code == 2 and "Invalid value for '--epochs': 'inf' is not a finite number" in result.output


def test_set_values_are_converted_to_the_option_type(tmp_path):
    result = invoke("train", "cyclegan", "--out", tmp_path / "run", "--dry-run", "--set", "model.lr=1",
                    "--set", "train.max_steps=1e3", "--set", "train.time_budget=null")
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.output)
    assert resolved["model"]["lr"] == 1  # an int for a float is fine
    assert resolved["train"]["max_steps"] == 1000 and isinstance(resolved["train"]["max_steps"], int)
    assert resolved["train"]["time_budget"] is None
    # the text typed, not YAML's boolean (not a norm the networks have: --dry-run refuses it, as the run does)
    assert apply_overrides({}, ["model.norm=off"], CycleGANConfig)["model"]["norm"] == "off"
    d = apply_overrides({}, ["model.stage=2", "model.class_names=[a, b]"], get_method("twostep").Config)
    assert d["model"] == {"stage": "2", "class_names": ["a", "b"]}


def test_mistyped_yaml_value_names_the_file(tmp_path, monkeypatch, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("model:\n  lr: abc\ntrain:\n  batch_size: 2\n")
    result = invoke("train", "cyclegan", "--config", config, "--out", tmp_path / "run", "--dry-run")
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)
    assert str(result.exception) == f"{config}: model.lr: expected a number (float), got 'abc'"
    config.write_text("train:\n  epochs: [1, 2]\n")
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--config", config, "--dry-run")
    assert line == f"error: {config}: train.epochs: expected a number (float), got [1, 2]"


def test_python_config_values_are_checked():
    with pytest.raises(ValueError, match=r"^train\.batch_size: expected a whole number \(int\), got 'two'$"):
        RunConfig.from_dict({"train": {"batch_size": "two"}})
    with pytest.raises(ValueError, match=r"^model\.lr: expected a number \(float\), got 'abc'$"):
        build_method_config(CycleGANConfig, {"lr": "abc"})
    with pytest.raises(ValueError, match=r"^model\.lr: expected a number"):
        build_method(RunConfig.from_dict({"method": "cyclegan", "model": {"lr": "abc"}}))
    assert build_method_config(CycleGANConfig, {"lr": 1, "ngf": 8.0}).ngf == 8


@pytest.mark.parametrize("override, expected", [
    ("train.log_every=0", "train.log_every=0: give a number of steps, 1 or more"),  # was a ZeroDivisionError
    ("train.sample_every=0", "train.sample_every=0: give a number of steps, 1 or more"),
    ("train.checkpoint_every=-1", "train.checkpoint_every=-1: give a number of steps, 1 or more"),
    ("train.threads=0", "train.threads=0: give 1 or more, or null for pixmorph's choice"),
    ("data.num_workers=-1", "data.num_workers=-1: give 0 (load in the training process) or more"),
    ("train.time_budget=-1", "train.time_budget=-1: give seconds, 0 or more (0: no limit)"),
])
def test_step_counts_below_one_are_refused_before_the_run(tmp_path, cyclegan_data, override, expected):
    run = tmp_path / "run"
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 1, *TINY_CYCLEGAN,
                    "--set", override)
    assert isinstance(result.exception, ValueError) and str(result.exception) == expected, result.output
    assert not run.exists()


def test_a_time_budget_of_0_in_the_config_is_no_limit_as_on_the_command_line():
    assert RunConfig.from_dict({"train": {"time_budget": 0}}).train.time_budget is None


# ---------------------------------------------------------------------------
# 2. a classifier checkpoint given where a translation model is wanted


@pytest.fixture
def classifier_checkpoint(tmp_path) -> Path:
    from pixmorph.metrics.classify import KIND

    folder = tmp_path / "classifiers" / "fashion"
    net = nn.ModuleDict({"classifier": nn.Conv2d(1, 2, 3)})
    ckpt.save_checkpoint(folder, net, {"kind": KIND, "domain": "fashion", "classifier": {"arch": "SmallCNN"}}, None)
    return folder


def test_a_classifier_config_without_its_network_names_the_file(classifier_checkpoint, monkeypatch, capsys):
    """A classifier's config.json without its 'classifier' section (edited by hand) ended in KeyError: 'classifier'."""
    config = classifier_checkpoint / ckpt.CONFIG
    config.write_text(json.dumps({"kind": json.loads(config.read_text())["kind"]}))
    line = one_line_error(monkeypatch, capsys, "classifier", "test", classifier_checkpoint, "--device", "cpu")
    assert line == f"error: {config}: not a complete classifier config (no 'classifier')"


def test_classifier_checkpoint_is_not_a_translation_model(classifier_checkpoint, tmp_path, write_image, monkeypatch,
                                                           capsys):
    expected = f"{classifier_checkpoint}: a classifier checkpoint (pixmorph classifier), not a translation model"
    with pytest.raises(ckpt.CheckpointError) as e:
        pixmorph.load(classifier_checkpoint)
    assert str(e.value).startswith(expected)
    image = write_image(tmp_path / "imgs" / "a.png", 16, 16)
    result = invoke("translate", classifier_checkpoint, image.parent, "--out", tmp_path / "o")
    assert result.exit_code != 0 and isinstance(result.exception, ckpt.CheckpointError)
    assert str(result.exception).startswith(expected)
    line = one_line_error(monkeypatch, capsys, "translate", classifier_checkpoint, image.parent, "--out", tmp_path / "o")
    assert line.startswith(f"error: {expected}")
    pytest.importorskip("onnxruntime")
    line = one_line_error(monkeypatch, capsys, "export", classifier_checkpoint, "--onnx", tmp_path / "x.onnx")
    assert line.startswith(f"error: {expected}")


# ---------------------------------------------------------------------------
# 3. an ONNX file of another checkpoint; --onnx without --runtime onnx


def test_onnx_file_of_another_checkpoint_is_refused(cyclegan_run, tmp_path, write_image, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    from pixmorph.export import export_onnx

    other = make_checkpoint(tmp_path / "gray", "cyclegan", {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 1,
                                                            "in_channels": 1, "out_channels": 1},
                            {"channels": 1, "load_size": 16, "crop_size": 16})
    export_onnx(other, tmp_path / "other.onnx")
    bad = tmp_path / "other.AtoB.onnx"
    with pytest.raises(ValueError) as e:
        pixmorph.load(cyclegan_run, onnx=tmp_path / "other.onnx")
    assert str(e.value).startswith(f"{bad}: exported from the cyclegan checkpoint") and "other weights" in str(e.value)
    write_image(tmp_path / "photos" / "a.png", 16, 16)
    line = one_line_error(monkeypatch, capsys, "translate", cyclegan_run, tmp_path / "photos", "--out", tmp_path / "o",
                          "--runtime", "onnx", "--onnx", tmp_path / "other.onnx")
    assert line.startswith(f"error: {bad}: exported from the cyclegan checkpoint")
    assert not (tmp_path / "o").exists()


def test_a_damaged_onnx_file_is_one_line_naming_it(cyclegan_run, tmp_path, write_image, monkeypatch, capsys):
    """A PREFIX.AtoB.onnx cut short or not ONNX at all ended in onnxruntime's traceback (InvalidProtobuf)."""
    pytest.importorskip("onnxruntime")
    damaged = tmp_path / "model.AtoB.onnx"
    damaged.write_text("not a model")
    photo = write_image(tmp_path / "photos" / "a.png", 16, 16)
    line = one_line_error(monkeypatch, capsys, "translate", cyclegan_run, photo, "--out", tmp_path / "o",
                          "--onnx", damaged)
    assert line == (f"error: {damaged}: not a readable ONNX file (Protobuf parsing failed.): export it again with "
                    f"`pixmorph export CKPT --onnx FILE`")
    assert not (tmp_path / "o").exists()


def test_onnx_option_implies_the_onnx_runtime(cyclegan_run, tmp_path, write_image, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    write_image(tmp_path / "photos" / "a.png", 16, 16)
    missing = tmp_path / "none.onnx"  # was ignored (PyTorch ran) without --runtime onnx
    result = invoke("translate", cyclegan_run, tmp_path / "photos", "--out", tmp_path / "o", "--onnx", missing)
    assert result.exit_code != 0 and isinstance(result.exception, FileNotFoundError)
    assert str(tmp_path / "none.AtoB.onnx") in str(result.exception)
    code, lines = main_error(monkeypatch, capsys, "translate", cyclegan_run, tmp_path / "photos", "--out",
                             tmp_path / "o", "--runtime", "torch", "--onnx", missing)
    assert code == 2 and lines == ["error: Invalid value for '--onnx': --onnx FILE runs ONNX Runtime; drop --runtime "
                                   "torch (or --onnx) (see `pixmorph translate --help`)"]  # one line, as the others
    with pytest.raises(ValueError, match="runtime='onnx'"):
        pixmorph.load(cyclegan_run, runtime="torch", onnx=missing)


def test_onnx_file_of_a_direction_the_checkpoint_lacks_names_its_export(tmp_path, write_image, monkeypatch, capsys):
    """`--onnx m.BtoA.onnx` for a pix2pix run (AtoB only) said `m.BtoA.AtoB.onnx: no such ONNX file`."""
    pytest.importorskip("onnxruntime")
    from pixmorph.export import export_onnx

    run = make_checkpoint(tmp_path / "p2p")
    export_onnx(run, tmp_path / "m.onnx")
    write_image(tmp_path / "photos" / "a.png", 32, 32)
    line = one_line_error(monkeypatch, capsys, "translate", run, tmp_path / "photos", "--out", tmp_path / "o",
                          "--onnx", tmp_path / "m.BtoA.onnx")
    assert line == (f"error: {tmp_path / 'm.BtoA.onnx'}: no such file; this pix2pix checkpoint translates AtoB, "
                    f"exported as {tmp_path / 'm.AtoB.onnx'}")
    export_onnx(run, tmp_path / "m.v2.onnx")  # a prefix with a dot in it is still a prefix
    assert pixmorph.load(run, onnx=tmp_path / "m.v2.onnx").runtime == "onnx"


@pytest.mark.parametrize("size", [0, -8])
def test_export_check_size_below_one_is_refused(tmp_path, monkeypatch, capsys, size):
    """--check-size 0 checked at the training size and -8 at the network's smallest size, without a word."""
    from pixmorph.export import export_onnx

    run = make_checkpoint(tmp_path / "p2p")
    code, lines = main_error(monkeypatch, capsys, "export", run, "--onnx", tmp_path / "m.onnx", "--check-size", size)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: Invalid value for '--check-size'"), lines
    with pytest.raises(ValueError, match=rf"^size={size}: give a check size of 1 pixel or more"):
        export_onnx(run, tmp_path / "m.onnx", size)
    assert not list(tmp_path.glob("*.onnx"))


def test_half_precision_with_the_onnx_runtime_is_refused(cyclegan_run, tmp_path, write_image, monkeypatch, capsys):
    """`--runtime onnx --precision bf16` (and load(runtime="onnx", precision="bf16")) ran float32 without a word,
    and the Translator said its precision was bf16."""
    write_image(tmp_path / "photos" / "a.png", 16, 16)
    for onnx in (["--runtime", "onnx"], ["--onnx", tmp_path / "none.onnx"]):
        code, lines = main_error(monkeypatch, capsys, "translate", cyclegan_run, tmp_path / "photos", "--out",
                                 tmp_path / "o", *onnx, "--precision", "bf16")
        assert code == 2 and lines == ["error: Invalid value for '--precision': bf16 is for the PyTorch runtime; ONNX "
                                       "Runtime runs the exported float32 files: drop --precision, or give --runtime "
                                       "torch (see `pixmorph translate --help`)"]
    assert not (tmp_path / "o").exists()
    for options in ({"precision": "fp16"}, {"channels_last": True}):
        with pytest.raises(ValueError, match=r"is for runtime='torch'; ONNX Runtime runs the exported float32 files"):
            pixmorph.load(cyclegan_run, runtime="onnx", **options)
    if pytest.importorskip("onnxruntime"):  # auto, which is bf16 on some CPUs, says what the files run
        onnx = pixmorph.load(cyclegan_run, runtime="onnx")
        assert (onnx.precision, onnx.channels_last) == ("fp32", False)


def test_a_run_folder_before_its_first_checkpoint_says_so(tmp_path, write_image, monkeypatch, capsys):
    """translate/serve/export of a run still training towards its first checkpoint (its config.json written)
    said it was 'not a pixmorph checkpoint ... give a run folder', which it is."""
    import shutil

    run = make_checkpoint(tmp_path / "run")
    shutil.rmtree(run / "checkpoint")
    write_image(tmp_path / "photos" / "a.png", 32, 32)
    expected = (f"{run}: a run folder without a checkpoint yet: its training saves one every train.checkpoint_every "
                f"steps, after train.checkpoint_minutes, and when it stops")
    line = one_line_error(monkeypatch, capsys, "translate", run, tmp_path / "photos", "--out", tmp_path / "o")
    assert line == f"error: {expected}"
    with pytest.raises(ckpt.CheckpointError, match=f"^{re.escape(expected)}$"):
        pixmorph.load(run)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"something": "else"}')
    with pytest.raises(ckpt.CheckpointError, match="not a pixmorph checkpoint"):
        pixmorph.load(tmp_path / "other")


# ---------------------------------------------------------------------------
# 4. --resume of a run of another method


def test_resume_with_another_method_names_both(tmp_path, monkeypatch, capsys):
    run = make_checkpoint(tmp_path / "p2p")
    result = invoke("train", "cyclegan", "--out", run, "--resume")
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)
    assert str(result.exception).startswith(f"{run} holds a pix2pix run; you asked for cyclegan")
    (run / "config.json").unlink()  # the checkpoint's config says it too
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--out", run, "--resume")
    assert line.startswith(f"error: {run} holds a pix2pix run; you asked for cyclegan")


@pytest.mark.parametrize("text, says", [("{oops", "unreadable run config (Expecting property name"),
                                         ("[1]", "not a run config (a JSON list, not an object)")])
def test_resume_of_a_run_whose_config_json_is_damaged_names_it(tmp_path, monkeypatch, capsys, text, says):
    """A run folder without a checkpoint whose config.json is damaged: `--resume` said only 'Expecting property
    name enclosed in double quotes ...', and a JSON list ended in an AttributeError traceback."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(text)
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--out", run, "--resume", "--steps", 1)
    assert line.startswith(f"error: {run / 'config.json'}: {says}"), line
    assert (run / "config.json").read_text() == text


def test_new_run_over_another_methods_run_names_both(tmp_path, cyclegan_data, monkeypatch, capsys, make_config):
    """`train cyclegan --out RUN` over a pix2pix run said to continue it with --resume, which then refused it."""
    run = make_checkpoint(tmp_path / "p2p")
    expected = (f"{run}: holds a pix2pix run already; you asked for cyclegan: give another --out, or start over with "
                f"--overwrite (that run goes on with `pixmorph train pix2pix --out {run} --resume`)")
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 1,
                          *TINY_CYCLEGAN)
    assert line == f"error: {expected}"
    with pytest.raises(FileExistsError, match=f"^{re.escape(expected)}$"):
        train(make_config("cyclegan", cyclegan_data, run, device="cpu"), progress=False)
    with pytest.raises(FileExistsError, match=r"holds a checkpoint already: continue it with --resume, or start over"):
        ckpt.refuse_to_start_over(run, "pix2pix")  # its own method: --resume is the way on


def test_python_resume_with_another_method_names_both(tmp_path, cyclegan_data, make_config):
    """train() from Python says what the CLI says (not that the weights do not match), and writes nothing."""
    run = make_checkpoint(tmp_path / "p2p")
    cfg = make_config("cyclegan", cyclegan_data, run, resume=True, device="cpu")
    expected = rf"^{re.escape(str(run))} holds a pix2pix run; you asked for cyclegan \(resume it with"
    with pytest.raises(ValueError, match=expected):
        train(cfg, progress=False)
    (run / "config.json").unlink()  # the checkpoint's config says it too
    files = sorted(run.rglob("*"))
    with pytest.raises(ValueError, match=expected):
        train(cfg, progress=False)
    assert sorted(run.rglob("*")) == files


# ---------------------------------------------------------------------------
# 5. weights.safetensors readable like config.json and state.pt


def test_checkpoint_weights_get_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        from pixmorph.images import FILE_MODE

        folder = ckpt.save_checkpoint(tmp_path / "checkpoint", nn.ModuleDict({"G": nn.Conv2d(1, 1, 1)}), {"step": 0},
                                      {"step": 0})
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        assert modes[ckpt.WEIGHTS] == modes[ckpt.CONFIG] == modes[ckpt.STATE] == FILE_MODE, modes
        assert FILE_MODE == 0o666 & ~os.umask(0o022)
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------
# 6. the Python API: images with the wrong number of channels


def test_translate_batch_with_wrong_channels_says_so(tmp_path):
    run = make_checkpoint(tmp_path / "gray", "pix2pix", {"in_channels": 1, "out_channels": 1}, {"channels": 1})
    translator = pixmorph.load(run, precision="fp32")
    with pytest.raises(ValueError, match=r"^this pix2pix model takes 1-channel images and got 3-channel ones"):
        translator.translate_batch(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="NCHW"):
        translator.translate_batch(torch.zeros(1, 32, 32))
    assert translator.translate_batch(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 32, 32)


# ---------------------------------------------------------------------------
# 7. `data get` of a built-in task


def test_data_get_of_a_builtin_task_says_it_needs_no_download(tmp_path, monkeypatch, capsys):
    from pixmorph.data import builtin

    assert builtin.TASKS
    for name in builtin.TASKS:
        result = invoke("data", "get", name, "--root", tmp_path / "datasets")
        assert result.exit_code != 0 and isinstance(result.exception, DownloadError)
        assert str(result.exception) == (f"{name} is built in and needs no download: train on it with --data {name} "
                                         f"(its files: pixmorph data path {name})")
    line = one_line_error(monkeypatch, capsys, "data", "get", "fashion-edges", "--root", tmp_path / "datasets")
    assert line == ("error: fashion-edges is built in and needs no download: train on it with --data fashion-edges "
                    "(its files: pixmorph data path fashion-edges)")
    assert not (tmp_path / "datasets").exists()


def test_data_path_prints_a_built_in_tasks_folder(tmp_path, monkeypatch):
    from pixmorph.data import builtin

    monkeypatch.setenv(builtin.ENV_CACHE, str(tmp_path))  # (not the user's cache: it may not hold glyphs yet)
    builtin.task_folder("glyphs").mkdir(parents=True)  # built before: the folder alone is printed
    monkeypatch.setattr(builtin, "prepare_task", lambda name: builtin.task_folder(name))
    result = invoke("data", "path", "glyphs")
    assert result.exit_code == 0 and result.output.strip() == str(builtin.task_folder("glyphs"))
    result = invoke("data", "path", "horse2zebra")
    assert result.exit_code == 2 and "'horse2zebra' is no built-in task" in result.output
    # a public dataset's name says where `data get` puts it (it said only the built-in names)
    assert "horse2zebra is a download, `pixmorph data get horse2zebra` puts it in datasets/horse2zebra;" in result.output
    result = invoke("data", "path", "pix2pix/facades")
    assert "`pixmorph data get pix2pix/facades` puts it in datasets/pix2pix/facades;" in result.output


def test_data_path_says_when_it_builds_a_task(tmp_path, monkeypatch, capsys):
    """The first `data path` of a task built it for about 10 s without a word; then it only prints the folder."""
    from pixmorph.data import builtin

    monkeypatch.setenv(builtin.ENV_CACHE, str(tmp_path))
    def prepare(name):
        builtin.task_folder(name).mkdir(parents=True, exist_ok=True)
        return builtin.task_folder(name)

    monkeypatch.setattr(builtin, "prepare_task", prepare)
    folder = builtin.task_folder("sneaker2boot")
    assert run_main(monkeypatch, capsys, "data", "path", "sneaker2boot") == (
        0, f"{folder}\n", "building sneaker2boot (once, about 10 s)\n")
    assert run_main(monkeypatch, capsys, "data", "path", "sneaker2boot") == (0, f"{folder}\n", "")


def test_deepsim_primitive_of_another_shape_is_refused(tmp_path, monkeypatch, capsys):
    """Another image's edges would be stretched over this one: one line naming the primitive."""
    from PIL import Image

    Image.new("RGB", (64, 32), (200, 100, 50)).save(tmp_path / "photo.png")
    Image.new("L", (32, 32), 255).save(tmp_path / "edges.png")
    line = one_line_error(monkeypatch, capsys, "train", "deepsim", "--image", tmp_path / "photo.png",
                          "--primitive", tmp_path / "edges.png", "--out", tmp_path / "run", "--steps", "1")
    assert "edges.png" in line and "aspect ratio 1.00 (32x32)" in line and "2.00 (64x32)" in line


@pytest.mark.parametrize("flags", [["--kind", "seg+edges"], ["--kind", "seg"], ["--edges", "auto", "--kind", "seg"]])
def test_deepsim_kind_seg_without_a_segmentation_names_the_flags_given(tmp_path, monkeypatch, capsys, flags):
    """--kind seg+edges (or seg) with no segmentation said 'primitive auto-edges makes an edge map, not kind
    'seg+edges'', a value the user never typed; it names --kind and the flag that gives the segmentation."""
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 100, 50)).save(tmp_path / "photo.png")
    code, lines = main_error(monkeypatch, capsys, "train", "deepsim", "--image", tmp_path / "photo.png", *flags,
                             "--out", tmp_path / "run", "--steps", "1")
    assert code != 0 and len(lines) == 1, (code, lines)
    line = lines[0]
    assert line.startswith(f"error: --kind {flags[-1]}: ") and "--seg FILE" in line and "auto-edges" not in line, line
    assert not (tmp_path / "run").exists()


def test_deepsim_translate_refuses_a_transparent_segmentation_as_edit_does(tmp_path, monkeypatch, capsys):
    """Training and `pixmorph edit` refuse a segmentation with transparent pixels (its alpha would be composited
    over white); `pixmorph translate` of the same file with the same seg model rendered it without a word."""
    import numpy as np
    from PIL import Image

    run = make_checkpoint(tmp_path / "run", "deepsim", model={"in_channels": 3, "ngf": 4, "ndf": 4,
                                                             "n_downsampling": 1, "n_blocks": 1})
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (200, 30, 30), 255
    rgba[:, 14:18, 3] = 0
    seg = tmp_path / "seg_with_alpha.png"
    Image.fromarray(rgba, "RGBA").save(seg)
    lines = {command: one_line_error(monkeypatch, capsys, command, run, seg, "--out", tmp_path / command,
                                     "--device", "cpu") for command in ("edit", "translate")}
    assert lines["translate"] == lines["edit"], lines
    assert lines["translate"].startswith(f"error: {seg}: a segmentation with transparent pixels"), lines
    assert not (tmp_path / "translate").exists()


def test_deepsim_translate_of_one_file_with_a_seg_edges_model_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    """A seg+edges model takes two files per image (pixmorph edit SEG --edges EDGES): translate drew its progress bar
    before refusing the file, and pixmorph.load(run)(file) refused it without naming it."""
    from PIL import Image

    run = make_checkpoint(tmp_path / "run", "deepsim", model={"in_channels": 4, "ngf": 4, "ndf": 4,
                                                             "n_downsampling": 1, "n_blocks": 1})
    seg = tmp_path / "seg.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(seg)
    line = one_line_error(monkeypatch, capsys, "translate", run, seg, "--out", tmp_path / "out", "--device", "cpu")
    assert line.startswith(f"error: {seg}: ") and "--edges EDGES" in line, line
    with pytest.raises(ValueError, match=rf"^{re.escape(str(seg))}: .*deepsim.render\(model, SEG, edges=EDGES\)"):
        pixmorph.load(run, device="cpu")(seg)


def test_a_run_stopped_by_its_time_budget_says_so(tmp_path, capsys):
    from test_train import tiny_run, write_unpaired

    run = train(tiny_run(write_unpaired(tmp_path / "data"), tmp_path / "run", 3, time_budget=1e-9), progress=False)
    out = capsys.readouterr().out
    assert "time budget of 0 s reached at step 1 of 3" in out and "--resume" in out
    assert ckpt.read_config(ckpt.find_checkpoint(run))["step"] == 1


def test_a_time_budget_bar_shows_its_estimated_end_from_the_first_step(tmp_path, capsys):
    """The bar's total was the schedule's (here 100,000 steps) until the first log; it is now the steps the
    budget is estimated to allow, from the first step on."""
    import dataclasses

    from test_train import tiny_run, write_unpaired

    cfg = tiny_run(write_unpaired(tmp_path / "data"), tmp_path / "run", 100_000, time_budget=1.5)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, log_every=10**6, sample_every=10**6,
                                                           epochs=10**5))
    train(cfg, progress=True)
    err = capsys.readouterr().err.replace("\r", "\n").splitlines()
    renders = [r for r in err if "step" in r and "/" in r]
    assert renders and not any("/100000 " in r or "/100000[" in r for r in renders), renders[:5]
    assert not any(re.search(r"\dstep", r) for r in err), err[:5]  # before an estimate: "0 step", not "0step"


def test_translate_skip_bad_with_nothing_readable_fails(tmp_path, monkeypatch, capsys):
    run = make_checkpoint(tmp_path / "run")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.png").write_text("not an image")
    code, lines = main_error(monkeypatch, capsys, "translate", run, tmp_path / "in", "--out", tmp_path / "out",
                             "--skip-bad")
    assert code == 1 and len(lines) == 2 and "notes.png" in lines[0]  # the skipped file's warning, then the error
    assert lines[1].startswith("error: no readable image") and "nothing to translate" in lines[1]


def test_out_that_is_the_inputs_folder_is_refused_before_an_input_is_replaced(tmp_path, write_image, monkeypatch,
                                                                              capsys):
    """`translate IN --out IN` (and eval's GENERATED given as its --input) wrote each x.png's translation over
    x.png itself: the user's images were gone, with exit code 0. Now one line names the input, before anything
    is written."""
    run = make_checkpoint(tmp_path / "run")
    images = tmp_path / "images"
    before = {f: f.read_bytes() for f in (write_image(images / n, 32, 32, seed=i) for i, n in enumerate(["a.png", "b.png"]))}
    line = one_line_error(monkeypatch, capsys, "translate", run, images, "--out", images, "--device", "cpu")
    assert line == (f"error: {images / 'a.png'}: its output would be written over it (--out {images} is its folder; "
                    f"each input is written as <name>.png): give another --out")
    line = one_line_error(monkeypatch, capsys, "eval", images, "--checkpoint", run, "--input", images, "--ref", images,
                          "--pairs", "--metrics", "psnr", "--device", "cpu")
    assert "a.png: its output would be written over it (GENERATED" in line
    assert {f: f.read_bytes() for f in before} == before and sorted(images.iterdir()) == sorted(before)
    jpeg = write_image(images / "c.jpg", 32, 32)  # written as c.png beside it: no input replaced
    code, _, _ = run_main(monkeypatch, capsys, "translate", run, jpeg, "--out", images, "--device", "cpu")
    assert code == 0 and (images / "c.png").is_file()


def test_a_file_name_with_a_line_break_stays_on_the_error_line(tmp_path, monkeypatch, capsys):
    """`error: in/bad` and `name.png: not an image file ...` came on two lines; the warning of --skip-bad too."""
    run = make_checkpoint(tmp_path / "run")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad\nname.png").write_text("not an image")
    line = one_line_error(monkeypatch, capsys, "translate", run, tmp_path / "in", "--out", tmp_path / "out")
    assert line == f"error: {tmp_path / 'in'}/bad\\nname.png: not an image file (unknown format or corrupt header)"
    code, lines = main_error(monkeypatch, capsys, "translate", run, tmp_path / "in", "--out", tmp_path / "out",
                             "--skip-bad")
    assert code == 1 and len(lines) == 2 and lines[0].startswith("warning: ") and "bad\\nname.png" in lines[0]


def test_device_names_are_checked_in_one_line():
    import torch

    from pixmorph.train.loop import resolve_device

    for name in ("gpu", "xpu", "meta", "privateuseone"):  # xpu and meta: a traceback from the first tensor moved
        with pytest.raises(ValueError, match=rf"^device '{name}': use auto, cpu, cuda, cuda:N or mps$"):
            resolve_device(name)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here: use the CPU \\(--device cpu"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():  # it was "PyTorch is not linked with support for mps devices"
        with pytest.raises(ValueError, match="Apple's Metal \\(MPS\\) is not available here: use the CPU"):
            resolve_device("mps")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("error, says", [
    (MemoryError(), "error: out of memory: use smaller images"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                  "to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)"), "error: out of memory ("),
    (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 20.00 GiB"),
     "error: out of GPU memory (CUDA out of memory): use smaller images"),
])
def test_running_out_of_memory_is_one_line(error, says, monkeypatch, capsys):
    import sys

    from pixmorph import cli

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "cli", fail)
    monkeypatch.setattr(sys, "argv", ["pixmorph", "translate"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith(says) and err.count("\n") == 1, err


def test_another_processes_running_out_of_memory_is_said_once(monkeypatch, capsys):
    """Under torchrun, the first process running out of memory while it drew a sample grid stopped the others
    with its error (train.distributed.failing_together), and each printed it again as its own."""
    import sys

    from pixmorph import cli

    def fail(*args, **kwargs):
        error = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 20.00 GiB")
        error.raised_by = 0
        raise error

    monkeypatch.setattr(cli, "cli", fail)
    monkeypatch.setattr(sys, "argv", ["pixmorph", "train"])
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err == "error: process 1: process 0 of this run stopped (its error is above)\n"


@pytest.mark.parametrize("rank, local_rank, said_already, says", [
    ("0", "0", False, True), ("1", "1", False, False),  # one machine: its first process says it for all
    ("8", "0", False, True),  # another machine's first process: its own log had no line (only rank 0 said it)
    ("8", "0", True, False),  # a process that said its own error in the steps (train/terminal.py): not twice
])
def test_under_torchrun_the_first_process_of_each_machine_says_an_error(rank, local_rank, said_already, says,
                                                                       monkeypatch, capsys):
    import sys

    import click

    from pixmorph import cli

    for error in (FileNotFoundError("runs/x/config.json: not there"), click.UsageError("--resume: no run")):
        def fail(*args, **kwargs):
            error.said = said_already
            raise error

        monkeypatch.setattr(cli, "cli", fail)
        monkeypatch.setattr(sys, "argv", ["pixmorph", "train"])
        for name, value in (("RANK", rank), ("LOCAL_RANK", local_rank), ("WORLD_SIZE", "16")):
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit):
            cli.main()
        err = capsys.readouterr().err
        assert (err.startswith("error: ") and err.count("\n") == 1) if says else err == "", (error, err)


def test_other_runtime_errors_still_raise(monkeypatch):
    from pixmorph import cli

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cli", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main()


def test_edit_of_another_methods_checkpoint_names_the_checkpoint(tmp_path, monkeypatch, capsys, write_image):
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "edges.png", 32, 32)
    line = one_line_error(monkeypatch, capsys, "edit", run, tmp_path / "edges.png", "--out", tmp_path / "out")
    assert "a pix2pix checkpoint; edit renders DeepSIM ones" in line and str(run) in line and "object at" not in line


def test_fewshot_with_another_methods_checkpoint_names_the_checkpoint(tmp_path, monkeypatch, capsys, write_image):
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "content.png", 32, 32)
    line = one_line_error(monkeypatch, capsys, "fewshot", run, "--content", tmp_path / "content.png",
                          "--class-images", tmp_path / "content.png", "--out", tmp_path / "out")
    assert "a pix2pix checkpoint; few-shot translation needs a funit one" in line and str(run) in line


def test_a_config_file_of_another_method_says_so(tmp_path, monkeypatch, capsys):
    """A pix2pix run's config.json given to `train cyclegan`: its method is named (it was 'model.dropout:
    expected a number'), and a YAML's `method:` is not silently ignored."""
    run = make_checkpoint(tmp_path / "run")
    code, lines = main_error(monkeypatch, capsys, "train", "cyclegan", "--config", run / "config.json", "--dry-run")
    assert code == 2 and any("is a pix2pix config (method: pix2pix)" in line for line in lines), lines
    (tmp_path / "t.yaml").write_text("method: pix2pix\nmodel: {ngf: 8}\n")
    code, lines = main_error(monkeypatch, capsys, "train", "cyclegan", "--config", tmp_path / "t.yaml", "--dry-run")
    assert code == 2 and any("pixmorph train pix2pix --config" in line for line in lines), lines


def test_deepsim_on_an_image_too_small_for_its_perceptual_loss_is_one_line(tmp_path, monkeypatch, capsys,
                                                                          write_image):
    """16 px (the --max-side minimum) with a generator that takes it: the perceptual network's pooling failed
    with a traceback; now one line with the size that works."""
    write_image(tmp_path / "photo.png", 48, 48)
    line = one_line_error(monkeypatch, capsys, "train", "deepsim", "--image", tmp_path / "photo.png",
                          "--max-side", "16", "--out", tmp_path / "run", "--steps", "2",
                          "--set", "model.n_downsampling=2", "--set", "model.ngf=4", "--set", "model.ndf=4",
                          "--set", "model.n_blocks=1")
    assert "16x16: the perceptual loss needs sides of at least 32" in line and "--max-side of 32" in line
    from pixmorph.methods.deepsim import DeepSIM, DeepSIMConfig

    with pytest.raises(ValueError, match="--max-side of 96 or more"):  # 3:1, as the car at --max-side 40 (48x16)
        DeepSIM(DeepSIMConfig(ngf=4, ndf=4, n_blocks=1)).check_training_size(48, 16)


def test_deepsim_on_an_image_smaller_than_the_networks_names_the_remedy_that_works(tmp_path, monkeypatch, capsys,
                                                                                 write_image):
    """A 7x5 photo (trained at 16x16) suggested --max-side, which only shrinks; a photo that --max-side shrank
    below the networks' least size names a larger --max-side."""
    write_image(tmp_path / "tiny.png", 7, 5)
    line = one_line_error(monkeypatch, capsys, "train", "deepsim", "--image", tmp_path / "tiny.png",
                          "--out", tmp_path / "run", "--steps", "1")
    assert "tiny.png: 7x5, trained at 16x16, smaller than the 32x32 the networks need: use a larger image," in line
    assert "--max-side" not in line
    write_image(tmp_path / "photo.png", 64, 48)
    line = one_line_error(monkeypatch, capsys, "train", "deepsim", "--image", tmp_path / "photo.png",
                          "--max-side", "16", "--out", tmp_path / "run", "--steps", "1")
    assert "photo.png: 64x48, trained at 16x16" in line and "use a larger --max-side," in line


def test_a_funit_discriminator_depth_it_cannot_build_names_the_option():
    from pixmorph.methods.funit import FunitConfig

    with pytest.raises(ValueError, match=r"model.n_res_blocks_dis=1: use an even number, 4 or more"):
        FunitConfig(n_res_blocks_dis=1)


def test_cyclegan_identity_loss_across_channel_counts_names_the_option():
    with pytest.raises(ValueError, match=r"^model.lambda_identity=0.5 needs as many input as output channels "
                                         r"\(model.in_channels=1, model.out_channels=3\): set model.lambda_identity=0$"):
        CycleGANConfig(in_channels=1, out_channels=3)
    assert CycleGANConfig(in_channels=1, out_channels=3, lambda_identity=0).out_channels == 3


def test_the_weights_file_of_a_checkpoint_loads_as_its_checkpoint(tmp_path):
    """`pixmorph translate run/checkpoint/weights.safetensors` said the file had no weights.safetensors."""
    run = make_checkpoint(tmp_path / "run")
    assert ckpt.find_checkpoint(run / "checkpoint" / "weights.safetensors") == run / "checkpoint"


def test_a_batch_larger_than_the_data_says_what_fits(tmp_path, layouts, make_config):
    """FUNIT and two-step start at batch 64: a small folder is told the batch size that fits."""
    data = layouts.unpaired(tmp_path / "data")
    with pytest.raises(ValueError, match=r"fewer than the batch size 64: give --batch-size \d+ or less"):
        train(make_config("cyclegan", data, tmp_path / "run", batch_size=64), progress=False)


def test_set_reaches_a_data_layouts_own_options():
    """`--set data.options.source_list=...` (the README's FUNIT list files) was refused as an unknown data option."""
    d = apply_overrides({"data": {"options": {"target_classes": ["a"]}}},
                        ["data.options.source_list=train.txt", "data.options.direction=BtoA"])
    assert d["data"]["options"] == {"target_classes": ["a"], "source_list": "train.txt", "direction": "BtoA"}
    assert RunConfig.from_dict({"method": "funit", **d}).data.options["source_list"] == "train.txt"


def test_class_balance_on_data_without_classes_is_refused_before_anything_goes(tmp_path, cyclegan_data, monkeypatch,
                                                                             capsys):
    """Starting over removes the last run's logs: a refusal found at the loader came after that."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.jsonl").write_text('{"step": 1}\n')
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", run,
                          "--steps", 1, *TINY_CYCLEGAN, "--set", "data.balance_classes=true")
    assert "data.balance_classes=true" in line and "no class labels" in line, line
    assert (run / "stats.jsonl").read_text() == '{"step": 1}\n'


def test_deepsim_given_data_says_it_takes_an_image(tmp_path, monkeypatch, capsys, write_image):
    write_image(tmp_path / "photo.png", 32, 32)
    code, lines = main_error(monkeypatch, capsys, "train", "deepsim", "--data", tmp_path / "photo.png", "--out",
                             tmp_path / "run")
    assert code == 2 and "--data" in lines[-1] and "--image IMG" in lines[-1], lines
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_is_one_line(tmp_path, cyclegan_data, monkeypatch, capsys):
    (tmp_path / "afile").write_text("keep me")
    for out in (tmp_path / "afile", tmp_path / "afile" / "run"):
        line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", out,
                              "--steps", 1, *TINY_CYCLEGAN)
        assert line == f"error: {tmp_path / 'afile'}: a file, not a folder: give --out (train.out) a folder for the run"
    assert (tmp_path / "afile").read_text() == "keep me"


def test_a_refused_out_is_said_before_the_config_is_completed(tmp_path, monkeypatch, capsys):
    """Two-step completes its config from its data (its classes), which prepares a built-in task: a run refused
    for its --out (a file, a folder holding a checkpoint) built the task first, or said a data error instead."""
    from pixmorph.data import builtin

    prepared = []
    monkeypatch.setattr(builtin, "prepare_task", lambda name, *a, **k: prepared.append(name) or tmp_path / "none")
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    for out, said in ((tmp_path / "afile", "a file, not a folder"), (tmp_path / "run", "holds a checkpoint already")):
        line = one_line_error(monkeypatch, capsys, "train", "twostep", "--data", "fashion-classes", "--out", out,
                              "--steps", 1)
        assert said in line, line
    assert prepared == []


def test_ctrl_c_while_the_command_starts_is_aborted_not_a_traceback(monkeypatch, capsys):
    """Ctrl-C in the first seconds of a command (torch being imported, before click runs) was a KeyboardInterrupt
    traceback through torch's import, exit code -2; later ones say `aborted`, exit code 130."""
    import builtins

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "pixmorph.errors":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    try:
        code, lines = main_error(monkeypatch, capsys, "train", "cyclegan", "--data", "fashion-edges")
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt came out of main()")
    assert (code, lines) == (130, ["aborted"])


def test_gray_data_for_rgb_networks_is_one_line_naming_the_settings(tmp_path, layouts, cyclegan_data, monkeypatch,
                                                                     capsys):
    """pix2pix and CycleGAN with --set data.channels=1 (and the networks' default 3 channels) failed in the first
    step with a RuntimeError traceback from a convolution; with the model's channels set too, they train."""
    data = layouts.side_by_side(tmp_path / "data")
    pix2pix = ["train", "pix2pix", "--data", data, "--steps", 1, "--batch-size", 1, "--workers", 0, "--load-size", 32,
               "--crop-size", 32, "--device", "cpu", *[f"--set=model.{k}={v}" for k, v in TINY_PIX2PIX_MODEL.items()],
               "--set", "train.tensorboard=false", "--set", "data.channels=1"]
    line = one_line_error(monkeypatch, capsys, *pix2pix, "--out", tmp_path / "p2p")
    assert line == ("error: data.channels=1: the pix2pix networks are built for model.in_channels=3, "
                    "model.out_channels=3: set both to 1 too (--set model.in_channels=1 --set model.out_channels=1)")
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "cg",
                          "--steps", 1, *TINY_CYCLEGAN, "--set", "data.channels=1")
    assert line.startswith("error: data.channels=1: the cyclegan networks are built for model.in_channels=3")
    line = one_line_error(monkeypatch, capsys, *pix2pix, "--out", tmp_path / "p2p", "--dry-run")  # printed the config
    assert line.startswith("error: data.channels=1: the pix2pix networks are built for model.in_channels=3")
    assert not (tmp_path / "p2p").exists() and not (tmp_path / "cg").exists()
    code, _ = main_error(monkeypatch, capsys, *pix2pix, "--out", tmp_path / "gray", "--set", "model.in_channels=1",
                         "--set", "model.out_channels=1")
    assert code == 0 and pixmorph.load(tmp_path / "gray")(str(data / "train" / "pair_0.png")).mode == "L"


def test_plain_images_as_side_by_side_pairs_get_a_one_line_warning(tmp_path, write_image, monkeypatch, capsys):
    for i in range(2):
        write_image(tmp_path / "data" / "train" / f"{i}.png", 32, 32)
    code, _, err = run_main(monkeypatch, capsys, "train", "pix2pix", "--data", tmp_path / "data", "--out",
                            tmp_path / "run", "--steps", "1", "--batch-size", "1", "--workers", "0", "--load-size",
                            "32", "--crop-size", "32", "--device", "cpu",
                            *[f"--set=model.{k}={v}" for k, v in TINY_PIX2PIX_MODEL.items()],
                            "--set", "train.tensorboard=false")
    warned = [line for line in err.splitlines() if "side-by-side" in line]
    assert code == 0, err
    assert warned == [f"warning: {tmp_path / 'data' / 'train' / '0.png'}: 32x32, not a side-by-side pair (A|B, twice "
                      f"as wide as high): its left and right halves are taken as A and B; separate images go in "
                      f"trainA/ and trainB/ with matching names"]


def test_eval_of_a_checkpoint_without_ref_names_side_by_side(tmp_path, write_image, monkeypatch, capsys):
    """`eval --checkpoint runs/facades --input facades/test` (A|B files, no --ref) said only 'give --ref': the
    option that scores against the files' other halves went unnamed. GENERATED alone keeps the plain line."""
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "pairs" / "0.png", 64, 32)
    code, _, err = run_main(monkeypatch, capsys, "eval", "--checkpoint", run, "--input", tmp_path / "pairs")
    assert code == 2 and err.splitlines() == [
        "error: give --ref, the folder of real images to score against (or, for A|B files such as pix2pix's test "
        "sets, --side-by-side: their other halves are the truth) (see `pixmorph eval --help`)"]
    code, _, err = run_main(monkeypatch, capsys, "eval", tmp_path / "pairs")
    assert code == 2 and err.splitlines() == [
        "error: give --ref, the folder of real images to score against (see `pixmorph eval --help`)"]


def test_eval_of_a_missing_generated_folder_is_a_usage_error_as_a_missing_ref_is(tmp_path, write_image, monkeypatch,
                                                                                capsys):
    """`eval nope --ref REAL` exited 1 ('nope: no such folder') while `eval OUT --ref nope` is a usage error (2)."""
    write_image(tmp_path / "real" / "0.png", 16, 16)
    code, _, err = run_main(monkeypatch, capsys, "eval", tmp_path / "nope", "--ref", tmp_path / "real")
    assert code == 2 and err.splitlines() == [
        f"error: Invalid value for '[GENERATED]': Directory '{tmp_path / 'nope'}' does not exist. "
        f"(see `pixmorph eval --help`)"], err
    code, _, err = run_main(monkeypatch, capsys, "eval", tmp_path / "real", "--ref", tmp_path / "nope")
    assert code == 2 and err.splitlines() == [
        f"error: Invalid value for '--ref': Directory '{tmp_path / 'nope'}' does not exist. "
        f"(see `pixmorph eval --help`)"], err


def test_eval_with_a_direction_the_checkpoint_lacks_is_one_line_without_file_names(tmp_path, write_image,
                                                                                    monkeypatch, capsys):
    """It was said per batch of files: 'a.png, b.png (+6 more): direction 'BtoA': ...', after loading every input."""
    run = make_checkpoint(tmp_path / "run")
    for i in range(3):
        write_image(tmp_path / "pairs" / f"{i}.png", 64, 32)
    line = one_line_error(monkeypatch, capsys, "eval", "--checkpoint", run, "--input", tmp_path / "pairs",
                          "--side-by-side", "--direction", "BtoA", "--metrics", "psnr", "--device", "cpu")
    assert line == "error: --direction BtoA: this pix2pix checkpoint has AtoB"


@pytest.mark.parametrize("command", ["translate", "eval"])
def test_plain_images_given_as_side_by_side_inputs_get_a_one_line_warning(tmp_path, write_image, monkeypatch, capsys,
                                                                           command):
    """`--side-by-side` on whole photos cut each in two and translated (and scored) its left half without a word."""
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "photos" / "0.png", 32, 32)
    out = ["--out", tmp_path / "out"] if command == "translate" else []
    args = [run, tmp_path / "photos"] if command == "translate" else ["--checkpoint", run, "--input", tmp_path / "photos",
                                                                      "--metrics", "psnr"]
    code, _, err = run_main(monkeypatch, capsys, command, *args, *out, "--side-by-side", "--device", "cpu")
    warned = [line for line in err.splitlines() if "side-by-side pair" in line]
    assert code == 0, err
    assert warned == [f"warning: {tmp_path / 'photos' / '0.png'}: 32x32, not a side-by-side pair (A|B, twice as wide "
                      f"as high): --side-by-side translates only its left half; drop --side-by-side to translate "
                      f"whole images"]


def test_pix2pix_dataset_files_translated_without_side_by_side_get_a_one_line_warning(tmp_path, write_image,
                                                                                      monkeypatch, capsys):
    """`translate` of a pix2pix model's A|B test files without --side-by-side translated each pair whole, without a
    word (serve warns of such an upload); plain images of another shape, or a CycleGAN model, say nothing."""
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "pairs" / "0.png", 64, 32)
    write_image(tmp_path / "photos" / "0.png", 32, 32)
    code, _, err = run_main(monkeypatch, capsys, "translate", run, tmp_path / "pairs", "--out", tmp_path / "out",
                            "--device", "cpu")
    warned = [line for line in err.splitlines() if "A|B pair" in line]
    assert code == 0, err
    assert warned == [f"warning: {tmp_path / 'pairs' / '0.png'}: 64x32, about twice as wide as high: if it is an A|B "
                      f"pair (a pix2pix dataset file), it is translated whole, as one image; --side-by-side translates "
                      f"its A half (the left one) alone"]
    for i, args in enumerate(([run, tmp_path / "photos"], [run, tmp_path / "pairs", "--side-by-side"],
                              [make_checkpoint(tmp_path / "cg", "cyclegan"), tmp_path / "pairs"])):
        code, _, err = run_main(monkeypatch, capsys, "translate", *args, "--out", tmp_path / f"out{i}",
                                "--device", "cpu", "--precision", "fp32")
        assert code == 0 and "A|B pair" not in err, err


def test_side_by_side_with_skip_bad_skips_an_unreadable_first_file(tmp_path, monkeypatch, capsys):
    """The side-by-side check read the first file whole: one that passes the up-front check and does not decode
    (which --skip-bad leaves out with a warning) stopped the translation of the readable files with an error."""
    from PIL import Image

    run = make_checkpoint(tmp_path / "run")
    (tmp_path / "pairs").mkdir()
    damage_png_pixels(save_image_file(tmp_path / "pairs" / "a_cut.png", 64, 32, seed=1))
    Image.new("RGB", (64, 32)).save(tmp_path / "pairs" / "b.png")
    code, lines = main_error(monkeypatch, capsys, "translate", run, tmp_path / "pairs", "--out", tmp_path / "out",
                             "--side-by-side", "--skip-bad", "--device", "cpu")
    assert code == 0 and any("skipped" in line and "a_cut.png" in line for line in lines), lines
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b.png"]


def test_side_by_side_inputs_translate_without_a_warning(tmp_path, write_image, monkeypatch, capsys):
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "pairs" / "0.png", 64, 32)
    monkeypatch.setattr(sys, "argv", ["pixmorph", "translate", str(run), str(tmp_path / "pairs"), "--out",
                                      str(tmp_path / "out"), "--side-by-side", "--device", "cpu"])
    main()
    assert "warning" not in capsys.readouterr().err


def test_data_options_a_layout_would_ignore_are_refused(tmp_path, cyclegan_data, monkeypatch, capsys):
    """pix2pix's `--set data.options.direction=BtoA` given to CycleGAN, or FUNIT's target_classes given to two-step,
    trained as if never given; now one line, before the run touches its folder."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.jsonl").write_text('{"step": 1}\n')
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", run,
                          "--steps", 1, *TINY_CYCLEGAN, "--set", "data.options.direction=BtoA")
    assert line == ("error: data.options {'direction': 'BtoA'}: the unpaired layout (trainA/, trainB/) takes no "
                    "options (to translate B -> A, train as it is and translate with --direction BtoA)")
    assert (run / "stats.jsonl").read_text() == '{"step": 1}\n'
    line = one_line_error(monkeypatch, capsys, "train", "twostep", "--data", cyclegan_data, "--out", tmp_path / "ts",
                          "--steps", 1, "--set", "data.options.target_classes=A")
    assert line == ("error: unknown data.options for the classes layout: target_classes; known: classes (a list of "
                    "the class folders to train on)")
    assert not (tmp_path / "ts").exists()


def test_translate_to_a_class_with_a_funit_checkpoint_points_to_fewshot(tmp_path, monkeypatch, capsys, write_image):
    run = make_checkpoint(tmp_path / "funit", "funit", {"nf": 8, "nf_mlp": 16, "latent_dim": 8, "nf_dis": 8,
                                                        "n_res_blocks": 1, "n_res_blocks_dis": 4})
    image = write_image(tmp_path / "in" / "a.png", 32, 32)
    line = one_line_error(monkeypatch, capsys, "translate", run, image, "--to", "meerkat", "--out", tmp_path / "o")
    assert line.startswith("error: --to meerkat: this funit checkpoint has no target classes (--to is for two-step "
                           "models); its directions: reconstruct (to render images as a class, give K images of it: "
                           "pixmorph fewshot CKPT --content IMG... --class-images"), line
    assert not (tmp_path / "o").exists()


def test_fewshot_out_that_is_the_class_images_folder_keeps_them(tmp_path, monkeypatch, capsys, write_image):
    """`fewshot --class-images cls/x.png --content in/x.png --out cls` wrote x.png's output over the class image
    x.png, with exit code 0 (content images in --out were refused, class images were not). Now one line names it."""
    run = make_checkpoint(tmp_path / "funit", "funit", {"nf": 8, "nf_mlp": 16, "latent_dim": 8, "nf_dis": 8,
                                                        "n_res_blocks": 1, "n_res_blocks_dis": 4})
    content = write_image(tmp_path / "in" / "x.png", 32, 32, seed=0)
    klass = write_image(tmp_path / "cls" / "x.png", 32, 32, seed=1)
    before = klass.read_bytes()
    line = one_line_error(monkeypatch, capsys, "fewshot", run, "--content", content, "--class-images", klass,
                          "--out", klass.parent, "--device", "cpu")
    assert line == (f"error: {klass}: {content}'s output would be written over this input (--out {klass.parent} is "
                    f"its folder; each input is written as <name>.png): give another --out")
    assert klass.read_bytes() == before
    # nothing written over, but the translations would have joined the class's images (K grew with them next time)
    other = write_image(tmp_path / "in" / "y.png", 32, 32, seed=2)
    line = one_line_error(monkeypatch, capsys, "fewshot", run, "--content", other, "--class-images", klass.parent,
                          "--out", klass.parent, "--device", "cpu")
    assert line == (f"error: --out {klass.parent} holds the class image {klass}: the translations would join the "
                    f"class's images (and be class images to the next --class-images {klass.parent}): give another --out")
    assert sorted(p.name for p in klass.parent.iterdir()) == ["x.png"]
    code, _, _ = run_main(monkeypatch, capsys, "fewshot", run, "--content", content, "--class-images", klass.parent,
                          "--out", tmp_path / "o", "--device", "cpu")
    assert code == 0 and (tmp_path / "o" / "x.png").is_file()


def test_translate_to_takes_the_class_as_its_direction_is_written(tmp_path, write_image):
    """`--to to:boot` (the direction's name, as the errors list it) was read as the class 'to:boot'."""
    run = make_checkpoint(tmp_path / "ts", "twostep", {"class_names": ["sneaker", "boot"], "image_size": 16, "ngf": 8,
                                                       "ndf": 8, "z_dim": 8, "embed_dim": 4, "step1_steps": 0},
                          {"load_size": 16, "crop_size": 16})
    image = write_image(tmp_path / "in" / "a.png", 16, 16)
    result = invoke("translate", run, image, "--to", "to:boot", "--out", tmp_path / "o", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "a.png").is_file()


def test_eval_of_pix2pix_dataset_files_without_side_by_side_gets_a_one_line_warning(tmp_path, write_image,
                                                                                    monkeypatch, capsys):
    """`eval --checkpoint RUN --input facades/test --ref facades/test --pairs` translated each A|B test file whole
    and scored it against the whole pair without a word, while `translate` of the same files warns."""
    run = make_checkpoint(tmp_path / "run")
    write_image(tmp_path / "pairs" / "0.png", 64, 32)
    write_image(tmp_path / "pairs" / "1.png", 64, 32, seed=1)
    code, _, err = run_main(monkeypatch, capsys, "eval", "--checkpoint", run, "--input", tmp_path / "pairs",
                            "--ref", tmp_path / "pairs", "--pairs", "--metrics", "psnr", "--device", "cpu")
    warned = [line for line in err.splitlines() if "A|B pair" in line]
    assert code == 0, err
    assert warned == [f"warning: {tmp_path / 'pairs' / '0.png'}: 64x32, about twice as wide as high: if it is an A|B "
                      f"pair (a pix2pix dataset file), it is translated whole, as one image; --side-by-side translates "
                      f"its A half (the left one) alone"]
    code, _, err = run_main(monkeypatch, capsys, "eval", "--checkpoint", run, "--input", tmp_path / "pairs",
                            "--side-by-side", "--metrics", "psnr", "--device", "cpu")
    assert code == 0 and "A|B pair" not in err, err


def test_a_crop_below_the_patchgan_discriminator_is_one_line(tmp_path, cyclegan_data, monkeypatch, capsys):
    """`--crop-size 16` with the paper's 3-layer PatchGAN (it needs 24 px) failed at the first step, under the bar,
    with torch's 'Expected more than 1 value per channel when training'; a resume at such a crop did too."""
    line = one_line_error(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run",
                          "--steps", 1, *TINY_CYCLEGAN, "--set", "model.d_layers=3")
    assert line == ("error: data.crop_size=16: the cyclegan discriminator takes sides of at least 24 "
                    "(model.d_layers=3): use --crop-size 24, or, starting a new run, fewer model.d_layers")
    assert not (tmp_path / "run").exists()
    code, _, err = run_main(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run",
                            "--steps", 1, *TINY_CYCLEGAN, "--set", "model.d_layers=2")  # 12 px: 16 trains
    assert code == 0, err


def test_translate_to_a_class_of_a_model_without_classes_says_it_as_given(tmp_path, write_image, monkeypatch, capsys):
    """`translate DEEPSIM_OR_CYCLEGAN_RUN x --to cat` said "direction 'to:cat': this ... checkpoint has AtoB, BtoA":
    a direction the user never typed. It names --to, and the directions there are."""
    run = make_checkpoint(tmp_path / "run", "cyclegan")
    image = write_image(tmp_path / "x.png", 32, 32)
    line = one_line_error(monkeypatch, capsys, "translate", run, image, "--out", tmp_path / "out", "--to", "cat",
                          "--device", "cpu")
    assert line == ("error: --to cat: this cyclegan checkpoint has no target classes (--to is for two-step models); "
                    "its directions: AtoB, BtoA")

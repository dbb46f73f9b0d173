"""End-to-end tests of the ``pixmorph`` command and ``pixmorph.load`` on real image files and tiny models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

import pixmorph
from pixmorph.cli import cli
from pixmorph.train import checkpoint as ckpt
from conftest import run_main

TINY_CYCLEGAN = ["--batch-size", "2", "--workers", "0", "--load-size", "16", "--crop-size", "16", "--device", "cpu",
                 "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
                 "--set", "model.d_layers=1", "--set", "train.tensorboard=false"]
TINY_PIX2PIX = ["--batch-size", "2", "--workers", "0", "--load-size", "32", "--crop-size", "32", "--device", "cpu",
                "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.num_downs=5",
                "--set", "train.tensorboard=false"]


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"


def png_sizes(folder: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for p in sorted(folder.glob("*.png")):
        with Image.open(p) as im:
            assert im.mode == "RGB", p
            sizes[p.name] = im.size
    return sizes


@pytest.fixture
def inputs(tmp_path, write_image) -> Path:
    """Odd sizes (exercise padding to the generator stride and cropping back), a square one, a grayscale JPEG."""
    folder = tmp_path / "inputs"
    write_image(folder / "odd.png", 37, 23, seed=1)
    write_image(folder / "square.png", 16, 16, seed=2)
    write_image(folder / "gray.jpg", 21, 30, mode="L", seed=3)
    return folder


INPUT_SIZES = {"odd.png": (37, 23), "square.png": (16, 16), "gray.png": (21, 30)}


# ---------------------------------------------------------------------------
# train


def test_train_cyclegan_writes_run_folder(tmp_path, cyclegan_data):
    run = tmp_path / "run"
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 3, *TINY_CYCLEGAN)
    ok(result)
    for name in ("weights.safetensors", "config.json", "state.pt"):
        assert (run / "checkpoint" / name).is_file(), name
    assert (run / "config.json").is_file()
    assert (run / "samples" / "index.html").is_file()
    grids = sorted((run / "samples").glob("*.png"))
    assert grids, "no sample grid written"
    with Image.open(grids[-1]) as im:
        im.load()
        assert im.width > 16 and im.height > 16
    assert grids[-1].name in (run / "samples" / "index.html").read_text()
    assert str(run / "checkpoint") in result.output

    saved = json.loads((run / "checkpoint" / "config.json").read_text())
    assert saved["step"] == 3
    assert saved["method"] == "cyclegan"
    assert saved["run"]["model"]["ngf"] == 8 and saved["run"]["model"]["n_blocks"] == 1
    assert saved["run"]["data"]["load_size"] == 16
    run_config = json.loads((run / "config.json").read_text())
    assert run_config["train"]["max_steps"] == 3
    weights = load_file(str(run / "checkpoint" / "weights.safetensors"))
    assert {k.split(".")[0] for k in weights} == {"G_A", "G_B", "D_A", "D_B"}
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_yaml_config_is_honoured_and_set_overrides_it(tmp_path, cyclegan_data):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"ngf": 16, "ndf": 16, "d_layers": 2},  # a PatchGAN that takes the 16 px crop
        "data": {"load_size": 20, "crop_size": 16, "flip": False},
        "train": {"batch_size": 4, "log_every": 7},
    }))
    run = tmp_path / "run"
    result = invoke("train", "cyclegan", "--config", config, "--data", cyclegan_data, "--out", run, "--steps", 11,
                    "--set", "model.ngf=8", "--set", "train.log_every=9", "--set", "train.lr_policy=constant",
                    "--dry-run")
    ok(result)
    resolved = json.loads(result.output)
    assert resolved["method"] == "cyclegan"
    assert resolved["model"]["ngf"] == 8  # --set beats the file
    assert resolved["model"]["ndf"] == 16  # the file beats the default
    assert resolved["model"]["n_blocks"] == 9  # defaults are filled in
    assert resolved["data"] == {**resolved["data"], "root": str(cyclegan_data), "load_size": 20, "crop_size": 16,
                                "flip": False}
    assert resolved["train"]["batch_size"] == 4
    assert resolved["train"]["log_every"] == 9
    assert resolved["train"]["lr_policy"] == "constant"
    assert resolved["train"]["max_steps"] == 11
    assert resolved["train"]["out"] == str(run)
    assert not run.exists(), "--dry-run must not create the run folder"


def test_dry_run_without_config_file_uses_defaults(tmp_path, cyclegan_data):
    def resolved(*args):
        result = invoke("train", *args, "--out", tmp_path / "run", "--dry-run")
        ok(result)
        return json.loads(result.output)

    with_data = resolved("pix2pix", "--data", cyclegan_data)
    assert with_data["method"] == "pix2pix"
    assert with_data["model"]["num_downs"] == 8 and with_data["model"]["norm"] == "batch"


def test_each_method_without_data_trains_on_its_own_builtin_task(tmp_path, cyclegan_data):
    """Without --data every method took fashion-edges, CycleGAN's unpaired task: pix2pix failed on it ('3000 of 3000
    A images unmatched'), FUNIT trained on two 'classes' A and B, two-step read gray images as RGB."""
    def resolved(*args):
        result = invoke("train", *args, "--out", tmp_path / "run", "--dry-run")
        ok(result)
        d = json.loads(result.output)
        return d["data"]["root"], d["data"]["channels"], d["model"].get("num_downs")

    assert resolved("cyclegan") == ("fashion-edges", 3, None)
    assert resolved("pix2pix") == ("fashion-edges-paired", 3, 5)  # its 32 px pairs: a U-Net of 5 halvings
    assert resolved("pix2pix", "--data", "fashion-edges-paired") == ("fashion-edges-paired", 3, 5)  # named: the same
    assert resolved("pix2pix", "--set", "model.num_downs=6", "--load-size", 64, "--crop-size", 64) == (
        "fashion-edges-paired", 3, 6)  # (6 halvings need 64 px: at its 32, --dry-run refuses it, as the run does)
    assert resolved("funit", "--steps", 1)[:2] == ("glyphs", 1)
    assert resolved("twostep")[:2] == ("fashion-classes", 1)
    assert resolved("twostep", "--data", "fashion-classes")[:2] == ("fashion-classes", 1)
    assert resolved("twostep", "--data", cyclegan_data)[:2] == (str(cyclegan_data), 3)  # other data: nothing added
    assert resolved("pix2pix", "--data", cyclegan_data)[2] == 8


def test_funit_on_its_glyphs_task_takes_networks_sized_to_them(tmp_path):
    """FUNIT on glyphs with the paper's networks (nf 64, a 10-block discriminator, batch 64: built for 128-px
    animal faces) took 86 s a step on 2 CPU cores, so a user's `train funit --steps 20` ran half an hour. Without
    --data, or with --data glyphs, it takes the networks the README's glyph figures use; a setting given wins."""
    def resolved(*args):
        result = invoke("train", "funit", *args, "--out", tmp_path / "run", "--dry-run")
        ok(result)
        d = json.loads(result.output)
        return d["model"]["nf"], d["model"]["n_res_blocks_dis"], d["model"]["channels"], d["train"]["batch_size"], \
            d["train"]["max_steps"]

    assert resolved() == resolved("--data", "glyphs") == (16, 4, 1, 16, 3300)
    assert resolved("--set", "model.nf=32", "--batch-size", "8", "--steps", "10") == (32, 4, 1, 8, 10)


def test_dry_run_prints_the_image_sizes_that_training_uses(tmp_path, cyclegan_data):
    """Not null where the data decides: a built-in task's own size (without preparing the task), the reference
    286 -> 256 for a folder, a given size over either."""
    def sizes(*args):
        result = invoke("train", *args, "--out", tmp_path / "run", "--dry-run")
        ok(result)
        data = json.loads(result.output)["data"]
        return data["load_size"], data["crop_size"]

    assert sizes("cyclegan", "--data", "fashion-edges") == (32, 32)
    assert sizes("pix2pix", "--data", cyclegan_data) == (286, 256)
    assert sizes("cyclegan", "--data", "fashion-edges", "--load-size", 40) == (40, 32)
    assert not (tmp_path / "run").exists()


def test_dry_run_prints_the_flip_that_training_uses(tmp_path):
    """`train funit --data glyphs --dry-run` printed data.flip: true, though the task's fewshot.json turns flipping
    off (a mirrored glyph is another character) and the run does not flip. A folder's fewshot.json, and
    data.options.flip over it, decide the same way; data.flip false stays false."""
    def flip(*args):
        result = invoke("train", "funit", *args, "--out", tmp_path / "run", "--dry-run")
        ok(result)
        return json.loads(result.output)["data"]["flip"]

    assert flip("--data", "glyphs") is False
    folder = tmp_path / "classes"
    (folder / "a").mkdir(parents=True)
    assert flip("--data", folder) is True
    (folder / "fewshot.json").write_text(json.dumps({"flip": False}))
    assert flip("--data", folder) is False
    assert flip("--data", folder, "--set", "data.options.flip=true") is True
    assert flip("--data", folder, "--set", "data.flip=false", "--set", "data.options.flip=true") is False
    assert not (tmp_path / "run").exists()


def test_each_method_starts_from_its_papers_train_settings(tmp_path, cyclegan_data):
    """FUNIT trains as its animal-faces config (batch 64, constant rate, 100k steps, 140 -> 128 px) where the
    config does not say otherwise; it had CycleGAN's batch 1, decay to 0 and 286 -> 256."""
    from pixmorph.config import RunConfig

    def resolved(*args):
        result = invoke("train", *args, "--out", tmp_path / "run", "--dry-run")
        ok(result)
        d = json.loads(result.output)
        return {**{k: d["train"][k] for k in ("batch_size", "lr_policy", "max_steps", "epochs_decay")},
                "sizes": (d["data"]["load_size"], d["data"]["crop_size"])}

    assert resolved("funit", "--data", cyclegan_data) == {"batch_size": 64, "lr_policy": "constant",
                                                          "max_steps": 100_000, "epochs_decay": 0, "sizes": (140, 128)}
    assert resolved("funit", "--data", "glyphs", "--batch-size", 8, "--steps", 50)["sizes"] == (32, 32)
    given = resolved("funit", "--data", "glyphs", "--batch-size", 8, "--steps", 50, "--set", "train.lr_policy=linear")
    assert (given["batch_size"], given["max_steps"], given["lr_policy"]) == (8, 50, "linear")
    assert resolved("cyclegan", "--data", cyclegan_data) == {"batch_size": 1, "lr_policy": "linear", "max_steps": None,
                                                             "epochs_decay": 100, "sizes": (286, 256)}
    assert RunConfig.from_dict({"method": "funit", "train": {"batch_size": 2}}).train.lr_policy == "constant"
    assert resolved("funit", "--data", "glyphs", "--epochs", 5, "--epochs-decay", 5)["lr_policy"] == "linear"


def test_set_unknown_model_option_fails_naming_it(tmp_path, cyclegan_data):
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run",
                    "--set", "model.nonsense=1", "--dry-run")
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)
    assert "nonsense" in str(result.exception)
    assert "ngf" in str(result.exception)  # lists what is known
    assert not (tmp_path / "run").exists()


def test_set_unknown_model_option_one_line_error_from_main(tmp_path, cyclegan_data, monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "train", "cyclegan", "--data", cyclegan_data,
                              "--out", tmp_path / "run", "--set", "model.nonsense=1")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "nonsense" in lines[0], err


@pytest.mark.parametrize("override, expected", [
    ("model.ngf", "model.ngf"),  # no '='
    ("ngf=8", "ngf=8"),  # no section
    ("optim.lr=1", "section must be"),
    ("train.nonsense=1", "nonsense"),
    ("data.nonsense=1", "nonsense"),
])
def test_malformed_or_unknown_overrides(tmp_path, override, expected):
    result = invoke("train", "cyclegan", "--out", tmp_path / "run", "--set", override, "--dry-run")
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)
    assert expected in str(result.exception)


def test_yaml_config_with_empty_sections(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model:\n  # ngf: 32\ndata:\ntrain:\n")
    result = invoke("train", "cyclegan", "--config", config, "--out", tmp_path / "run", "--steps", 3,
                    "--set", "model.ngf=8", "--dry-run")
    ok(result)
    resolved = json.loads(result.output)
    assert resolved["model"]["ngf"] == 8 and resolved["train"]["max_steps"] == 3


def test_config_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = invoke("train", "cyclegan", "--config", missing, "--dry-run")
    assert isinstance(result.exception, FileNotFoundError) and str(missing) in str(result.exception)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    result = invoke("train", "cyclegan", "--config", bad, "--dry-run")
    assert isinstance(result.exception, ValueError) and str(bad) in str(result.exception)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    result = invoke("train", "cyclegan", "--config", not_mapping, "--dry-run")
    assert isinstance(result.exception, ValueError) and str(not_mapping) in str(result.exception)
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  ngff: 8\n")
    result = invoke("train", "cyclegan", "--config", typo, "--dry-run")
    assert str(result.exception).startswith(f"{typo}: unknown model option(s): ngff; known: ")
    section_typo = tmp_path / "section.yaml"  # a mistyped section was refused without naming the file
    section_typo.write_text("modle:\n  ngf: 8\n")
    result = invoke("train", "cyclegan", "--config", section_typo, "--dry-run")
    assert str(result.exception) == f"{section_typo}: unknown config section(s): modle (use method, model, data, train)"


def test_resume_continues_from_checkpoint_step(tmp_path, cyclegan_data):
    run = tmp_path / "run"
    ok(invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 3, *TINY_CYCLEGAN))
    assert ckpt.read_config(run / "checkpoint")["step"] == 3
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 5, "--resume", *TINY_CYCLEGAN)
    ok(result)
    assert "at step 3" in result.output
    assert ckpt.read_config(run / "checkpoint")["step"] == 5
    assert ckpt.load_state(run / "checkpoint")["step"] == 5
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [3, 5], "the resumed run must count on from step 3, not start again"
    assert not list(tmp_path.glob("run/.checkpoint*")), "no temporary or old checkpoint folder left behind"


def test_a_config_file_given_again_on_resume_changes_only_what_it_names(tmp_path, cyclegan_data):
    """The YAML's sections are laid over the run's key by key: its data: section without root kept the run's
    root (it had switched the run to the built-in fashion-edges), its model: section the run's --set values."""
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump({"data": {"flip": False}, "train": {"log_every": 7}}))
    run = tmp_path / "run"
    ok(invoke("train", "cyclegan", "--config", config, "--data", cyclegan_data, "--out", run, "--steps", 1,
              *TINY_CYCLEGAN))
    config.write_text(yaml.safe_dump({"data": {"flip": False}, "train": {"log_every": 7, "time_budget": 60}}))
    result = invoke("train", "cyclegan", "--config", config, "--out", run, "--resume", "--steps", 2, "--dry-run")
    ok(result)
    resolved = json.loads(result.output)
    assert resolved["train"]["time_budget"] == 60  # given again in the file: this invocation's limit
    assert resolved["data"]["root"] == str(cyclegan_data)
    assert resolved["data"]["crop_size"] == 16 and resolved["data"]["flip"] is False
    assert resolved["model"]["ngf"] == 8 and resolved["train"]["log_every"] == 7


def test_a_learning_rate_set_on_resume_is_the_one_that_trains(tmp_path, cyclegan_data):
    """The checkpoint's optimizer state used to put the saved rate back while config.json claimed the new one."""
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN, "--set", "train.lr_policy=constant"]
    ok(invoke(*args, "--steps", 2))
    result = invoke(*args, "--steps", 3, "--resume", "--set", "model.lr=5e-5", "--set", "model.beta1=0.9")
    ok(result)
    assert "changed optimizer settings: G lr 0.0002 -> 5e-05, G betas (0.5, 0.999) -> (0.9, 0.999), D lr" in result.output
    for group in (g for opt in ckpt.load_state(run / "checkpoint")["optimizers"].values() for g in opt["param_groups"]):
        assert group["lr"] == group["initial_lr"] == 5e-5 and tuple(group["betas"]) == (0.9, 0.999)
    again = invoke(*args, "--steps", 4, "--resume", "--set", "model.lr=5e-5", "--set", "model.beta1=0.9")
    ok(again)
    assert "changed optimizer settings" not in again.output


def test_resume_at_another_crop_size_trains_and_a_failed_resume_keeps_the_config(tmp_path, cyclegan_data,
                                                                                  monkeypatch):
    """CycleGAN's pool of fakes held the old size (a traceback in the pool, and config.json was already rewritten,
    so every later resume failed the same way)."""
    from pixmorph.methods.cyclegan import CycleGAN

    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN]
    ok(invoke(*args, "--steps", 2))
    original = CycleGAN.train_step
    monkeypatch.setattr(CycleGAN, "train_step", lambda self, batch, update: 1 / 0)
    assert invoke(*args, "--steps", 3, "--resume", "--crop-size", 12).exit_code != 0
    assert json.loads((run / "config.json").read_text())["data"]["crop_size"] == 16  # as its checkpoint
    monkeypatch.setattr(CycleGAN, "train_step", original)
    result = invoke(*args, "--steps", 3, "--resume", "--crop-size", 12)
    ok(result)
    assert json.loads((run / "config.json").read_text())["data"]["crop_size"] == 12
    assert "resumed with changed data settings: crop_size 16 -> 12" in result.output  # (it said nothing)
    again = invoke(*args, "--steps", 4, "--resume", "--crop-size", 12)
    ok(again)
    assert "changed data settings" not in again.output


def test_a_resume_after_a_kill_logs_each_step_once(tmp_path, cyclegan_data):
    """Lines of steps after the checkpoint (a run killed -9 after it) are dropped when the resume trains them again."""
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN, "--set", "train.log_every=1"]
    ok(invoke(*args, "--steps", 2))
    with open(run / "stats.jsonl", "a") as f:  # what the killed run had logged after its checkpoint
        f.write(json.dumps({"step": 3, "loss": 1.0}) + "\n" + '{"step": 4, "lo')
    ok(invoke(*args, "--steps", 4, "--resume"))
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_steps_past_the_schedule_say_where_it_ends(tmp_path, cyclegan_data):
    run = tmp_path / "run"
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, "--steps", 50, "--epochs", 1,
                    "--epochs-decay", 1, *TINY_CYCLEGAN)
    ok(result)
    ends = ckpt.read_config(run / "checkpoint")["step"]
    assert ends < 50 and f"past the end of the schedule: it ends at step {ends} (train.epochs=1" in result.output


def test_checkpoint_minutes_must_be_positive(tmp_path, cyclegan_data):
    result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", "--dry-run",
                    "--set", "train.checkpoint_minutes=-5")
    assert "train.checkpoint_minutes=-5" in str(result.exception) and "null to save by steps only" in str(result.exception)


def test_resume_is_exact(tmp_path, cyclegan_data, make_config):
    from pixmorph.train.loop import train

    train(make_config("cyclegan", cyclegan_data, tmp_path / "straight", max_steps=5), progress=False)
    train(make_config("cyclegan", cyclegan_data, tmp_path / "resumed", max_steps=3), progress=False)
    train(make_config("cyclegan", cyclegan_data, tmp_path / "resumed", max_steps=5, resume=True), progress=False)
    a = load_file(str(tmp_path / "straight" / "checkpoint" / ckpt.WEIGHTS))
    b = load_file(str(tmp_path / "resumed" / "checkpoint" / ckpt.WEIGHTS))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "3 steps + resume to 5 differs from 5 steps straight"


# ---------------------------------------------------------------------------
# translate


def test_translate_keeps_each_input_size(tmp_path, cyclegan_run, inputs):
    out = tmp_path / "out"
    result = invoke("translate", cyclegan_run, inputs, "--out", out, "--device", "cpu")
    ok(result)
    assert png_sizes(out) == INPUT_SIZES
    assert "3 images translated AtoB" in result.output

    # The command and the Python API give the same pixels (at the command's default precision, auto).
    translator = pixmorph.load(cyclegan_run, precision="auto")
    with Image.open(inputs / "odd.png") as im:
        expected = np.asarray(translator(im), dtype=np.int16)
    with Image.open(out / "odd.png") as im:
        got = np.asarray(im, dtype=np.int16)
    assert np.abs(expected - got).max() <= 1


def test_translate_reads_each_file_only_when_its_batch_comes(tmp_path, cyclegan_run, write_image, monkeypatch):
    """A folder is not decoded whole before the first translation (its memory grew with its length): at most one
    batch of files is read and not yet translated at any time, and images of one size still share batches."""
    import pixmorph.data.folders as folders
    from pixmorph.api import Translator

    folder = tmp_path / "many"
    for i in range(7):
        write_image(folder / f"{i}.png", 24 if i % 2 else 16, 16, seed=i)
    events: list = []
    read_input, translate_batch = folders.read_input, Translator.translate_batch
    monkeypatch.setattr(folders, "read_input", lambda f, half=None: events.append("read") or read_input(f, half))
    monkeypatch.setattr(Translator, "translate_batch",
                        lambda self, batch, *a, **k: events.append(len(batch)) or translate_batch(self, batch, *a, **k))
    ok(invoke("translate", cyclegan_run, folder, "--out", tmp_path / "out", "--device", "cpu", "--batch-size", "2"))
    pending = most = 0
    for e in events:
        pending = pending + 1 if e == "read" else pending - e
        most = max(most, pending)
    assert events.count("read") == 7 and most == 2 and sorted(e for e in events if e != "read") == [1, 2, 2, 2]
    assert len(list((tmp_path / "out").glob("*.png"))) == 7


def test_a_header_size_is_the_size_as_read_after_an_exif_rotation(tmp_path):
    """Files are batched by the size their headers give before they are read: a quarter-turn EXIF orientation
    swaps it, as reading the file does."""
    from pixmorph.images import header_size, read_image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.new("RGB", (40, 20)).save(tmp_path / "turned.jpg", exif=exif)
    assert header_size(tmp_path / "turned.jpg") == read_image(tmp_path / "turned.jpg").size == (20, 40)


def test_translate_at_fixed_size(tmp_path, cyclegan_run, inputs):
    out = tmp_path / "out"
    ok(invoke("translate", cyclegan_run, inputs, "--out", out, "--size", 16, "--device", "cpu", "--precision", "fp32"))
    assert png_sizes(out) == {name: (16, 16) for name in INPUT_SIZES}
    # images of several sizes share a batch once resized, with the result of translating each alone
    translator = pixmorph.load(cyclegan_run, precision="fp32")
    for name in INPUT_SIZES:
        source = next(inputs.glob(f"{Path(name).stem}.*"))
        with Image.open(source) as im, Image.open(out / name) as got:
            assert np.abs(np.asarray(translator(im, size=16), dtype=np.int16) - np.asarray(got)).max() <= 1


def test_translate_single_files_and_checkpoint_folder(tmp_path, cyclegan_run, inputs):
    out = tmp_path / "out"
    ok(invoke("translate", cyclegan_run / "checkpoint", inputs / "odd.png", inputs / "gray.jpg", "--out", out,
              "--device", "cpu"))
    assert png_sizes(out) == {"odd.png": (37, 23), "gray.png": (21, 30)}


def test_translate_BtoA_uses_the_other_generator(tmp_path, cyclegan_run, inputs):
    ok(invoke("translate", cyclegan_run, inputs / "square.png", "--out", tmp_path / "ab", "--device", "cpu"))
    result = invoke("translate", cyclegan_run, inputs / "square.png", "--out", tmp_path / "ba", "--direction", "BtoA",
                    "--device", "cpu")
    ok(result)
    assert "translated BtoA" in result.output
    assert png_sizes(tmp_path / "ba") == {"square.png": (16, 16)}
    ab = np.asarray(Image.open(tmp_path / "ab" / "square.png"))
    ba = np.asarray(Image.open(tmp_path / "ba" / "square.png"))
    assert not np.array_equal(ab, ba)


def test_translate_bad_direction_errors(tmp_path, cyclegan_run, inputs):
    out = tmp_path / "out"
    result = invoke("translate", cyclegan_run, inputs, "--out", out, "--direction", "sideways", "--device", "cpu")
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)
    message = str(result.exception)
    assert "sideways" in message and "AtoB" in message and "BtoA" in message
    assert not out.exists() or not list(out.glob("*.png")), "nothing written for a bad direction"


def test_translate_missing_input_is_a_usage_error(tmp_path, cyclegan_run):
    result = invoke("translate", cyclegan_run, tmp_path / "nope.png", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "nope.png" in result.output


def test_translate_same_stem_inputs_lose_nothing(tmp_path, cyclegan_run, write_image):
    folder = tmp_path / "inputs"
    write_image(folder / "a.png", 16, 16, seed=1)
    write_image(folder / "a.jpg", 20, 12, seed=2)
    out = tmp_path / "out"
    result = invoke("translate", cyclegan_run, folder, "--out", out, "--device", "cpu")
    # Either both translations are kept, or the command refuses with a message naming the clash.
    if result.exit_code == 0:
        assert len(list(out.glob("*.png"))) == 2, sorted(p.name for p in out.iterdir())
    else:
        assert "a.png" in str(result.exception) or "a.png" in result.output


def _folder_with_subfolders(root: Path, write_image) -> Path:
    """A folder of one image of its own, 3 more in subfolders (one deeper), one in a hidden one (not named)."""
    for name in ("own.png", "2019/x.png", "2019/deeper/y.png", "2020/z.jpg", ".cache/w.png"):
        write_image(root / name, 16, 16)
    return root


def test_translate_names_the_images_in_a_folders_subfolders_as_left_out(tmp_path, cyclegan_run, write_image):
    """translate DIR left out DIR/sub/*.png without a word (training warns of it): the same one line now."""
    folder = _folder_with_subfolders(tmp_path / "inputs", write_image)
    out = tmp_path / "out"
    result = invoke("translate", cyclegan_run, folder, "--out", out, "--device", "cpu")
    ok(result)
    said = [line for line in result.output.splitlines() if "subfolders" in line]
    assert said == [f"warning: {folder}: 3 images in its subfolders (2019/, 2020/) left out: subfolders are not "
                    f"searched (move the images up into inputs/ to translate them)"], result.output
    assert png_sizes(out) == {"own.png": (16, 16)}


# ---------------------------------------------------------------------------
# Python API


def test_load_translates_pil_rgba_to_rgb_of_same_size(cyclegan_run):
    translator = pixmorph.load(cyclegan_run)
    assert translator.step == 3
    assert translator.directions == ["AtoB", "BtoA"]
    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 256, (23, 37, 4), dtype=np.uint8), "RGBA")
    out = translator(rgba)
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB" and out.size == (37, 23)
    small = translator(rgba, size=16)
    assert small.mode == "RGB" and small.size == (16, 16)
    gray = translator(rgba.convert("L"), direction="BtoA")
    assert gray.mode == "RGB" and gray.size == (37, 23)
    several = translator([rgba, rgba.convert("RGB").resize((16, 16))])
    assert [im.size for im in several] == [(37, 23), (16, 16)]


def test_load_translates_chw_and_nchw_tensors(cyclegan_run):
    translator = pixmorph.load(cyclegan_run)
    x = torch.rand(2, 3, 23, 37) * 2 - 1
    y = translator(x)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 3, 23, 37)
    assert y.min() >= -1 and y.max() <= 1
    one = translator(x[1])
    assert one.shape == (3, 23, 37)
    torch.testing.assert_close(one, y[1], atol=1e-5, rtol=0)
    assert translator(x, size=16).shape == (2, 3, 16, 16)
    assert translator(x, batch_size=1).shape == (2, 3, 23, 37)


def test_load_translates_a_list_of_tensors(cyclegan_run):
    translator = pixmorph.load(cyclegan_run)
    out = translator([torch.zeros(3, 16, 16), torch.zeros(3, 12, 20)])
    assert [tuple(t.shape) for t in out] == [(3, 16, 16), (3, 12, 20)]


def test_load_translates_a_folder_as_its_images(cyclegan_run, inputs, tmp_path):
    """`translate RUN folder/` takes a folder; pixmorph.load(RUN)(folder) said 'is a folder, not an image file'. A
    folder stands for its images (in translate's order), alone or in a list; an empty one is one line."""
    translator = pixmorph.load(cyclegan_run)
    from_folder = translator(inputs)
    names = ["gray.png", "odd.png", "square.png"]  # gray.jpg, odd.png, square.png: translate's order
    assert [im.size for im in from_folder] == [INPUT_SIZES[n] for n in names]
    one = translator(inputs / "square.png")
    mixed = translator([inputs / "square.png", str(inputs)])
    assert [im.size for im in mixed] == [(16, 16)] + [im.size for im in from_folder]
    assert np.array_equal(np.asarray(mixed[0]), np.asarray(one))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no image files \(looked for .*\)$"):
        translator(tmp_path / "empty")


def test_load_names_the_images_in_a_folders_subfolders_as_left_out(cyclegan_run, tmp_path, write_image):
    """pixmorph.load(RUN)(DIR) left out DIR/sub/*.png without a word, as translate did: one warning now, at the call."""
    folder = _folder_with_subfolders(tmp_path / "inputs", write_image)
    translator = pixmorph.load(cyclegan_run)
    with pytest.warns(UserWarning) as caught:
        out = translator(folder)
    said = [(str(w.message), Path(w.filename).name) for w in caught if "subfolders" in str(w.message)]
    assert said == [(f"{folder}: 3 images in its subfolders (2019/, 2020/) left out: subfolders are not searched "
                     f"(move the images up into inputs/ to translate them)", "test_cli.py")], said
    assert [im.size for im in out] == [(16, 16)]


def test_load_refuses_what_is_not_an_image_in_one_line(cyclegan_run):
    """A NumPy array (from scikit-image or OpenCV) was an AttributeError from deep inside ('no attribute mode'), and
    an 8-bit tensor (0-255) translated as if its values were in [-1, 1]."""
    translator = pixmorph.load(cyclegan_run)
    takes = "give a PIL image, an image file path, a CHW or NCHW tensor in [-1, 1], or a list of them"
    for given, name in ((np.zeros((16, 16, 3), np.uint8), "ndarray"), ([np.zeros((16, 16, 3))], "a list holding ndarray"),
                        (7, "int")):
        with pytest.raises(TypeError, match=rf"^{name}: {re.escape(takes)}"):
            translator(given)
    for given in (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), [torch.zeros(3, 16, 16, dtype=torch.uint8)]):
        with pytest.raises(ValueError, match=r"^a torch.uint8 tensor: tensors are images in \[-1, 1\]"):
            translator(given)


# ---------------------------------------------------------------------------
# pix2pix


def test_pix2pix_side_by_side_trains_and_translates(tmp_path, layouts, write_image):
    data = layouts.side_by_side(tmp_path / "data")
    run = tmp_path / "run"
    ok(invoke("train", "pix2pix", "--data", data, "--out", run, "--steps", 3, *TINY_PIX2PIX))
    saved = ckpt.read_config(run / "checkpoint")
    assert saved["step"] == 3 and saved["method"] == "pix2pix"
    assert "Columns: input | output | ground truth" in (run / "samples" / "index.html").read_text()

    inputs = tmp_path / "inputs"
    write_image(inputs / "odd.png", 37, 23)
    write_image(inputs / "small.png", 16, 16)  # smaller than the U-Net's stride of 32
    out = tmp_path / "out"
    ok(invoke("translate", run, inputs, "--out", out, "--device", "cpu"))
    assert png_sizes(out) == {"odd.png": (37, 23), "small.png": (16, 16)}

    result = invoke("translate", run, inputs, "--out", tmp_path / "out2", "--direction", "BtoA", "--device", "cpu")
    assert isinstance(result.exception, ValueError) and "BtoA" in str(result.exception)

    # A|B files themselves (the test split of such a dataset): the A half is translated, and eval scores it
    # against the B half (the whole 64x32 file was translated, and scored against the whole file)
    _translates_and_scores_its_half(run, data / "train", tmp_path / "halves", "A")
    assert png_sizes(tmp_path / "halves") == {f"pair_{j}.png": (32, 32) for j in range(3)}
    # B -> A from the same files (facades are photo|labels, trained labels -> photo): the right half goes in
    back = tmp_path / "back"
    ok(invoke("train", "pix2pix", "--data", data, "--out", back, "--steps", 2, "--set", "data.options.direction=BtoA",
              *TINY_PIX2PIX))
    _translates_and_scores_its_half(back, data / "train", tmp_path / "back_out", "B")
    # its one direction is still called AtoB (input -> output): translate says what that means here
    said = invoke("translate", back, data / "train", "--out", tmp_path / "back_again", "--side-by-side",
                  "--direction", "BtoA")
    assert "checkpoint has AtoB (trained B -> A with data.options.direction=BtoA" in str(said.exception)
    result = invoke("train", "pix2pix", "--data", data, "--out", tmp_path / "bad", "--steps", 1,
                    "--set", "data.options.direction=sideways", *TINY_PIX2PIX)
    assert isinstance(result.exception, ValueError) and "direction=BtoA" in str(result.exception)


def _translates_and_scores_its_half(run: Path, files: Path, out: Path, half: str) -> None:
    """translate --side-by-side writes what the model makes of that half of pair_0.png (32 px halves); eval
    --side-by-side scores the translations against the other halves."""
    said = invoke("translate", run, files, "--out", out, "--side-by-side", "--device", "cpu", "--precision", "fp32")
    ok(said)
    assert ("trained B -> A" in said.output) == (half == "B")
    with Image.open(files / "pair_0.png") as pair:
        given = pair.convert("RGB").crop((0, 0, 32, 32) if half == "A" else (32, 0, 64, 32))
    expected = np.asarray(pixmorph.load(run, precision="fp32")(given), dtype=np.int16)
    assert np.abs(np.asarray(Image.open(out / "pair_0.png"), dtype=np.int16) - expected).max() <= 1
    scores = out.with_suffix(".json")
    ok(invoke("eval", "--checkpoint", run, "--input", files, "--side-by-side", "--metrics", "l1,psnr", "--device", "cpu",
              "--json", scores))
    scored = json.loads(scores.read_text())
    assert scored["n_pairs"] == 3 and scored["reference"] == f"the {'B' if half == 'A' else 'A'} halves of {files}"


def test_pix2pix_trainA_trainB_layout(tmp_path, layouts, make_config):
    from pixmorph.train.loop import train

    data = layouts.paired_folders(tmp_path / "data")
    run = train(make_config("pix2pix", data, tmp_path / "run"), progress=False)
    assert ckpt.read_config(run / "checkpoint")["step"] == 3
    translator = pixmorph.load(run)
    out = translator(Image.new("RGB", (40, 24), "white"))
    assert out.size == (40, 24)


# ---------------------------------------------------------------------------
# data, and the console script


def test_data_list_names_downloads_and_builtins():
    result = invoke("data", "list")
    ok(result)
    names = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert {"horse2zebra", "fashion-edges"} <= names
    assert any(line.startswith("fashion-edges") and "built-in" in line for line in result.output.splitlines())


def test_console_script_prints_one_line_error(tmp_path, cyclegan_data):
    empty = cyclegan_data / "trainA"
    for p in empty.iterdir():
        p.unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "pixmorph", "train", "cyclegan", "--data", str(cyclegan_data),
         "--out", str(tmp_path / "run"), "--workers", "0", "--device", "cpu"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert str(empty) in lines[0]
    assert "Traceback" not in proc.stderr


def test_exponent_floats_are_numbers_in_files_and_overrides(tmp_path, cyclegan_data):
    """YAML 1.1 reads 5e-4 as a string; a learning rate written that way must still be a number."""
    config = tmp_path / "run.yaml"
    config.write_text("model:\n  lr: 5e-4\n  lambda_A: 1E+1\n")
    result = invoke("train", "cyclegan", "--config", config, "--data", cyclegan_data, "--out", tmp_path / "run",
                    "--set", "model.lambda_identity=25e-2", "--dry-run")
    ok(result)
    model = json.loads(result.output)["model"]
    assert (model["lr"], model["lambda_A"], model["lambda_identity"]) == (0.0005, 10.0, 0.25)


# ---------------------------------------------------------------------------
# Starting, starting over and resuming (from a fresh-user review)


def test_a_schedule_without_steps_is_refused(tmp_path, cyclegan_data):
    """--steps 0 printed a checkpoint path that did not exist; negative epochs are refused too (from --set or a
    config file here; --epochs -1 is a usage error, test_user_errors.py)."""
    for schedule in (["--steps", "0"], ["--set", "train.epochs=-1", "--epochs-decay", "0"]):
        result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", *TINY_CYCLEGAN,
                        *schedule)
        assert isinstance(result.exception, ValueError), result.output
        assert "\n" not in str(result.exception) and "checkpoint:" not in result.output
        assert not (tmp_path / "run").exists()


def test_overwrite_starts_the_logs_and_samples_over(tmp_path, cyclegan_data):
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN, "--set", "train.log_every=1",
            "--set", "train.sample_every=1"]
    ok(invoke(*args, "--steps", "3"))
    ok(invoke(*args, "--steps", "1", "--overwrite"))
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [1] and sorted(p.name for p in (run / "samples").glob("step_*.png")) == ["step_0000001.png"]


def test_resume_of_a_folder_without_a_run_needs_data(tmp_path, cyclegan_data):
    """A typo in --out with --resume started a full-length run on the built-in default data."""
    result = invoke("train", "cyclegan", "--out", tmp_path / "typo", "--resume", *TINY_CYCLEGAN)
    assert result.exit_code == 2 and "no config.json" in result.output and "--data" in result.output
    assert not (tmp_path / "typo").exists()
    ok(invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", "--resume", *TINY_CYCLEGAN,
              "--steps", "1"))  # with --data: a requeued job's first start


def test_a_time_budget_is_not_inherited_by_resume(tmp_path, cyclegan_data):
    """The budget limits one invocation: a plain --resume finishes the schedule; --time-budget 0 is no limit."""
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN, "--steps", "6"]
    ok(invoke(*args, "--time-budget", "0.001"))
    assert json.loads((run / "config.json").read_text())["train"]["time_budget"] == 0.001
    ok(invoke(*args, "--resume"))
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["time_budget"] is None and json.loads((run / "checkpoint" / "config.json").read_text())["step"] == 6
    ok(invoke(*args, "--overwrite", "--time-budget", "0"))
    assert json.loads((run / "checkpoint" / "config.json").read_text())["step"] == 6


def test_resume_takes_the_config_its_checkpoint_was_trained_with(tmp_path, cyclegan_data):
    """RUN/config.json is written just after a start over's first checkpoint: a kill -9 between the two left the
    last run's config.json, which --resume merged into the start over (its learning rate, its steps)."""
    run = tmp_path / "run"
    ok(invoke("train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN, "--steps", "4",
              "--set", "model.lr=0.001"))
    last_run = json.loads((run / "config.json").read_text())
    last_run["model"]["lr"], last_run["train"]["max_steps"] = 0.5, 2
    (run / "config.json").write_text(json.dumps(last_run))  # as a kill -9 before it was replaced left it
    result = invoke("train", "cyclegan", "--out", run, "--resume", "--dry-run")
    ok(result)
    resolved = json.loads(result.output)
    assert resolved["model"]["lr"] == 0.001 and resolved["train"]["max_steps"] == 4


def test_dry_run_refuses_what_the_run_would_refuse(tmp_path, cyclegan_data):
    """An unknown GAN loss or precision was accepted by --dry-run and failed at the first step, under the bar."""
    for setting, words in (("model.gan_mode=foo", "model.gan_mode='foo'"), ("train.precision=fp8", "fp8")):
        for dry in (["--dry-run"], ["--steps", "1"]):
            result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", *TINY_CYCLEGAN,
                            "--set", setting, *dry)
            assert isinstance(result.exception, ValueError) and words in str(result.exception), result.output
            assert "%|" not in result.output and not (tmp_path / "run").exists()
    ok(invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", *TINY_CYCLEGAN, "--steps", 1))
    for dry in (["--dry-run"], ["--steps", "2"]):  # a run folder that holds a checkpoint, without --resume
        result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", *TINY_CYCLEGAN, *dry)
        assert isinstance(result.exception, FileExistsError) and "continue it with --resume" in str(result.exception)


@pytest.mark.parametrize("crop, setting, words", [
    (18, "model.d_layers=1", "the cyclegan generators take sides that are multiples of 4"),
    (16, "model.d_layers=3", "the cyclegan discriminator takes sides of at least 24"),
])
def test_dry_run_refuses_the_crops_the_run_refuses(tmp_path, cyclegan_data, crop, setting, words):
    """--dry-run printed the config for a crop the networks cannot take (not a multiple of the generators'
    stride, below the PatchGAN's least input), which the run then refused before its first step."""
    messages = []
    for dry in (["--dry-run"], ["--steps", "1"]):
        result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", tmp_path / "run", *TINY_CYCLEGAN,
                        "--load-size", crop, "--crop-size", crop, "--set", setting, *dry)
        assert isinstance(result.exception, ValueError) and words in str(result.exception), result.output
        assert not (tmp_path / "run").exists()
        messages.append(str(result.exception))
    assert messages[0] == messages[1]


def test_dry_run_refuses_the_run_folder_the_run_would_refuse(tmp_path, cyclegan_data):
    """--dry-run printed the config for an --out that is a file, or that holds another program's config.json,
    which the run then refused; it checks the folder first, as the run does."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    theirs = tmp_path / "project"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"learning_rate": 0.1}')
    for out, error, words in ((a_file, NotADirectoryError, "a file, not a folder"),
                              (a_file / "run", NotADirectoryError, "a file, not a folder"),
                              (theirs, FileExistsError, "not a pixmorph run's")):
        for dry in (["--dry-run"], ["--steps", "1"]):
            result = invoke("train", "cyclegan", "--data", cyclegan_data, "--out", out, *TINY_CYCLEGAN, *dry)
            assert isinstance(result.exception, error) and words in str(result.exception), result.output
    assert a_file.read_text() == "mine" and (theirs / "config.json").read_text() == '{"learning_rate": 0.1}'


def test_dry_run_prints_the_data_options_as_the_run_parses_them(tmp_path, write_image):
    """--dry-run printed data.options as given while the rest was resolved: DeepSIM's without their defaults,
    and a bad one (FUNIT's target_class for target_classes, a max_side below 16) passed; the run parses them."""
    from dataclasses import asdict

    from pixmorph.data.single_image import SingleImageOptions

    photo = write_image(tmp_path / "photo.png", 40, 32, seed=0)
    for cls in ("a", "b"):
        for i in range(2):
            write_image(tmp_path / "classes" / cls / f"{i}.png", 16, 16, seed=i)
    deepsim = ["deepsim", "--image", photo, "--device", "cpu", "--set", "model.ngf=4", "--set", "model.ndf=4"]
    result = invoke("train", *deepsim, "--out", tmp_path / "run", "--dry-run")
    ok(result)
    assert json.loads(result.stdout)["data"]["options"] == asdict(SingleImageOptions(kind="edges"))
    result = invoke("train", "pix2pix", "--out", tmp_path / "run", "--dry-run")
    ok(result)
    assert json.loads(result.stdout)["data"]["options"] == {"direction": "AtoB"}
    funit = ["funit", "--data", tmp_path / "classes", "--device", "cpu", "--workers", "0", "--batch-size", "2",
             "--set", "model.nf=8"]
    for args, setting, words in ((deepsim, "data.options.max_side=8", "data.options.max_side=8: need at least 16"),
                                 (funit, "data.options.target_class=b",
                                  "unknown data.options for the fewshot layout: target_class;")):
        for dry in (["--dry-run"], ["--steps", "1"]):
            result = invoke("train", *args, "--out", tmp_path / "run", "--set", setting, *dry)
            assert isinstance(result.exception, ValueError) and words in str(result.exception), result.output
            assert not (tmp_path / "run").exists()


def test_resume_into_a_classifier_folder_says_what_it_holds(tmp_path):
    folder = tmp_path / "clf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"classifier": {"arch": "SmallCNN"}, "classes": ["a", "b"]}))
    result = invoke("train", "cyclegan", "--out", folder, "--resume", *TINY_CYCLEGAN)
    assert isinstance(result.exception, ValueError) and "holds a classifier" in str(result.exception), result.output


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--batch-size", "-2"), ("--size", "0"),
                                           ("--size", "-4")])
def test_translate_refuses_sizes_below_one(tmp_path, cyclegan_run, inputs, option, value):
    """--batch-size -2 reported its images translated and wrote nothing; --size 0 gave a traceback."""
    result = invoke("translate", cyclegan_run, inputs, "--out", tmp_path / "out", option, value)
    assert result.exit_code == 2 and option in result.output and not (tmp_path / "out").exists()


def test_resume_with_another_network_names_the_changed_settings(tmp_path, cyclegan_data):
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN]
    ok(invoke(*args, "--steps", "1"))
    result = invoke(*args, "--steps", "2", "--resume", "--set", "model.ngf=4")
    message = str(result.exception)
    assert result.exit_code != 0 and "\n" not in message, result.output
    assert "model.ngf=4 (trained with 8)" in message and "another --out" in message
    ok(invoke(*args, "--steps", "2", "--resume", "--set", "model.lr=1e-4"))  # what does not change the network


def test_dry_run_refuses_data_that_is_not_there(tmp_path):
    result = invoke("train", "cyclegan", "--data", tmp_path / "nope", "--out", tmp_path / "run", "--dry-run")
    assert isinstance(result.exception, FileNotFoundError) and "nope" in str(result.exception)
    assert "fashion-edges" in str(result.exception)


@pytest.mark.parametrize("method", ["cyclegan", "pix2pix", "funit", "twostep", "deepsim"])
def test_a_negative_width_is_one_line_for_every_method(tmp_path, method):
    """--set model.ngf=-3 (model.nf for FUNIT) gave a traceback from inside the network ("negative dimension")."""
    from pixmorph.config import build_method_config
    from pixmorph.methods import METHODS

    key = "nf" if method == "funit" else "ngf"
    classes = {"class_names": ["a", "b"]} if method == "twostep" else {}
    for value in (-3, 0):  # a width of 0 failed inside torch too
        with pytest.raises(ValueError, match=f"model.{key}={value}: give 1 or more"):
            build_method_config(METHODS[method].Config, {key: value, **classes})
    depth = {"funit": "n_res_blocks", "twostep": "step2_steps"}.get(method, "d_layers")
    with pytest.raises(ValueError, match=f"model.{depth}=-1: give 0 or more"):
        build_method_config(METHODS[method].Config, {depth: -1, **classes})


def test_a_failed_overwrite_leaves_the_old_run_resumable(tmp_path, cyclegan_data, monkeypatch):
    """--overwrite whose new run fails before its first checkpoint: the old run's config.json stays with its
    checkpoint (it was replaced at once, and --resume then compared the old weights with the failed settings)."""
    from pixmorph.methods.cyclegan import CycleGAN

    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN]
    ok(invoke(*args, "--steps", "1"))
    real_step = CycleGAN.train_step

    def fail(self, batch, update):
        raise RuntimeError("the new run fails")

    monkeypatch.setattr(CycleGAN, "train_step", fail)
    result = invoke(*args, "--steps", "3", "--overwrite", "--set", "model.ngf=4")
    assert isinstance(result.exception, RuntimeError)
    assert json.loads((run / "config.json").read_text())["model"]["ngf"] == 8
    monkeypatch.setattr(CycleGAN, "train_step", real_step)
    ok(invoke(*args, "--steps", "2", "--resume"))
    ok(invoke(*args, "--steps", "1", "--overwrite", "--set", "model.ngf=4"))  # a new run that saves: its config
    assert json.loads((run / "config.json").read_text())["model"]["ngf"] == 4


def test_a_header_size_decodes_no_pixel_of_a_png(tmp_path, monkeypatch):
    """A PNG's getexif() decodes the whole image (to look for an eXIf chunk after its pixels): every file of a
    folder was decoded once for batching and the memory check, before the first translation (0.2 s and 48 MB for
    a 4000x4000 PNG). Its size and EXIF rotation come from the chunks before the pixels."""
    from PIL import ImageFile

    from pixmorph.images import header_size, read_image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20)).save(tmp_path / "turned.png", exif=exif)
    Image.new("RGB", (40, 20)).save(tmp_path / "plain.png")
    assert read_image(tmp_path / "turned.png").size == (20, 40)

    def no_decoding(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert header_size(tmp_path / "turned.png") == (20, 40) and header_size(tmp_path / "plain.png") == (40, 20)


def test_the_readmes_device_row_names_every_command_without_device():
    """The command reference said `--device` (every command), but `export` and `data` take none: each
    command without it is named in that row."""
    import click

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `--device`"))

    def leaves(group: click.Command, path: str) -> list[tuple[str, click.Command]]:
        if isinstance(group, click.Group):
            return [leaf for name, sub in group.commands.items() for leaf in leaves(sub, f"{path} {name}".strip())]
        return [(path, group)]

    without = [path for path, command in leaves(cli, "") if not any("--device" in p.opts for p in command.params)]
    assert without and all(f"`{path.split()[0]}`" in row for path in without), (without, row)


def test_a_resume_at_the_end_of_the_schedule_names_the_epochs_not_steps(tmp_path, cyclegan_data):
    """A run whose epochs ended said 'nothing to train (raise --steps, ...)' also to `--resume --steps 30`, whose
    larger --steps is cut back to the schedule's end: raising it trained nothing again. It now names the epochs."""
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", cyclegan_data, "--out", run, *TINY_CYCLEGAN, "--epochs", 1,
            "--epochs-decay", 0]
    ok(invoke(*args))
    end = ckpt.read_config(run / "checkpoint")["step"]
    result = invoke(*args, "--resume", "--steps", end + 10)
    ok(result)
    assert f"already at step {end} of {end}: nothing to train (the schedule's epochs end at step {end}: for more " \
           f"steps give more --epochs / --epochs-decay, train.epochs / epochs_decay from Python)" in result.output

"""ONNX export: every generator of a checkpoint, dynamic batch and image size (padded to the stride inside the
file; a two-step model's files at its fixed size), checked against PyTorch;
``translate --runtime onnx``; a clear error when onnxruntime is missing; files of another checkpoint refused.
Also the Python API's inputs (image files) and sizes."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import pixmorph
from pixmorph.cli import cli
from pixmorph.export import OnnxGenerator, direction_file, export_generator, export_onnx, onnx_prefix
from pixmorph.images import read_image

# ONNX Runtime and PyTorch run the same fp32 graph with different kernels (summation order, fused
# instance norm); outputs are tanh images in [-1, 1], and the differences seen are ~1e-6.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(cyclegan_run, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    prefix = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(cyclegan_run, prefix)


def test_export_writes_one_file_per_direction(exported):
    assert [e.direction for e in exported] == ["AtoB", "BtoA"]
    for e in exported:
        assert e.path.name == f"model.{e.direction}.onnx" and e.path.is_file()
        assert e.max_abs_diff < TOLERANCE


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("size", [(16, 16), (40, 24)])  # the training size and a larger, non-square one
def test_onnx_matches_pytorch(exported, cyclegan_run, batch, size):
    generators = pixmorph.load(cyclegan_run).generators
    torch.manual_seed(batch)
    x = torch.rand(batch, 3, *size) * 2 - 1
    for e in exported:
        with torch.no_grad():
            expected = generators[e.direction](x)
        got = OnnxGenerator(e.path)(x)
        assert got.shape == expected.shape == (batch, 3, *size)
        assert (got - expected).abs().max().item() < TOLERANCE


def test_translator_onnx_runtime_matches_torch(exported, cyclegan_run):
    x = torch.rand(2, 3, 21, 30) * 2 - 1  # odd size: padded to the stride and cropped back
    reference = pixmorph.load(cyclegan_run, precision="fp32")(x, "BtoA")
    from_files = pixmorph.load(cyclegan_run, runtime="onnx", onnx=exported[0].path.with_name("model.onnx"))
    exported_now = pixmorph.load(cyclegan_run, runtime="onnx")
    for translator in (from_files, exported_now):
        assert translator.runtime == "onnx"
        out = translator(x, "BtoA")
        assert out.shape == reference.shape
        assert (out - reference).abs().max().item() < TOLERANCE


def test_export_and_translate_cli(cyclegan_run, tmp_path, write_image):
    pytest.importorskip("onnxruntime")
    result = CliRunner().invoke(cli, ["export", str(cyclegan_run), "--onnx", str(tmp_path / "g.onnx")])
    assert result.exit_code == 0, result.output
    assert "max abs difference vs PyTorch" in result.output
    # said at once (it was silent until every direction was exported), then each file as it is done
    assert result.output.startswith(f"exporting the generators of {cyclegan_run}, each checked against PyTorch")
    assert [line.split(":")[0] for line in result.output.splitlines()[1:]] == ["AtoB", "BtoA"]
    assert (tmp_path / "g.AtoB.onnx").is_file() and (tmp_path / "g.BtoA.onnx").is_file()
    write_image(tmp_path / "in" / "a.png", 37, 23)
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--runtime", "onnx", "--onnx", str(tmp_path / "g.onnx"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.png").is_file()


def test_direction_file_names():
    assert direction_file("out/model.onnx", "AtoB").name == "model.AtoB.onnx"
    assert direction_file("out/model", "to:cat").name == "model.to-cat.onnx"


def test_missing_onnxruntime_is_a_clear_error(cyclegan_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ImportError, match=r"pip install 'pixmorph\[onnx\]'"):
        pixmorph.load(cyclegan_run, runtime="onnx")
    result = CliRunner().invoke(cli, ["export", str(cyclegan_run), "--onnx", str(tmp_path / "g.onnx")])
    assert result.exit_code == 1
    assert "onnxruntime" in result.output and "pip install" in result.output
    assert not list(tmp_path.glob("*.onnx"))


def test_missing_onnx_file_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(FileNotFoundError, match="pixmorph export"):
        OnnxGenerator(tmp_path / "nothing.onnx")


def test_export_generator_keeps_dynamic_axes(tmp_path):
    pytest.importorskip("onnxruntime")
    from pixmorph.nn.resnet_generator import ResnetGenerator

    g = ResnetGenerator(1, 3, ngf=4, n_blocks=1).eval()
    path = export_generator(g, tmp_path / "g.onnx", torch.zeros(1, 1, 8, 8))
    x = torch.rand(2, 1, 12, 20) * 2 - 1
    with torch.no_grad():
        assert (OnnxGenerator(path)(x) - g(x)).abs().max().item() < TOLERANCE


def test_deepsim_edges_model_on_onnx_takes_rgb_edge_maps_as_torch_does(tmp_path, write_image):
    """An edges DeepSIM model's ONNX file takes 1 channel; like its PyTorch renderer, the ONNX runtime turns
    an RGB edge map into gray (the channel mean) and matches it. Other methods still refuse wrong channels."""
    pytest.importorskip("onnxruntime")
    from test_user_errors import make_checkpoint

    tiny = {"in_channels": 1, "ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 2, "n_downsampling": 2}
    run = make_checkpoint(tmp_path / "edges", "deepsim", tiny)
    torch.manual_seed(0)
    gray = torch.rand(2, 1, 32, 32) * 2 - 1
    rgb = torch.cat([gray, gray.flip(-1), -gray], 1)  # channels that differ: their mean is what counts
    reference, onnx = pixmorph.load(run, precision="fp32"), pixmorph.load(run, runtime="onnx")
    assert onnx.generators["AtoB"].input_channels == 1
    for x in (rgb, gray):
        expected, got = reference(x, "AtoB"), onnx(x, "AtoB")
        assert got.shape == expected.shape == (2, 3, 32, 32)
        assert (got - expected).abs().max().item() < TOLERANCE
    with pytest.raises(ValueError, match=r"^this deepsim model takes 1-channel images and got 4-channel ones"):
        onnx(torch.zeros(1, 4, 32, 32), "AtoB")
    write_image(tmp_path / "in" / "edges.png", 32, 32)  # an RGB file, as `pixmorph translate` reads it
    result = CliRunner().invoke(cli, ["translate", str(run), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--runtime", "onnx", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "edges.png").is_file()

    gray_pix2pix = make_checkpoint(tmp_path / "p2p", "pix2pix", {"in_channels": 1, "out_channels": 1}, {"channels": 1})
    with pytest.raises(ValueError, match=r"^this pix2pix model takes 1-channel images and got 3-channel ones"):
        pixmorph.load(gray_pix2pix, runtime="onnx").translate_batch(torch.zeros(1, 3, 32, 32))


def test_translate_refuses_an_export_of_another_checkpoint(exported, cyclegan_run, tmp_path, write_image):
    """A CycleGAN export used for a pix2pix run: both take and give 3 channels, so only the checkpoint that
    each file records tells them apart. Swapped direction files are refused too."""
    from test_user_errors import make_checkpoint

    pix2pix = make_checkpoint(tmp_path / "p2p", "pix2pix")
    prefix = exported[0].path.with_name("model.onnx")
    with pytest.raises(ValueError, match=r"model\.AtoB\.onnx: exported from the cyclegan checkpoint .* \(step 3\), "
                                         r"not this pix2pix checkpoint .*p2p/checkpoint \(step 0\)"):
        pixmorph.load(pix2pix, onnx=prefix)
    write_image(tmp_path / "in" / "a.png", 32, 32)
    result = CliRunner().invoke(cli, ["translate", str(pix2pix), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--onnx", str(prefix), "--device", "cpu"])
    assert result.exit_code == 1 and "exported from the cyclegan checkpoint" in str(result.exception)
    assert not (tmp_path / "out").exists()
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for a, b in (("AtoB", "BtoA"), ("BtoA", "AtoB")):
        (swapped / f"m.{a}.onnx").write_bytes(prefix.with_name(f"model.{b}.onnx").read_bytes())
    with pytest.raises(ValueError, match=r"m\.AtoB\.onnx: the BtoA generator of this checkpoint, not its AtoB one"):
        pixmorph.load(cyclegan_run, onnx=swapped / "m.onnx")


def test_an_older_export_without_its_checkpoint_loads_with_a_warning(cyclegan_run, tmp_path):
    pytest.importorskip("onnxruntime")
    translator = pixmorph.load(cyclegan_run, precision="fp32")
    for direction, g in translator.generators.items():  # as export wrote files before it recorded the checkpoint
        export_generator(g, direction_file(tmp_path / "old.onnx", direction), torch.zeros(1, 3, 16, 16))
    with pytest.warns(UserWarning, match=r"old\.AtoB\.onnx, .*old\.BtoA\.onnx: exported without a record of its "
                                         "checkpoint .* not checked") as records:
        onnx = pixmorph.load(cyclegan_run, onnx=tmp_path / "old.onnx")
    assert len(records) == 1 and "\n" not in str(records[0].message)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert (onnx(x) - translator(x)).abs().max().item() < TOLERANCE
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file that records this checkpoint: no warning
        pixmorph.load(cyclegan_run, onnx=export_onnx(cyclegan_run, tmp_path / "new.onnx")[0].path)


def test_onnx_takes_the_prefix_or_a_file_export_wrote(exported, cyclegan_run, tmp_path, write_image):
    a_file = exported[0].path  # .../model.AtoB.onnx
    assert onnx_prefix(a_file, ["AtoB", "BtoA"]) == a_file.with_name("model.onnx")
    assert onnx_prefix("out/m.to-cat.onnx", ["to:cat"]) == Path("out/m.onnx")
    assert onnx_prefix("out/m.onnx", ["AtoB"]) == Path("out/m.onnx")
    assert pixmorph.load(cyclegan_run, onnx=a_file.with_name("model.BtoA.onnx")).runtime == "onnx"
    write_image(tmp_path / "in" / "a.png", 20, 20)
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--onnx", str(a_file), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    # a file names its direction: model.BtoA.onnx translates BtoA; another --direction is refused
    b_file = a_file.with_name("model.BtoA.onnx")
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out", str(tmp_path / "b"),
                                      "--onnx", str(b_file), "--device", "cpu"])
    assert result.exit_code == 0 and "translated BtoA" in result.output, result.output
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out", str(tmp_path / "c"),
                                      "--onnx", str(b_file), "--direction", "AtoB", "--device", "cpu"])
    assert result.exit_code == 2 and "BtoA generator" in result.output and not (tmp_path / "c").exists()
    result = CliRunner().invoke(cli, ["export", str(cyclegan_run), "--onnx", str(tmp_path / "cg.AtoB.onnx")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["cg.AtoB.onnx", "cg.BtoA.onnx"]


def test_an_export_stopped_half_way_leaves_the_last_files_as_they_were(cyclegan_run, tmp_path, monkeypatch):
    """Ctrl-C (or a full disk) after the graph was written but before its checkpoint record was added left a file
    without that record in place of the last good export (or, in a new prefix, a file that loads with a warning)."""
    import onnx

    pytest.importorskip("onnxruntime")
    kept = {e.path: e.path.read_bytes() for e in export_onnx(cyclegan_run, tmp_path / "m.onnx")}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, "save", interrupted)
    for prefix in (tmp_path / "m.onnx", tmp_path / "new" / "n.onnx"):
        with pytest.raises(KeyboardInterrupt):
            export_onnx(cyclegan_run, prefix)
    assert {p: p.read_bytes() for p in kept} == kept
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["m.AtoB.onnx", "m.BtoA.onnx"]


def test_translator_reads_image_files_and_refuses_bad_sizes(cyclegan_run, tmp_path, write_image):
    translator = pixmorph.load(cyclegan_run, precision="fp32")
    path = write_image(tmp_path / "horse.png", 21, 17, mode="RGBA")
    expected = translator(read_image(path, mode=None))
    for given in (str(path), path):
        out = translator(given)
        assert isinstance(out, Image.Image) and out.size == (21, 17)
        assert np.array_equal(np.asarray(out), np.asarray(expected))
    outs = translator([str(path), Image.open(path)], size=16)
    assert [o.size for o in outs] == [(16, 16), (16, 16)]
    for size in (0, -3):
        with pytest.raises(ValueError, match=rf"^size={size}: give a side of 1 pixel or more"):
            translator(torch.zeros(1, 3, 16, 16), size=size)
        with pytest.raises(ValueError, match=rf"^size={size}:"):
            translator.translate_batch(torch.zeros(1, 3, 16, 16), size=size)
    with pytest.raises(ValueError, match=r"^batch_size=0: give 1 or more"):
        translator(torch.zeros(2, 3, 16, 16), batch_size=0)
    with pytest.raises(FileNotFoundError):
        translator(str(tmp_path / "nothing.png"))


def run_file(path: Path, x: torch.Tensor) -> torch.Tensor:
    """``x`` through an exported file with plain ONNX Runtime, as a user outside pixmorph runs it."""
    import onnxruntime as ort

    (y,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    return torch.from_numpy(y)


@pytest.mark.parametrize("size", [(100, 37), (37, 45), (17, 17), (8, 8)])  # 8: the generator's min_size
def test_file_pads_to_the_stride_inside_itself(exported, cyclegan_run, size):
    """Run outside pixmorph, at sizes other than the traced 16 x 16 (none a multiple of the stride 4 but 8),
    a file gives the input's size and what pixmorph's PyTorch Translator gives (it pads and crops around the
    network; the file must do it itself)."""
    translator = pixmorph.load(cyclegan_run, precision="fp32")
    torch.manual_seed(size[0])
    x = torch.rand(2, 3, *size) * 2 - 1
    for e in exported:
        got, expected = run_file(e.path, x), translator(x, e.direction)
        assert got.shape == expected.shape == (2, 3, *size)
        assert (got - expected).abs().max().item() < TOLERANCE


def test_onnx_runtime_does_not_pad_again_and_matches_pixels(exported, cyclegan_run, tmp_path, write_image):
    """The Translator leaves the padding to a file that does it (its ONNX generators have stride 1), and
    `translate --runtime onnx` writes the images the PyTorch runtime writes (8-bit: at most 1 apart, where
    a ~1e-6 difference straddles a rounding boundary)."""
    onnx = pixmorph.load(cyclegan_run, onnx=exported[0].path)
    assert all((g.stride, g.min_size) == (1, 1) for g in onnx.generators.values())
    write_image(tmp_path / "in" / "odd.png", 37, 45)
    outputs = {}
    for runtime in ("torch", "onnx"):
        result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out",
                                          str(tmp_path / runtime), "--runtime", runtime, "--precision", "fp32",
                                          "--device", "cpu"])
        assert result.exit_code == 0, result.output
        outputs[runtime] = np.asarray(Image.open(tmp_path / runtime / "odd.png"), dtype=np.int16)
    assert outputs["onnx"].shape == (45, 37, 3)
    assert np.abs(outputs["onnx"] - outputs["torch"]).max() <= 1


def test_export_leaves_the_generator_in_eval_mode(tmp_path):
    """The exporter restores the wrapper's mode recursively: a wrapper left in training mode put the U-Net's
    batch norm in training mode, and its next call moved the running statistics."""
    pytest.importorskip("onnxruntime")
    from pixmorph.nn.unet_generator import UnetGenerator

    g = UnetGenerator(3, 3, ngf=4, num_downs=5).eval()
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    with torch.no_grad():
        before = g(x)
    path = export_generator(g, tmp_path / "g.onnx", torch.zeros(1, 3, 32, 32))
    assert not any(m.training for m in g.modules())
    with torch.no_grad():
        assert torch.equal(g(x), before)
    assert (run_file(path, x) - before).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("method, model, data", [
    ("pix2pix", {"init_gain": 0.3}, {}),  # U-Net: stride 32, replicated where the pad is not smaller than the image
    ("deepsim", {"in_channels": 1, "ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 2, "n_downsampling": 2,
                 "init_gain": 0.3}, {}),
    ("funit", {"channels": 1, "nf": 8, "nf_mlp": 16, "latent_dim": 8, "n_res_blocks": 1, "n_down_content": 2,
               "n_down_class": 2, "nf_dis": 8, "n_res_blocks_dis": 4, "num_classes": 2}, {"channels": 1}),
])
def test_every_method_exports_a_file_for_any_size(tmp_path, method, model, data):
    pytest.importorskip("onnxruntime")
    from test_user_errors import make_checkpoint

    run = make_checkpoint(tmp_path / method, method, model, data)  # large weights: images far from 0
    translator = pixmorph.load(run, precision="fp32")
    [e] = [e for e in export_onnx(run, tmp_path / "m.onnx") if e.direction == translator.directions[0]]
    assert e.max_abs_diff < TOLERANCE
    channels = translator.input_channels[e.direction]
    torch.manual_seed(0)
    for size in ((37, 45), (17, 17), (9, 14)):
        x = torch.rand(2, channels, *size) * 2 - 1
        got, expected = run_file(e.path, x), translator(x, e.direction)
        assert got.shape == expected.shape and got.shape[-2:] == size
        assert (got - expected).abs().max().item() < TOLERANCE


@pytest.fixture(scope="module")
def twostep_run(tmp_path_factory):
    """An untrained two-step checkpoint at 16 x 16, with weights large enough to give images far from 0."""
    from test_user_errors import make_checkpoint

    model = {"class_names": ["sneaker", "boot"], "image_size": 16, "ngf": 8, "ndf": 8, "z_dim": 8, "embed_dim": 4,
             "init_gain": 0.3}
    return make_checkpoint(tmp_path_factory.mktemp("twostep") / "run", "twostep", model,
                           {"load_size": 16, "crop_size": 16})


def test_twostep_file_declares_its_size_and_onnx_runtime_resizes_as_torch(twostep_run, tmp_path, write_image):
    """A two-step model's networks take its 16 x 16 only: its files say so (plain ONNX Runtime refuses other
    sizes with its own shape error), and pixmorph's ONNX runtime resizes to it and back as PyTorch does."""
    import onnxruntime as ort

    result = CliRunner().invoke(cli, ["export", str(twostep_run), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    boot = tmp_path / "m.to-boot.onnx"
    session = ort.InferenceSession(str(boot), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == session.get_outputs()[0].shape == ["batch", 3, 16, 16]
    assert session.get_modelmeta().custom_metadata_map["pixmorph.model_size"] == "16x16"
    translator, onnx = pixmorph.load(twostep_run, precision="fp32"), pixmorph.load(twostep_run, onnx=boot)
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert (run_file(boot, x) - translator(x, "to:boot")).abs().max().item() < TOLERANCE
    with pytest.raises(Exception, match="16"):
        run_file(boot, torch.zeros(1, 3, 45, 37))
    for size in ((45, 37), (17, 17), (8, 30)):
        x = torch.rand(2, 3, *size) * 2 - 1
        for direction in ("to:boot", "reconstruct"):
            expected = translator(x, direction)
            assert expected.abs().max() > 0.1  # images, not ~0: the comparison means something
            got = onnx(x, direction)
            assert got.shape == expected.shape == (2, 3, *size)
            assert (got - expected).abs().max().item() < TOLERANCE
    write_image(tmp_path / "in" / "odd.png", 37, 45)
    result = CliRunner().invoke(cli, ["translate", str(twostep_run), str(tmp_path / "in"), "--to", "boot",
                                      "--out", str(tmp_path / "out"), "--runtime", "onnx", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "odd.png").size == (37, 45)


def test_twostep_check_size_is_its_model_size_or_refused(twostep_run, tmp_path, monkeypatch, capsys):
    result = CliRunner().invoke(cli, ["export", str(twostep_run), "--onnx", str(tmp_path / "a.onnx"),
                                      "--check-size", "16"])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(sys, "argv", ["pixmorph", "export", str(twostep_run), "--onnx", str(tmp_path / "b.onnx"),
                                      "--check-size", "64"])
    from pixmorph.cli import main

    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 1
    *_, error = capsys.readouterr().err.splitlines()  # after the warning that this checkpoint's encoder is untrained
    assert error == ("error: check size 64: this twostep model's ONNX files take only its 16x16 model size (pixmorph "
                     "resizes other sizes to it and back), so they can be checked only at 16: give that or leave the "
                     "check size out")
    assert not list(tmp_path.glob("b.*"))


@pytest.mark.filterwarnings("ignore:.*exported without a record of its checkpoint")
def test_an_old_twostep_export_without_its_size_is_refused(twostep_run, tmp_path):
    """A two-step file from before exports fixed the size (dynamic H, W) fails inside ONNX Runtime at any other
    size: it is refused when loaded, in one line."""
    pytest.importorskip("onnxruntime")
    translator = pixmorph.load(twostep_run, precision="fp32")
    for direction, g in translator.generators.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(g, (torch.zeros(1, 3, 16, 16),), str(direction_file(tmp_path / "old.onnx", direction)),
                              dynamo=False, opset_version=17, input_names=["image"], output_names=["translated"],
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}})
    with pytest.raises(ValueError, match=r"^\S*old\.to-sneaker\.onnx: does not declare this model's 16x16 size"):
        pixmorph.load(twostep_run, onnx=tmp_path / "old.onnx")


def test_a_file_of_other_directions_is_named_as_such(exported, cyclegan_run, tmp_path):
    """A FUNIT export (f.reconstruct.onnx) given to a CycleGAN run was looked for as f.reconstruct.AtoB.onnx, a
    file nobody wrote; the error names the file given and the directions this checkpoint needs."""
    other = tmp_path / "f.reconstruct.onnx"
    other.write_bytes(exported[0].path.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"f.reconstruct.onnx: not an export of this cyclegan checkpoint's "
                                                r"directions \(AtoB, BtoA\)"):
        pixmorph.load(cyclegan_run, onnx=other)


def test_export_each_checks_the_checkpoint_when_called(tmp_path):
    """export_each was a generator: a missing checkpoint (or a classifier's) raised only at the first item, after
    `pixmorph export` had said 'exporting the generators of ...', so its error was not one line."""
    from pixmorph.export import export_each
    from pixmorph.train.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        export_each(tmp_path / "nowhere", tmp_path / "model.onnx")  # not iterated
    with pytest.raises(ValueError, match="size=0"):
        export_each(tmp_path / "nowhere", tmp_path / "model.onnx", size=0)
    assert not any(tmp_path.iterdir())


def test_translate_with_one_direction_file_needs_only_that_file(exported, cyclegan_run, tmp_path, write_image):
    """`translate --onnx model.AtoB.onnx` translates AtoB alone, yet refused to run without model.BtoA.onnx beside
    it (a file copied to another machine on its own): 'model.BtoA.onnx: no such ONNX file'."""
    alone = tmp_path / "alone" / "model.AtoB.onnx"
    alone.parent.mkdir()
    alone.write_bytes(exported[0].path.read_bytes())
    write_image(tmp_path / "in" / "a.png", 20, 20)
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--onnx", str(alone), "--device", "cpu"])
    assert result.exit_code == 0 and "translated AtoB" in result.output, (result.output, result.exception)
    translator = pixmorph.load(cyclegan_run).use_onnx(alone, direction="AtoB")
    assert translator.directions == ["AtoB"] and translator.runtime == "onnx"


def test_a_direction_file_of_another_checkpoint_is_named_before_a_missing_sibling(cyclegan_run, tmp_path, write_image):
    """A pix2pix export's p2p.AtoB.onnx given to a CycleGAN run was refused as 'p2p.BtoA.onnx: no such ONNX file',
    a file the user never named; the file given is what is wrong: it comes from another checkpoint."""
    from test_user_errors import make_checkpoint

    pix2pix = make_checkpoint(tmp_path / "p2p", "pix2pix", {"in_channels": 3, "out_channels": 3})
    [p2p_file] = [e.path for e in export_onnx(pix2pix, tmp_path / "p2p.onnx", size=32)]
    with pytest.raises(ValueError, match=r"p2p\.AtoB\.onnx: exported from the pix2pix checkpoint"):
        pixmorph.load(cyclegan_run, onnx=p2p_file)
    write_image(tmp_path / "in" / "a.png", 16, 16)
    result = CliRunner().invoke(cli, ["translate", str(cyclegan_run), str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--onnx", str(p2p_file), "--device", "cpu"])
    assert result.exit_code == 1 and "p2p.AtoB.onnx: exported from the pix2pix checkpoint" in str(result.exception)

"""The Python API as a user calls it: ``pixmorph.load(...)(images, ...)``. Untrained tiny models: what is checked
here is what goes in and what comes out, not the translations themselves."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from pixmorph.api import Translator
from pixmorph.fewshot import FewShotTranslator
from pixmorph.methods import deepsim
from pixmorph.config import RunConfig
from pixmorph.train.loop import build_method

MODELS = {
    "cyclegan": {"ngf": 4, "ndf": 4, "n_blocks": 1, "d_layers": 1, "in_channels": 1, "out_channels": 1},
    "funit": {"channels": 1, "nf": 4, "nf_mlp": 8, "latent_dim": 4, "n_res_blocks": 1, "n_down_content": 1,
              "n_down_class": 2, "nf_dis": 4, "n_res_blocks_dis": 4},
    "deepsim": {"ngf": 4, "ndf": 4, "n_downsampling": 1, "n_blocks": 1, "in_channels": 1},
    "twostep": {"class_names": ["bag", "boot"], "channels": 1, "image_size": 16, "z_dim": 4, "embed_dim": 4,
                "ngf": 4, "ndf": 4},
}


def untrained(method: str, **model) -> Translator:
    torch.manual_seed(0)
    data = {"root": "no-such-data", "channels": 1, "crop_size": 16}  # FUNIT's source classes: none to warn of
    cfg = RunConfig.from_dict({"method": method, "model": {**MODELS[method], **model}, "data": data})
    return Translator(build_method(cfg), cfg, torch.device("cpu"), 0, precision="fp32")


@pytest.fixture(scope="module")
def cyclegan() -> Translator:
    return untrained("cyclegan")


def test_tensors_that_are_not_chw_or_nchw_images_are_one_line_naming_their_shape(cyclegan):
    """A 2-D tensor was refused as 'translate_batch takes an NCHW batch; got a tensor of shape (8, 16)': a function
    the user did not call, and the shape of a slice the user never made."""
    with pytest.raises(ValueError, match=r"^a tensor of shape \(16, 16\): give one image as C x H x W or a batch as "
                                         r"N x C x H x W \(one grayscale H x W image: x\[None\]\)$"):
        cyclegan(torch.zeros(16, 16))
    with pytest.raises(ValueError, match=r"^a tensor of shape \(1, 1, 1, 16, 16\): give one image"):
        cyclegan(torch.zeros(1, 1, 1, 16, 16))


def test_float_tensors_of_0_to_255_are_refused(cyclegan):
    """8-bit pixel values as floats translated to noise without a word, as integer tensors did before they were
    refused; values a little past [-1, 1] (a bicubic resize's overshoot) still translate."""
    with pytest.raises(ValueError, match=r"^a tensor with values from 0 to 255: tensors are images in \[-1, 1\]; "
                                         r"from 8-bit pixels \(0-255\): x / 127.5 - 1$"):
        cyclegan(torch.arange(256.0).reshape(1, 1, 16, 16))
    assert cyclegan(torch.full((1, 16, 16), 1.1)).shape == (1, 16, 16)


def test_an_empty_batch_gives_an_empty_batch(cyclegan):
    """It was torch.cat's 'expected a non-empty list of Tensors' (an empty list already gave an empty list)."""
    assert cyclegan(torch.zeros(0, 1, 16, 16)).shape == (0, 1, 16, 16)
    assert cyclegan([]) == []


def test_a_list_of_tensors_and_pil_images_gives_each_back_as_it_came(cyclegan):
    """A list mixing them was an AttributeError from deep inside ('builtin_function_or_method' has no 'startswith':
    a tensor's .mode is a method)."""
    out = cyclegan([torch.zeros(1, 16, 16), Image.new("L", (20, 12))])
    assert isinstance(out[0], torch.Tensor) and out[0].shape == (1, 16, 16)
    assert isinstance(out[1], Image.Image) and out[1].size == (20, 12)


@pytest.mark.parametrize("size", [32.5, (16, 32), "16", True])
def test_a_size_that_is_not_an_int_is_one_line(cyclegan, size):
    """A float or a (width, height) pair was a TypeError from torch's resize kernel, or '<' between tuple and int."""
    with pytest.raises(TypeError, match=r"^size=.*: give one side in pixels \(an int; the output is size x size\), "
                                        r"or None for the full size$"):
        cyclegan(torch.zeros(1, 16, 16), size=size)


def test_a_model_translates_in_its_own_direction_when_none_is_named():
    """The default direction was AtoB for every model: a FUNIT checkpoint, whose one direction is reconstruct, was
    refused ('direction AtoB: this funit checkpoint has reconstruct') where `pixmorph translate` takes it."""
    funit = untrained("funit")
    assert funit(Image.new("L", (16, 16))).size == (16, 16)
    torch.testing.assert_close(funit(torch.zeros(1, 16, 16)), funit(torch.zeros(1, 16, 16), "reconstruct"))
    twostep = untrained("twostep")
    with pytest.raises(ValueError, match=r"^this twostep model translates to a class: name one \(bag, boot\)"):
        twostep(torch.zeros(1, 16, 16))
    assert twostep(torch.zeros(1, 16, 16), "to:boot").shape == (1, 16, 16)


def test_fewshot_class_images_may_be_a_folder_or_one_path(tmp_path, write_image):
    """A folder of class images (as `pixmorph fewshot --class-images DIR` takes it) was read character by
    character: '/: is a folder, not an image file'; one file given alone likewise."""
    folder = tmp_path / "class"
    files = [write_image(folder / f"{i}.png", 16, 16, mode="L", seed=i) for i in range(3)]
    model = FewShotTranslator(untrained("funit"))
    code = model.class_code(files)
    for given in (str(folder), folder, [folder], [str(files[0]), folder / "1.png", Image.open(files[2])]):
        torch.testing.assert_close(model.class_code(given), code)
    torch.testing.assert_close(model.class_code(str(files[0])), model.class_code([files[0]]))
    [image] = model(files[0], str(folder))
    assert image.size == (16, 16)


def test_deepsim_render_and_edit_take_one_file_alone(tmp_path, write_image):
    """render(model, "edit.png") read the path character by character ('/: is a folder, not an image file'); a PIL
    image was a TypeError from pathlib."""
    edges = edge_map(tmp_path / "edges.png", 32, 32, seed=0)  # (random noise would be warned of: no edge map)
    model = untrained("deepsim")
    [image] = deepsim.render(model, str(edges))
    torch.testing.assert_close(image, deepsim.render(model, [edges])[0])
    assert deepsim.edit(model, edges, out=tmp_path / "out") == [tmp_path / "out" / "edges.png"]
    with pytest.raises(TypeError, match=r"^Image: give primitive files \(paths\); to render an image in memory, "
                                        r"pixmorph.load\(run\)\(image\)$"):
        deepsim.render(model, [Image.new("L", (32, 32))])


def test_deepsim_files_given_to_the_api_get_the_warnings_and_refusals_of_translate(tmp_path):
    """pixmorph.load(run)(files) on a DeepSIM model rendered a colour photo given to an edges model, an edge map
    given to a seg model, and a segmentation with transparent pixels without a word, where `pixmorph translate`
    and `pixmorph edit` warn of the first two and refuse the third."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.where(np.arange(32)[:, None] < 16, np.uint8([230, 60, 20]), np.uint8([20, 40, 200]))
                    [..., None, :].repeat(32, 1)).save(photo)  # red over blue
    edges = edge_map(tmp_path / "edges.png", 32, 32, seed=0)
    edges_model, seg_model = untrained("deepsim"), untrained("deepsim", in_channels=3)
    with pytest.warns(UserWarning) as caught:
        edges_model([photo, edges])
        seg_model(str(edges))
    assert [str(w.message) for w in caught] == [
        f"{photo}: a colour image, but this edges model reads it as an edge map (black lines on white, read as gray)",
        f"{edges}: looks like an edge map (gray, black lines on white), but this seg model reads it as a "
        "segmentation"]
    rgba = np.dstack([np.asarray(Image.open(photo)), np.full((32, 32), 255, np.uint8)])
    rgba[:, 10:12, 3] = 0
    seg_with_alpha = tmp_path / "seg_with_alpha.png"
    Image.fromarray(rgba, "RGBA").save(seg_with_alpha)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(seg_with_alpha))}: a segmentation with transparent pixels"):
        seg_model(seg_with_alpha)


def test_a_deepsim_primitive_far_from_the_training_size_is_warned_of(tmp_path):
    """translate and pixmorph.load render a DeepSIM primitive at its own size: an edit drawn at three times the size
    of the training image rendered at a scale the model never learned, without a word."""
    model = untrained("deepsim")
    model.image_size = (32, 32)  # (width, height) of the image it trained on
    near, far = edge_map(tmp_path / "near.png", 32, 40, seed=0), edge_map(tmp_path / "far.png", 96, 96, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model([near])
        model([far], size=32)  # resized to the size given: no warning
    with pytest.warns(UserWarning) as caught:
        model([near, far])
    assert [str(w.message) for w in caught] == [
        f"{far}: 96x96, 3x the scale of the 32x32 image this model trained on; it renders at its own size, and DeepSIM "
        "draws shapes at the scale it learned: resize it to about 32x32"]


def test_deepsim_images_in_memory_get_the_checks_of_files(tmp_path):
    """pixmorph.load(run)(Image.open("edit.png")), the README's form, gave none of the warnings and refusals that the
    same file by its path gets; an image opened from a file is named by it, one made in memory as <image>."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(photo)
    edges = edge_map(tmp_path / "edges.png", 32, 32, seed=0)
    edges_model, seg_model = untrained("deepsim"), untrained("deepsim", in_channels=3)
    with pytest.warns(UserWarning) as caught:
        edges_model(Image.open(photo))
        seg_model([Image.open(edges), Image.open(photo), Image.open(edges).convert("RGB")])
    assert [str(w.message).split(": ")[0] for w in caught] == [str(photo), str(edges), str(photo), "<image>"]
    assert [str(w.message).split(", but")[0].split(": ", 1)[1] for w in caught] == [
        "a colour image", "looks like an edge map (gray, black lines on white)",
        "looks like a photo (thousands of colours, not flat regions)",
        "looks like an edge map (gray, black lines on white)"]
    rgba = Image.new("RGBA", (32, 32), (200, 30, 30, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 8, 32))
    with pytest.raises(ValueError, match=r"^<image>: a segmentation with transparent pixels"):
        seg_model(rgba)


def edge_map(path, width: int, height: int, seed: int):
    """A drawn edge map: black horizontal lines on white."""
    lines = np.full((height, width), 255, np.uint8)
    lines[np.random.default_rng(seed).integers(0, height, 4)] = 0
    Image.fromarray(lines).save(path)
    return path


def rendering_calls(model: Translator) -> list[int]:
    """The batch sizes the renderer is called with, appended as it runs; not the memory estimate's probes, which
    run it on fake tensors (shapes only)."""
    from torch._subclasses.fake_tensor import FakeTensor

    sizes: list[int] = []
    model.generators["AtoB"].register_forward_hook(
        lambda module, args, out: None if isinstance(args[0], FakeTensor) else sizes.append(args[0].shape[0]))
    return sizes


@pytest.mark.parametrize("norm, per_image", [("instance", None), ("batch", True), ("batch", False)])
def test_deepsim_renders_primitives_of_one_shape_together_as_one_at_a_time(tmp_path, norm, per_image):
    """render (and `pixmorph edit`) drew one primitive per generator call; primitives of one shape now share calls,
    batch_size (default 8) at a time, and each renders as it did alone: the generator normalises image by image
    (instance norm, or batch norm of a model trained at batch 1), or by batch norm's running statistics."""
    from pixmorph.nn.norm import normalise_per_image

    files = [edge_map(tmp_path / f"{i}.png", 48 if i % 3 == 0 else 32, 32, seed=i) for i in range(7)]
    model = untrained("deepsim", norm=norm)
    if per_image is not None:
        normalise_per_image(model.method.nets, per_image)
    calls = rendering_calls(model)
    alone = deepsim.render(model, files, batch_size=1)
    assert calls == [1] * 7
    calls.clear()
    together = deepsim.render(model, files)
    assert sorted(calls) == [3, 4]  # the three 48x32 maps (0, 3, 6), the four 32x32 ones
    assert [x.shape for x in together] == [x.shape for x in alone]
    for got, want in zip(together, alone):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        assert got.untyped_storage().nbytes() == got.numel() * 4  # its own, not a view of its batch
    calls.clear()
    written = deepsim.edit(model, files, out=tmp_path / "out", batch_size=2)
    assert sorted(calls) == [1, 2, 2, 2] and [p.name for p in written] == [f"{i}.png" for i in range(7)]


def test_deepsim_render_batches_no_more_than_fit_in_memory(tmp_path, monkeypatch):
    """A batch of 8 full-size primitives needs 8 times one's memory, and a CPU's running out is a kill without a
    word: the batch is cut to what the memory estimate (pixmorph.fullsize_memory) says fits, one at the least."""
    import pixmorph.fullsize_memory as memory

    model = untrained("deepsim")
    fixed, per_pixel = memory.bytes_per_pixel(model.method.renderer, 1)
    one = memory.PEAK_FACTOR * (fixed + per_pixel * 32 * 32)
    cpu = torch.device("cpu")
    assert memory.batch_that_fits(model.method.renderer, 1, 32 * 32, 8, cpu, available=int(2.5 * one)) == 2
    assert memory.batch_that_fits(model.method.renderer, 1, 32 * 32, 8, cpu, available=100 * int(one)) == 8
    files = [edge_map(tmp_path / f"{i}.png", 32, 32, seed=i) for i in range(4)]
    calls = rendering_calls(model)
    monkeypatch.setattr(memory, "available_memory", lambda: 10)
    deepsim.render(model, files)
    assert calls == [1] * 4


def test_the_memory_estimate_probes_a_generator_on_its_own_device():
    """The estimate ran its probe on CPU tensors, so a generator on a GPU failed it (two devices) and nothing was
    estimated: deepsim.render's batches (edit's, 8 by default) were never cut to what fits there, and ran out of
    GPU memory where one at a time fitted. The probe runs on the generator's device (meta here, standing in for a
    GPU: shapes only, like the fake tensors of the probe)."""
    import pixmorph.fullsize_memory as memory

    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Conv2d(8, 3, 3, padding=1))
    fixed, per_pixel = memory.bytes_per_pixel(generator, 1)
    one = memory.PEAK_FACTOR * (fixed + per_pixel * 32 * 32)
    generator.to("meta")
    assert memory.bytes_per_pixel(generator, 1) == (fixed, per_pixel)
    assert memory.batch_that_fits(generator, 1, 32 * 32, 8, torch.device("cuda"), available=int(2.5 * one)) == 2


def test_twostep_methods_name_the_size_their_networks_take():
    """translator.method.translate(x, c) of images at another size was a matmul error ('mat1 and mat2 shapes cannot
    be multiplied (1x256 and 64x4)')."""
    method = untrained("twostep").method
    assert method.translate(torch.zeros(2, 1, 16, 16), "boot").shape == (2, 1, 16, 16)
    for x in (torch.zeros(1, 1, 32, 32), torch.zeros(1, 16, 16)):
        with pytest.raises(ValueError, match=rf"^images of shape {re.escape(str(tuple(x.shape)))}: this model's networks "
                                             r"take N x 1 x 16 x 16; pixmorph.load\(run\)\(images, 'to:CLASS'\) resizes"):
            method.translate(x, "boot")
    with pytest.raises(ValueError, match=r"^images of shape \(1, 3, 16, 16\)"):
        method.reconstruct(torch.zeros(1, 3, 16, 16))
    assert method.sample(torch.randn(2, 4), "bag").shape == (2, 1, 16, 16)
    for z in (torch.randn(2, 8), torch.randn(4)):
        with pytest.raises(ValueError, match=rf"^z of shape {re.escape(str(tuple(z.shape)))}: this model's generator "
                                             r"takes N x 4 codes \(torch.randn\(n, 4\)\)$"):
            method.sample(z, "bag")


def test_pixmorph_load_shows_the_options_it_takes():
    """pixmorph.load was (checkpoint, device, **options): help() and an editor showed none of its options."""
    import inspect

    import pixmorph
    from pixmorph import api

    shown = inspect.signature(pixmorph.load).parameters
    assert [(p.name, p.default) for p in shown.values()] == \
        [(p.name, p.default) for p in inspect.signature(api.load).parameters.values()]


def test_a_config_takes_pathlib_paths_for_its_folders(tmp_path):
    """RunConfig.from_dict refused a Path ('data.root: expected text (str), got PosixPath(...)'), and a TrainConfig
    built with one failed at the first save ('Object of type PosixPath is not JSON serializable')."""
    import json

    from pixmorph.config import DataConfig, TrainConfig

    given = RunConfig.from_dict({"data": {"root": tmp_path / "data"}, "train": {"out": tmp_path / "run"}})
    built = RunConfig(data=DataConfig(root=tmp_path / "data"), train=TrainConfig(out=tmp_path / "run"))
    for cfg in (given, built):
        assert (cfg.data.root, cfg.train.out) == (str(tmp_path / "data"), str(tmp_path / "run"))
        json.dumps(cfg.to_dict())


def test_fewshot_refuses_what_the_translator_refuses_in_one_line():
    """Few-shot took 8-bit tensors as values in [-1, 1] (noise out), and a 3-channel content tensor for a gray model,
    a 2-D tensor or a NumPy array were torch's or Python's own errors from inside."""
    import numpy as np

    model = FewShotTranslator(untrained("funit"))
    k = [Image.new("L", (16, 16))]
    with pytest.raises(ValueError, match=r"^this funit model takes 1-channel images and got 3-channel ones"):
        model(torch.zeros(1, 3, 16, 16), k)
    with pytest.raises(ValueError, match=r"3-channel ones \(a tensor of shape \(3, 16, 16\)\)$"):  # as given, not batched
        model(torch.zeros(3, 16, 16), k)
    for content in (torch.zeros(1, 1, 16, 16, dtype=torch.uint8), torch.full((1, 1, 16, 16), 200.0), torch.zeros(16, 16)):
        with pytest.raises(ValueError, match=r"^a (torch.uint8 tensor|tensor with values|tensor of shape)"):
            model(content, k)
    with pytest.raises(ValueError, match=r"^a torch.uint8 tensor"):
        model.class_code(torch.zeros(2, 1, 16, 16, dtype=torch.uint8))
    for content, classes in ((np.zeros((16, 16), np.uint8), k), (7, k), (torch.zeros(1, 1, 16, 16), [np.zeros((16, 16))])):
        with pytest.raises(TypeError, match=r"^(ndarray|int): give a PIL image, an image file path"):
            model(content, classes)


def test_deepsim_make_config_reads_its_files_as_the_command_does(tmp_path, write_image):
    """make_config(photo, edges="mine.png") trained on Canny edges of the photo, the file ignored; beside a
    primitive, the edge map was dropped and a seg model trained where `--seg S --edges E` trains seg+edges."""
    photo, seg = write_image(tmp_path / "photo.png", 32, 32), write_image(tmp_path / "seg.png", 32, 32)
    edges = write_image(tmp_path / "edges.png", 32, 32, mode="L")
    cfg = deepsim.make_config(photo, edges=edges, out=tmp_path / "run")
    assert (cfg.data.options["primitive"], cfg.data.options["kind"], cfg.model["in_channels"]) == (str(edges), "edges", 1)
    cfg = deepsim.make_config(photo, primitive=seg, edges=edges, out=tmp_path / "run")
    assert (cfg.data.options["edges"], cfg.data.options["kind"], cfg.model["in_channels"]) == (str(edges), "seg+edges", 4)


def test_a_seg_edges_model_given_one_image_says_how_to_give_both_from_python(tmp_path, write_image):
    """The translator and render pointed a Python caller to the command only ('use `pixmorph edit` with --edges')."""
    seg_edges = untrained("deepsim", in_channels=4)
    with pytest.raises(ValueError, match=r"from Python deepsim.render\(model, SEG, edges=EDGES\)\)$"):
        seg_edges(Image.new("RGB", (32, 32)))
    with pytest.raises(ValueError, match=r"\(--edges; edges= from Python; 1 needed for"):
        deepsim.render(seg_edges, write_image(tmp_path / "seg.png", 32, 32))


def test_a_new_run_over_a_checkpoint_names_the_options_a_python_caller_sets(cyclegan_run, tmp_path):
    """The refusal named only the command's --resume and --overwrite."""
    from pixmorph.train import checkpoint

    with pytest.raises(FileExistsError, match=r"continue it with --resume, or start over with --overwrite \(from "
                                              r"Python: train.resume=True, or train.overwrite=True\)$"):
        checkpoint.refuse_to_start_over(cyclegan_run)


def test_translators_say_what_they_are_in_a_notebook(cyclegan_run):
    """repr was '<pixmorph.api.Translator object at 0x...>'."""
    import pixmorph

    assert repr(pixmorph.load(cyclegan_run, precision="fp32")) == \
        f"Translator(cyclegan, step 3, directions: AtoB, BtoA; cpu, torch fp32, from {cyclegan_run / 'checkpoint'})"
    assert repr(FewShotTranslator(untrained("funit"))) == "FewShotTranslator(funit, step 0, 16 px; cpu, torch fp32)"


def test_load_takes_any_file_of_a_run_and_names_the_runs_of_a_folder_of_runs(cyclegan_run):
    """The run's config.json and the checkpoint's state.pt were 'not a pixmorph checkpoint' (its weights file and
    config.json loaded), and a folder of runs did not say what it holds."""
    import pixmorph
    from pixmorph.train.checkpoint import CheckpointError

    for file in (cyclegan_run / "config.json", cyclegan_run / "checkpoint" / "state.pt"):
        assert pixmorph.load(file).checkpoint == cyclegan_run / "checkpoint"
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(cyclegan_run.parent))}: not a pixmorph checkpoint .*; "
                                              rf"it holds run folders \({cyclegan_run.name}/\): give one$"):
        pixmorph.load(cyclegan_run.parent)


def test_fewshot_gives_a_chw_image_back_for_a_chw_image():
    """A CHW content tensor came back as a 1 x C x S x S batch, where pixmorph.load's translator gives CHW."""
    model = FewShotTranslator(untrained("funit"))
    k = [Image.new("L", (16, 16))]
    assert model(torch.zeros(1, 16, 16), k).shape == (1, 16, 16)
    assert model(torch.zeros(2, 1, 16, 16), k).shape == (2, 1, 16, 16)


def test_a_funit_translator_asked_for_a_class_points_a_python_caller_to_load_fewshot():
    """The error named only the `pixmorph fewshot` command."""
    with pytest.raises(ValueError, match=r"^direction 'to:cat': this funit checkpoint has reconstruct .*; from Python "
                                         r"pixmorph.fewshot.load_fewshot\(CKPT\)\(content, class_images\)\)$"):
        untrained("funit")(torch.zeros(1, 16, 16), "to:cat")


def test_a_checkpoint_of_another_method_names_the_python_call_that_takes_it():
    """load_fewshot of a CycleGAN run and deepsim.render of one named only the commands that take them."""
    with pytest.raises(ValueError, match=r"few-shot translation needs a funit one \(use `pixmorph translate` for "
                                         r"cyclegan, or pixmorph.load\(CKPT\) from Python\)$"):
        FewShotTranslator(untrained("cyclegan"))
    with pytest.raises(ValueError, match=r"edit renders DeepSIM ones \(use `pixmorph translate`, or "
                                         r"pixmorph.load\(CKPT\) from Python, for other methods\)$"):
        deepsim.render(untrained("cyclegan"), ["edit.png"])


@pytest.mark.parametrize("size", [32.5, 0])
def test_fewshot_checks_size_as_the_translator_does(size):
    """size=32.5 was torch's resize error, and size=0 translated at the training size without a word."""
    model = FewShotTranslator(untrained("funit"))
    with pytest.raises((TypeError, ValueError), match=r"^size=.*: give (one side in pixels|a side of 1 pixel)"):
        model(torch.zeros(1, 1, 16, 16), [Image.new("L", (16, 16))], size=size)


def test_a_resume_with_nothing_left_names_the_option_a_python_caller_sets(cyclegan_run, tmp_path, capsys):
    """It said to raise --steps, the command's flag, only."""
    import json
    import shutil

    from pixmorph.train.loop import train

    run = shutil.copytree(cyclegan_run, tmp_path / "run")
    cfg = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    cfg.train.out, cfg.train.resume = str(run), True
    train(cfg, progress=False)
    assert "nothing to train (raise --steps, train.max_steps from Python, or the epochs)" in capsys.readouterr().out


def test_a_run_goes_on_from_python_with_the_config_it_trained_with(cyclegan_run, tmp_path):
    """From Python a resume took the config it was given: a key left out was the default, not the run's. The run's
    own config is its checkpoint's, which RunConfig.of_run reads (the checkpoint's copy even where RUN/config.json
    was not rewritten after it, a kill -9 between the two)."""
    import json
    import shutil

    from pixmorph.train.loop import train

    run = shutil.copytree(cyclegan_run, tmp_path / "run")
    (run / "config.json").write_text(json.dumps({"method": "cyclegan", "train": {"batch_size": 5}}))
    cfg = RunConfig.of_run(run)
    assert cfg.model["ngf"] != 64 and cfg.train.batch_size == 2 and cfg.train.max_steps == 3
    cfg.train.out, cfg.train.resume, cfg.train.max_steps = str(run), True, 4
    train(cfg, progress=False)
    assert json.loads((run / "checkpoint" / "config.json").read_text())["step"] == 4

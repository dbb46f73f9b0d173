"""FUNIT few-shot translation: class splits never leak a target class into training, the K-shot class code
ignores the order of the K images, bad few-shot input gets a clear message, and a tiny model trained by
the loop translates held-out classes better than both baselines (content unchanged, nearest class image)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageFont

from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.fewshot import ClassSplit, split_classes
from pixmorph.data.fewshot_eval import l1
from pixmorph.data.glyphs import (
    CHARACTERS,
    Font,
    char_file,
    matplotlib_font_dir,
    render_glyph,
    write_task,
)
from pixmorph.data.layouts import build_dataset
from pixmorph.fewshot import load_fewshot, source_class_overlap
from pixmorph.fewshot_cli import fewshot as fewshot_command
from pixmorph.nn.funit_generator import FewShotGenerator
from pixmorph.train.loop import train

SIZE = 16
CHARS = "0ACEHKMRSWXaehkmnrswx"  # shapes far apart, so a wrong character costs L1
N_SOURCE, N_TARGET = 60, 4
TINY = dict(channels=1, nf=16, nf_mlp=32, latent_dim=16, n_res_blocks=1, n_down_content=1, n_down_class=2,
            nf_dis=8, n_res_blocks_dis=4, num_classes=N_SOURCE, r_w=1.0, lr_gen=1e-3, lr_dis=1e-3)
MEERKAT = Path(__file__).resolve().parents[2] / "shared" / "data" / "funit"



def glyph_shapes() -> dict[str, np.ndarray]:
    font = ImageFont.truetype(str(matplotlib_font_dir() / "DejaVuSans-Bold.ttf"), 22)
    return {c: np.asarray(Image.fromarray(render_glyph(font, c)).resize((SIZE, SIZE), Image.Resampling.BOX)) for c in CHARS}


def write_schemes(root: Path, seed: int = 0) -> tuple[Path, list[str], list[str]]:
    """Classes = folders of the same bold glyphs, each class drawn white on black or black on white (its
    style), as class folders; the last N_TARGET classes are targets (named in fewshot.json). The style of
    a class is only visible in its images, so a model must read it from the K class images."""
    rng = np.random.default_rng(seed)
    shapes = glyph_shapes()
    names = [f"class{i:02d}" for i in range(N_SOURCE + N_TARGET)]
    for i, name in enumerate(names):
        invert = rng.uniform() < 0.5 if i < N_SOURCE else i % 2 == 0  # both styles among the targets
        (root / name).mkdir(parents=True)
        for c, a in shapes.items():
            Image.fromarray(255 - a if invert else a).save(root / name / f"{char_file(c)}.png")
    sources, targets = names[:N_SOURCE], names[N_SOURCE:]
    (root / "fewshot.json").write_text(json.dumps({"flip": False, "target_classes": targets}))
    return root, sources, targets


@pytest.fixture(scope="module")
def schemes(tmp_path_factory):
    return write_schemes(tmp_path_factory.mktemp("schemes"))


def run_config(data: Path, out: Path, steps: int, model: dict | None = None, channels: int = 1) -> RunConfig:
    return RunConfig(
        method="funit", model={**TINY, **(model or {})},
        data=DataConfig(root=str(data), load_size=SIZE, crop_size=SIZE, flip=False, channels=channels, num_workers=0),
        train=TrainConfig(out=str(out), batch_size=16, lr_policy="constant", epochs=1000, epochs_decay=0,
                          max_steps=steps, log_every=50, sample_every=10**6, checkpoint_every=10**6,
                          tensorboard=False, device="cpu"))


@pytest.fixture(scope="module")
def trained(schemes, tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(run_config(schemes[0], tmp_path_factory.mktemp("run"), steps=250), progress=False)
    finally:
        torch.set_num_threads(before)


def test_target_classes_never_reach_training(schemes):
    root, sources, targets = schemes
    split = split_classes(root)
    assert list(split.source) == sources and list(split.target) == targets
    cfg = DataConfig(root=str(root), load_size=SIZE, crop_size=SIZE, channels=1, num_workers=0)
    dataset = build_dataset("fewshot", root, cfg)
    assert {p.parent.name for p, _ in dataset.items} == set(sources)
    for i in range(0, len(dataset), 7):  # class images are drawn from the training classes only
        assert int(dataset[(i, i)]["class_label"]) < len(sources)
    # the same class in both lists is refused
    with pytest.raises(ValueError, match="both source .* and target"):
        ClassSplit({"a": [], "b": []}, {"b": []})
    with pytest.raises(ValueError, match="both"):
        split_classes(root, {"source_classes": sources[:2], "target_classes": sources[1:3]})
    # as --set gives a list typed without brackets: comma-separated names
    split = split_classes(root, {"target_classes": ",".join(targets)})
    assert list(split.target) == targets and list(split.source) == sources
    with pytest.raises(ValueError, match=r"target_classes=3.5: expected a list of class names"):
        split_classes(root, {"target_classes": 3.5})
    from pixmorph.data.fewshot import class_names_option

    assert class_names_option(3, "k") == ["3"] and class_names_option([3, 4], "k") == ["3", "4"]  # folders named by number, as YAML reads them


def test_list_files_split(tmp_path):
    """FUNIT list files (class/filename lines), as the glyphs task writes them: one font per class."""
    fonts = [(Font(f"f{i}", f"Font {i}", Path("x")), np.full((len(CHARACTERS), 4, 4), i * 20, np.uint8))
             for i in range(12)]
    write_task(tmp_path, fonts)
    split = split_classes(tmp_path)
    assert split.target and not set(split.source) & set(split.target)
    train_lines = (tmp_path / "train_list.txt").read_text().split()
    assert all(line.split("/")[0] in split.source for line in train_lines)
    (tmp_path / "leak_list.txt").write_text(f"{next(iter(split.source))}/{char_file('A')}.png\n")
    with pytest.raises(ValueError, match="both source"):  # a target list naming a training font
        split_classes(tmp_path, {"target_list": "leak_list.txt"})
    (tmp_path / "bad_list.txt").write_text("no-slash-here.png\n")
    with pytest.raises(ValueError, match="class/filename"):
        split_classes(tmp_path, {"source_list": "bad_list.txt"})


def test_a_folder_of_class_folders_given_as_the_class_folders_says_which_to_give(tmp_path):
    """ROOT/train/<class>/ and ROOT/test/<class>/ (two-step's layout) said only "ROOT/test: no image files ...
    give the folder of the images themselves", as if test/ were to hold images."""
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("L", (8, 8)).save(tmp_path / split / c / "0.png")
    with pytest.raises(ValueError) as info:
        split_classes(tmp_path)
    assert str(info.value) == (f"{tmp_path}: train/ holds folders (cat/, dog/), not images: the few-shot layout is "
                               f"class folders of images, {tmp_path}/<class>/*.png; for the classes in train/ give "
                               f"--data {tmp_path / 'train'}")
    assert list(split_classes(tmp_path / "train").source) == ["cat", "dog"]


@pytest.mark.parametrize("file, content, says", [
    ("fewshot.json", b"{bad json", "fewshot.json: unreadable (Expecting property name"),  # said without the file
    ("fewshot.json", b"[1]", "fewshot.json: expected a JSON object of data options"),  # AttributeError traceback
    ("train_list.txt", b"\xff\xfe\x00", "train_list.txt: not a text list file (invalid start byte at byte 0)"),
])
def test_a_damaged_fewshot_json_or_list_file_names_it(tmp_path, file, content, says):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / c / "0.png")
    (tmp_path / file).write_bytes(content)
    with pytest.raises(ValueError) as info:
        split_classes(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}/{says}"), str(info.value)


def test_a_flip_that_is_not_true_or_false_is_refused(tmp_path):
    """`"flip": "false"` in fewshot.json, or --set data.options.flip=maybe, read as true (bool of a string): the data
    that a mirror changes were mirrored. It is now refused, naming where it came from."""
    from pixmorph.data.layouts import layout_options

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / c / "0.png")
    cfg = DataConfig(root=str(tmp_path), load_size=8, crop_size=8, channels=1, num_workers=0)
    (tmp_path / "fewshot.json").write_text('{"flip": "false"}')
    with pytest.raises(ValueError, match=f"^{tmp_path}/fewshot.json: flip='false': give true or false$"):
        build_dataset("fewshot", tmp_path, cfg)
    with pytest.raises(ValueError, match="^data.options.flip='maybe': give true or false$"):
        layout_options("fewshot", {"flip": "maybe"})
    (tmp_path / "fewshot.json").write_text('{"flip": false}')
    assert build_dataset("fewshot", tmp_path, cfg).transform.flip is False
    cfg.options = {"flip": True}
    assert build_dataset("fewshot", tmp_path, cfg).transform.flip is True


def test_class_code_ignores_the_order_of_the_k_images():
    torch.manual_seed(0)
    g = FewShotGenerator(channels=3, nf=8, nf_mlp=16, latent_dim=8, n_res=1, n_down_content=2, n_down_class=2).eval()
    images = torch.rand(2, 5, 3, SIZE, SIZE) * 2 - 1
    content = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    order = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(g.class_code(images), g.class_code(images[:, order]))
        torch.testing.assert_close(g(content, images), g(content, images[:, order]))
        assert not torch.allclose(g.class_code(images[:, :1]), g.class_code(images))  # the K images all count


def episodes(root: Path, sources: list[str], targets: list[str], k: int, seed: int = 0):
    """For each target class and character: content from a random source class, K other characters of the
    target class, and the truth (the character in the target class)."""
    rng = np.random.default_rng(seed)
    load = lambda cls, c: torch.from_numpy(np.asarray(Image.open(root / cls / f"{char_file(c)}.png"), np.float32) / 127.5 - 1)[None]
    content, class_images, truth = [], [], []
    for t in targets:
        for c in CHARS:
            others = rng.choice([o for o in CHARS if o != c], size=k, replace=False)
            content.append(load(sources[rng.integers(len(sources))], c))
            class_images.append(torch.stack([load(t, o) for o in others]))
            truth.append(load(t, c))
    return torch.stack(content), torch.stack(class_images), torch.stack(truth)


@pytest.mark.slow
def test_tiny_model_beats_both_baselines_on_unseen_classes(schemes, trained):
    root, sources, targets = schemes
    model = load_fewshot(trained)
    content, class_images, truth = episodes(root, sources, targets, k=5)
    with torch.no_grad():
        out = model.generator(content, class_images)
    d = (class_images - content[:, None]).abs().flatten(2).mean(2)
    nearest = class_images[torch.arange(len(d)), d.argmin(1)]
    err, err_content, err_nearest = l1(out, truth), l1(content, truth), l1(nearest, truth)
    print(f"L1 to truth: FUNIT {err:.3f}, content unchanged {err_content:.3f}, nearest class image {err_nearest:.3f}")
    assert err < 0.85 * err_nearest and err < 0.5 * err_content


def test_fewshot_bf16_is_close_to_fp32(schemes, trained):
    """``precision`` (auto on CUDA and AMX CPUs is bf16, with channels_last): the same translation up to bf16 rounding."""
    root, _, targets = schemes
    files = sorted((root / targets[0]).iterdir())[:3]
    exact, fast = load_fewshot(trained, precision="fp32"), load_fewshot(trained, precision="bf16")
    assert fast.translator.channels_last
    code = exact.class_code(files)
    torch.testing.assert_close(fast.class_code(files), code, atol=0.05, rtol=0.05)
    content = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    want, got = exact.translate_code(content, code), fast.translate_code(content, code)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert (got - want).abs().max() < 0.1


def test_fewshot_api_bad_input(schemes, trained, tmp_path):
    root, sources, targets = schemes
    model = load_fewshot(trained)
    with pytest.raises(ValueError, match="K = 0"):
        model.class_code([])
    files = sorted((root / targets[0]).iterdir())[:3]
    # mixed sizes and RGB class images for a grayscale model: each image is converted and resized
    big = Image.open(files[0]).convert("RGB").resize((40, 30))
    code = model.class_code([big, files[1], Image.open(files[2])])
    assert code.shape == (1, TINY["latent_dim"])
    out = model(Image.open(files[0]), [big, files[1]])
    assert out[0].size == (SIZE, SIZE) and out[0].mode == "L"
    # class images from a training class: a warning, not a few-shot test
    assert source_class_overlap(model, sorted((root / sources[0]).iterdir())[:2]) is not None
    assert source_class_overlap(model, files) is None
    with pytest.warns(UserWarning, match="source class"):  # from Python too, when given files
        model(Image.open(files[0]), sorted((root / sources[0]).iterdir())[:2])
    # a code computed once is reused: the same output as from the images; a code of another size is refused
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # files of an unseen class: no warning
        code = model.class_code(files)
    x = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    assert torch.equal(model(x, code), model(x, files)) and torch.equal(model(x, code[0]), model(x, files))
    with pytest.raises(ValueError, match="class code of 3 values"):
        model(x, torch.zeros(1, 3))


def test_class_image_tensors_of_no_image_shape_are_said_as_given(trained):
    """An H x W class image whose size matched the code's (8 x 8 = 64 values) was taken as a class code without a
    word, and a 5-d tensor was said as its first item's shape ('got a tensor of shape (2, 1, 8, 8)')."""
    model = load_fewshot(trained)
    x = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
    side = int(TINY["latent_dim"] ** 0.5)
    assert side * side == TINY["latent_dim"]
    with pytest.raises(ValueError, match=rf"^a tensor of shape \({side}, {side}\): give one image as C x H x W"):
        model(x, torch.rand(side, side) * 2 - 1)
    with pytest.raises(ValueError, match=r"^a tensor of shape \(1, 2, 1, 8, 8\): give one image"):
        model.class_code(torch.rand(1, 2, 1, 8, 8))
    code = model.class_code(torch.rand(2, 1, 8, 8) * 2 - 1)
    assert torch.equal(model(x, code), model(x, code[0]))  # codes: 1 x latent_dim or latent_dim


def test_fewshot_cli(schemes, trained, tmp_path):
    root, sources, targets = schemes
    runner = CliRunner()
    content = sorted((root / sources[0]).iterdir())[:2]
    args = [str(trained), "--content", str(content[0]), "--content", str(content[1]),
            "--class-images", str(root / targets[0]), "--out", str(tmp_path / "out"), "--device", "cpu"]
    result = runner.invoke(fewshot_command, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{p.stem}.png" for p in content)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(fewshot_command, [*args[:5], "--class-images", str(empty), "--out", str(tmp_path / "o2")])
    assert result.exit_code != 0 and "no image files" in str(result.exception)
    result = runner.invoke(fewshot_command, [*args[:5], "--class-images", str(root / sources[1]), "--out", str(tmp_path / "o3")])
    assert result.exit_code == 0 and "source class" in result.output


def test_a_class_image_given_twice_counts_once(schemes, trained, tmp_path):
    """`--class-images cls/ cls/a.png` (or the folder twice) counted the repeated files again: 'K=6' for 3 images,
    each repeat weighing twice in the mean code. Each file now counts once, with a warning naming a repeat."""
    root, sources, targets = schemes
    folder = root / targets[0]
    files = sorted(folder.iterdir())
    content = sorted((root / sources[0]).iterdir())[0]
    result = CliRunner().invoke(fewshot_command, [str(trained), "--content", str(content), "--class-images", str(folder),
                                                  str(files[0]), "--out", str(tmp_path / "o"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"warning: class image {files[0]} given more than once: each counted once (K = {len(files)})" in result.output
    assert f"with K={len(files)} class images" in result.output
    model = load_fewshot(trained)
    with pytest.warns(UserWarning, match=r"given more than once: each counted once \(K = 2\)"):
        twice = model.class_code([files[0], files[1], str(files[0])])
    assert torch.equal(twice, model.class_code(files[:2]))


def test_fewshot_help_lists_the_path_options(tmp_path):
    """--content and --class-images are click options (listed and documented), each taking several paths."""
    result = CliRunner().invoke(fewshot_command, ["--help"])
    assert result.exit_code == 0, result.output
    options = result.output.split("Options:", 1)[1]
    assert "--content PATH..." in options and "Content image(s) and/or folder(s)" in options
    assert "--class-images PATH..." in options and "K >= 1 images of the target class" in options
    a, b, c, d, e = (str(tmp_path / f"{n}.png") for n in "abcde")
    for path in (a, b, c, d, e):
        Image.new("L", (4, 4)).save(path)
    # several paths after an option, another option in between, the option repeated, the --opt=value form
    ctx = fewshot_command.make_context("fewshot", [str(tmp_path), "--content", a, b, "--out", str(tmp_path / "o"), c,
                                                   "--class-images", d, "--content=" + e])
    assert ctx.params["content"] == (a, b, c, e) and ctx.params["class_images"] == (d,)
    assert ctx.params["out"] == str(tmp_path / "o")
    result = CliRunner().invoke(fewshot_command, [str(tmp_path), "--content", a, "--class-images", "--out", "o"])
    assert result.exit_code == 2 and "Missing option '--class-images'" in result.output


def test_translate_cli_reconstructs_without_a_direction(schemes, trained, tmp_path):
    """`pixmorph translate` on a FUNIT checkpoint picks its only direction (reconstruct); with
    --runtime onnx and no exported file it exports first, at the training size, and agrees with torch
    (in fp32, as ONNX Runtime runs; auto would be bf16 on a CPU with AMX)."""
    from pixmorph.cli import cli

    root, sources, _ = schemes
    content = sorted((root / sources[0]).iterdir())[:2]
    runner = CliRunner()
    outputs = {}
    runtimes = ["torch", "onnx"] if _has("onnxruntime") else ["torch"]
    for runtime in runtimes:
        out = tmp_path / runtime
        result = runner.invoke(cli, ["translate", str(trained), *map(str, content), "--out", str(out),
                                     "--device", "cpu", "--runtime", runtime, "--precision", "fp32"])
        assert result.exit_code == 0, result.output
        assert "2 images translated reconstruct" in result.output
        outputs[runtime] = [np.asarray(Image.open(out / f"{p.stem}.png"), dtype=np.int16) for p in content]
    if "onnx" in outputs:
        assert all(np.abs(a - b).max() <= 2 for a, b in zip(outputs["torch"], outputs["onnx"]))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_images_below_the_encoders_least_side_are_padded(schemes, tmp_path, one_thread):
    """A 1x1 image to `translate` (a reconstruction at full size) and a content image at `fewshot --size 1`:
    the encoders' 7x7 reflection pads failed below 4 pixels with a traceback ("Padding size should be less
    than the corresponding input dimension"); now they are padded up and cropped back, as CycleGAN's are.
    A crop below that side is refused before training in one line naming the crop size that fits."""
    from pixmorph.cli import cli

    run = train(run_config(schemes[0], tmp_path / "run", steps=1), progress=False)
    dot = tmp_path / "dot.png"
    Image.new("L", (1, 1), 200).save(dot)
    result = CliRunner().invoke(cli, ["translate", str(run), str(dot), "--out", str(tmp_path / "t"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "t" / "dot.png").size == (1, 1)
    class_image = sorted((schemes[0] / schemes[2][0]).iterdir())[0]
    result = CliRunner().invoke(fewshot_command, [str(run), "--content", str(dot), "--class-images", str(class_image),
                                                  "--out", str(tmp_path / "f"), "--size", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "f" / "dot.png").size == (1, 1)
    cfg = run_config(schemes[0], tmp_path / "small", steps=1)
    cfg.data.crop_size = 2
    with pytest.raises(ValueError, match=r"^data.crop_size=2: .* at least 4: use --crop-size 4"):
        train(cfg, progress=False)


def test_a_crop_below_the_discriminator_s_least_side_is_refused(schemes, tmp_path):
    """The paper's 10-block discriminator pools four times: 16-px crops (which its generator takes) ended the first
    step in a traceback ("Padding size should be less than the corresponding input dimension ... [4, 1024, 1, 1]"),
    as did a crop below the generator's stride, which the loop's check skips. Both are refused before training."""
    from pixmorph.nn.funit_discriminator import MultiTaskDiscriminator

    D = MultiTaskDiscriminator(1, 2, 4, 10)
    assert D.min_size == 17 and MultiTaskDiscriminator(1, 2, 4, 4).min_size == 4
    D(torch.zeros(1, 1, 17, 17), torch.zeros(1, dtype=torch.long))
    with pytest.raises(RuntimeError, match="Padding size"):
        D(torch.zeros(1, 1, 16, 16), torch.zeros(1, dtype=torch.long))
    cfg = run_config(schemes[0], tmp_path / "paper_d", steps=1, model={"n_res_blocks_dis": 10})
    with pytest.raises(ValueError, match=r"^data.crop_size=16: the funit networks \(the 10-block discriminator: 17 px, "
                                         r"the generator: 4\) take sides that are multiples of 2 and at least 17: use "
                                         r"--crop-size 18$"):
        train(cfg, progress=False)
    cfg = run_config(schemes[0], tmp_path / "below_stride", steps=1, model={"n_down_content": 3, "n_down_class": 4})
    cfg.data.crop_size = 4
    with pytest.raises(ValueError, match=r"^data.crop_size=4: .* multiples of 8 and at least 16: use --crop-size 16$"):
        train(cfg, progress=False)


def test_fewshot_cli_shows_progress(schemes, tmp_path, one_thread):
    """`pixmorph fewshot` over a folder of content images sat silent until its last line (translate and edit
    show a progress bar)."""
    run = train(run_config(schemes[0], tmp_path / "run", steps=1), progress=False)
    root, sources, targets = schemes
    result = CliRunner().invoke(fewshot_command, [str(run), "--content", str(root / sources[0]), "--class-images",
                                                  str(root / targets[0]), "--out", str(tmp_path / "out"),
                                                  "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "100%" in result.output and f"{len(CHARS)}/{len(CHARS)} [" in result.output


def test_rgb_model_takes_grayscale_class_images(schemes, tmp_path, one_thread):
    """An RGB model (one training step is enough for shapes and plumbing) given gray class images."""
    run = train(run_config(schemes[0], tmp_path / "rgb", steps=1, model={"channels": 3}, channels=3), progress=False)
    model = load_fewshot(run)
    gray = sorted((schemes[0] / schemes[2][0]).iterdir())[:2]
    out = model(Image.open(gray[0]), gray)
    assert out[0].mode == "RGB" and out[0].size == (SIZE, SIZE)


@pytest.mark.skipif(not (MEERKAT / "meerkat").is_dir(), reason="../shared/data/funit not here")
def test_meerkat_smoke(trained, tmp_path):
    """The trained model on real photos (five meerkats and a content image): runs, right size, finite."""
    result = CliRunner().invoke(fewshot_command, [str(trained), "--content", str(MEERKAT / "content.jpg"),
                                                  "--class-images", str(MEERKAT / "meerkat"), "--out", str(tmp_path),
                                                  "--size", "32", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "content.png"))
    assert out.shape == (32, 32) and out.std() > 0


def test_glyph_rendering_is_deterministic(tmp_path):
    from pixmorph.data.glyphs import collect_fonts

    path = matplotlib_font_dir() / "DejaVuSans.ttf"
    (font, a), = collect_fonts([path])
    (_, b), = collect_fonts([path])
    assert a.shape == (len(CHARACTERS), 32, 32) and np.array_equal(a, b)
    write_task(tmp_path / "one", [(font, a), (Font("x", "X", path), 255 - a)])
    write_task(tmp_path / "two", [(font, a), (Font("x", "X", path), 255 - a)])
    for f in sorted((tmp_path / "one").rglob("*.png"))[:20]:
        assert f.read_bytes() == (tmp_path / "two" / f.relative_to(tmp_path / "one")).read_bytes()


def test_training_on_one_source_class_warns(tmp_path):
    """FUNIT on a single class folder trained without a word: with one class there is nothing to translate
    between (the class encoder and the per-class discriminator see one class)."""
    from pixmorph.data.layouts import build_dataset

    for name, count in (("cats", 3), ("dogs", 3)):
        (tmp_path / "two" / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (16, 16), (40 * i, 90, 20)).save(tmp_path / "two" / name / f"{i}.png")
    (tmp_path / "one").mkdir()
    (tmp_path / "two" / "cats").rename(tmp_path / "one" / "cats")
    cfg = DataConfig(load_size=16, crop_size=16)
    with pytest.warns(UserWarning, match=r"one source class \(cats\): .* give two or more class folders"):
        build_dataset("fewshot", tmp_path / "one", cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (tmp_path / "two" / "birds").mkdir()
        Image.new("RGB", (16, 16)).save(tmp_path / "two" / "birds" / "0.png")
        build_dataset("fewshot", tmp_path / "two", cfg)


def test_training_crops_keep_the_images_aspect(tmp_path):
    """As FUNIT's reference loader (Resize to the shorter side, then a random square crop): a 2:1 photo is not
    squashed into a square first, which drew every animal of a wide photo at half its width."""
    from pixmorph.data.layouts import build_dataset

    stripes = np.zeros((70, 140), np.uint8)
    stripes[:, (np.arange(140) // 5) % 2 == 1] = 255  # vertical stripes 5 px wide
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        Image.fromarray(stripes).convert("RGB").save(tmp_path / name / "0.png")
    dataset = build_dataset("fewshot", tmp_path, DataConfig(load_size=35, crop_size=32, flip=False))
    for seed in range(4):
        crop = dataset[(0, seed)]["content"]
        assert crop.shape == (3, 32, 32)
        row = crop[0, 16] > 0
        widths = np.diff(np.flatnonzero(np.diff(row.numpy().astype(int)) != 0))
        # halved to 70x35 (the shorter side to 35): stripes 2.5 px wide; squashed to 35x35 they were 1.25 px
        assert widths.size and 2 <= np.median(widths) <= 3, widths


def test_translation_uses_the_averaged_generator(one_thread):
    """FUNIT translates with G_ema (the reference's ``gen_test``), never the G being trained: after a few
    steps the two differ, and the method, its translators and the few-shot translator all give G_ema's
    output. The EMA itself: p_ema <- beta p_ema + (1 - beta) p after each G update, beta warmed up as
    min(0.999, (1 + t) / (10 + t))."""
    from pixmorph.api import Translator
    from pixmorph.fewshot import FewShotTranslator
    from pixmorph.methods.funit import Funit, FunitConfig
    from pixmorph.train.loop import _make_update

    torch.manual_seed(0)
    method = Funit(FunitConfig(**{**TINY, "num_classes": 4}))
    G, G_ema = method.nets["G"], method.nets["G_ema"]
    update = _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers})
    g = torch.Generator().manual_seed(1)
    for t in range(3):
        before = [p.detach().clone() for p in G_ema.parameters()]
        batch = {"content": torch.rand(4, 1, SIZE, SIZE, generator=g) * 2 - 1, "content_label": torch.tensor([0, 1, 2, 3]),
                 "class": torch.rand(4, 1, SIZE, SIZE, generator=g) * 2 - 1, "class_label": torch.tensor([3, 2, 1, 0])}
        method.train_step(batch, update)
        beta = min(0.999, (1 + t) / (10 + t))
        for p_ema, p0, p in zip(G_ema.parameters(), before, G.parameters()):
            torch.testing.assert_close(p_ema, beta * p0 + (1 - beta) * p)
    method.nets.eval()
    x, k_images = torch.rand(2, 1, SIZE, SIZE) * 2 - 1, torch.rand(2, 3, 1, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        want, trained_g = G_ema(x, k_images), G(x, k_images)
        assert (want - trained_g).abs().max() > 1e-3  # the two generators differ: the checks below can tell
        torch.testing.assert_close(method.translate(x, k_images), want)
        torch.testing.assert_close(method.translators()["reconstruct"](x), G_ema(x, x))
    config = run_config(Path("unused"), Path("unused"), 1, model={"num_classes": 4})
    fewshot = FewShotTranslator(Translator(method, config, torch.device("cpu"), step=3, precision="fp32"))
    assert fewshot.generator is G_ema
    code = fewshot.class_code(list(k_images[0]))
    torch.testing.assert_close(code, G_ema.class_code(k_images[:1]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fewshot.translate_code(x, code), G_ema(x, k_images[:1].expand(2, -1, -1, -1, -1)),
                               atol=1e-5, rtol=1e-5)


def test_the_r1_penalty_does_not_underflow_in_fp16(one_thread):
    """R1's gradient d D(x) / d x was taken without loss scaling: in fp16 (CPU autocast here) a D whose outputs
    move little with its input (its head scaled down) had every gradient inside it below fp16's least number,
    and the penalty was 0. Taken by the loop's ``update.grad`` it is fp32's, to fp16's rounding."""
    from pixmorph.methods.funit import Funit, FunitConfig
    from pixmorph.train.loop import _make_update

    def penalty(precision: str) -> float:
        torch.manual_seed(0)
        method = Funit(FunitConfig(**{**TINY, "num_classes": 4}))
        with torch.no_grad():
            method.nets["D"].head.weight.mul_(1e-6)
        update = _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=precision == "fp16")
                                       for k in method.optimizers})
        g = torch.Generator().manual_seed(1)
        batch = {"content": torch.rand(4, 1, SIZE, SIZE, generator=g) * 2 - 1, "content_label": torch.arange(4),
                 "class": torch.rand(4, 1, SIZE, SIZE, generator=g) * 2 - 1, "class_label": torch.arange(4).flip(0)}
        with torch.autocast("cpu", dtype=torch.float16, enabled=precision == "fp16"):
            return float(method.train_step(batch, update)["D_gp"])

    fp32 = penalty("fp32")
    assert fp32 > 0 and penalty("fp16") == pytest.approx(fp32, rel=0.05, abs=0)


def test_a_training_step_runs_with_the_networks_compiled(monkeypatch, one_thread):
    """``train.compile`` (on by default on CUDA) compiles every network in place; R1's double backward through
    a compiled D failed ("torch.compile with aot_autograd does not currently support double backward"), so
    FUNIT could not train on a GPU with the defaults. The R1 pass runs D eagerly; D's other passes stay
    compiled. (Here with the aot_eager backend: AOTAutograd, where the limit is, without the C++ build.)"""
    from pixmorph.methods.funit import Funit, FunitConfig
    from pixmorph.train import speed
    from pixmorph.train.loop import _make_update

    compile_in_place = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compile_in_place(self, backend="aot_eager"))
    torch.manual_seed(0)
    method = Funit(FunitConfig(**{**TINY, "num_classes": 4}))
    speed.apply_to_nets(method.nets, speed.Speed(channels_last=False, compile=True, compile_mode="default",
                                                 fused_optimizer=False, cudnn_benchmark=False, tf32=False,
                                                 pin_memory=False), method.step_modules())
    assert method.nets["D"]._compiled_call_impl is not None
    update = _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers})
    batch = {"content": torch.rand(4, 1, SIZE, SIZE) * 2 - 1, "content_label": torch.tensor([0, 1, 2, 3]),
             "class": torch.rand(4, 1, SIZE, SIZE) * 2 - 1, "class_label": torch.tensor([3, 2, 1, 0])}
    losses = method.train_step(batch, update)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["D_gp"] > 0


def test_train_compile_compiles_the_passes_the_generator_step_runs(schemes, tmp_path, monkeypatch, one_thread):
    """FUNIT's G step calls G's parts (its content code is decoded twice), not G: compiling G in place left
    those passes eager, and only the no-grad G(x_a, x_b) of D's step ran compiled. With train.compile the loop
    compiles the method's step_modules; here a backend that runs each graph as traced records which module's
    compiled code ran, and whether with gradients (a training pass)."""
    from pixmorph.train import speed

    ran: set[tuple[int, bool]] = set()
    compile_in_place = torch.nn.Module.compile

    def compile_recording(module: torch.nn.Module, *args, **kwargs) -> None:
        def backend(graph: torch.fx.GraphModule, example_inputs):
            def run(*inputs):
                ran.add((id(module), torch.is_grad_enabled()))
                return graph.forward(*inputs)
            return run
        compile_in_place(module, backend=backend)

    monkeypatch.setattr(torch.nn.Module, "compile", compile_recording)
    monkeypatch.setattr(speed, "_can_compile", lambda device: True)  # (no C++ compiler needed: nothing is built)
    torch._dynamo.reset()
    cfg = run_config(schemes[0], tmp_path / "run", steps=2)
    cfg.train.compile = True
    cfg.train.batch_size = 4
    from pixmorph.train import loop

    built = []
    build = loop.build_method
    monkeypatch.setattr(loop, "build_method", lambda config: built.append(build(config)) or built[-1])
    train(cfg, progress=False)
    G, D = built[0].nets["G"], built[0].nets["D"]
    for part in (G.content_encoder, G.class_encoder, G.mlp, G.decoder, D):
        assert (id(part), True) in ran, type(part).__name__


def test_too_few_discriminator_outputs_are_refused_before_the_first_step(schemes, tmp_path, capsys):
    """model.num_classes below the data's source classes was refused by the first training step, after the
    progress bar had started; it is refused before, in one line naming the option, the classes and the folder."""
    root = schemes[0]
    with pytest.raises(ValueError) as refused:
        train(run_config(root, tmp_path / "run", steps=1, model={"num_classes": 4}), progress=True)
    assert str(refused.value) == (f"model.num_classes=4: {root} has {N_SOURCE} source classes, one discriminator "
                                  f"output each: set model.num_classes to at least {N_SOURCE}")
    assert "%|" not in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_fewshot_api_warnings_point_at_the_callers_line(schemes):
    """The "source class" warning of class images from a training class pointed at a line inside
    pixmorph/fewshot.py, not at the user's call; so did the repeated-image one through the translator's call.
    Both point at the caller, from class_code and from the call."""
    from pixmorph.api import Translator
    from pixmorph.fewshot import FewShotTranslator
    from pixmorph.methods.funit import Funit, FunitConfig

    root, sources, _ = schemes
    method = Funit(FunitConfig(**TINY))
    model = FewShotTranslator(Translator(method, run_config(root, Path("unused"), 1), torch.device("cpu"), step=1,
                                         precision="fp32"))
    seen = sorted((root / sources[0]).iterdir())[:2]
    content = torch.zeros(1, 1, SIZE, SIZE)
    for call in (lambda: model.class_code(seen), lambda: model(content, seen), lambda: model(content, seen * 2)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            call()
        assert w and all(Path(each.filename) == Path(__file__) for each in w), [(str(e.message), e.filename) for e in w]
    assert {"source class", "more than once"} <= {k for each in w for k in ("source class", "more than once")
                                                  if k in str(each.message)}


def test_the_fewshot_api_warns_of_images_in_a_folders_subfolders(schemes, tmp_path):
    """pixmorph.load_fewshot(run)(content_folder, class_folder) left out images in their subfolders without a word,
    where translate, edit and pixmorph fewshot warn; now the same line, at the caller's line."""
    import shutil

    from pixmorph.api import Translator
    from pixmorph.fewshot import FewShotTranslator
    from pixmorph.methods.funit import Funit, FunitConfig

    root, sources, _ = schemes
    model = FewShotTranslator(Translator(Funit(FunitConfig(**TINY)), run_config(root, Path("unused"), 1),
                                         torch.device("cpu"), step=1, precision="fp32"))
    content, cls = tmp_path / "content", tmp_path / "cls"
    shutil.copytree(root / sources[0], content)
    shutil.copytree(root / sources[1], cls)
    for folder in (content, cls):
        (folder / "more").mkdir()
        shutil.copy(next(p for p in folder.iterdir() if p.is_file()), folder / "more" / "x.png")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model(content, cls)
    said = [(str(each.message), Path(each.filename)) for each in w if "subfolders" in str(each.message)]
    assert said == [
        (f"{cls}: 1 image in its subfolders (more/) left out: subfolders are not searched (move the images up into "
         f"cls/ to use them)", Path(__file__)),
        (f"{content}: 1 image in its subfolders (more/) left out: subfolders are not searched (move the images up "
         f"into content/ to translate them)", Path(__file__))], said

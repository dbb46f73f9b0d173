"""DeepSIM: warps act identically on image and primitive, the single-image data, the perceptual loss,
a tiny model that overfits its pair, and train -> resume -> edit end to end."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from scipy.ndimage import binary_erosion, distance_transform_edt

from pixmorph.data import primitives as P
from pixmorph.data import tps
from pixmorph.data.single_image import SingleImage, write_example
from pixmorph.methods import deepsim
from pixmorph.methods.deepsim import DeepSIM, DeepSIMConfig
from pixmorph.train.loop import _make_update, train

TINY = {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 2, "n_downsampling": 4}


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


def disc_image(size: int = 64) -> torch.Tensor:
    """1 x 3 x size x size: a white ellipse off-centre on black, in [-1, 1]."""
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    inside = ((xs - 0.45 * size) / (0.3 * size)) ** 2 + ((ys - 0.55 * size) / (0.22 * size)) ** 2 < 1
    return (inside.float() * 2 - 1).expand(3, -1, -1)[None].clone()


def boundary_distance(edges: torch.Tensor, image: torch.Tensor) -> tuple[float, float]:
    """For an edge map (-1 on edges) and an image of a white shape: the largest distance (px) from an
    edge pixel to the shape's boundary, and from a boundary pixel to the nearest edge pixel."""
    shape = (image[0, 0] > 0).numpy()
    boundary = shape & ~binary_erosion(shape)
    on = (edges[0, 0] < 0).numpy()
    assert on.sum() > 20 and boundary.sum() > 20
    to_boundary, to_edge = distance_transform_edt(~boundary), distance_transform_edt(~on)
    return float(to_boundary[on].max()), float(to_edge[boundary].max())


@pytest.mark.parametrize("grid", ["full", "inner"])
def test_tps_moves_each_control_point_to_its_target(grid):
    h, w = 48, 64
    src, dst = tps.random_tps_points(1, 0.1, torch.Generator().manual_seed(3), grid=grid)
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")

    def pixel(p):  # [-1, 1] frame (align_corners=False) -> pixel coordinates
        return (p[0] + 1) * w / 2 - 0.5, (p[1] + 1) * h / 2 - 0.5

    # the spline the warp samples with takes every target back to its source, the fixed corners included
    from kornia.geometry.transform import warp_points_tps
    kernel, affine = tps.tps_weights(dst, src)
    torch.testing.assert_close(warp_points_tps(dst, dst, kernel, affine), src, atol=1e-4, rtol=0)
    # and an image follows: a blob at each control point inside the image ends up at its target
    inside = [i for i in range(4, 13) if float(src[0, i].abs().max()) < 0.9]
    assert len(inside) == {"full": 1, "inner": 9}[grid]
    moved = 0.0
    for i in inside:
        x0, y0 = pixel(src[0, i])
        blob = torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / 2)[None, None]
        peak = int(tps.warp_tps(blob, src, dst)[0, 0].argmax())
        x1, y1 = pixel(dst[0, i])
        assert abs(peak % w - x1) <= 1 and abs(peak // w - y1) <= 1, f"control point {i} went elsewhere"
        moved = max(moved, float(abs(x1 - x0) + abs(y1 - y0)))
    assert moved > 2  # the test would notice a warp that does nothing


def test_tps_full_grid_spans_the_image_as_deepsims():
    """DeepSIM's grid: control points at 0, 1/2 and 1 of the width and height (its corners move; the image
    corners stay), the inner one at 1/4..3/4; a zero shift is the identity, not a singular system."""
    full, inner = tps.control_points(1, "full")[0], tps.control_points(1, "inner")[0]
    assert sorted({float(v) for v in full[4:, 0]}) == [-1.0, 0.0, 1.0]
    assert sorted({float(v) for v in inner[4:, 0]}) == [-0.5, 0.0, 0.5]
    x = torch.rand(1, 2, 16, 24)
    src, dst = tps.random_tps_points(1, 0.0, grid="full")
    torch.testing.assert_close(tps.warp_tps(x, src, dst), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="model.tps_grid='outer'"):
        DeepSIM(DeepSIMConfig(in_channels=1, tps_grid="outer", **TINY))


@pytest.mark.parametrize("augment", ["tps", "affine", "crop"])
def test_warp_is_identical_on_image_and_primitive(augment):
    """The primitive is a known linear function of the image; after the warp (and the mirror) it still must
    be, exactly, while the image itself has moved. (A 3-channel primitive: edge maps are made black and
    white after the warp, test below.)"""
    torch.manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8) * 2 - 1, size=(48, 64), mode="bicubic")
    mix = torch.tensor([[0.5, -0.3, 0.2], [0.0, 1.0, 0.0], [0.1, 0.1, -0.8]])
    primitive = torch.einsum("oc,nchw->nohw", mix, image)
    method = DeepSIM(DeepSIMConfig(in_channels=3, augment=augment, tps_prob=1.0, **TINY))
    A, B = method.augment(primitive, image, generator=torch.Generator().manual_seed(1))
    expected = torch.einsum("oc,nchw->nohw", mix, B)
    assert (A - expected).abs().max() < 1e-5
    assert (B - image).abs().mean() > 0.03, "the warp left the image where it was"
    assert (B[0] - B[1]).abs().mean() > 0.01 or augment == "none", "both samples got the same warp"


def test_the_pair_is_mirrored_half_the_time_and_edge_maps_read_black_and_white(tmp_path):
    """DeepSIM's (and pix2pixHD's) default flip: image and primitive mirrored together, about half the samples;
    model.flip=false never. An edge file resized for training, and an edge map given to a loaded model, are
    read black and white, as the warped training edges are."""
    image = disc_image().repeat(64, 1, 1, 1)
    image[..., :, :4] = 1.0  # a white band on the left edge shows which way each sample faces
    edges = torch.where(image[:, :1] > 0, 1.0, -1.0)
    for flip in (True, False):
        method = DeepSIM(DeepSIMConfig(in_channels=1, augment="none", flip=flip, **TINY))
        A, B = method.augment(edges, image, generator=torch.Generator().manual_seed(0))
        mirrored = (B[..., :, -4:] == 1.0).flatten(1).all(1)
        assert torch.equal(A, torch.where(B[:, :1] > 0, 1.0, -1.0))
        assert (20 < int(mirrored.sum()) < 44) if flip else not bool(mirrored.any())
    banded = disc_image().repeat(64, 1, 1, 1)
    banded[..., :, :16] = 1.0  # wider than crop's zoom can cut off
    for flip in (True, False):  # crop mirrors inside its own warp: model.flip holds there too
        cropped = DeepSIM(DeepSIMConfig(in_channels=1, augment="crop", flip=flip, **TINY))
        _, B = cropped.augment(edges, banded, generator=torch.Generator().manual_seed(0))
        mirrored = (B[..., :, :2] < 0).flatten(1).all(1)
        assert (20 < int(mirrored.sum()) < 44) if flip else not bool(mirrored.any())
    drawn = Image.new("L", (64, 48), 255)
    drawn.paste(100, (10, 10, 13, 40))  # a grey line, resized below
    drawn.save(tmp_path / "edges.png")
    assert set(P.load_edges(tmp_path / "edges.png", (32, 32)).unique().tolist()) == {-1.0, 1.0}
    grey = DeepSIM(DeepSIMConfig(in_channels=1, **TINY)).input_image(drawn.convert("RGBA"))
    assert grey.mode == "L" and set(np.unique(np.asarray(grey))) == {0, 255}


@pytest.mark.parametrize("auto", [False, True], ids=["edges-warped", "edges-redrawn"])
def test_edges_follow_the_warped_shape(auto):
    """A synthetic shape whose primitive is known (its outline): after a TPS warp the edge primitive lies
    on the outline of the warped shape, both when the edge map is warped with the image and when computed
    edges are redrawn from the warped image at a random Canny sigma."""
    image = disc_image()
    edges = P.canny_edges(image, 2.0)
    assert boundary_distance(edges, image)[0] <= 1.5  # Canny finds the outline to begin with
    method = DeepSIM(DeepSIMConfig(in_channels=1, augment="tps", tps_prob=1.0, **TINY))
    flags = torch.ones(1, 1) if auto else torch.zeros(1, 1)
    A, B = method.augment(edges, image, flags, generator=torch.Generator().manual_seed(4))
    assert set(A.unique().tolist()) == {-1.0, 1.0}, "warped edges are black and white again, as DeepSIM makes them"
    assert boundary_distance(A, B)[0] <= 2.0
    if auto:  # a fresh Canny of the warped image draws the whole outline
        assert boundary_distance(A, B)[1] <= 2.0
    # ... and the unwarped outline does not fit the warped shape: the check can fail
    assert boundary_distance(edges, B)[0] > 3.0


def test_single_image_data(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (24, 40, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "image.png")
    edges = np.full((24, 40), 255, np.uint8)
    edges[10, 5:30] = 0
    Image.fromarray(edges, "L").save(tmp_path / "edges.png")
    labels = np.zeros((24, 40), np.uint8)
    labels[:, 20:] = 1
    labels[12:, :] = 2
    Image.fromarray(labels, "L").save(tmp_path / "labels.png")

    item = SingleImage(tmp_path / "image.png", {"primitive": str(tmp_path / "edges.png")})[(0, 7)]
    assert item["B"].shape == (3, 32, 48) and item["A"].shape == (1, 32, 48)  # 24x40 rounded to 16s
    assert SingleImage(tmp_path / "image.png", {"primitive": str(tmp_path / "edges.png")}).options.kind == "edges"
    assert float(item["A"].min()) < 0 < float(item["A"].max()) and item["auto_edges"].tolist() == [0]

    seg = SingleImage(tmp_path / "image.png", {"primitive": str(tmp_path / "labels.png")})
    assert seg.options.kind == "seg" and seg.primitive.shape == (3, 32, 48)
    colours = {tuple(c) for c in seg.primitive.reshape(3, -1).T.tolist()}
    assert len(colours) == 3  # three labels, three colours, no blending

    both = SingleImage(tmp_path / "image.png", {"primitive": "auto-seg", "kind": "seg+edges", "max_side": 20})
    assert both.primitive.shape == (4, 16, 16) and both.auto_edges.tolist() == [0, 0, 0, 1]
    assert len(both) == 80
    with pytest.raises(ValueError, match="unknown data.options"):
        SingleImage(tmp_path / "image.png", {"primitve": "auto-edges"})


def test_perceptual_loss_is_found_offline_and_says_which():
    from pixmorph.nn.perceptual import load_perceptual

    loss, message = load_perceptual()
    assert loss.name in message and "perceptual loss" in message
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    y = torch.rand(1, 3, 32, 32)
    assert float(loss(y, y)) == 0.0
    value = loss(x * 2 - 1, y * 2 - 1)
    value.backward()
    assert float(value) > 0 and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())


def test_tiny_model_overfits_its_single_pair():
    """No augmentation, 80 steps: the reconstruction error falls far below the untrained model's."""
    torch.manual_seed(0)
    from skimage import data

    from pixmorph.images import to_tensor

    B = to_tensor(Image.fromarray(data.coffee()).resize((32, 32), Image.Resampling.LANCZOS))[None]
    A = P.canny_edges(B, 1.0)
    cfg = DeepSIMConfig(in_channels=1, ngf=16, ndf=8, n_blocks=1, d_layers=2, n_downsampling=2, lr=1e-3,
                        augment="none", canny_sigma_aug=False, lambda_vgg=0.0)
    method = DeepSIM(cfg)
    G = method.nets["G"]

    def error() -> float:
        with torch.no_grad():
            return float((G(A) - B).abs().mean())

    untrained = error()
    update = _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers})
    for _ in range(80):
        losses = method.train_step({"A": A, "B": B}, update)
    trained = error()
    print(f"L1 to the training image: untrained {untrained:.3f}, trained {trained:.3f}")
    assert set(losses) == {"G_GAN", "G_feat", "G_VGG", "D_real", "D_fake"}
    assert trained < 0.35 * untrained


def run_config(image, edges, out, steps, **train_options):
    return deepsim.make_config(image, edges, out=out, max_side=64, model={**TINY, "ngf": 4, "ndf": 4},
                               data={"num_workers": 0},
                               train={"max_steps": steps, "epochs": 1, "epochs_decay": 1, "log_every": 2,
                                      "sample_every": 3, "checkpoint_every": 100, "tensorboard": False,
                                      **train_options})


def test_train_resume_and_edit(tmp_path):
    """TPS warps come from the global RNG the checkpoint saves: 2 steps + resume to 4 == 4 straight.
    Then edited primitives render at the training size rule, by edit() and by the Translator."""
    example = write_example(tmp_path / "example")
    straight = train(run_config(example["image"], example["edges"], tmp_path / "straight", 4), progress=False)
    train(run_config(example["image"], example["edges"], tmp_path / "resumed", 2), progress=False)
    resumed = train(run_config(example["image"], example["edges"], tmp_path / "resumed", 4, resume=True),
                    progress=False)
    a = load_file(str(straight / "checkpoint" / "weights.safetensors"))
    b = load_file(str(resumed / "checkpoint" / "weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a), "resume changed the run"
    assert list((straight / "samples").glob("step_*.png"))
    assert "Columns: primitive | render | image, then" in (straight / "samples" / "index.html").read_text()

    written = deepsim.edit(straight, example["edited"], tmp_path / "edits")
    assert [p.name for p in written] == ["edited_removed.png", "edited_moved.png"]
    assert Image.open(written[0]).size == P.round_size(320, 208, 64) == (64, 48)
    edited = np.asarray(Image.open(example["edited"][1])) != np.asarray(Image.open(example["edges"]))
    assert edited.mean() > 0.001  # the example's edit really changed strokes

    import pixmorph

    out = pixmorph.load(straight)(Image.open(example["edited"][0]))  # RGB file into an edge model
    assert out.size == (320, 208)
    rendered = deepsim.render(pixmorph.load(straight), example["edited"][:1])  # at the training size rule
    assert rendered[0].shape == (3, 48, 64)
    with pytest.raises(ValueError, match="seg\\+edges"):
        deepsim.edit(straight, example["edited"][:1], tmp_path / "x", edges=example["edited"][:1])


def test_square_sizes_that_do_not_apply_are_not_checked(tmp_path):
    """DeepSIM trains at its image's size and ignores data.load_size/crop_size; a crop larger than the load size
    given all the same was refused ("data.crop_size=300 ... is larger than data.load_size=100") once that check
    moved before the run."""
    example = write_example(tmp_path / "example")
    cfg = run_config(example["image"], example["edges"], tmp_path / "run", 1)
    cfg.data = dataclasses.replace(cfg.data, load_size=100, crop_size=300)
    run = train(cfg, progress=False)
    assert (run / "checkpoint" / "weights.safetensors").is_file()


def test_cli_options_map_to_the_config():
    d = {"train": {"out": "runs/x"}}
    deepsim.apply_cli_options(d, image="img.png", primitive="auto-seg", edges="auto", kind=None, max_side=256)
    assert d["data"]["root"] == "img.png"
    assert d["data"]["options"] == {"primitive": "auto-seg", "edges": "auto", "kind": "seg+edges", "max_side": 256}
    assert d["model"]["in_channels"] == 4
    d = {"train": {"out": "runs/x"}}
    deepsim.apply_cli_options(d, image="img.png", primitive=None, edges="auto", kind=None, max_side=None)
    assert d["data"]["options"] == {"primitive": "auto-edges", "kind": "edges"} and d["model"]["in_channels"] == 1


def test_warp_under_autocast_is_float32_and_the_same():
    """The loop trains under autocast; the warp and the Canny redraw must not run in half precision."""
    image = disc_image()
    edges = P.canny_edges(image)
    method = DeepSIM(DeepSIMConfig(in_channels=1, augment="tps", tps_prob=1.0, **TINY))
    flags = torch.ones(1, 1)
    A, B = method.augment(edges, image, flags, generator=torch.Generator().manual_seed(5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        A16, B16 = method.augment(edges.bfloat16(), image.bfloat16(), flags, generator=torch.Generator().manual_seed(5))
    assert A16.dtype == B16.dtype == torch.float32
    assert (A16 != A).float().mean() < 0.01 and (B16 - B).abs().max() < 0.02


@pytest.mark.parametrize("precision", ["bf16"])
def test_mixed_precision_training_steps(tmp_path, precision):
    """The loop's autocast (and fp16's gradient scaling) around DeepSIM's step: finite losses, weights move."""
    example = write_example(tmp_path / "example")
    cfg = run_config(example["image"], "auto-edges", tmp_path / "run", 2, precision=precision, device="cpu")
    torch.manual_seed(cfg.train.seed)  # the initialisation the run starts from
    before = {k: v.clone() for k, v in DeepSIM(DeepSIMConfig(**cfg.model)).nets.state_dict().items()}
    run = train(cfg, progress=False)
    after = load_file(str(run / "checkpoint" / "weights.safetensors"))
    assert all(torch.isfinite(v).all() for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("G."))
    import json

    logged = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert logged and all(np.isfinite(v) for rec in logged for k, v in rec.items() if k.startswith(("G_", "D_")))


def test_cli_train_deepsim_on_the_example_then_edit(tmp_path):
    from click.testing import CliRunner

    import pixmorph
    from pixmorph.cli import cli

    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4}.items()]
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", "example", "--max-side", "64", "--out", str(run),
                                      "--steps", "2", "--device", "cpu", "--set=train.tensorboard=false", *tiny])
    assert result.exit_code == 0, result.output + repr(result.exception)
    saved = (run / "config.json").read_text()
    assert '"primitive": "' in saved and '"in_channels": 1' in saved
    edited = sorted((run / "example").glob("edited_*.png"))
    result = CliRunner().invoke(cli, ["edit", str(run), *map(str, edited), "--out", str(tmp_path / "edits"),
                                      "--device", "cpu", "--batch-size", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert sorted(p.name for p in (tmp_path / "edits").glob("*.png")) == [p.name for p in edited]
    assert Image.open(tmp_path / "edits" / edited[0].name).size == (64, 48)
    folder = tmp_path / "edited"  # a folder of primitives, at a given precision: the same renders in fp32
    folder.mkdir()
    for f in edited:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "older").mkdir()  # left out, with the warning translate gives (edit left it out without a word)
    (folder / "older" / edited[0].name).write_bytes(edited[0].read_bytes())
    with pytest.warns(UserWarning, match=rf"^{re.escape(str(folder))}: 1 image in its subfolders \(older/\) left out: "
                                         r"subfolders are not searched \(move the images up into edited/ to render"):
        result = CliRunner().invoke(cli, ["edit", str(run), str(folder), "--out", str(tmp_path / "e2"), "--device",
                                          "cpu", "--precision", "fp32"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert sorted(p.name for p in (tmp_path / "e2").glob("*.png")) == [p.name for p in edited]
    expected = deepsim.render(pixmorph.load(run, precision="fp32"), edited)  # one batch, as edit renders them
    assert np.array_equal(np.asarray(Image.open(tmp_path / "e2" / edited[0].name)),
                          np.asarray(pixmorph.images.to_pil(expected[0])))

    result = CliRunner().invoke(cli, ["train", "cyclegan", "--primitive", "auto-seg", "--dry-run"])
    assert result.exit_code == 2 and "deepsim` only" in result.output
    result = CliRunner().invoke(cli, ["train", "deepsim", "--dry-run", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--image" in result.output


def test_cli_saves_a_computed_primitive_to_edit(tmp_path):
    """--seg auto --edges auto: the computed segmentation and edges land in RUN/primitive, are exactly what
    the model trained on, and render with `pixmorph edit`."""
    from click.testing import CliRunner

    from pixmorph.cli import cli

    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(64)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)).save(photo)
    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4}.items()]
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--seg", "auto", "--edges", "auto",
                                      "--out", str(run), "--steps", "1", "--device", "cpu",
                                      "--set=train.tensorboard=false", *tiny])
    assert result.exit_code == 0, result.output + repr(result.exception)
    seg, edges = run / "primitive" / "photo_seg.png", run / "primitive" / "photo_edges.png"
    trained_on = SingleImage(photo, {"primitive": "auto-seg", "kind": "seg+edges", "edges": "auto"}).primitive
    reread = deepsim.load_primitives([seg], "seg+edges", edges=[edges])[0]
    assert torch.allclose(reread, trained_on, atol=1 / 127.5)
    result = CliRunner().invoke(cli, ["edit", str(run), str(seg), "--edges", str(edges), "--out", str(tmp_path / "e"),
                                      "--device", "cpu"])
    assert result.exit_code == 0 and (tmp_path / "e" / "photo_seg.png").is_file(), result.output


@pytest.mark.parametrize("refused_by", ["checkpoint", "lock"])
def test_a_refused_run_leaves_an_edited_primitive_as_it_is(tmp_path, refused_by):
    """A second `train deepsim --edges auto --out RUN`, refused because RUN holds a checkpoint (no --resume or
    --overwrite) or because a training holds RUN's lock, changes no file there: the computed primitive, which
    the user may have edited, was written before the refusal."""
    from contextlib import nullcontext

    from click.testing import CliRunner

    from pixmorph.cli import cli
    from pixmorph.train.run_lock import run_lock

    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(32)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)).save(photo)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    edited = run / "primitive" / "photo_edges.png"
    edited.parent.mkdir()
    edited.write_bytes(b"the user's edit")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4}.items()]
    overwrite = [] if refused_by == "checkpoint" else ["--overwrite"]
    with run_lock(run) if refused_by == "lock" else nullcontext():
        result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--edges", "auto", "--out",
                                          str(run), "--steps", "1", "--device", "cpu", *overwrite, *tiny])
    assert result.exit_code != 0, result.output
    assert ("holds a checkpoint already" if refused_by == "checkpoint" else "another pixmorph train") in \
        str(result.exception)
    assert edited.read_bytes() == b"the user's edit"
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_seg_flag_names_the_primitive():
    from pixmorph.cli_deepsim import apply_single_image

    flags = {"image": "img.png", "primitive": None, "seg": "auto", "edges": "auto", "kind": None, "max_side": None}
    d = apply_single_image("deepsim", {"train": {"out": "runs/x"}}, flags, resume=False)
    assert d["data"]["options"]["primitive"] == "auto-seg" and d["model"]["in_channels"] == 4


def test_dry_run_with_the_example_writes_nothing_and_prints_the_training_size(tmp_path):
    """--image example --dry-run: no example files (no run folder at all), and data.load_size/crop_size say
    what decides the size (the image's, after --max-side) instead of null."""
    import json

    from click.testing import CliRunner

    from pixmorph.cli import cli

    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", "example", "--max-side", "100", "--out", str(run),
                                      "--dry-run"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert not run.exists(), "a dry run must not write the example"
    data = json.loads(result.stdout)["data"]
    assert data["root"] == str(run / "example" / "image.png")  # where a real run writes it
    assert data["load_size"] == data["crop_size"] == "from the data: 96x64, the image's size"  # 320x208 -> 100x65
    photo = tmp_path / "photo.png"
    Image.new("RGB", (70, 40)).save(photo)
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--out", str(run), "--dry-run"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads(result.stdout)["data"]["crop_size"] == "from the data: 64x48, the image's size"


def test_saved_config_and_export_use_the_image_size(tmp_path, monkeypatch):
    """DeepSIM trains at its image's size: the run's config.json does not claim the square 286/256 of other
    methods, the checkpoint records the image's (width, height), and `pixmorph export` checks (and traces)
    the generator at that size, not at 256 x 256."""
    import json

    from click.testing import CliRunner

    import pixmorph
    from pixmorph import export
    from pixmorph.cli import cli

    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(64)[0, :, :32].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)).save(photo)
    cfg = deepsim.make_config(photo, out=tmp_path / "run", model={**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0},
                              train={"max_steps": 1, "tensorboard": False, "device": "cpu"})
    run = train(cfg, progress=False)
    saved = json.loads((run / "config.json").read_text())["data"]
    assert saved["load_size"] is None and saved["crop_size"] is None
    assert json.loads((run / "checkpoint" / "config.json").read_text())["image_size"] == [64, 32]
    assert pixmorph.load(run).training_size == (32, 64)

    traced = []
    real_export = export.export_generator
    monkeypatch.setattr(export, "export_generator",
                        lambda g, path, x, *rest: traced.append(tuple(x.shape)) or real_export(g, path, x, *rest))
    result = CliRunner().invoke(cli, ["export", str(run), "--onnx", str(tmp_path / "g.onnx")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert traced == [(1, 1, 32, 64)]


def test_perceptual_network_message_is_on_its_own_line(tmp_path, monkeypatch, capsys):
    """The message naming the perceptual network comes at the first step, while the progress bar is drawn:
    it must not be glued to the bar's line."""
    from pixmorph.nn import perceptual

    class StubLoss(torch.nn.Module):
        name = "stub"

        def forward(self, x, y):
            return (x - y).abs().mean()

    message = "perceptual loss: stub, for this test"
    monkeypatch.setattr(perceptual, "load_perceptual", lambda net="auto", weights=None, device="cpu": (StubLoss(), message))
    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(32)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)).save(photo)
    train(run_config(photo, "auto-edges", tmp_path / "run", 1, device="cpu"), progress=True)
    err = capsys.readouterr().err
    assert "step" in err, "the progress bar was drawn"
    segments = [s.strip() for s in err.replace("\r", "\n").split("\n")]
    assert message in segments, err


def test_perceptual_network_change_on_resume_is_on_its_own_line(tmp_path, monkeypatch, capsys):
    """Resuming with another perceptual network warns at the first step, while the progress bar is drawn:
    the warning goes above the bar (tqdm.write), one line, not into the bar's line."""
    from pixmorph.nn import perceptual

    def stub(name):
        class StubLoss(torch.nn.Module):
            def forward(self, x, y):
                return (x - y).abs().mean()

        loss = StubLoss()
        loss.name = name
        return lambda net="auto", weights=None, device="cpu": (loss, f"perceptual loss: {name}")

    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(32)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)).save(photo)
    monkeypatch.setattr(perceptual, "load_perceptual", stub("first-net"))
    train(run_config(photo, "auto-edges", tmp_path / "run", 1, device="cpu"), progress=False)
    capsys.readouterr()
    monkeypatch.setattr(perceptual, "load_perceptual", stub("second-net"))
    train(run_config(photo, "auto-edges", tmp_path / "run", 2, device="cpu", resume=True), progress=True)
    err = capsys.readouterr().err
    assert "step" in err, "the progress bar was drawn"
    segments = [s.strip() for s in err.replace("\r", "\n").split("\n")]
    warned = [s for s in segments if "first-net" in s]
    assert warned == ["warning: this run was trained with the perceptual network first-net, continuing with second-net"], err


def _seg_edges_run(tmp_path) -> tuple[Path, Path, Path]:
    """A 1-step seg+edges model, and its computed segmentation and edge map files."""
    from click.testing import CliRunner

    from pixmorph.cli import cli

    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(64)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)).save(photo)
    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0}.items()]
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--seg", "auto", "--edges", "auto",
                                      "--out", str(run), "--steps", "1", "--device", "cpu",
                                      "--set=train.tensorboard=false", *tiny])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return run, run / "primitive" / "photo_seg.png", run / "primitive" / "photo_edges.png"


def test_edit_out_that_is_the_edge_maps_folder_keeps_them(tmp_path):
    """`edit RUN segs/x.png --edges edges/x.png --out edges` wrote x's render over the edge map edges/x.png, with
    exit code 0 (a primitive in --out was refused, an --edges file was not). Now one line names it."""
    import shutil

    from click.testing import CliRunner

    from pixmorph.cli import cli

    run, seg, edges = _seg_edges_run(tmp_path)
    for folder in ("segs", "edges"):
        (tmp_path / folder).mkdir()
    seg, edges = shutil.copy(seg, tmp_path / "segs" / "x.png"), shutil.copy(edges, tmp_path / "edges" / "x.png")
    before = Path(edges).read_bytes()
    for given in (edges, tmp_path / "edges"):  # the file, or its folder
        result = CliRunner().invoke(cli, ["edit", str(run), str(seg), "--edges", str(given), "--out",
                                          str(tmp_path / "edges"), "--device", "cpu"])
        assert isinstance(result.exception, ValueError), result.output
        assert str(result.exception) == (f"{edges}: {seg}'s output would be written over this input (--out "
                                         f"{tmp_path / 'edges'} is its folder; each input is written as <name>.png): "
                                         f"give another --out")
    assert Path(edges).read_bytes() == before


def test_edit_names_a_primitive_that_does_not_fit_a_seg_edges_model(tmp_path):
    """seg+edges model: an edge map alone is a one-line error naming it; an edge map as the segmentation or a
    colour segmentation as the edge map renders, with a one-line warning naming the file and what was expected."""
    from click.testing import CliRunner

    from pixmorph.cli import cli

    run, seg, edges = _seg_edges_run(tmp_path)
    out = str(tmp_path / "edits")
    result = CliRunner().invoke(cli, ["edit", str(run), str(edges), "--out", out, "--device", "cpu"])
    assert isinstance(result.exception, ValueError), result.output
    message = str(result.exception)
    assert "\n" not in message and str(edges) in message and "looks like an edge map" in message
    assert "seg+edges" in message and "--edges" in message

    result = CliRunner().invoke(cli, ["edit", str(run), str(edges), "--edges", str(edges), "--out", out,
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and str(edges) in warned[0] and "read" in warned[0] and "segmentation" in warned[0], \
        result.stderr

    result = CliRunner().invoke(cli, ["edit", str(run), str(seg), "--edges", str(seg), "--out", out, "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and str(seg) in warned[0] and "colour" in warned[0] and "edge map" in warned[0], \
        result.stderr

    result = CliRunner().invoke(cli, ["edit", str(run), str(seg), "--edges", str(edges), "--out", out, "--device", "cpu"])
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output  # the right files: no warning

    for runtime in ("torch", "onnx"):  # translate reads one file per image: it names the file and points to edit
        result = CliRunner().invoke(cli, ["translate", str(run), str(seg), "--out", out, "--device", "cpu",
                                          "--runtime", runtime])
        message = str(result.exception)
        assert isinstance(result.exception, ValueError) and "\n" not in message, result.output
        assert message.startswith(f"{seg}: ") and "4-channel" in message and "pixmorph edit" in message, message


def test_one_rgba_file_as_seg_edges_is_a_one_line_error_naming_it(tmp_path):
    """seg+edges is two files (segmentation, edge map). One RGBA file with the edges in its alpha channel would
    train on its colours over white, alpha ignored: training and edit stop with one line naming the file and
    saying what is expected. A nearly opaque segmentation (the paper's car: alpha >= 253) is read as before."""
    from click.testing import CliRunner

    from pixmorph.cli import cli

    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32], rgb[:, 32:] = (200, 30, 30), (30, 30, 200)
    alpha = np.full((48, 64), 255, np.uint8)
    alpha[:, 30:34] = 0  # the boundary's edges, in the alpha channel
    packed = tmp_path / "seg_and_edges.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(packed)
    photo = tmp_path / "photo.png"
    Image.fromarray(rgb).save(photo)

    def one_line_error(result, *expected):
        assert isinstance(result.exception, ValueError), result.output + repr(result.exception)
        message = str(result.exception)
        assert "\n" not in message and str(packed) in message and all(s in message for s in expected), message

    run = tmp_path / "run"
    for kind in ([], ["--kind", "seg+edges"]):
        result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--primitive", str(packed), *kind,
                                          "--out", str(run), "--steps", "1", "--device", "cpu"])
        one_line_error(result, "transparent", "--edges")
        assert not run.exists()

    nearly_opaque = tmp_path / "nearly_opaque.png"
    Image.fromarray(np.dstack([rgb, np.full((48, 64), 253, np.uint8)]), "RGBA").save(nearly_opaque)
    assert torch.allclose(P.load_seg(nearly_opaque, (64, 48)), P.load_seg(photo, (64, 48)), atol=0.02)  # over white

    model, _, edges = _seg_edges_run(tmp_path)
    out = str(tmp_path / "edits")
    one_line_error(CliRunner().invoke(cli, ["edit", str(model), str(packed), "--out", out, "--device", "cpu"]),
                   "seg+edges", "two files", "--edges")
    one_line_error(CliRunner().invoke(cli, ["edit", str(model), str(packed), "--edges", str(edges), "--out", out,
                                            "--device", "cpu"]), "transparent", "--edges")


def _label_photo(tmp_path: Path, labels: np.ndarray, mode: str = "L") -> tuple[Path, Path]:
    """A photo whose regions follow ``labels``, and the labels as a single-channel file of ``mode``."""
    photo = tmp_path / "photo.png"
    colours = np.array([[30, 30, 30], [200, 60, 40], [40, 180, 90], [60, 80, 220]], dtype=np.uint8)
    Image.fromarray(colours[np.searchsorted(np.unique(labels), labels)]).save(photo)
    seg = tmp_path / f"labels_{mode.replace(';', '')}.png"
    Image.fromarray(labels.astype(np.uint16 if mode.startswith("I") else np.uint8)).save(seg)
    return photo, seg


def _blocks(values: tuple[int, ...], size: int = 64) -> np.ndarray:
    labels = np.full((size, size), values[0], dtype=np.int64)
    for i, v in enumerate(values[1:]):
        labels[8 + 16 * i : 20 + 16 * i, 8:56] = v
    return labels


def test_relative_paths_are_saved_absolute_and_the_run_resumes_from_elsewhere(tmp_path, monkeypatch):
    """`pixmorph train deepsim --image car.png --primitive car_seg.png` (the README's form) from one folder,
    then --resume and edit from another: the saved config names the files absolutely."""
    import json

    from click.testing import CliRunner

    from pixmorph.cli import cli

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    _label_photo(work, _blocks((0, 1, 2)))
    monkeypatch.chdir(work)
    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0}.items()]
    common = ["--device", "cpu", "--set=train.tensorboard=false", *tiny]
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", "photo.png", "--primitive", "labels_L.png",
                                      "--out", "run", "--steps", "1", *common])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads((work / "run" / "config.json").read_text())["data"]
    assert data["root"] == str(work / "photo.png") and data["options"]["primitive"] == str(work / "labels_L.png")

    monkeypatch.chdir(elsewhere)
    result = CliRunner().invoke(cli, ["train", "deepsim", "--out", str(work / "run"), "--resume", "--steps", "2",
                                      *common])
    assert result.exit_code == 0, result.output + repr(result.exception)
    from pixmorph.serve.models import load_model

    assert load_model("m", work / "run").primitive_from_training  # serve finds the training files too


def test_a_label_index_segmentation_reads_the_same_everywhere(tmp_path):
    """A seg model trained on a file of label indices: a PIL label image given to pixmorph.load(run) and a
    label file given to `pixmorph translate` are coloured as training coloured them (not read as gray), the
    same as deepsim.render. 16-bit label ids keep their colours when an edit removes another label."""
    import pixmorph
    from click.testing import CliRunner

    from pixmorph.cli import cli

    photo, seg = _label_photo(tmp_path, _blocks((0, 1, 2)))
    cfg = deepsim.make_config(photo, seg, out=tmp_path / "run", model={**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0},
                              train={"max_steps": 1, "tensorboard": False})
    run = train(cfg, progress=False)
    translator = pixmorph.load(run, precision="fp32")
    [rendered] = deepsim.render(translator, [seg])
    from_pil = translator(Image.open(seg))
    assert np.abs(np.asarray(from_pil, dtype=np.int16) - np.asarray(pixmorph.images.to_pil(rendered))).max() <= 1
    gray = translator(Image.open(seg).convert("RGB"))  # the indices as gray levels: another input
    assert np.abs(np.asarray(gray, dtype=np.int16) - np.asarray(from_pil)).max() > 1
    result = CliRunner().invoke(cli, ["translate", str(run), str(seg), "--out", str(tmp_path / "out"),
                                      "--precision", "fp32"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert np.abs(np.asarray(Image.open(tmp_path / "out" / "labels_L.png"), dtype=np.int16)
                  - np.asarray(from_pil)).max() <= 1

    full, edited = _label_photo(tmp_path, _blocks((0, 1000, 2000)), "I;16")[1], tmp_path / "edited.png"
    Image.fromarray(_blocks((0, 0, 2000)).astype(np.uint16)).save(edited)  # label 1000 painted over with 0
    a, b = P.load_seg(full, (64, 64)), P.load_seg(edited, (64, 64))
    rows = slice(24, 36)  # label 2000's block in both
    assert torch.equal(a[:, rows, 8:56], b[:, rows, 8:56]) and not torch.equal(a[:, 8:20], b[:, 8:20])


def test_an_edit_of_the_training_shape_gets_no_shape_warning_after_rounding(tmp_path):
    """A 128x83 photo and edge map trained at max_side 64 become 64x48 (64x42, then multiples of 16): another
    aspect than the files', but an edit of the files' shape renders at that same 64x48, so no warning."""
    import warnings

    photo, edges = tmp_path / "photo.png", tmp_path / "edges.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (83, 128, 3), dtype=np.uint8)).save(photo)
    lines = np.full((83, 128), 255, np.uint8)
    lines[20, 10:100] = lines[10:70, 60] = 0
    Image.fromarray(lines).save(edges)
    run = train(run_config(photo, edges, tmp_path / "run", 1), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [out] = deepsim.edit(run, [edges], tmp_path / "e")
    assert Image.open(out).size == (64, 48)


def test_edits_of_another_shape(tmp_path):
    """seg+edges: an edge map of another aspect than its segmentation is refused in one line naming it
    (training refuses it too); a primitive of another aspect than the training image renders with a warning."""
    run, seg, edges = _seg_edges_run(tmp_path)
    square = tmp_path / "square_edges.png"
    Image.open(edges).resize((64, 32)).save(square)
    with pytest.raises(ValueError) as err:
        deepsim.edit(run, [seg], tmp_path / "e", edges=[square])
    assert "\n" not in str(err.value) and str(square) in str(err.value) and "segmentation" in str(err.value)

    wide_seg, wide_edges = tmp_path / "wide_seg.png", tmp_path / "wide_edges.png"
    Image.open(seg).resize((128, 64), Image.Resampling.NEAREST).save(wide_seg)
    Image.open(edges).resize((128, 64)).save(wide_edges)
    with pytest.warns(UserWarning, match="aspect ratio 2.00 .* not the training image's 1.00"):
        [out] = deepsim.edit(run, [wide_seg], tmp_path / "e", edges=[wide_edges])
    assert Image.open(out).size == (128, 64)

    twin = tmp_path / "twin"  # another file of the same name: both would be written to e/wide_seg.png
    twin.mkdir()
    Image.open(wide_seg).save(twin / "wide_seg.png")
    with pytest.raises(ValueError) as err:
        deepsim.edit(run, [wide_seg, twin / "wide_seg.png"], tmp_path / "e", edges=[wide_edges, wide_edges])
    assert str(wide_seg) in str(err.value) and str(twin / "wide_seg.png") in str(err.value)


def test_tps_control_points_move_by_up_to_a_tenth_of_the_width_on_both_axes():
    """DeepSIM draws every displacement from ±0.1 W; on a 2:1 image a vertical move of 0.1 W is 0.2 of the
    height, 0.4 in the [-1, 1] frame (it was held to 0.1 of the height)."""
    src, dst = tps.random_tps_points(2000, 0.1, torch.Generator().manual_seed(0), aspect=2.0)
    moves = (dst - src)[:, 4:]
    assert float(moves[..., 0].abs().max()) == pytest.approx(0.2, abs=0.01)
    assert float(moves[..., 1].abs().max()) == pytest.approx(0.4, abs=0.02)
    assert float((dst - src)[:, :4].abs().max()) == 0.0  # the corners stay


def test_an_edge_map_shrunk_for_training_keeps_its_thin_lines(tmp_path):
    """1-px lines at 256 px read at 64 (as --max-side 64 reads the face's edges): each stays an unbroken line.
    A smooth resize and a mid-grey threshold had left 0% line pixels (the training primitive was blank)."""
    drawn = np.full((256, 256), 255, np.uint8)
    drawn[40:220, 100] = 0  # a vertical line
    rr = np.arange(30, 230)
    drawn[rr, rr] = 0  # a diagonal
    Image.fromarray(drawn).save(tmp_path / "edges.png")
    edges = P.load_edges(tmp_path / "edges.png", (64, 64))[0] < 0
    assert edges[10:55, 25].all(), "the vertical line broke"
    assert all(edges[r, r - 1 : r + 2].any() for r in range(8, 57)), "the diagonal broke"
    assert float(edges.float().mean()) < 0.06  # lines, not blobs


def _tiny_cli(tmp_path: Path, *args: str, steps: int = 1):
    from click.testing import CliRunner

    from pixmorph.cli import cli

    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0}.items()]
    return CliRunner().invoke(cli, ["train", "deepsim", *args, "--steps", str(steps), "--device", "cpu",
                                    "--set=train.tensorboard=false", *tiny])


@pytest.mark.parametrize("mask", ["indices 0/1", "0/255", "black/white RGB"])
def test_a_two_label_mask_is_a_segmentation(tmp_path, mask):
    """A grayscale mask of labels 0 and 1 given with --seg trained as an all-black edge map: --seg means a
    segmentation; given with --primitive the guess reads solid regions as one, and says what it guessed."""
    import json

    labels = _blocks((0, 1))
    photo, _ = _label_photo(tmp_path, labels)
    values = {"indices 0/1": labels, "0/255": labels * 255, "black/white RGB": np.stack([labels * 255] * 3, -1)}
    seg = tmp_path / "mask.png"
    Image.fromarray(values[mask].astype(np.uint8)).save(seg)
    for flag, run in (("--seg", "seg_run"), ("--primitive", "primitive_run")):
        result = _tiny_cli(tmp_path, "--image", str(photo), flag, str(seg), "--out", str(tmp_path / run))
        assert result.exit_code == 0, result.output + repr(result.exception)
        assert json.loads((tmp_path / run / "config.json").read_text())["data"]["options"]["kind"] == "seg"
    assert "read as a segmentation (guessed from the file" in result.output
    result = _tiny_cli(tmp_path, "--image", str(photo), "--primitive", str(seg), "--out", str(tmp_path / "set_run"),
                       "--set", "data.options.kind=seg")  # a kind set in --set or a YAML is not a guess
    assert result.exit_code == 0 and "guessed" not in result.output, result.output


@pytest.mark.parametrize("mode, ids", [("I;16", (0, 1000, 2000, 3000)), ("L", (0, 20, 40, 60))])
def test_a_label_map_of_dark_ids_is_guessed_a_segmentation(tmp_path, mode, ids):
    """A 16-bit label map of ids 1000, 2000, ... (dark once read as 8 bits), or 8-bit labels spread 0, 20, 40, 60,
    was guessed an edge map (a dark ground with no lines at all) and trained as a blank one: `--primitive
    labels.png` read it as edges, in one channel."""
    from pixmorph.data.single_image import resolve_kind

    _, seg = _label_photo(tmp_path, _blocks(ids), mode)
    assert resolve_kind(str(seg), None) == "seg"


def test_an_edge_map_is_still_guessed_as_one(tmp_path):
    from pixmorph.data.primitives import looks_like_edges
    from pixmorph.data.single_image import write_example

    paths = write_example(tmp_path)
    bilevel = tmp_path / "bilevel.png"
    Image.open(paths["edges"]).convert("1").save(bilevel)
    assert all(looks_like_edges(p) for p in (paths["edges"], *paths["edited"], bilevel))


def test_an_anti_aliased_edge_map_is_guessed_as_one(tmp_path):
    """An edge map resized (or drawn with a soft brush) has gray line pixels: it was guessed a segmentation
    and trained as a label map of some hundred gray levels; a gray photo is still no edge map."""
    from pixmorph.data.primitives import looks_like_edges
    from pixmorph.data.single_image import write_example
    from skimage import data as skdata

    paths = write_example(tmp_path)
    resized, photo = tmp_path / "resized.png", tmp_path / "gray_photo.png"
    edges = Image.open(paths["edges"])
    edges.resize((edges.width // 2, edges.height // 2), Image.Resampling.BICUBIC).save(resized)
    Image.fromarray(skdata.camera()).save(photo)
    assert looks_like_edges(resized)
    assert not looks_like_edges(photo)


def test_a_refused_example_run_writes_no_example_into_the_folder(tmp_path):
    """`--image example --out RUN`, RUN holding another run's checkpoint, was refused only after writing
    RUN/example and printing how to edit RUN with the example's edge maps."""
    photo, seg = _label_photo(tmp_path, _blocks((0, 1, 2)))
    run = tmp_path / "run"
    assert _tiny_cli(tmp_path, "--image", str(photo), "--seg", str(seg), "--out", str(run)).exit_code == 0
    result = _tiny_cli(tmp_path, "--image", "example", "--out", str(run))
    assert result.exit_code != 0 and "holds a checkpoint already" in str(result.exception), result.output
    assert not (run / "example").exists() and "built-in example" not in result.output, result.output


@pytest.mark.parametrize("refused, says", [
    (["--device", "foo"], "device 'foo'"),  # refused by the loop, before it makes the run folder
    (["--set", "train.precision=fp8"], "train.precision='fp8'"),  # refused by the command, reading its options
    (["--set", "model.gan_mode=foo"], "model.gan_mode='foo'"),  # refused by the loop, in the run folder
])
def test_an_example_run_refused_for_another_reason_leaves_no_folder(tmp_path, refused, says):
    """`--image example --out NEW` refused for another reason (a bad --device or --set) left NEW/example, written
    before the refusal, and had printed how to edit NEW with the example's edge maps."""
    from click.testing import CliRunner

    from pixmorph.cli import cli

    run = tmp_path / "new" / "run"
    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0}.items()]
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", "example", "--out", str(run), "--steps", "1",
                                      "--device", "cpu", "--set=train.tensorboard=false", *tiny, *refused])
    assert isinstance(result.exception, ValueError) and says in str(result.exception), result.output
    assert not (tmp_path / "new").exists() and "built-in example" not in result.output, result.output


def test_resume_keeps_the_runs_image_and_primitive_and_finds_moved_files(tmp_path):
    """`--resume --image OTHER` switched the run to another photo without a word; --max-side changed its
    size. Both are refused; a training file moved away is named, and given again at its new place, taken."""
    import json

    photo, seg = _label_photo(tmp_path, _blocks((0, 1, 2)))
    run = tmp_path / "run"
    assert _tiny_cli(tmp_path, "--image", str(photo), "--seg", str(seg), "--out", str(run)).exit_code == 0
    other = tmp_path / "other.png"
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(other)
    for flags, says in ((["--image", str(other)], f"trained on {photo}"), (["--seg", "auto"], f"trained on {seg}"),
                        (["--max-side", "32"], "trained with None")):
        result = _tiny_cli(tmp_path, "--out", str(run), "--resume", *flags, steps=2)
        assert result.exit_code != 0 and says in str(result.output), result.output
    moved = tmp_path / "moved" / "seg.png"
    moved.parent.mkdir()
    seg.rename(moved)
    result = _tiny_cli(tmp_path, "--out", str(run), "--resume", steps=2)
    assert result.exit_code != 0 and f"{seg}: {run} trained on this file" in result.output
    assert "give its new place with --seg FILE" in result.output
    result = _tiny_cli(tmp_path, "--out", str(run), "--resume", "--seg", str(moved), "--image", str(photo), steps=2)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((run / "config.json").read_text())["data"]["options"]["primitive"] == str(moved)


def test_the_primitive_pixmorph_saved_retrains_on_its_image(tmp_path):
    """A 451 x 300 photo trains at 128 x 80 (sides to 16s): the edge map saved at that size was refused as
    of another aspect ratio when given back to retrain on the same photo."""
    photo = tmp_path / "photo.png"
    Image.fromarray((disc_image(64)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)) \
        .resize((451, 300)).save(photo)
    result = _tiny_cli(tmp_path, "--image", str(photo), "--edges", "auto", "--max-side", "128", "--out",
                       str(tmp_path / "first"))
    assert result.exit_code == 0, result.output + repr(result.exception)
    saved = tmp_path / "first" / "primitive" / "photo_edges.png"
    assert Image.open(saved).size == (128, 80)
    result = _tiny_cli(tmp_path, "--image", str(photo), "--edges", str(saved), "--max-side", "128", "--out",
                       str(tmp_path / "second"))
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_the_example_keeps_edits_of_its_files(tmp_path):
    from pixmorph.data.single_image import write_example

    paths = write_example(tmp_path)
    paths["edited"][0].write_bytes(b"the user's edit")
    write_example(tmp_path)
    assert paths["edited"][0].read_bytes() == b"the user's edit"



def test_translate_warns_of_a_colour_photo_given_to_an_edges_model_as_edit_does(tmp_path):
    """pixmorph edit and /api/edit warn when an edges model gets a colour image; translate, which renders the
    same file the same way, says so too (one line naming the file), and not for the model's own edge map."""
    from click.testing import CliRunner

    from pixmorph.cli import cli

    photo = tmp_path / "photo.png"
    disc = disc_image(64)[0].permute(1, 2, 0).numpy() > 0
    Image.fromarray(np.where(disc, np.uint8([230, 60, 20]), np.uint8([20, 40, 200]))).save(photo)  # red on blue
    tiny = [f"--set=model.{k}={v}" for k, v in {**TINY, "ngf": 4, "ndf": 4, "lambda_vgg": 0}.items()]
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--edges", "auto", "--out", str(run),
                                      "--steps", "1", "--device", "cpu", "--set=train.tensorboard=false", *tiny])
    assert result.exit_code == 0, result.output + repr(result.exception)
    for command in ("translate", "edit"):
        result = CliRunner().invoke(cli, [command, str(run), str(photo), "--out", str(tmp_path / command),
                                          "--device", "cpu"])
        assert result.exit_code == 0, result.output + repr(result.exception)
        warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert warned == [f"warning: {photo}: a colour image, but this edges model reads it as an edge map (black "
                          "lines on white, read as gray)"], (command, result.stderr)
    edges = run / "primitive" / "photo_edges.png"
    result = CliRunner().invoke(cli, ["translate", str(run), str(edges), "--out", str(tmp_path / "own"),
                                      "--device", "cpu"])
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output


def test_training_warns_of_a_colour_edge_map_and_names_only_what_it_computed(tmp_path):
    """--edges PHOTO (a colour file as the edge map) trained without a word, though edit warns of the same
    file; a seg+edges run on the user's segmentation said 'computed primitive' of that segmentation too."""
    photo, seg = tmp_path / "photo.png", tmp_path / "seg.png"
    disc = disc_image(64)[0].permute(1, 2, 0).numpy() > 0
    Image.fromarray(np.where(disc, np.uint8([230, 60, 20]), np.uint8([20, 40, 200]))).save(photo)  # red on blue
    Image.fromarray(np.where(disc, np.uint8([255, 0, 0]), np.uint8([0, 0, 255]))).save(seg)
    with pytest.warns(UserWarning, match=r"photo.png: a colour image, but this edges run reads it as an edge map"):
        result = _tiny_cli(tmp_path, "--image", str(photo), "--edges", str(photo), "--out", str(tmp_path / "r1"))
    assert result.exit_code == 0, result.output + repr(result.exception)

    result = _tiny_cli(tmp_path, "--image", str(photo), "--seg", str(seg), "--edges", "auto",
                       "--out", str(tmp_path / "r2"))
    assert result.exit_code == 0, result.output + repr(result.exception)
    folder = tmp_path / "r2" / "primitive"
    assert (f"computed edge map: {folder / 'photo_edges.png'} (beside your segmentation at the training size, "
            f"{folder / 'photo_seg.png'})") in result.output, result.output
    result = _tiny_cli(tmp_path, "--image", str(photo), "--seg", "auto", "--edges", "auto",
                       "--out", str(tmp_path / "r3"))
    assert "computed primitive: " in result.output and "photo_seg.png, " in result.output, result.output


def test_retraining_over_a_run_on_its_own_edited_primitive_file(tmp_path):
    """Edit RUN/primitive/<image>_edges.png in place, then train again into RUN with --overwrite on it: the
    start over set RUN/primitive aside and failed with 'no such file' reading the primitive it had given."""
    photo, run = tmp_path / "photo.png", tmp_path / "run"
    disc = disc_image(64)[0].permute(1, 2, 0).numpy() > 0
    Image.fromarray(np.where(disc, np.uint8([230, 60, 20]), np.uint8([20, 40, 200]))).save(photo)
    assert _tiny_cli(tmp_path, "--image", str(photo), "--out", str(run)).exit_code == 0
    edited = run / "primitive" / "photo_edges.png"
    lines = np.asarray(Image.open(edited)).copy()
    lines[30:34, :] = 0  # a stroke drawn across
    Image.fromarray(lines).save(edited)
    result = _tiny_cli(tmp_path, "--image", str(photo), "--edges", str(edited), "--out", str(run), "--overwrite")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert np.array_equal(np.asarray(Image.open(edited)), lines) and not (run / ".replaced").exists()


def _photo_and_its_segmentations(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A photo-like image (smooth colour gradients and sensor noise: thousands of colours) and segmentations as
    people save them: flat colours, with anti-aliased borders, and as a JPEG (its noise adds colours, not regions)."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:96, 0:128] / 96
    photo_pixels = np.stack([200 * xs / 1.4, 160 * ys + 40 * xs, 120 + 80 * np.sin(6 * xs * ys)], -1)
    photo = tmp_path / "photo.png"
    Image.fromarray((photo_pixels + rng.normal(0, 6, photo_pixels.shape)).clip(0, 255).astype(np.uint8)).save(photo)
    labels = (xs > 0.5).astype(int) + 2 * ((xs - 0.6) ** 2 + (ys - 0.5) ** 2 < 0.1)
    flat = np.uint8([[40, 40, 160], [200, 40, 40], [40, 200, 40], [230, 230, 30]])[labels]
    flat_file, soft_file, jpeg_file = tmp_path / "seg.png", tmp_path / "seg_soft.png", tmp_path / "seg.jpg"
    Image.fromarray(flat).save(flat_file)
    big = Image.fromarray(flat).resize((512, 384), Image.Resampling.NEAREST)
    big.resize((128, 96), Image.Resampling.LANCZOS).save(soft_file)  # anti-aliased borders
    Image.fromarray(flat).save(jpeg_file, quality=75)
    return photo, [flat_file, soft_file, jpeg_file]


def test_a_photo_given_as_a_segmentation_is_warned_of(tmp_path):
    """A photo given to a seg model (pixmorph edit, translate, pixmorph.load, /api/edit) or as a run's --seg
    rendered or trained without a word, where an edges model warns of it: it is one line naming the file; a
    segmentation with anti-aliased borders or saved as a JPEG is not warned of."""
    photo, segmentations = _photo_and_its_segmentations(tmp_path)
    with pytest.warns(UserWarning) as caught:
        deepsim.load_primitives([photo, *segmentations], "seg")
    assert [str(w.message) for w in caught] == [
        f"{photo}: looks like a photo (thousands of colours, not flat regions), but this seg model reads it as a "
        "segmentation"]
    with pytest.warns(UserWarning, match=rf"^{photo}: looks like a photo .* this seg run reads it as a segmentation$"):
        result = _tiny_cli(tmp_path, "--image", str(photo), "--seg", str(photo), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_an_edge_map_of_white_lines_on_black_is_warned_of(tmp_path):
    """Edge maps are read as black lines on white; one drawn the other way round (OpenCV's Canny writes white lines
    on black) was rendered, and trained on, as a map that is all line: one line naming the file says so."""
    paths = write_example(tmp_path / "example")
    inverted = tmp_path / "canny_white_on_black.png"
    Image.eval(Image.open(paths["edges"]), lambda v: 255 - v).save(inverted)
    with pytest.warns(UserWarning) as caught:
        deepsim.load_primitives([paths["edges"], inverted, *paths["edited"]], "edges")
    assert [str(w.message) for w in caught] == [
        f"{inverted}: white lines on black, but this edges model reads an edge map as black lines on white "
        "(invert it)"]
    with pytest.warns(UserWarning, match=rf"^{inverted}: white lines on black, but this edges run reads"):
        result = _tiny_cli(tmp_path, "--image", str(paths["image"]), "--edges", str(inverted), "--out",
                           str(tmp_path / "run"))
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_a_gray_photo_given_as_an_edge_map_is_warned_of(tmp_path):
    """A colour photo given to an edges model is warned of; a gray one (or a gray label map) was rendered and trained
    on without a word, read as a blotch of black and white. An edge map with a thick stroke drawn in is no photo."""
    from skimage import data as skdata
    from PIL import ImageDraw

    paths = write_example(tmp_path / "example")
    gray_photo, thick = tmp_path / "gray_photo.png", tmp_path / "thick_stroke.png"
    Image.fromarray(skdata.camera()).resize((128, 128)).save(gray_photo)
    edges = Image.open(paths["edges"]).convert("L")
    ImageDraw.Draw(edges).line([(40, 40), (200, 60)], fill=0, width=8)
    edges.save(thick)
    with pytest.warns(UserWarning) as caught:
        deepsim.load_primitives([paths["edges"], gray_photo, thick], "edges")
    assert [str(w.message) for w in caught] == [
        f"{gray_photo}: gray regions, not thin lines (a photo, a label map?), but this edges model reads it as an "
        "edge map (black lines on white)"]

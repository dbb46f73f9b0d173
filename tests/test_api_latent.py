"""``pixmorph.load(run).latent``: two-step's encode / classify / translate / reconstruct / sample from Python, with the
tensors moved to the model's device and its networks run in the translator's precision (the method's own functions
take neither into account). Untrained tiny models on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixmorph.api import Translator
from pixmorph.config import RunConfig
from pixmorph.train.loop import build_method
from test_api import MODELS, untrained


def twostep(precision: str, channels: int = 1) -> Translator:
    torch.manual_seed(0)
    cfg = RunConfig.from_dict({"method": "twostep", "model": {**MODELS["twostep"], "channels": channels},
                               "data": {"root": "no-such-data", "channels": channels, "crop_size": 16}})
    return Translator(build_method(cfg), cfg, torch.device("cpu"), 0, precision=precision)


def what_the_networks_see(translator: Translator) -> list[tuple]:
    """(net, input dtype, input in channels_last, autocast dtype or None, output dtype) for each call."""
    seen: list[tuple] = []
    for name in ("E", "G", "D"):
        def record(module, args, out, name=name):
            x = args[0]
            autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
            first = out[1] if isinstance(out, tuple) else out
            seen.append((name, x.dtype, x.dim() == 4 and x.stride(1) == 1, autocast, first.dtype))
        translator.method.nets[name].register_forward_hook(record)
    return seen


def test_latent_runs_the_networks_as_the_translator_runs_its_generators():
    """translator.method.encode(x) and the rest ran on whatever x was (a CPU tensor for a CUDA model: torch's device
    error) in float32 whatever the translator's precision: latent moves and casts the tensors to the translator's
    device, runs under its autocast and layout, and gives float32 on the CPU."""
    t = twostep("bf16", channels=3)
    assert t.channels_last
    seen = what_the_networks_see(t)
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64) * 2 - 1
    z = t.latent.encode(x)
    assert z.dtype == torch.float32 and z.device.type == "cpu" and z.shape == (3, 4)
    assert seen == [("E", torch.float32, True, torch.bfloat16, torch.bfloat16)]
    seen.clear()
    out = t.latent.translate(x, "boot")
    assert out.dtype == torch.float32 and out.shape == (3, 3, 16, 16)
    assert [(name, autocast) for name, _, _, autocast, _ in seen] == [("E", torch.bfloat16), ("G", torch.bfloat16)]
    assert all(dtype == torch.bfloat16 for *_, dtype in seen)
    seen.clear()
    assert t.latent.classify(x).dtype == torch.int64
    assert t.latent.reconstruct(x).shape == t.latent.sample(torch.randn(3, 4, dtype=torch.float64), "bag").shape
    assert {autocast for _, _, _, autocast, _ in seen} == {torch.bfloat16}
    assert ("G", torch.float32, False, torch.bfloat16, torch.bfloat16) in seen  # z cast to float32


def test_latent_in_fp32_gives_the_method_s_own_results():
    t = twostep("fp32")
    method, latent = t.method, t.latent
    x, z = torch.rand(2, 1, 16, 16) * 2 - 1, torch.randn(2, 4)
    labels = torch.tensor([1, 0])
    torch.testing.assert_close(latent.encode(x), method.encode(x))
    torch.testing.assert_close(latent.translate(x, labels), method.translate(x, labels))
    torch.testing.assert_close(latent.reconstruct(x, "bag"), method.reconstruct(x, "bag"))
    torch.testing.assert_close(latent.sample(z, 1), method.sample(z, 1))
    assert torch.equal(latent.classify(x), method.classify(x))
    assert repr(latent) == "LatentModel(twostep, z 4-d, classes: bag, boot; cpu, fp32)"


def test_latent_refuses_what_the_translator_refuses():
    latent = twostep("fp32").latent
    with pytest.raises(ValueError, match=r"^a torch.uint8 tensor"):
        latent.encode(torch.zeros(1, 1, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"^a tensor with values from 0 to 255"):
        latent.translate(torch.arange(256.0).reshape(1, 1, 16, 16), "bag")
    with pytest.raises(ValueError, match=r"^images of shape \(1, 16, 16\): this model's networks take N x 1 x 16 x 16"):
        latent.encode(torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match=r"^unknown class 'cat': this model knows bag, boot$"):
        latent.sample(torch.randn(1, 4), "cat")
    with pytest.raises(TypeError, match=r"^ndarray: latent takes an N x C x S x S tensor in \[-1, 1\]"):
        latent.encode(torch.zeros(1, 1, 16, 16).numpy())
    with pytest.raises(TypeError, match=r"^list: latent takes"):
        latent.translate([torch.zeros(1, 16, 16)], "bag")
    with pytest.raises(TypeError, match=r"^z as ndarray: give an N x 4 tensor"):
        latent.sample(torch.randn(1, 4).numpy(), "bag")
    with pytest.raises(ValueError, match=r"^a cyclegan model has no latent space to give: latent is the two-step "
                                         r"model's"):
        untrained("cyclegan").latent


def test_the_model_size_is_where_the_readme_says():
    """The README said 'model.image_size' beside ``m = translator.latent``, and ``m.image_size`` does not exist: it
    names ``translator.config.model["image_size"]``, the size the networks take."""
    t = twostep("fp32")
    s = t.config.model["image_size"]
    assert s == 16 and t.latent.encode(torch.zeros(2, 1, s, s)).shape == (2, 4)
    assert 'S = translator.config.model["image_size"]' in (Path(__file__).parents[1] / "README.md").read_text()


def test_latent_codes_given_for_images_are_named_as_codes():
    """Two latent codes (a 2 x z_dim tensor) given to encode / translate / reconstruct / classify were refused as an
    image of a bad shape ('give one image as C x H x W or a batch as N x C x H x W'): they take images, and codes
    go to sample (N x z_dim, as the README says), which the message now names."""
    latent = twostep("fp32").latent
    z = torch.randn(2, 4).clamp(-1, 1)
    for name, call in (("encode", lambda: latent.encode(z)), ("classify", lambda: latent.classify(z)),
                       ("translate", lambda: latent.translate(z, "bag")), ("reconstruct", lambda: latent.reconstruct(z))):
        with pytest.raises(ValueError, match=rf"^a tensor of shape \(2, 4\): 2 latent codes of 4 values\? latent\."
                                             rf"{name} takes images, N x 1 x 16 x 16; latent\.sample\(z, c\) "
                                             rf"generates images from N x 4 codes$"):
            call()
    assert latent.sample(torch.randn(2, 4), "bag").shape == (2, 1, 16, 16)  # accepted: a batch of codes

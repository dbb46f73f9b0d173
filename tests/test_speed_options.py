"""Speed switches of the training loop and the translator: each can be turned off (and the CPU-safe
ones on) and training still runs on the CPU; resume stays exact with them on; CUDA-only switches fall
back cleanly on the CPU. No test measures time."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_train import tiny_run, weights, write_unpaired

import pixmorph
from pixmorph.config import RunConfig, TrainConfig
from pixmorph.train import speed
from pixmorph.train.loop import resolve_precision, train

ALL_OFF = {"channels_last": False, "compile": False, "fused_optimizer": False, "cudnn_benchmark": False,
           "tf32": False, "pin_memory": False, "winograd": False, "precision": "fp32"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_unpaired(tmp_path_factory.mktemp("speed") / "data")


@pytest.mark.parametrize("switch", [None, *ALL_OFF])
def test_each_switch_off_still_trains(tmp_path, data, switch):
    """None: everything off at once; else only that switch off (the rest at their defaults)."""
    options = ALL_OFF if switch is None else {switch: ALL_OFF[switch]}
    run = train(tiny_run(data, tmp_path / "run", 2, **options), progress=False)
    assert all(torch.isfinite(v).all() for v in weights(run).values())


@pytest.mark.parametrize("options", [{"channels_last": True}, {"fused_optimizer": True}, {"threads": 1},
                                     {"channels_last": True, "fused_optimizer": False}])
def test_cpu_switches_on_still_train(tmp_path, data, options):
    run = train(tiny_run(data, tmp_path / "run", 2, **options), progress=False)
    assert all(torch.isfinite(v).all() for v in weights(run).values())


@pytest.mark.slow
def test_compile_on_cpu_trains(tmp_path, data):
    """torch.compile of every network in place: checkpoint names are unchanged."""
    run = train(tiny_run(data, tmp_path / "run", 2, compile=True), progress=False)
    assert "G_A.model.1.weight" in weights(run)


def test_resume_is_bit_identical_with_channels_last_and_fused(tmp_path, data):
    fast = {"channels_last": True, "fused_optimizer": True, "threads": 1}  # threads: see test_resume_is_bit_identical
    straight = train(tiny_run(data, tmp_path / "straight", 6, **fast), progress=False)
    train(tiny_run(data, tmp_path / "stopped", 3, **fast), progress=False)
    resumed = train(tiny_run(data, tmp_path / "stopped", 6, resume=True, **fast), progress=False)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_across_fused_switch(tmp_path, data):
    """A checkpoint saved with the fused optimizer continues with it off, and the other way round."""
    train(tiny_run(data, tmp_path / "run", 2, fused_optimizer=True), progress=False)
    train(tiny_run(data, tmp_path / "run", 4, resume=True, fused_optimizer=False), progress=False)
    run = train(tiny_run(data, tmp_path / "run", 6, resume=True, fused_optimizer=True), progress=False)
    assert all(torch.isfinite(v).all() for v in weights(run).values())


def test_cuda_only_switches_fall_back_on_cpu():
    on = TrainConfig(channels_last=None, compile=None, cudnn_benchmark=True, tf32=True, pin_memory=True)
    s = speed.resolve(on, torch.device("cpu"))
    assert not (s.cudnn_benchmark or s.tf32 or s.pin_memory)
    assert not (s.channels_last or s.compile)  # "auto" is off on the CPU in fp32


def test_channels_last_auto_follows_precision_on_cpu(cyclegan_run):
    """oneDNN's bf16 convolutions work in NHWC: auto turns channels_last on for bf16 on the CPU only;
    an explicit switch wins, and the translator follows the same rule."""
    cpu = torch.device("cpu")
    assert speed.resolve(TrainConfig(), cpu, "bf16").channels_last
    assert not speed.resolve(TrainConfig(), cpu, "fp32").channels_last
    assert not speed.resolve(TrainConfig(channels_last=False), cpu, "bf16").channels_last
    assert speed.resolve(TrainConfig(channels_last=True), cpu, "fp32").channels_last
    assert pixmorph.load(cyclegan_run, precision="bf16").channels_last
    assert not pixmorph.load(cyclegan_run, precision="fp32").channels_last


def test_auto_precision_is_bf16_only_on_cpus_with_native_bf16(monkeypatch):
    """bf16 convolutions are fast on AMX and AVX512-BF16 and emulated (slower than float32) without them."""
    from pixmorph.api import resolve_precision as inference_precision

    cpu = torch.device("cpu")
    for has_amx, has_avx512_bf16, expected in ((False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")):
        monkeypatch.setattr(speed, "cpu_has_amx", lambda: has_amx)
        monkeypatch.setattr(speed, "cpu_has_avx512_bf16", lambda: has_avx512_bf16)
        assert resolve_precision("auto", cpu) == inference_precision("auto", cpu) == expected
        assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_compile_mode_reaches_torch_compile(monkeypatch):
    """train.compile_mode is handed to torch.compile ("reduce-overhead" = CUDA graphs); a typo is refused."""
    seen = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: seen.append(kw))
    nets = torch.nn.ModuleDict({"G": torch.nn.Linear(2, 2), "D": torch.nn.Linear(2, 1)})
    for mode, expected in (("default", None), ("reduce-overhead", "reduce-overhead")):
        s = dataclasses.replace(speed.resolve(TrainConfig(compile_mode=mode), torch.device("cpu")), compile=True)
        speed.apply_to_nets(nets, s)
        assert seen[-2:] == [{"mode": expected}] * 2
    with pytest.raises(ValueError, match="compile_mode='fast'"):
        speed.resolve(TrainConfig(compile_mode="fast"), torch.device("cpu"))


def test_switches_from_overrides():
    from pixmorph.config import apply_overrides

    d = apply_overrides({}, ["train.channels_last=false", "train.compile=true", "train.fused_optimizer=false",
                             "train.threads=1"])
    t = RunConfig.from_dict(d).train
    assert (t.channels_last, t.compile, t.fused_optimizer, t.threads) == (False, True, False, 1)
    assert {f.name for f in dataclasses.fields(TrainConfig)} >= set(ALL_OFF)


def test_fused_flag_and_state_follow_the_switch():
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p])
    p.grad = torch.ones(3)
    opt.step()
    speed.apply_to_optimizers({"G": opt}, speed.resolve(TrainConfig(fused_optimizer=True), torch.device("cpu")))
    assert opt.param_groups[0]["fused"] and opt.state[p]["step"].dtype == torch.float32
    opt.step()
    assert opt.state[p]["step"].item() == 2



def _conv_params(layout: torch.memory_format) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(8, 6, 3, 3, generator=g).contiguous(memory_format=layout)),
            torch.nn.Parameter(torch.randn(8, generator=g))]


@pytest.mark.parametrize("grad_layout", [torch.channels_last, torch.contiguous_format])
def test_fused_adam_on_channels_last_cpu_params_matches_the_plain_kernel(grad_layout):
    """The loop hands torch's CPU fused kernel NHWC views of channels_last tensors (it copies them to the
    contiguous layout otherwise): the same update, bit for bit, in either gradient layout, and a
    state_dict that loads into a plain Adam."""
    plain, viewed = _conv_params(torch.channels_last), _conv_params(torch.channels_last)
    opt_plain = torch.optim.Adam(plain, lr=0.1, betas=(0.5, 0.999), fused=True)
    opt_viewed = torch.optim.Adam(viewed, lr=0.1, betas=(0.5, 0.999))
    speed.apply_to_optimizers({"G": opt_viewed}, speed.resolve(TrainConfig(fused_optimizer=True), torch.device("cpu")))
    assert isinstance(opt_viewed, torch.optim.Adam) and type(opt_viewed) is not torch.optim.Adam
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for p, q in zip(plain, viewed):
            grad = torch.randn(p.shape, generator=g)
            p.grad = grad.contiguous(memory_format=grad_layout) if p.dim() == 4 else grad
            q.grad = p.grad.clone()
        opt_plain.step()
        opt_viewed.step()
    for p, q, start in zip(plain, viewed, _conv_params(torch.channels_last)):
        assert torch.equal(p, q) and not torch.equal(p, start)
    assert viewed[0].is_contiguous(memory_format=torch.channels_last)
    restored = torch.optim.Adam(_conv_params(torch.channels_last), fused=True)
    restored.load_state_dict(opt_viewed.state_dict())
    assert torch.equal(restored.state_dict()["state"][0]["exp_avg"], opt_plain.state_dict()["state"][0]["exp_avg"])

@pytest.mark.parametrize("precision,channels_last", [("fp32", True), ("bf16", False), ("auto", None)])
def test_translator_precision_and_layout_on_cpu(cyclegan_run, precision, channels_last):
    x = torch.rand(3, 3, 20, 28) * 2 - 1
    reference = pixmorph.load(cyclegan_run, precision="fp32", channels_last=False)(x)
    t = pixmorph.load(cyclegan_run, precision=precision, channels_last=channels_last)
    out = t(x)
    assert out.dtype == torch.float32 and out.shape == x.shape and out.is_contiguous()
    tolerance = 5e-2 if t.precision == "bf16" else 1e-5  # bf16 keeps 8 bits of mantissa ("auto" is on AMX)
    assert (out - reference).abs().max().item() < tolerance


def test_translator_rejects_unknown_precision(cyclegan_run):
    with pytest.raises(ValueError, match="precision"):
        pixmorph.load(cyclegan_run, precision="fp8")


def test_reflection_padding_stays_in_bf16_under_autocast():
    """CPU autocast runs torch's reflection padding in float32, which converted a generator's activations
    to float32 and back around every convolution; pixmorph's padding keeps the input's dtype and values."""
    from pixmorph.nn.pad import ReflectionPad2d
    from pixmorph.nn.resnet_generator import ResnetGenerator

    x = torch.randn(1, 4, 9, 9, dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        padded = ReflectionPad2d(2)(x)
    assert padded.dtype == torch.bfloat16 and torch.equal(padded, torch.nn.ReflectionPad2d(2)(x.detach()))
    padded.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.shape == x.shape

    generator = ResnetGenerator(ngf=8, n_blocks=2)
    pads = [m for m in generator.modules() if isinstance(m, torch.nn.ReflectionPad2d)]
    dtypes: list[torch.dtype] = []
    for pad in pads:
        pad.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        generator(torch.rand(1, 3, 32, 32))
    # the first pads the float32 image; every later one pads a convolution's bf16 output
    assert len(dtypes) == len(pads) == 6 and dtypes[1:] == [torch.bfloat16] * 5

"""Winograd F(4x4, 3x3) convolutions (pixmorph.nn.winograd): the same convolution as torch's, forward and
backward, at sizes that are and are not whole tiles; switched in place without touching checkpoints;
a CycleGAN trained a few steps with it follows the plain run's trajectory. No test measures time."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixmorph.config import TrainConfig
from pixmorph.methods.cyclegan import CycleGAN, CycleGANConfig
from pixmorph.nn import winograd
from pixmorph.nn.resnet_generator import ResnetGenerator
from pixmorph.nn.winograd import WinogradConv2d, use_winograd, winograd_conv3x3
from pixmorph.train import speed
from pixmorph.train.loop import _make_update


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("strided_min", [0, 10**9], ids=["strided-tiles", "unfold-tiles"])
@pytest.mark.parametrize("shape", [(1, 8, 18, 18), (2, 5, 11, 13), (3, 4, 7, 30), (2, 3, 50, 50)])
def test_matches_direct_convolution_forward_and_backward(shape, strided_min, monkeypatch):
    """(2, 3, 50, 50) is over the chunk size, so it also runs image by image. Both ways of cutting the
    tiles (and summing their gradients back) are taken: 36 strided copies, and unfold/fold."""
    monkeypatch.setattr(winograd, "_STRIDED_MIN", strided_min)
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float32, requires_grad=True)
    w = torch.randn(6, shape[1], 3, 3, requires_grad=True)
    ref, out = F.conv2d(x, w), winograd_conv3x3(x, w)
    assert out.shape == ref.shape
    assert _relative(out, ref) < 1e-5
    g = torch.randn_like(ref)
    ref_grads, grads = torch.autograd.grad(ref, (x, w), g), torch.autograd.grad(out, (x, w), g)
    for mine, theirs in zip(grads, ref_grads):
        assert _relative(mine, theirs) < 1e-5


@pytest.mark.parametrize("shape", [(1, 3, 10, 10), (2, 2, 11, 9)])
def test_gradients_numerically_including_second_order(shape):
    """Second derivatives too: FUNIT's R1 penalty differentiates the discriminator's input gradient."""
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, shape[1], 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(winograd_conv3x3, (x, w))
    assert torch.autograd.gradgradcheck(winograd_conv3x3, (x, w))


def test_module_with_padding_and_bias_matches_conv2d():
    torch.manual_seed(0)
    conv = nn.Conv2d(128, 64, 3, padding=1)
    x = torch.randn(1, 128, 33, 35)
    ref = conv(x)
    use_winograd(conv)
    assert type(conv) is WinogradConv2d
    assert _relative(conv(x), ref) < 5e-5  # float32 sums of 128 x 9 products


def test_generator_switched_in_place_keeps_names_and_output(monkeypatch):
    """The 256-channel residual convolutions of a 128 px ResNet generator take the Winograd path
    (32x32 at the bottleneck); parameters and their names stay; switching back restores nn.Conv2d."""
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=64, n_blocks=2).eval()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        ref = net(x)
    names = list(net.state_dict())
    assert use_winograd(net) == 4
    calls = []
    real = winograd._Winograd.apply
    monkeypatch.setattr(winograd._Winograd, "apply", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        out = net(x)
    assert len(calls) == 4 and list(net.state_dict()) == names
    assert (out - ref).abs().max().item() < 1e-4
    assert use_winograd(net, on=False) == 4 and not any(isinstance(m, WinogradConv2d) for m in net.modules())


def test_direct_path_where_winograd_does_not_win(monkeypatch):
    """Few channels, small images, channels_last or bf16 autocast fall back to torch's convolution."""
    calls = []
    monkeypatch.setattr(winograd._Winograd, "apply", lambda *a: calls.append(1))
    for channels, side, fmt in ((32, 64, torch.contiguous_format), (256, 16, torch.contiguous_format),
                                (256, 64, torch.channels_last)):
        conv = nn.Conv2d(channels, channels, 3)
        use_winograd(conv)
        conv(torch.randn(1, channels, side, side).contiguous(memory_format=fmt))
    conv = nn.Conv2d(256, 256, 3)
    use_winograd(conv)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conv(torch.randn(1, 256, 40, 40))
    assert calls == []


def test_switch_resolves_on_for_cpus_without_native_bf16_only(monkeypatch):
    """On by default where it was measured to win (an AVX-512 CPU without native bf16); off on CUDA and on
    CPUs with AMX or AVX512-BF16 (direct convolutions were faster there, and they train in bf16)."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native_bf16 in (False, True):
        monkeypatch.setattr(speed, "bf16_is_fast", lambda device: native_bf16 and device.type == "cpu")
        assert speed.resolve(TrainConfig(), cpu).winograd == (not native_bf16)
        assert speed.resolve(TrainConfig(winograd=True), cpu).winograd
    assert not speed.resolve(TrainConfig(winograd=False), cpu).winograd
    assert not speed.resolve(TrainConfig(), cuda).winograd
    assert not speed.resolve(TrainConfig(winograd=True), cuda).winograd


def _train_steps(on: bool, steps: int = 3) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    """Losses of ``steps`` CycleGAN steps at 128 px, and G_A's output on a fixed image before and after."""
    torch.manual_seed(0)
    method = CycleGAN(CycleGANConfig(ngf=32, ndf=16, n_blocks=2, pool_size=0))
    chosen = speed.resolve(TrainConfig(winograd=on, fused_optimizer=False), torch.device("cpu"))
    speed.apply_to_nets(method.nets, chosen)
    update = _make_update(method, {n: torch.amp.GradScaler("cpu", enabled=False) for n in method.optimizers})
    generator = torch.Generator().manual_seed(1)
    probe = torch.rand(1, 3, 128, 128, generator=generator) * 2 - 1
    with torch.no_grad():
        before = method.nets["G_A"](probe)
    losses = []
    for _ in range(steps):
        batch = {k: torch.rand(1, 3, 128, 128, generator=generator) * 2 - 1 for k in ("A", "B")}
        losses += [float(v) for v in method.train_step(batch, update).values()]
    with torch.no_grad():
        after = method.nets["G_A"](probe)
    return losses, before, after


def test_training_follows_the_plain_trajectory():
    """Three CycleGAN steps at 128 px (128-channel residual blocks at 32x32, on the Winograd path) stay as
    close to the plain run as a second direct-convolution implementation (oneDNN off) does: rounding
    differences grow a little over steps either way (the biases in front of instance norm get gradients of
    rounding noise, which Adam turns into lr-sized steps), and they are small against what training moved."""
    plain_losses, before, plain = _train_steps(False)
    fast_losses, _, fast = _train_steps(True)
    with torch.backends.mkldnn.flags(enabled=False):
        other_losses, _, other = _train_steps(False)
    rel = lambda losses: max(abs(a / b - 1) for a, b in zip(losses, plain_losses))  # noqa: E731
    assert rel(fast_losses) < max(5 * rel(other_losses), 1e-4)
    moved, apart, floor = ((plain - before).abs().max().item(), (fast - plain).abs().max().item(),
                           (other - plain).abs().max().item())
    assert apart < max(3 * floor, 1e-3) and apart < 0.1 * moved, (apart, floor, moved)

"""CycleGAN and pix2pix training steps against the reference's, restated in plain torch.

The reference is junyanz/pytorch-CycleGAN-and-pix2pix: ``models/cycle_gan_model.py`` (``backward_G``,
``backward_D_basic``, ``optimize_parameters``: G first with both D frozen, then D_A and D_B on pooled
fakes, each D loss halved), ``models/pix2pix_model.py`` (D first on the detached fake, halved; then G:
GAN + 100 * L1 through the updated D), ``models/networks.py`` (``GANLoss``: MSE for lsgan, BCE with logits
for vanilla) and ``util/image_pool.py`` (while the pool fills, it returns the new fakes). Both take Adam
with lr 2e-4 and betas (0.5, 0.999).

pixmorph's step runs as ``pixmorph train`` runs it on a CPU in fp32: its own norm, padding and image-layer
modules, Winograd convolutions and the fused Adam. The reference side gets the same weights in stock torch
modules (``nn.InstanceNorm2d``, ``nn.BatchNorm2d``, ``nn.Conv2d``, ``nn.ReflectionPad2d``). Each loss term,
every gradient and every updated weight must agree over three steps, so a changed weight, reduction, update
order or optimizer setting fails here. pix2pix's networks themselves are restated from ``models/networks.py``
at the end (the step tests copy pixmorph's).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixmorph.config import TrainConfig
from pixmorph.methods.cyclegan import CycleGAN, CycleGANConfig
from pixmorph.methods.pix2pix import Pix2Pix, Pix2PixConfig
from pixmorph.nn.image_conv import ImageConv2d
from pixmorph.nn.norm import BatchNorm2d, InstanceNorm2d
from pixmorph.nn.pad import ReflectionPad2d
from pixmorph.nn.winograd import WinogradConv2d
from pixmorph.train import speed
from pixmorph.train.loop import _make_update

STEPS = 3
# pixmorph's modules -> the stock ones the reference builds
STOCK = {InstanceNorm2d: nn.InstanceNorm2d, BatchNorm2d: nn.BatchNorm2d, ImageConv2d: nn.Conv2d,
         WinogradConv2d: nn.Conv2d, ReflectionPad2d: nn.ReflectionPad2d}


def stock_copy(nets: nn.ModuleDict) -> nn.ModuleDict:
    ref = copy.deepcopy(nets)
    for module in ref.modules():
        for ours, stock in STOCK.items():
            if type(module) is ours:
                module.__class__ = stock
    assert not any(type(m) in STOCK for m in ref.modules())
    return ref


def as_trained(method, speedups: bool):
    """The method's nets and optimizers as the loop sets them up on a CPU in fp32, and its update."""
    t = TrainConfig(winograd=True, channels_last=False) if speedups else TrainConfig(
        winograd=False, channels_last=False, fused_optimizer=False)
    s = speed.resolve(t, torch.device("cpu"), "fp32")
    speed.apply_to_nets(method.nets, s)
    speed.apply_to_optimizers(method.optimizers, s)
    return _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers})


def adam(*nets: nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam([p for n in nets for p in n.parameters()], lr=2e-4, betas=(0.5, 0.999))


def assert_losses_equal(ours: dict, theirs: dict, step: int) -> None:
    assert set(ours) == set(theirs)
    for k in theirs:
        torch.testing.assert_close(ours[k].float(), theirs[k].detach().float(), rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"step {step}, loss {k}: {m}")


def assert_nets_equal(ours: nn.ModuleDict, theirs: nn.ModuleDict, step: int) -> None:
    """Gradients of this step (both sides leave them in .grad) and the weights after the update."""
    # a gradient is compared at its network's scale: some are zero up to rounding (a bias before a norm)
    scale = {net: max(p.grad.abs().max().item() for p in theirs[net].parameters() if p.grad is not None)
             for net in theirs if any(p.grad is not None for p in theirs[net].parameters())}
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        if q.grad is not None:
            net_scale = scale[name.split(".")[0]]
            err = (p.grad - q.grad).abs().max().item() / net_scale
            assert err < 1e-4, f"step {step}: gradient of {name} differs by {err:.2e} of its network's largest"
            if q.grad.abs().max().item() < 1e-5 * net_scale:
                # a bias right before an instance norm: its gradient is rounding noise, which Adam scales
                # up to ±lr either way; the norm removes it from the output
                continue
        # Adam moves every weight by about lr per step, whatever its gradient: a tenth of that is a bug
        assert (p - q).abs().max().item() < 2e-5, f"step {step}: {name} differs after the update"
    with torch.no_grad():  # the next step from the same weights: Adam turns rounding-level gradients into
        for p, q in zip(ours.parameters(), theirs.parameters()):  # ±lr moves, which later steps amplify
            q.copy_(p)


def batches(channels_a: int, channels_b: int, size: int):
    g = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        yield {"A": torch.rand(1, channels_a, size, size, generator=g) * 2 - 1,
               "B": torch.rand(1, channels_b, size, size, generator=g) * 2 - 1}


@pytest.mark.parametrize("speedups", [False, True], ids=["plain", "cpu-defaults"])
def test_cyclegan_step_is_the_references(speedups: bool):
    torch.manual_seed(0)
    method = CycleGAN(CycleGANConfig(ngf=16, ndf=16, n_blocks=2))
    ref = stock_copy(method.nets)
    update = as_trained(method, speedups)
    assert any(isinstance(m, WinogradConv2d) for m in method.nets.modules()) == speedups
    G_A, G_B, D_A, D_B = ref["G_A"], ref["G_B"], ref["D_A"], ref["D_B"]
    opt_G, opt_D = adam(G_A, G_B), adam(D_A, D_B)
    pool_A, pool_B = [], []  # filling: query() returns the new fakes

    def lsgan(pred, real: bool):
        return F.mse_loss(pred, torch.full_like(pred, float(real)))

    for step, batch in enumerate(batches(3, 3, 64)):
        ours = method.train_step(batch, update)

        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        rec_A, rec_B = G_B(fake_B), G_A(fake_A)
        D_A.requires_grad_(False), D_B.requires_grad_(False)
        opt_G.zero_grad()
        idt_A = F.l1_loss(G_A(real_B), real_B) * 10 * 0.5  # lambda_B * lambda_identity
        idt_B = F.l1_loss(G_B(real_A), real_A) * 10 * 0.5
        gan_A, gan_B = lsgan(D_A(fake_B), True), lsgan(D_B(fake_A), True)
        cyc_A, cyc_B = F.l1_loss(rec_A, real_A) * 10, F.l1_loss(rec_B, real_B) * 10
        (gan_A + gan_B + cyc_A + cyc_B + idt_A + idt_B).backward()
        opt_G.step()
        D_A.requires_grad_(True), D_B.requires_grad_(True)
        opt_D.zero_grad()
        pool_B.append(fake_B.detach()), pool_A.append(fake_A.detach())

        def d_loss(D, real, fake):
            return (lsgan(D(real), True) + lsgan(D(fake.detach()), False)) * 0.5

        loss_D_A = d_loss(D_A, real_B, pool_B[-1])
        loss_D_A.backward()
        loss_D_B = d_loss(D_B, real_A, pool_A[-1])
        loss_D_B.backward()
        opt_D.step()

        assert_losses_equal(ours, dict(G_A=gan_A, G_B=gan_B, cycle_A=cyc_A, cycle_B=cyc_B, idt_A=idt_A,
                                       idt_B=idt_B, D_A=loss_D_A, D_B=loss_D_B), step)
        assert_nets_equal(method.nets, ref, step)


@pytest.mark.parametrize("speedups", [False, True], ids=["plain", "cpu-defaults"])
def test_pix2pix_step_is_the_references(speedups: bool):
    torch.manual_seed(0)
    # the paper's batch norm and dropout: a 6-level U-Net (64 px) has one dropout level (the reference puts
    # dropout in the num_downs - 5 levels between the innermost and the ngf * 4 one; 5 levels have none)
    method = Pix2Pix(Pix2PixConfig(ngf=8, ndf=8, num_downs=6))
    assert sum(isinstance(m, nn.Dropout) for m in method.nets["G"].modules()) == 1
    ref = stock_copy(method.nets)
    update = as_trained(method, speedups)
    G, D = ref["G"], ref["D"]
    opt_G, opt_D = adam(G), adam(D)

    def bce(pred, real: bool):
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, float(real)))

    for step, batch in enumerate(batches(3, 3, 64)):
        torch.manual_seed(100 + step)  # the same dropout masks: G's forward is each side's first draw
        ours = method.train_step(batch, update)

        torch.manual_seed(100 + step)
        real_A, real_B = batch["A"], batch["B"]
        fake_B = G(real_A)
        opt_D.zero_grad()
        D_fake = bce(D(torch.cat([real_A, fake_B.detach()], 1)), False)
        D_real = bce(D(torch.cat([real_A, real_B], 1)), True)
        ((D_fake + D_real) * 0.5).backward()
        opt_D.step()
        D.requires_grad_(False)
        opt_G.zero_grad()
        G_GAN = bce(D(torch.cat([real_A, fake_B], 1)), True)
        G_L1 = F.l1_loss(fake_B, real_B) * 100
        (G_GAN + G_L1).backward()
        opt_G.step()
        D.requires_grad_(True)

        assert_losses_equal(ours, dict(G_GAN=G_GAN, G_L1=G_L1, D_real=D_real, D_fake=D_fake), step)
        assert_nets_equal(method.nets, ref, step)
        for (name, b), (_, c) in zip(method.nets.named_buffers(), ref.named_buffers()):  # running statistics
            torch.testing.assert_close(b, c, rtol=1e-4, atol=1e-5, msg=lambda m: f"step {step}, {name}: {m}")


# -- pix2pix's networks rebuilt from the reference's recipes (models/networks.py) ------------------------------
# The step test above runs the reference's losses over copies of pixmorph's own networks; these restate the
# networks themselves, so a layer out of place (a dropout, a bias, a norm) fails here.


class RefUnetBlock(nn.Module):
    """``UnetSkipConnectionBlock`` with batch norm (``use_bias`` False: no bias before a norm)."""

    def __init__(self, outer: int, inner: int, input_nc: int | None = None, sub: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, use_dropout: bool = False):
        super().__init__()
        input_nc = outer if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)
        downrelu, downnorm, uprelu, upnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner), nn.ReLU(True), nn.BatchNorm2d(outer)
        self.outermost = outermost
        if outermost:
            model = [downconv, sub, uprelu, nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [downrelu, downconv, uprelu, nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), upnorm]
        else:
            model = [downrelu, downconv, downnorm, sub, uprelu, nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False),
                     upnorm] + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def ref_unet(input_nc: int, output_nc: int, num_downs: int, ngf: int) -> nn.Module:
    """``UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer=BatchNorm2d, use_dropout=True)``."""
    block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = RefUnetBlock(ngf * 8, ngf * 8, sub=block, use_dropout=True)
    block = RefUnetBlock(ngf * 4, ngf * 8, sub=block)
    block = RefUnetBlock(ngf * 2, ngf * 4, sub=block)
    block = RefUnetBlock(ngf, ngf * 2, sub=block)
    return RefUnetBlock(output_nc, ngf, input_nc=input_nc, sub=block, outermost=True)


def ref_patchgan(input_nc: int, ndf: int, n_layers: int) -> nn.Module:
    """``NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer=BatchNorm2d)``."""
    seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2**n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2**n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)


def load_in_order(ref: nn.Module, ours: nn.Module) -> None:
    """pixmorph's parameters and buffers into ``ref`` one by one, in module order, shapes checked."""
    for kind in ("parameters", "buffers"):
        theirs, mine = list(getattr(ref, kind)()), list(getattr(ours, kind)())
        assert [tuple(t.shape) for t in theirs] == [tuple(t.shape) for t in mine], kind
        with torch.no_grad():
            for t, m in zip(theirs, mine):
                t.copy_(m)


@pytest.mark.usefixtures("one_thread")
def test_pix2pix_networks_are_the_references():
    torch.manual_seed(0)
    method = Pix2Pix(Pix2PixConfig(ngf=8, ndf=8, num_downs=7))  # two dropout levels
    G, D = method.nets["G"], method.nets["D"]
    ref_G, ref_D = ref_unet(3, 3, 7, 8), ref_patchgan(6, 8, 3)
    load_in_order(ref_G, G)
    load_in_order(ref_D, D)
    assert [type(m) for m in ref_G.modules() if not isinstance(m, (RefUnetBlock, nn.Sequential))] == \
        [nn.BatchNorm2d if isinstance(m, BatchNorm2d) else type(m) for m in G.modules()
         if type(m).__name__ not in ("UnetLevel", "Sequential", "UnetGenerator")]
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    for train in (True, False):  # train: batch statistics and dropout (the same masks); eval: running statistics
        G.train(train), ref_G.train(train), D.train(train), ref_D.train(train)
        torch.manual_seed(7)
        ours = G(x)
        torch.manual_seed(7)
        torch.testing.assert_close(ours, ref_G(x), rtol=1e-5, atol=1e-5)
        xy = torch.cat([x, ours.detach()], 1)
        torch.testing.assert_close(D(xy), ref_D(xy), rtol=1e-5, atol=1e-5)

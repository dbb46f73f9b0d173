"""DeepSIM's training step against the reference's, restated in plain torch.

The reference is eliahuhorwitz/DeepSIM, built on NVIDIA/pix2pixHD (DeepSIM's files, commit d0b5410):

* ``train.py`` (the loop body): ``loss_D = (D_fake + D_real) * 0.5``, ``loss_G = G_GAN + G_GAN_Feat + G_VGG``;
  ``optimizer_G.zero_grad(); loss_G.backward(); optimizer_G.step()`` THEN ``optimizer_D.zero_grad();
  loss_D.backward(); optimizer_D.step()``, every D output taken from the D of before either update.
* ``models/pix2pixHD_model.py`` ``Pix2PixHDModel.initialize``: Adam(lr, betas=(beta1, 0.999)) for G and for D;
  ``D`` takes ``input_nc + output_nc`` channels (``--no_instance``, ``--label_nc 0`` as DeepSIM's scripts run it).
  ``Pix2PixHDModel.forward``: ``pred_fake_pool = D(cat(label, fake.detach()))`` (``pool_size`` 0: no pool),
  ``pred_real = D(cat(label, real))``, ``pred_fake = D(cat(label, fake))``; feature matching
  ``sum_i sum_{j < last} (1/num_D) * (4/(n_layers_D+1)) * L1(pred_fake[i][j], pred_real[i][j].detach()) * lambda_feat``;
  ``G_VGG = VGGLoss(fake, real) * lambda_feat`` (the same 10).
* ``models/networks.py``: ``GANLoss`` (LSGAN: ``nn.MSELoss`` on each scale's last output against a tensor of
  1 or 0, summed over scales); ``VGGLoss`` (``Vgg19`` slices ``features[0:2], [2:7], [7:12], [12:21], [21:30]``,
  weights 1/32, 1/16, 1/8, 1/4, 1, ``L1(x_vgg, y_vgg.detach())``, the [-1, 1] images fed as they are);
  ``GlobalGenerator``, ``ResnetBlock`` (all convolutions with bias, ``InstanceNorm2d(affine=False)``,
  reflection padding); ``MultiscaleDiscriminator`` (``AvgPool2d(3, 2, 1, count_include_pad=False)`` between
  scales, full resolution first) and ``NLayerDiscriminator`` with ``getIntermFeat`` (4x4 convolutions, padding
  2: a stride-2 layer without norm, ``n_layers - 1`` stride-2 layers with norm, a stride-1 layer with norm, the
  1-channel output).
* ``options/train_options.py``, ``options/base_options.py``: lr 2e-4, beta1 0.5, num_D 2, n_layers_D 3,
  lambda_feat 10, pool_size 0, ngf/ndf 64, n_downsample_global 4, n_blocks_global 9, norm instance.

What is compared: pixmorph's ``DeepSIM.train_step(batch, update)`` with the loop's own ``_make_update`` and the
CPU fp32 speed settings the loop applies (fused Adam; Winograd 3x3 convolutions both off and on), against
networks rebuilt here from the reference's recipes (plain ``nn.Conv2d``/``nn.InstanceNorm2d``/
``nn.ReflectionPad2d``, none of pixmorph's subclasses), loaded with pixmorph's weights parameter by parameter
(shapes checked). Two steps on two batches, each from the same weights: each loss term (rel 2e-5), every
gradient (2e-5 of the tensor's largest) and the weights after the step (lr/20); two steps, because Adam's first
step is lr * sign(grad) and sees neither beta. The biases that an affine-free instance norm cancels (exact
gradient 0, rounding noise in both codes) are left out of the gradient and weight checks. Adam's settings
(lr, betas, eps, no weight decay, each optimizer over its own network) are read from the optimizers.

The perceptual network: the real VGG19 architecture with random weights, through pixmorph's own hook, a
weights file named by ``$PIXMORPH_VGG19_WEIGHTS`` with ``model.perceptual=vgg19``; the reference side builds
its own VGG19 ``features`` (torchvision's configuration "E") from the same file and cuts it at the reference's
indices (the second parametrisation reuses the network pixmorph loaded in the first: 2 s to build).
pixmorph's offline default, ``stlpips-vgg16``, is a documented deviation (README, Single-image manipulation);
it is not the reference's loss and is not tested here.

The batch is taken as already augmented: the TPS warp, mirror and Canny redraw are replaced by the identity.

The initialisation is the reference's too (``test_initialisation_matches_the_reference``): pix2pixHD's
``weights_init`` sets only conv weights ~ N(0, 0.02) and leaves conv biases at torch's default
uniform(+-1/sqrt(fan_in)) (pixmorph zeroed them before 2026-12-02).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixmorph.config import TrainConfig
from pixmorph.methods.deepsim import DeepSIM, DeepSIMConfig
from pixmorph.train import speed as S
from pixmorph.train.loop import _make_update

# A tiny model with the reference's discriminator shape (num_D 2, n_layers_D 3) and generator depth (4 downsamplings).
TINY = dict(in_channels=3, out_channels=3, ngf=8, ndf=8, n_blocks=2, n_downsampling=4, num_D=2, d_layers=3)
SIZE = 64
VGG19_E = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG_CUTS = (0, 2, 7, 12, 21, 30)  # networks.py Vgg19: slice1 = features[0:2], ..., slice5 = features[21:30]
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # networks.py VGGLoss.weights

LOSS_RTOL = 2e-5
GRAD_ATOL_REL = 2e-5  # of the largest gradient of each tensor
# Adam's update is lr * m / (sqrt(v) + 1e-8): for a gradient entry near 1e-8 it is as sensitive as the rounding of
# that entry (measured up to 3e-6 on some 4e-8 entries); a wrong lr, beta or sign is off by a good part of lr (2e-4).
WEIGHT_ATOL = 2e-4 / 20


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


# -- the reference's networks, rebuilt from networks.py -------------------------------------------------


def reference_generator(input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int) -> nn.Module:
    """networks.py GlobalGenerator(norm_layer=InstanceNorm2d(affine=False), padding_type='reflect')."""

    class ResnetBlock(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
                                            nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3),
                                            nn.InstanceNorm2d(dim))

        def forward(self, x):
            return x + self.conv_block(x)

    model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(n_downsampling):
        mult = 2**i
        model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ngf * mult * 2),
                  nn.ReLU(True)]
    mult = 2**n_downsampling
    model += [ResnetBlock(ngf * mult) for _ in range(n_blocks)]
    for i in range(n_downsampling):
        mult = 2 ** (n_downsampling - i)
        model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                  nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU(True)]
    model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    return nn.Sequential(*model)


def reference_patch_discriminator(input_nc: int, ndf: int, n_layers: int) -> nn.ModuleList:
    """networks.py NLayerDiscriminator(getIntermFeat=True, use_sigmoid=False): its model0 .. model{n_layers+1}."""
    kw, padw = 4, math.ceil((4 - 1) / 2)
    seq = [nn.Sequential(nn.Conv2d(input_nc, ndf, kw, 2, padw), nn.LeakyReLU(0.2, True))]
    nf = ndf
    for _ in range(1, n_layers):
        nf_prev, nf = nf, min(nf * 2, 512)
        seq.append(nn.Sequential(nn.Conv2d(nf_prev, nf, kw, 2, padw), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)))
    nf_prev, nf = nf, min(nf * 2, 512)
    seq.append(nn.Sequential(nn.Conv2d(nf_prev, nf, kw, 1, padw), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, True)))
    seq.append(nn.Sequential(nn.Conv2d(nf, 1, kw, 1, padw)))
    return nn.ModuleList(seq)


def multiscale_forward(scales: list[nn.ModuleList], x: torch.Tensor) -> list[list[torch.Tensor]]:
    """networks.py MultiscaleDiscriminator.forward + singleD_forward: every layer's output, per scale, the input
    average-pooled once more for each next scale."""
    result = []
    for i, layers in enumerate(scales):
        feats = [x]
        for layer in layers:
            feats.append(layer(feats[-1]))
        result.append(feats[1:])
        if i != len(scales) - 1:
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    return result


def vgg19_features() -> nn.Sequential:
    """torchvision's vgg19().features (configuration "E"), built here."""
    layers, c = [], 3
    for v in VGG19_E:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


def reference_vgg(features_state: dict[str, torch.Tensor]) -> list[nn.Sequential]:
    """networks.py Vgg19: slices of the features at the reference's indices, frozen."""
    features = vgg19_features()
    features.load_state_dict({k.removeprefix("features."): v for k, v in features_state.items()})
    features.requires_grad_(False)
    return [features[VGG_CUTS[s]:VGG_CUTS[s + 1]] for s in range(5)]


def reference_vgg_loss(slices: list[nn.Sequential], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """networks.py VGGLoss.forward."""
    def run(h):
        out = []
        for s in slices:
            h = s(h)
            out.append(h)
        return out

    loss = 0
    for w, a, b in zip(VGG_WEIGHTS, run(x), run(y)):
        loss = loss + w * F.l1_loss(a, b.detach())
    return loss


def gan_loss(pred: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
    """networks.py GANLoss(use_lsgan=True).__call__ on a multi-scale output: MSE of each scale's last output
    against 1 (real) or 0 (fake), summed over the scales."""
    loss = 0
    for p in pred:
        loss = loss + F.mse_loss(p[-1], torch.full_like(p[-1], 1.0 if target_is_real else 0.0))
    return loss


def copy_by_order(src: nn.Module, dst: nn.Module) -> None:
    """dst's parameters := src's, in module order, shapes checked (the architectures agree layer by layer)."""
    ps, pd = list(src.parameters()), list(dst.parameters())
    assert [tuple(p.shape) for p in ps] == [tuple(p.shape) for p in pd]
    with torch.no_grad():
        for a, b in zip(ps, pd):
            b.copy_(a)


class ReferenceDeepSIM:
    """The reference's networks, optimizers and one training step (train.py + Pix2PixHDModel.forward)."""

    def __init__(self, cfg: DeepSIMConfig, features_state: dict[str, torch.Tensor]):
        self.cfg = cfg
        self.G = reference_generator(cfg.in_channels, cfg.out_channels, cfg.ngf, cfg.n_downsampling, cfg.n_blocks)
        self.D = nn.ModuleList(reference_patch_discriminator(cfg.in_channels + cfg.out_channels, cfg.ndf, cfg.d_layers)
                               for _ in range(cfg.num_D))
        self.vgg = reference_vgg(features_state)
        # pix2pixHD_model.py initialize: Adam(lr=opt.lr, betas=(opt.beta1, 0.999)), the reference's defaults
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self, label: torch.Tensor, real: torch.Tensor, lambda_feat: float = 10.0) -> dict[str, torch.Tensor]:
        num_D, n_layers = len(self.D), self.cfg.d_layers
        D = lambda x: multiscale_forward(list(self.D), x)  # noqa: E731
        fake = self.G(label)
        pred_fake_pool = D(torch.cat((label, fake.detach()), 1))
        loss_D_fake = gan_loss(pred_fake_pool, False)
        pred_real = D(torch.cat((label, real.detach()), 1))
        loss_D_real = gan_loss(pred_real, True)
        pred_fake = D(torch.cat((label, fake), 1))
        loss_G_GAN = gan_loss(pred_fake, True)
        loss_G_feat = 0
        feat_weights, D_weights = 4.0 / (n_layers + 1), 1.0 / num_D
        for i in range(num_D):
            for j in range(len(pred_fake[i]) - 1):
                loss_G_feat = loss_G_feat + D_weights * feat_weights * \
                    F.l1_loss(pred_fake[i][j], pred_real[i][j].detach()) * lambda_feat
        loss_G_VGG = reference_vgg_loss(self.vgg, fake, real) * lambda_feat
        # train.py
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_G = loss_G_GAN + loss_G_feat + loss_G_VGG
        self.opt_G.zero_grad()
        loss_G.backward()
        self.grads_G = [p.grad.clone() for p in self.G.parameters()]
        self.opt_G.step()
        self.opt_D.zero_grad()
        loss_D.backward()
        self.grads_D = [p.grad.clone() for p in self.D.parameters()]
        self.opt_D.step()
        return {"G_GAN": loss_G_GAN, "G_feat": loss_G_feat, "G_VGG": loss_G_VGG, "D_real": loss_D_real,
                "D_fake": loss_D_fake}


# -- the comparison --------------------------------------------------------------------------------------------


def random_vgg19_file(path) -> dict[str, torch.Tensor]:
    """A torchvision-keyed VGG19 features file with random weights (He-scaled, so the deep features neither
    vanish nor explode at 64 px) and non-zero biases."""
    g = torch.Generator().manual_seed(11)
    state = {}
    for i, m in enumerate(vgg19_features()):
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * 9
            state[f"features.{i}.weight"] = torch.randn(m.weight.shape, generator=g) * math.sqrt(2 / fan_in)
            state[f"features.{i}.bias"] = torch.randn(m.bias.shape, generator=g) * 0.05
    torch.save(state, path)
    return state


def batches(n: int = 2):
    g = torch.Generator().manual_seed(5)
    out = []
    for _ in range(n):
        label = (torch.rand(1, TINY["in_channels"], SIZE, SIZE, generator=g) > 0.5).float() * 2 - 1
        image = torch.tanh(F.avg_pool2d(torch.randn(1, 3, SIZE, SIZE, generator=g) * 3, 5, 1, 2))
        out.append({"A": label, "B": image})
    return out


def close(a: torch.Tensor, b: torch.Tensor, atol: float) -> float:
    return float((a - b).detach().abs().max()) <= atol


def biases_cancelled_by_a_norm(net: nn.Module) -> set[str]:
    """Names of the biases of convolutions directly followed by instance norm (affine-free). The norm subtracts
    each channel's mean, so these biases change no output and their exact gradient is 0: what autograd returns is
    rounding noise (~1e-7 here, in the reference's code as in pixmorph's), and Adam, dividing by its own
    magnitude, moves them by about +-lr in a random direction on either side. They are left out of the
    gradient and weight comparisons (the losses of the second step would show it if they mattered)."""
    names = set()
    for prefix, m in net.named_modules():
        if isinstance(m, nn.Sequential):
            kids = list(m.named_children())
            for (name, conv), (_, norm) in zip(kids, kids[1:]):
                if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and conv.bias is not None \
                        and isinstance(norm, nn.InstanceNorm2d) and not norm.affine:
                    names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return names


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg19") / "vgg19.pth"
    return path, random_vgg19_file(path)


_LOADED: dict[str, tuple] = {}  # the perceptual network as pixmorph loaded it in the first variant (2 s to build)


@pytest.mark.parametrize("winograd", [False, True], ids=["direct", "winograd"])
def test_two_training_steps_equal_the_reference(vgg19_file, monkeypatch, winograd):
    path, state = vgg19_file
    monkeypatch.setenv("PIXMORPH_VGG19_WEIGHTS", str(path))
    torch.manual_seed(0)
    cfg = DeepSIMConfig(**TINY, perceptual="vgg19")
    method = DeepSIM(cfg)
    if "vgg19" in _LOADED:  # loaded through pixmorph's hook ($PIXMORPH_VGG19_WEIGHTS) by the variant that ran first
        method._perceptual, method._perceptual_name = _LOADED["vgg19"]
    # the configuration is the reference's where the test does not shrink it
    assert (cfg.lr, cfg.beta1, cfg.lambda_feat, cfg.lambda_vgg, cfg.gan_mode, cfg.norm) == \
        (2e-4, 0.5, 10.0, 10.0, "lsgan", "instance")
    # pix2pixHD_model.py: optimizer_G = Adam(netG.parameters(), lr, betas=(beta1, 0.999)), optimizer_D likewise for
    # netD (eps, weight decay: torch's defaults). Two steps cannot see beta2 (0.99 for 0.999 changes the second
    # update by far less than rounding), so the settings are read here.
    for name, opt in method.optimizers.items():
        assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
        assert [id(p) for g in opt.param_groups for p in g["params"]] == [id(p) for p in method.nets[name].parameters()]
        for g in opt.param_groups:
            assert (g["lr"], g["betas"], g["eps"], g["weight_decay"], g["amsgrad"], g["maximize"]) == \
                (2e-4, (0.5, 0.999), 1e-8, 0, False, False), (name, g)
    method.augment = lambda A, B, auto_edges=None, generator=None: (A, B)  # the batch comes augmented

    ref = ReferenceDeepSIM(cfg, state)
    copy_by_order(method.nets["G"], ref.G)
    copy_by_order(method.nets["D"], ref.D)

    # the loop's CPU fp32 settings (loop.train: speedups.resolve, apply_to_nets, apply_to_optimizers)
    speed = S.resolve(TrainConfig(winograd=winograd), torch.device("cpu"), "fp32")
    S.apply_to_nets(method.nets, speed)
    S.apply_to_optimizers(method.optimizers, speed)
    if winograd:
        assert any(type(m).__name__ == "WinogradConv2d" for m in method.nets.modules())
    skip = {k: biases_cancelled_by_a_norm(method.nets[k]) for k in ("G", "D")}
    assert len(skip["G"]) == 1 + 2 * TINY["n_downsampling"] + 2 * TINY["n_blocks"]
    assert len(skip["D"]) == TINY["d_layers"] * TINY["num_D"]
    update = _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers})

    for step, batch in enumerate(batches(2)):
        ours = method.train_step(batch, update)
        if step == 0:
            assert method._perceptual_name == "vgg19"
            _LOADED["vgg19"] = (method._perceptual, method._perceptual_name)
        theirs = ref.step(batch["A"], batch["B"])
        for k in theirs:
            assert float(ours[k]) == pytest.approx(float(theirs[k].detach()), rel=LOSS_RTOL), (step, k, ours, theirs)
        for name, net, grads in (("G", method.nets["G"], ref.grads_G), ("D", method.nets["D"], ref.grads_D)):
            for (pname, p), g in zip(net.named_parameters(), grads):
                if pname in skip[name]:
                    continue
                tol = GRAD_ATOL_REL * float(g.abs().max()) + 1e-12
                assert close(p.grad, g, tol), (step, name, pname, float((p.grad - g).abs().max()), tol)
        for name, mine, their, grads in (("G", method.nets["G"], ref.G, ref.grads_G),
                                         ("D", method.nets["D"], ref.D, ref.grads_D)):
            for (pname, p), q, g in zip(mine.named_parameters(), their.parameters(), grads):
                if pname in skip[name]:
                    continue
                # an entry whose gradient is near Adam's eps (1e-8) moves by whatever its rounding says
                decided = g.abs() > 1e-6 * float(g.abs().max())
                assert close(p[decided], q[decided], WEIGHT_ATOL), (step, name, pname,
                                                                    float((p - q)[decided].detach().abs().max()))
        # Each step from the same weights: the rounding of one step (and the biases a norm cancels, which Adam
        # moves by +-lr at random) would otherwise feed the next step's gradients (2e-4 relative, measured).
        # Each side keeps its own Adam state, so the second step's update still tests beta1 and beta2.
        copy_by_order(method.nets["G"], ref.G)
        copy_by_order(method.nets["D"], ref.D)


def test_initialisation_matches_the_reference():
    """networks.py weights_init: conv weights ~ N(0, 0.02), conv biases untouched (torch's default,
    uniform(+-1/sqrt(fan_in))), no affine norms. Only the biases of convolutions not followed by instance norm
    matter (the norm cancels the others): G's last conv, D's first and last per scale."""
    torch.manual_seed(0)
    method = DeepSIM(DeepSIMConfig(ngf=16, ndf=16, n_blocks=1, n_downsampling=2, num_D=2, d_layers=3))
    weights = torch.cat([m.weight.detach().flatten() for m in method.nets.modules()
                         if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(float(weights.std()) - 0.02) < 1e-3 and abs(float(weights.mean())) < 1e-3
    assert not any(m.affine for m in method.nets.modules() if isinstance(m, nn.InstanceNorm2d))
    D0 = method.nets["D"].scales[0].layers[0][0]  # first conv of the full-resolution discriminator
    bound = 1 / math.sqrt(D0.in_channels * 16)
    assert float(D0.bias.detach().abs().max()) > bound / 4  # drawn from uniform(+-bound), not zero

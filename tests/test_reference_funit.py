"""One FUNIT training step of pixmorph against the reference's (NVlabs/FUNIT, Liu et al. 2019), written here
in plain torch from the reference's formulas and run from the same weights on the same batch; and five steps.

pixmorph's side is its own: ``Funit.train_step(batch, update)`` with the loop's ``_make_update`` and the fp32
speed settings ``pixmorph train`` applies on this CPU (``train/speed.py``). The reference side restates:

* ``trainer.py`` ``Trainer.__init__``: RMSprop for G and D, lr 1e-4, weight decay 1e-4, torch's defaults
  otherwise (alpha 0.99, eps 1e-8, no momentum, not centred); ``train.py``'s loop: ``dis_update`` then
  ``gen_update`` each iteration; ``trainer.py`` ``gen_update``: the G step, then ``update_average`` (EMA,
  beta 0.999: ``p_ema = beta * p_ema + (1 - beta) * p``, no warm-up).
* ``funit_model.py`` ``FUNITModel.forward`` ``'dis_update'``: hinge on real x_b (map of class l_b), R1 penalty
  ``10 * calc_grad2`` (the literal 10), hinge on the translation ``G(x_a, x_b)`` made without gradient;
  ``'gen_update'``: translation and reconstruction, ``l_adv = 0.5 * (l_adv_t + l_adv_r)`` on the maps of l_b
  and l_a, feature matching ``l_c_rec + l_m_rec`` (L1 of the spatially averaged discriminator features of
  x_r vs x_a and x_t vs x_b), ``l_x_rec = mean|x_r - x_a|``, total ``gan_w*l_adv + r_w*l_x_rec +
  fm_w*(l_c_rec + l_m_rec)`` with ``configs/funit_animals.yaml``'s gan_w 1, fm_w 1, r_w 0.1.
* ``networks.py`` ``GPPatchMcResDis``: ``calc_dis_real_loss`` = mean relu(1 - resp), ``calc_dis_fake_loss`` =
  mean relu(1 + resp), ``calc_gen_loss`` = -mean resp, ``calc_grad2`` = sum((d mean(resp) / d x)^2) / batch;
  ``forward`` reads the class map ``out[i, y_i]``. ``FewShotGen.decode``/``assign_adain_params``: the MLP's
  output, per AdaIN layer in module order, mean (bias) first, then std (weight); ``blocks.py``
  ``AdaptiveInstanceNorm2d``: batch norm in training mode over the (1, N*C, H, W) view, eps 1e-5.

The networks here are the forward passes written out from those formulas over pixmorph's parameters
(``_RefGenerator``/``_ref_discriminator``), not pixmorph's modules. pixmorph's EMA warm-up (README, FUNIT:
"One deviation") is documented: ``ema_warmup=False`` gives the reference's EMA.

The reference's ``blocks.py`` LeakyReLUs are in place, which in its discriminator turns the identity shortcut of
an ``ActFirstResBlock`` into ``lrelu(x) + dx`` and makes ``forward`` return ``lrelu(features)`` to feature
matching. pixmorph computes ``x + dx`` and the raw features by default, as the paper's architecture (and
NVlabs/imaginaire's later re-implementation, which turns the first in-place nonlinearity off) has it, and the
code's form with ``model.dis_as_reference_code=true``. The step test runs both against the matching reference.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from pixmorph.config import TrainConfig
from pixmorph.methods.funit import Funit, FunitConfig
from pixmorph.nn.funit_discriminator import ActFirstResBlock
from pixmorph.nn.funit_generator import AdaIN, ConvBlock, ResBlock
from pixmorph.train import speed
from pixmorph.train.loop import _make_update

# The reference config (configs/funit_animals.yaml, funit_model.py's literal 10, torch's RMSprop defaults).
GAN_W, FM_W, R_W, GP_W = 1.0, 1.0, 0.1, 10.0
LR, ALPHA, EPS, WEIGHT_DECAY, EMA_BETA = 1e-4, 0.99, 1e-8, 1e-4, 0.999
TINY = dict(nf=8, nf_mlp=16, latent_dim=8, nf_dis=8, n_res_blocks_dis=4, num_classes=3)
N, SIZE = 2, 32



def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


# ---- the reference's networks, written out over pixmorph's parameters -------------------------------------

def _conv(block: ConvBlock, x: Tensor) -> Tensor:
    """blocks.py Conv2dBlock's reflect pad and conv (its norm and activation follow in ``_conv_block``)."""
    p = block.pad.padding[0]
    return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), block.conv.weight, block.conv.bias, block.conv.stride)


def _conv_block(block: ConvBlock, x: Tensor, adain: dict) -> Tensor:
    """Conv2dBlock with norm 'in' / 'adain' / 'none' and activation 'relu' / 'none' (the generator's)."""
    x = _conv(block, x)
    if isinstance(block.norm, AdaIN):  # blocks.py AdaptiveInstanceNorm2d: batch norm over a (1, N*C, H, W) view
        n, c = x.shape[:2]
        mean, std = adain[block]
        x = F.batch_norm(x.reshape(1, n * c, *x.shape[2:]), None, None, std.reshape(-1), mean.reshape(-1),
                         training=True, eps=1e-5).view_as(x)
    elif not isinstance(block.norm, torch.nn.Identity):  # norm='in': nn.InstanceNorm2d(affine=False)
        x = F.instance_norm(x, eps=1e-5)
    return F.relu(x) if not isinstance(block.act, torch.nn.Identity) else x


def _sequence(layers, x: Tensor, adain: dict) -> Tensor:
    for layer in layers:
        if isinstance(layer, ConvBlock):
            x = _conv_block(layer, x, adain)
        elif isinstance(layer, ResBlock):  # blocks.py ResBlock: x + conv-norm-act, conv-norm
            x = x + _conv_block(layer.body[1], _conv_block(layer.body[0], x, adain), adain)
        elif isinstance(layer, torch.nn.Upsample):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        elif isinstance(layer, torch.nn.Tanh):
            x = torch.tanh(x)
        else:
            raise AssertionError(f"unexpected generator layer {layer}")
    return x


class _RefGenerator:
    """networks.py FewShotGen: enc_content, enc_class_model, decode (MLP -> assign_adain_params -> dec)."""

    def __init__(self, G):
        self.G = G

    def content(self, x: Tensor) -> Tensor:
        return _sequence(self.G.content_encoder, x, {})

    def class_code(self, x: Tensor) -> Tensor:  # ClassModelEncoder: convs (no norm), AdaptiveAvgPool2d(1), 1x1 conv
        enc = self.G.class_encoder
        h = F.adaptive_avg_pool2d(_sequence(enc.features, x, {}), 1)
        return F.conv2d(h, enc.head.weight, enc.head.bias)

    def decode(self, content: Tensor, code: Tensor) -> Tensor:
        h = code.view(code.shape[0], -1)  # MLP: LinearBlocks (ReLU) then a linear layer
        linears = [m for m in self.G.mlp if isinstance(m, torch.nn.Linear)]
        for i, lin in enumerate(linears):
            h = F.linear(h, lin.weight, lin.bias)
            h = F.relu(h) if i < len(linears) - 1 else h
        adain = {}
        for m in self.G.decoder.modules():  # assign_adain_params: module order, mean first, then std
            if isinstance(m, ConvBlock) and isinstance(m.norm, AdaIN):
                c = m.norm.channels
                adain[m] = (h[:, :c], h[:, c:2 * c])
                h = h[:, 2 * c:]
        return _sequence(self.G.decoder.layers, content, adain)


def _ref_discriminator(D, x: Tensor, y: Tensor, as_the_code_runs: bool = False) -> tuple[Tensor, Tensor]:
    """networks.py GPPatchMcResDis.forward: cnn_f (conv 7x7, ActFirstResBlocks, reflect pad + 3x3/2 average pool),
    cnn_c (LeakyReLU, 1x1 conv), the map of class y. ``as_the_code_runs``: with the side effects of blocks.py's
    in-place LeakyReLU (identity shortcut lrelu(x), returned features lrelu(feat))."""
    h = x
    for layer in D.features:
        if isinstance(layer, ActFirstResBlock):
            c0, c1 = layer.conv0[1], layer.conv1[1]
            dx = F.conv2d(F.pad(lrelu(h), (1, 1, 1, 1), mode="reflect"), c0.weight, c0.bias)
            dx = F.conv2d(F.pad(lrelu(dx), (1, 1, 1, 1), mode="reflect"), c1.weight, c1.bias)
            if isinstance(layer.shortcut, torch.nn.Conv2d):
                shortcut = F.conv2d(h, layer.shortcut.weight)  # conv_s: 1x1, no bias, before the activation
            else:
                shortcut = lrelu(h) if as_the_code_runs else h
            h = shortcut + dx
        elif isinstance(layer, torch.nn.ReflectionPad2d):
            p = layer.padding[0]
            h = F.pad(h, (p, p, p, p), mode="reflect")
        elif isinstance(layer, torch.nn.Conv2d):  # the first conv 7x7 (after its reflect pad), no activation
            h = F.conv2d(h, layer.weight, layer.bias)
        elif isinstance(layer, torch.nn.AvgPool2d):
            h = F.avg_pool2d(h, 3, 2)
        else:
            raise AssertionError(f"unexpected discriminator layer {layer}")
    out = F.conv2d(lrelu(h), D.head.weight, D.head.bias)
    feat = lrelu(h) if as_the_code_runs else h
    return out[torch.arange(x.shape[0]), y], feat


def _ref_optimizers(G, D) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """trainer.py Trainer.__init__: (dis_opt, gen_opt), made once per training run."""
    return tuple(torch.optim.RMSprop(net.parameters(), lr=LR, alpha=ALPHA, eps=EPS, weight_decay=WEIGHT_DECAY,
                                     momentum=0, centered=False) for net in (D, G))


def _ref_step(G, D, G_ema, batch: dict[str, Tensor], as_the_code_runs: bool = False, optimizers=None
              ) -> tuple[dict[str, Tensor], dict[str, list[Tensor]]]:
    """train.py's iteration: trainer.dis_update, then trainer.gen_update (with update_average).
    ``optimizers``: the run's ``_ref_optimizers`` (their RMSprop state carries over); new ones by default."""
    gen, mean = _RefGenerator(G), lambda t: t.mean(3).mean(2)

    def dis(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return _ref_discriminator(D, x, y, as_the_code_runs)

    dis_opt, gen_opt = optimizers or _ref_optimizers(G, D)
    xa, la, xb, lb = batch["content"], batch["content_label"], batch["class"].clone(), batch["class_label"]
    grads = {}

    # dis_update
    dis_opt.zero_grad()
    xb.requires_grad_()
    resp_r, _ = dis(xb, lb)
    l_real_pre = F.relu(1.0 - resp_r).mean()
    (GAN_W * l_real_pre).backward(retain_graph=True)
    (grad_dout,) = torch.autograd.grad(resp_r.mean(), xb, create_graph=True, retain_graph=True)
    l_reg_pre = grad_dout.pow(2).sum() / xb.shape[0]
    (GP_W * l_reg_pre).backward()
    with torch.no_grad():
        xt = gen.decode(gen.content(xa), gen.class_code(xb))
    resp_f, _ = dis(xt.detach(), lb)
    l_fake_p = F.relu(1.0 + resp_f).mean()
    (GAN_W * l_fake_p).backward()
    grads["D"] = [p.grad.clone() for p in D.parameters()]
    dis_opt.step()

    # gen_update (through the discriminator just updated)
    xb = batch["class"]
    gen_opt.zero_grad()
    c_xa, s_xa, s_xb = gen.content(xa), gen.class_code(xa), gen.class_code(xb)
    xt, xr = gen.decode(c_xa, s_xb), gen.decode(c_xa, s_xa)
    resp_t, xt_feat = dis(xt, lb)
    resp_rec, xr_feat = dis(xr, la)
    _, xb_feat = dis(xb, lb)
    _, xa_feat = dis(xa, la)
    l_c_rec = (mean(xr_feat) - mean(xa_feat)).abs().mean()
    l_m_rec = (mean(xt_feat) - mean(xb_feat)).abs().mean()
    l_x_rec = (xr - xa).abs().mean()
    l_adv = 0.5 * (-resp_t.mean() + -resp_rec.mean())
    (GAN_W * l_adv + R_W * l_x_rec + FM_W * (l_c_rec + l_m_rec)).backward()
    grads["G"] = [p.grad.clone() for p in G.parameters()]
    gen_opt.step()
    with torch.no_grad():  # update_average
        for p_tgt, p_src in zip(G_ema.parameters(), G.parameters()):
            p_tgt.copy_(EMA_BETA * p_tgt + (1.0 - EMA_BETA) * p_src)

    losses = {"D_real": l_real_pre, "D_fake": l_fake_p, "D_gp": l_reg_pre, "G_adv": l_adv,
              "G_fm": l_c_rec + l_m_rec, "G_rec": l_x_rec}
    return {k: v.detach() for k, v in losses.items()}, grads


def _setup(seed: int = 0, as_reference_code: bool = False):
    torch.manual_seed(seed)
    # the reference's EMA (no warm-up)
    method = Funit(FunitConfig(**TINY, ema_warmup=False, dis_as_reference_code=as_reference_code))
    ref = copy.deepcopy(method.nets)  # the same weights, before any speed switch touches pixmorph's
    g = torch.Generator().manual_seed(seed + 1)
    batch = {"content": torch.rand(N, 3, SIZE, SIZE, generator=g) * 2 - 1,
             "content_label": torch.tensor([0, 2]),
             "class": torch.rand(N, 3, SIZE, SIZE, generator=g) * 2 - 1,
             "class_label": torch.tensor([1, 0])}
    return method, ref, batch


def _close(a: Tensor, b: Tensor, rel: float) -> bool:
    return float((a - b).abs().max()) <= rel * float(b.abs().max()) + 1e-12


def _dead_biases(G) -> set[str]:
    """Biases of convolutions followed by instance norm / AdaIN: no effect on any output, gradient 0 up to
    rounding, which RMSprop's first step (g / (0.1|g| + eps)) blows up to different noise on each side."""
    names = set()
    for name, m in G.named_modules():
        if isinstance(m, ConvBlock) and not isinstance(m.norm, torch.nn.Identity) and m.conv.bias is not None:
            names.add(f"{name}.conv.bias")
    return names


@pytest.mark.parametrize("winograd, as_code", [(None, False), (True, False), (None, True)],
                         ids=["speed-default", "winograd", "dis-as-reference-code"])
def test_one_training_step_is_the_reference(one_thread, winograd, as_code):
    """pixmorph's step with the fp32 speed switches `pixmorph train` resolves here (None), and with the Winograd
    convolutions it resolves on CPUs without fast bf16 (its 3x3 convolutions of D, R1's double backward too);
    and with ``dis_as_reference_code`` against the reference's discriminator as its code runs."""
    method, ref, batch = _setup(as_reference_code=as_code)
    sp = speed.resolve(TrainConfig(winograd=winograd), torch.device("cpu"), "fp32")
    speed.apply_to_nets(method.nets, sp)
    if winograd:
        assert any(type(m).__name__ == "WinogradConv2d" for m in method.nets["D"].modules())
    speed.apply_to_optimizers(method.optimizers, sp)
    ours_grads: dict[str, list[Tensor]] = {}

    def record(name):
        def hook(opt, args, kwargs):
            assert name not in ours_grads, f"optimizer {name} stepped twice"
            ours_grads[name] = [p.grad.clone() for g in opt.param_groups for p in g["params"]]
        return hook

    for name, opt in method.optimizers.items():  # pixmorph's gradients as its optimizers step
        opt.register_step_pre_hook(record(name))
    scalers = {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers}
    ours = method.train_step({k: v.clone() for k, v in batch.items()}, _make_update(method, scalers))
    init = copy.deepcopy(ref)
    theirs, their_grads = _ref_step(ref["G"], ref["D"], ref["G_ema"], batch, as_the_code_runs=as_code)

    # Each loss term (unweighted, as both report them).
    assert set(ours) == set(theirs)
    for k in theirs:
        assert torch.allclose(ours[k], theirs[k], rtol=1e-5, atol=1e-7), (k, float(ours[k]), float(theirs[k]))

    # The gradients each optimizer stepped with: the weighted sums (gan_w, fm_w, r_w, gp 10), the reductions,
    # the R1 scaling, and G's loss through the D already updated (the order of the updates).
    dead = _dead_biases(method.nets["G"])
    for net in ("D", "G"):
        names = [n for n, _ in method.nets[net].named_parameters()]
        assert len(ours_grads[net]) == len(their_grads[net]) == len(names)
        for n, a, b in zip(names, ours_grads[net], their_grads[net]):
            if n in dead:
                assert float(a.abs().max()) < 1e-5 and float(b.abs().max()) < 1e-5, n
            else:
                assert _close(a, b, 1e-4), (net, n, float((a - b).abs().max()), float(b.abs().max()))

    # The weights after the step: RMSprop's settings, the EMA (beta 0.999 of the updated G). RMSprop's first step
    # is lr * g / (0.1 |g| + eps), about 10 * lr * sign(g) = 1e-3; where |g| is near the rounding of the two
    # gradients (1e-6 of the largest) the step amplifies it, so the weights are compared where |g| > 2e-5 or
    # both gradients are exactly 0 (weight decay alone), over 98% of them; the rest via their gradients above.
    for net in ("D", "G", "G_ema"):
        src = "G" if net == "G_ema" else net
        checked = total = 0
        for (n, p), (_, q), a, b in zip(method.nets[net].named_parameters(), ref[net].named_parameters(),
                                        ours_grads[src], their_grads[src]):
            mask = (b.abs() > 2e-5) | ((a == 0) & (b == 0))
            if n in dead:
                mask[:] = False
            checked, total = checked + int(mask.sum()), total + mask.numel()
            # G_ema moves by 1e-3 of G's step (~1e-6): its tolerance is float32's rounding (2 ulps) of each weight
            tol = 2.5e-7 * q.detach().abs() + 1e-8 if net == "G_ema" else torch.full_like(q, 1e-6)
            bad = ((p.detach() - q.detach()).abs() > tol) & mask
            assert not bad.any(), (net, n, float((p - q).detach()[bad].abs().max()))
        assert checked > 0.98 * total, (net, checked, total)
        # and they moved (RMSprop's first step is about 10 * lr = 1e-3 per weight; the EMA's 1e-3 of that)
        moved = max(float((p - q).detach().abs().max()) for p, q in zip(ref[net].parameters(), init[net].parameters()))
        assert moved > (5e-4 if net != "G_ema" else 5e-7), (net, moved)


@pytest.mark.parametrize("as_code", [False, True], ids=["as-drawn", "as-reference-code"])
def test_discriminator_forward_in_both_forms(one_thread, as_code):
    """The reference code's discriminator as it actually runs: in blocks.py every LeakyReLU is
    ``nn.LeakyReLU(0.2, inplace=True)`` and ActFirstResBlock.forward does ``x_s = x`` (identity) before
    ``conv_0`` activates ``x`` in place, so ``out = lrelu(x) + dx``; GPPatchMcResDis.forward's ``cnn_c``
    activates ``feat`` in place, so the features it returns (to feature matching) are ``lrelu(feat)``.
    pixmorph gives that form with ``dis_as_reference_code``, the drawn one without, and the two differ."""
    method, _, batch = _setup(as_reference_code=as_code)
    D = method.nets["D"]
    x, y = batch["class"], batch["class_label"]
    with torch.no_grad():
        resp, feat = D(x, y)
        for form in (False, True):
            ref_resp, ref_feat = _ref_discriminator(D, x, y, as_the_code_runs=form)
            same = _close(resp, ref_resp, 1e-5) and _close(feat, ref_feat, 1e-5)
            assert same == (form == as_code), (as_code, form)


def test_several_training_steps_are_the_reference(one_thread):
    """Five steps on new batches, in float64 so that rounding, which RMSprop's early steps amplify, stays below the
    tolerance: what carries over between steps (RMSprop's running mean of g^2, the EMA of G) beside the step.
    (The discriminator's two forms differ only within a step: the step tests run both.)"""
    method, ref, _ = _setup()
    for nets in (method.nets, ref):
        for net in nets.values():
            net.double()
    update = _make_update(method, {k: torch.amp.GradScaler("cpu", enabled=False) for k in method.optimizers})
    optimizers = _ref_optimizers(ref["G"], ref["D"])
    g = torch.Generator().manual_seed(5)
    for step in range(5):
        batch = {"content": torch.rand(N, 3, SIZE, SIZE, generator=g, dtype=torch.float64) * 2 - 1,
                 "content_label": torch.randint(0, 3, (N,), generator=g),
                 "class": torch.rand(N, 3, SIZE, SIZE, generator=g, dtype=torch.float64) * 2 - 1,
                 "class_label": torch.randint(0, 3, (N,), generator=g)}
        ours = method.train_step({k: v.clone() for k, v in batch.items()}, update)
        theirs, _ = _ref_step(ref["G"], ref["D"], ref["G_ema"], batch, optimizers=optimizers)
        for k in theirs:
            # (rtol: pixmorph takes R1's gradient norm in float32, for fp16 training; 1e-7 of D_gp here)
            assert torch.allclose(ours[k].double(), theirs[k], rtol=1e-6, atol=1e-12), (step, k, float(ours[k]),
                                                                                         float(theirs[k]))
    dead = _dead_biases(method.nets["G"])
    for net in ("D", "G", "G_ema"):
        for (n, p), q in zip(method.nets[net].named_parameters(), ref[net].parameters()):
            if n not in dead:
                assert _close(p.detach(), q.detach(), 1e-6), (net, n, float((p - q).detach().abs().max()))

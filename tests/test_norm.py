"""pixmorph's instance norm: the same values and gradients as F.instance_norm on a contiguous float32
tensor, in every layout of input and incoming gradient, with the input's layout kept."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from pixmorph.nn.norm import InstanceNorm2d, instance_norm
from pixmorph.nn.resnet_generator import ResnetGenerator

CL = torch.channels_last
LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": CL}


def _values_and_grads(norm, x, grad, weight=None, bias=None) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    leaves = [t.clone().requires_grad_() if t is not None else None for t in (weight, bias)]
    y = norm(x, *leaves)
    y.backward(grad)
    return [y, x.grad] + [t.grad for t in leaves if t is not None]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("x_layout", LAYOUTS)
@pytest.mark.parametrize("grad_layout", LAYOUTS)
@pytest.mark.parametrize("affine", [False, True])
def test_matches_reference_in_every_layout(n, x_layout, grad_layout, affine):
    torch.manual_seed(0)
    x, grad = torch.randn(n, 8, 5, 6) * 3 + 1, torch.randn(n, 8, 5, 6)
    weight, bias = (torch.rand(8) + 0.5, torch.randn(8)) if affine else (None, None)
    expected = _values_and_grads(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), x, grad, weight, bias)
    got = _values_and_grads(instance_norm, x.contiguous(memory_format=LAYOUTS[x_layout]),
                            grad.contiguous(memory_format=LAYOUTS[grad_layout]), weight, bias)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    assert got[0].is_contiguous(memory_format=LAYOUTS[x_layout])


@pytest.mark.parametrize("n", [1, 2])
def test_bf16_close_to_fp32_and_keeps_channels_last(n):
    torch.manual_seed(0)
    x = torch.randn(n, 16, 12, 12) * 2 - 1
    norm = InstanceNorm2d(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = norm(x.bfloat16().contiguous(memory_format=CL))
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=CL)
    torch.testing.assert_close(y.float(), F.instance_norm(x), atol=0.05, rtol=0.02)


def test_module_has_no_state_and_takes_unbatched_images():
    """Checkpoints of nets built with nn.InstanceNorm2d(affine=False) load unchanged."""
    norm = InstanceNorm2d(4)
    assert norm.state_dict() == {}
    x = torch.randn(4, 6, 6)
    torch.testing.assert_close(norm(x), F.instance_norm(x[None])[0])


def test_channels_last_generator_gets_the_contiguous_gradients():
    """A whole ResNet generator in channels_last gets the same parameter gradients as in the contiguous
    layout. With F.instance_norm (torch 2.14, CPU) they were off by 17% at batch 1."""
    torch.manual_seed(0)
    net, x = ResnetGenerator(n_blocks=2, ngf=16), torch.randn(1, 3, 32, 32)

    def grads(layout: torch.memory_format) -> torch.Tensor:
        copy_ = copy.deepcopy(net).to(memory_format=layout)
        copy_(x.contiguous(memory_format=layout)).square().mean().backward()
        return torch.cat([p.grad.flatten() for p in copy_.parameters()])

    contiguous, channels_last = grads(torch.contiguous_format), grads(CL)
    assert (channels_last - contiguous).norm() / contiguous.norm() < 1e-4


def test_batch_norm_translates_each_image_as_it_was_trained_at_batch_1():
    """pix2pix's generator at test time (the paper, 3.3): trained at batch 1, each image normalised by its own
    statistics, as in training, not by running averages that no image was normalised with; a translation
    does not depend on the other images of its batch. Trained at larger batches: the running averages."""
    from pixmorph.nn.norm import normalise_per_image
    from pixmorph.nn.unet_generator import UnetGenerator

    torch.manual_seed(0)
    G = UnetGenerator(3, 3, ngf=8, num_downs=5, norm="batch", dropout=False)
    images = [torch.randn(1, 3, 32, 32) * (1 + i) + i for i in range(3)]
    G.train()
    with torch.no_grad():
        for x in images:  # running averages that match none of the images
            G(x)
        as_trained = [G(x) for x in images]
    G.eval()
    normalise_per_image(G, trained_at_batch_1=True)
    with torch.no_grad():
        batched = G(torch.cat(images))
        alone = [G(x) for x in images]
    for i in range(3):
        torch.testing.assert_close(batched[i : i + 1], as_trained[i], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(alone[i], as_trained[i], atol=1e-5, rtol=1e-4)
    normalise_per_image(G, trained_at_batch_1=False)
    with torch.no_grad():
        assert (G(images[0]) - as_trained[0]).abs().max() > 0.01  # the running averages
    assert any(float(m.running_var.mean()) != 1.0 for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))

"""The generators' last convolution: its input gradient, taken as a forward convolution on the CPU, equals
the one torch computes, in fp32 and under bf16 autocast, in both layouts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixmorph.nn.image_conv import ImageConv2d
from pixmorph.nn.resnet_generator import ResnetGenerator

CL = torch.channels_last


def _grads(conv, x: torch.Tensor, grad: torch.Tensor, bf16: bool) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    y.backward(grad.to(y.dtype))
    return [y.float(), x.grad, conv.weight.grad, conv.bias.grad]


@pytest.mark.parametrize("padding", [0, 2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
@pytest.mark.parametrize("bf16", [False, True])
def test_gradients_match_torch(padding, layout, bf16):
    torch.manual_seed(0)
    conv = ImageConv2d(16, 3, 5, padding=padding)
    plain = torch.nn.Conv2d(16, 3, 5, padding=padding)
    plain.load_state_dict(conv.state_dict())
    conv, plain = conv.to(memory_format=layout), plain.to(memory_format=layout)
    x = torch.randn(2, 16, 13, 11).contiguous(memory_format=layout)
    grad = torch.randn_like(plain(x))
    got, expected = _grads(conv, x, grad, bf16), _grads(plain, x, grad, bf16)
    tolerance = dict(atol=0.1, rtol=0.02) if bf16 else dict(atol=1e-4, rtol=1e-4)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        torch.testing.assert_close(g, e, **tolerance)
    if bf16:  # bf16 rounding only: far closer to fp32 than an error would be
        exact = _grads(plain.float(), x, grad, False)
        assert (got[1] - exact[1]).norm() / exact[1].norm() < 0.02


def test_generator_uses_it_for_its_last_layer_only():
    net = ResnetGenerator(n_blocks=1, ngf=8)
    assert [type(m) for m in net.modules() if isinstance(m, ImageConv2d)] == [ImageConv2d]
    assert net.model[-2].out_channels == 3


def test_plain_path_without_gradients_and_for_wide_outputs():
    conv = ImageConv2d(4, 8, 3)  # 8 output channels: torch's own path
    x = torch.randn(1, 4, 9, 9, requires_grad=True)
    assert not conv._takes_forward_grad(x)
    narrow = ImageConv2d(4, 3, 3)
    assert narrow._takes_forward_grad(x)
    with torch.no_grad():
        assert not narrow._takes_forward_grad(x)
        torch.testing.assert_close(narrow(x), F.conv2d(x, narrow.weight, narrow.bias))

"""The convolution that draws the image: few output channels, its input gradient taken as a forward
convolution on the CPU.

A generator's last layer maps 64 channels to 3 with a 7x7 kernel at full resolution. oneDNN's CPU kernel
for the gradient with respect to its input (a transposed convolution from 3 channels to 64) is slow at that
shape: 9-44 ms at 256x256 in bf16 on a 2-core Xeon, where the same gradient computed as an ordinary
convolution of the zero-padded output gradient with the flipped, transposed kernel takes 1-2 ms
(a forward convolution from 3 channels to 64, which oneDNN does well). The values are the same
convolution sums in another order."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

MAX_OUT_CHANNELS = 4  # an image's channels (RGB, gray, RGBA)


class _InputGradByForwardConv(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, no dilation or groups) in ``dtype``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int],
                dtype: torch.dtype) -> Tensor:
        x_, w_ = x.to(dtype), weight.to(dtype)
        b_ = bias.to(dtype) if bias is not None else None
        ctx.save_for_backward(x_, w_)
        ctx.padding, ctx.has_bias = padding, bias is not None
        ctx.dtypes = (x.dtype, weight.dtype, bias.dtype if bias is not None else None)
        with torch.autocast(x.device.type, enabled=False):
            return F.conv2d(x_, w_, b_, padding=padding)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.to(x.dtype).contiguous(memory_format=_layout(x))
        (ph, pw), (kh, kw) = ctx.padding, weight.shape[-2:]
        gx = gw = gb = None
        with torch.autocast(x.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                flipped = weight.flip(2, 3).transpose(0, 1).contiguous(memory_format=_layout(x))
                gx = F.conv2d(F.pad(grad, (kw - 1 - pw, kw - 1 - pw, kh - 1 - ph, kh - 1 - ph)), flipped)
                gx = gx.to(ctx.dtypes[0])
            need_w, need_b = ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]
            if need_w or need_b:
                _, gw, gb = torch.ops.aten.convolution_backward(
                    grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, [1, 1], list(ctx.padding), [1, 1],
                    False, [0, 0], 1, [False, need_w, need_b])
                gw = gw.to(ctx.dtypes[1]) if need_w else None
                gb = gb.to(ctx.dtypes[2]) if need_b else None
        return gx, gw, gb, None, None


def _layout(x: Tensor) -> torch.memory_format:
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


class ImageConv2d(nn.Conv2d):
    """``nn.Conv2d`` for a generator's last layer; on the CPU, for up to 4 output channels with padding
    smaller than the kernel, the input gradient is computed as a forward convolution (see the module)."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if not self._takes_forward_grad(x):
            return super()._conv_forward(x, weight, bias)
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        return _InputGradByForwardConv.apply(x, weight, bias, self.padding, dtype)

    def _takes_forward_grad(self, x: Tensor) -> bool:
        return (x.device.type == "cpu" and x.dim() == 4 and torch.is_grad_enabled() and self.out_channels <= MAX_OUT_CHANNELS
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros" and isinstance(self.padding, tuple)
                and all(p < k for p, k in zip(self.padding, self.kernel_size))
                and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())

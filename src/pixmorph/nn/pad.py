"""Reflection padding that keeps its input's precision under autocast."""

import torch
from torch import Tensor, nn


class ReflectionPad2d(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` in the input's own dtype.

    CPU autocast lists reflection padding among the ops it runs in float32, so under bf16 autocast each
    pad upcast its bf16 input and the next convolution cast the result back: a sixth of a reference
    CycleGAN step on the CPU went to copying values that padding only rearranges. Padding is exact in
    any dtype, so autocast is turned off around it."""

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)

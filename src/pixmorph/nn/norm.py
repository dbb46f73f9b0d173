"""Normalisation layers by name, as the reference configs spell them, and an instance norm that keeps
the channels_last layout."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def instance_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """``F.instance_norm`` without running statistics, in ``x``'s memory layout.

    ``F.instance_norm`` folds the batch into the channels and calls batch norm on a ``(1, N*C, H, W)``
    view, which a channels_last tensor cannot give: it copies its input to the contiguous layout and returns
    a contiguous output that the next convolution copies back. On the CPU (torch 2.14) its gradient is also
    wrong for one channels_last image (tests/test_norm.py). For one image, instance norm *is* batch norm
    over that image's pixels, which keeps the layout; on the CPU a channels_last batch is normalised image by
    image.
    A traced graph (ONNX export) gets ``F.instance_norm``: its branch on the batch size would not carry over
    to other batch sizes."""
    if x.dim() != 4 or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    if x.shape[0] == 1:
        return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps)
    if x.device.type == "cpu" and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        # (on a GPU the loop would launch two kernels per image where F.instance_norm launches one)
        return _ChannelsLastInstanceNorm.apply(x, weight, bias, eps)
    return F.instance_norm(x, weight=weight, bias=bias, eps=eps)


class _ChannelsLastInstanceNorm(torch.autograd.Function):
    """Batch norm image by image over a channels_last batch, each result copied into its image's slot of a
    channels_last output: an image of a channels_last batch is itself a contiguous channels_last tensor, so
    no layout conversion happens."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
        out = torch.empty_like(x)
        means, invstds = [], []
        for i in range(x.shape[0]):
            y, mean, invstd = torch.ops.aten.native_batch_norm(x[i:i + 1], weight, bias, None, None, True, 0.0, eps)
            out[i:i + 1] = y
            means.append(mean)
            invstds.append(invstd)
        ctx.save_for_backward(x, weight, *means, *invstds)
        ctx.eps = eps
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        x, weight, *stats = ctx.saved_tensors
        n = x.shape[0]
        grad = grad.contiguous(memory_format=torch.channels_last)
        need_w, need_b = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        dx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        dw = db = None
        for i in range(n):
            gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
                grad[i:i + 1], x[i:i + 1], weight, None, None, stats[i], stats[n + i], True, ctx.eps,
                [dx is not None, need_w, need_b])
            if dx is not None:
                dx[i:i + 1] = gx
            if need_w:
                dw = gw if dw is None else dw + gw
            if need_b:
                db = gb if db is None else db + gb
        return dx, dw, db, None


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` without running statistics, through :func:`instance_norm`."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False):
        super().__init__(num_features, eps=eps, affine=affine, track_running_stats=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:  # unbatched, as nn.InstanceNorm2d accepts
            return self.forward(x.unsqueeze(0)).squeeze(0)
        return instance_norm(x, self.weight, self.bias, self.eps)


class BatchNorm2d(nn.BatchNorm2d):
    """Batch norm that, with ``per_image`` set (see :func:`normalise_per_image`), normalises each image by
    its own statistics outside training instead of by the running averages."""

    per_image = False

    def forward(self, x: Tensor) -> Tensor:
        if self.training or not self.per_image:
            return super().forward(x)
        if x.dim() == 3:  # unbatched, as nn.BatchNorm2d accepts
            return self.forward(x.unsqueeze(0)).squeeze(0)
        return instance_norm(x, self.weight, self.bias, self.eps)


class SyncBatchNorm(nn.SyncBatchNorm):
    """:class:`BatchNorm2d` across the processes of a distributed run (GPUs): the same ``per_image`` outside
    training (the sample grids of a run that started at batch 1)."""

    per_image = False

    def forward(self, x: Tensor) -> Tensor:
        if self.training or not self.per_image:
            return super().forward(x)
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        return instance_norm(x, self.weight, self.bias, self.eps)


def to_sync_batch_norm(net: nn.Module) -> nn.Module:
    """``net`` with its batch norm layers synchronised across processes (:class:`SyncBatchNorm`, the same parameters
    and buffers): torch's conversion makes plain ``nn.SyncBatchNorm`` layers, without ``per_image``."""
    # (torch converts every batch norm layer, in place, in the order of net.modules())
    per_image = [getattr(m, "per_image", None) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    synced = [m for m in net.modules() if isinstance(m, nn.SyncBatchNorm)]
    for m, flag in zip(synced, per_image):
        if flag is not None:  # one of pixmorph's BatchNorm2d
            m.__class__ = SyncBatchNorm
            m.per_image = flag
    return net


def normalise_per_image(module: nn.Module, trained_at_batch_1: bool) -> None:
    """Batch norm of a network trained at batch 1 normalises each image by its own statistics at inference,
    as pix2pix runs its generator at test time (Isola et al. 3.3: "the statistics of the test batch", at
    batch 1): each training image was normalised by its own, and the running averages are what none was
    normalised with. Per image, so a translation does not depend on the rest of its batch. Trained at larger
    batches, the running averages stand for the batch statistics training used, and stay (measured: pix2pix
    on fashion-edges at batch 8 scores better with them)."""
    for m in module.modules():
        if isinstance(m, (BatchNorm2d, SyncBatchNorm)):
            m.per_image = trained_at_batch_1


def norm_layer(name: str):
    """Return a constructor ``f(channels) -> nn.Module`` for ``instance``, ``batch`` or ``none``."""
    if name == "instance":
        # The CycleGAN reference uses affine-free instance norm without running stats.
        return partial(InstanceNorm2d, affine=False)
    if name == "batch":
        return partial(BatchNorm2d, affine=True, track_running_stats=True)
    if name == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {name!r}: use instance, batch or none")


def uses_bias(name: str) -> bool:
    """Convolutions before a norm with its own shift need no bias (batch norm has one)."""
    return name != "batch"

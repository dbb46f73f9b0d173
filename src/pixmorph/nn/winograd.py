"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016), for the CPU.

A 3x3 stride-1 convolution computed tile by tile: each 6x6 input tile and each filter are transformed
(small fixed matrices), multiplied channel-wise as 36 batched matrix products, and transformed back to a
4x4 output tile. That takes 36 multiplies per 16 outputs instead of 144: four times fewer FLOPs in the
matrix products, which dominate. oneDNN, behind torch's CPU convolutions, runs these shapes directly, so
on a 2-core CPU the residual blocks of the reference CycleGAN generator (256 channels at 64x64) train
about 1.75x faster this way (forward + backward; README, Speed). The backward pass is autograd's through
the same products, so it gets the same saving. Relative error against the direct convolution is about
1e-5 in float32.

It wins only in a band of shapes (see ``_worth_it``); elsewhere ``WinogradConv2d`` falls back to the
direct convolution. ``use_winograd`` switches eligible ``nn.Conv2d`` modules in place, keeping their
parameters and state-dict names, so checkpoints do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
       [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]  # input transform
_G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]  # filter transform
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]  # output


def _kron(m: list[list[float]]) -> Tensor:
    """kron(M, M): applies M on both sides of a flattened tile, vec(M X M^T) = kron(M, M) vec(X)."""
    t = torch.tensor(m, dtype=torch.float64)
    return torch.kron(t, t).float()


_INPUT, _FILTER, _OUTPUT = _kron(_BT), _kron(_G), _kron(_AT)  # 36x36, 36x9, 16x36
_TILE_BATCH = 4096  # output pixels per chunk: beyond this the transformed tiles fall out of cache


_STRIDED_MIN = 32768  # elements per tile slab from which 36 strided copies beat unfold's one permuted copy


def _tile_views(x: Tensor) -> list[tuple[int, Tensor]]:
    """For each of the 36 positions (p, q) of a 6x6 tile, the [C, N, t, u] view of ``x`` [N, C, 4t+2, 4u+2]
    holding that pixel of every tile: a stride-4 view, no copy."""
    n, c, h, w = x.shape
    t, u = (h - 2) // 4, (w - 2) // 4
    sn, sc, sh, sw = x.stride()
    return [(6 * p + q, x.as_strided((c, n, t, u), (sc, sn, 4 * sh, 4 * sw), x.storage_offset() + p * sh + q * sw))
            for p in range(6) for q in range(6)]


def _tiles(x: Tensor) -> Tensor:
    """[N, C, 4t+2, 4u+2] -> its overlapping 6x6 tiles at stride 4, as [36, C, N*t*u]."""
    n, c, h, w = x.shape
    if torch.is_grad_enabled() or c * n * ((h - 2) // 4) * ((w - 2) // 4) < _STRIDED_MIN:
        return x.unfold(2, 6, 4).unfold(3, 6, 4).permute(4, 5, 1, 0, 2, 3).reshape(36, c, -1)
    out = x.new_empty(36, c, n, (h - 2) // 4, (w - 2) // 4)
    for i, view in _tile_views(x):  # large slabs: 36 copies with contiguous writes beat one permuted copy
        out[i].copy_(view)
    return out.view(36, c, -1)


def _untiles_sum(g: Tensor, shape: torch.Size) -> Tensor:
    """The adjoint of ``_tiles``: sums the [36, C, N*t*u] tile gradients back into an [N, C, H, W] image."""
    n, c, h, w = shape
    if torch.is_grad_enabled() or c * n * ((h - 2) // 4) * ((w - 2) // 4) < _STRIDED_MIN:
        # F.fold: differentiable again (double backward), and autograd's own adjoint of unfold is a slow scatter
        cols = g.reshape(36, c, n, -1).permute(2, 1, 0, 3).reshape(n, c * 36, -1)
        return F.fold(cols, (h, w), kernel_size=6, stride=4)
    out = g.new_zeros(shape)
    tiles = g.view(36, c, n, (h - 2) // 4, (w - 2) // 4)
    for i, view in _tile_views(out):  # each view has no overlap in itself; tiles overlap between views
        view.add_(tiles[i])
    return out


def _untile(y: Tensor, n: int, t: int, u: int) -> Tensor:
    """[16, K, N*t*u] output tiles -> [N, K, 4t, 4u]."""
    k = y.shape[1]
    return y.reshape(4, 4, k, n, t, u).permute(3, 2, 4, 0, 5, 1).reshape(n, k, 4 * t, 4 * u)


def _retile(g: Tensor) -> Tensor:
    """The adjoint of ``_untile``: [N, K, 4t, 4u] -> [16, K, N*t*u]."""
    n, k, h, w = g.shape
    return g.reshape(n, k, h // 4, 4, w // 4, 4).permute(3, 5, 1, 0, 2, 4).reshape(16, k, -1)


def _input_transform(x: Tensor) -> Tensor:
    """[N, C, 4t+2, 4u+2] -> the transformed tiles B^T d B, [36, C, N*t*u]."""
    return (_INPUT.to(x) @ _tiles(x).reshape(36, -1)).reshape(36, x.shape[1], -1)


def _filter_transform(weight: Tensor) -> Tensor:
    """[K, C, 3, 3] -> the transformed filters G g G^T, [36, K, C]."""
    k, c = weight.shape[:2]
    return (_FILTER.to(weight) @ weight.reshape(k * c, 9).T).reshape(36, k, c)


class _Winograd(torch.autograd.Function):
    """'valid' 3x3 convolution of ``x`` [N, C, 4t+2, 4u+2] with ``weight`` [K, C, 3, 3] by F(4x4, 3x3).

    The backward is written out so that every transform is a [small x small] @ [small x large] product
    on contiguous memory (autograd's own ran them on transposed views, several times slower). It keeps
    only what a direct convolution keeps, the input and the weight, and recomputes both transforms: kept,
    they would hold 2.25x the input's size per convolution until the backward pass (+2 GiB for a
    reference CycleGAN step at batch 1), for about 5% of the step's time."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        n, _, h, w = x.shape
        t, u = (h - 2) // 4, (w - 2) // 4
        m = torch.bmm(_filter_transform(weight), _input_transform(x))
        y = (_OUTPUT.to(x) @ m.reshape(36, -1)).reshape(16, weight.shape[0], -1)
        ctx.save_for_backward(x, weight)
        return _untile(y, n, t, u)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        k, c = weight.shape[:2]
        grad_m = (_OUTPUT.T.to(grad) @ _retile(grad).reshape(16, -1)).reshape(36, k, -1)
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            grad_filt = torch.bmm(grad_m, _input_transform(x).transpose(1, 2))
            grad_w = (_FILTER.T.to(grad) @ grad_filt.reshape(36, k * c)).T.reshape(k, c, 3, 3)
        if ctx.needs_input_grad[0]:
            grad_v = torch.bmm(_filter_transform(weight).transpose(1, 2), grad_m)
            grad_x = _untiles_sum(_INPUT.T.to(grad) @ grad_v.reshape(36, -1), x.shape)
        return grad_x, grad_w


def winograd_conv3x3(x: Tensor, weight: Tensor) -> Tensor:
    """The 'valid' (unpadded) 3x3 stride-1 convolution of ``x`` [N, C, H, W] with ``weight`` [K, C, 3, 3]."""
    ho, wo = x.shape[2] - 2, x.shape[3] - 2
    t, u = -(-ho // 4), -(-wo // 4)
    if (4 * t, 4 * u) != (ho, wo):  # zero-pad to whole tiles, crop the extra outputs below
        x = F.pad(x, (0, 4 * u - wo, 0, 4 * t - ho))
    if x.shape[0] > 1 and x.shape[0] * ho * wo > _TILE_BATCH:  # image by image, to stay in cache
        y = torch.cat([_Winograd.apply(part, weight) for part in x.split(1)])
    else:
        y = _Winograd.apply(x, weight)
    return y[:, :, :ho, :wo]


def _worth_it(x: Tensor, conv: nn.Conv2d) -> bool:
    """The shapes where this measured faster than torch's direct convolution on a 2-core AVX-512 CPU
    (forward + backward): 128-512 channels and outputs of at least 32x32. Wide layers lose to the
    filter transform, small images and few channels to the tile transforms."""
    c, k = conv.in_channels, conv.out_channels
    h, w = x.shape[-2:]
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and x.is_contiguous()
            and 128 <= c <= 512 and 64 <= k <= 512 and min(h, w) >= 32)


class WinogradConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (3x3, stride 1, no dilation or groups) computed by Winograd where that wins."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "zeros" or not _worth_it(x, self) or torch.is_autocast_enabled("cpu"):
            return super()._conv_forward(x, weight, bias)
        ph, pw = self.padding  # type: ignore[misc]
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        y = winograd_conv3x3(x, weight)
        return y if bias is None else y + bias.view(1, -1, 1, 1)


def eligible(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.kernel_size == (3, 3) and m.stride == (1, 1)
            and m.dilation == (1, 1) and m.groups == 1 and isinstance(m.padding, tuple))


def use_winograd(net: nn.Module, on: bool = True) -> int:
    """Switch every eligible 3x3 convolution of ``net`` to ``WinogradConv2d`` (or back with ``on=False``)
    in place; parameters and their names stay. Returns how many were switched."""
    switched = 0
    for m in net.modules():
        if on and eligible(m):
            m.__class__ = WinogradConv2d
            switched += 1
        elif not on and type(m) is WinogradConv2d:
            m.__class__ = nn.Conv2d
            switched += 1
    return switched

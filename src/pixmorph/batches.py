"""Which images of a list share a generator call: those of one shape, ``batch_size`` at a time."""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Sequence


def equal_shape_batches(shapes: Sequence[Hashable], batch_size: int) -> list[list[int]]:
    """The indices of ``shapes`` in batches of at most ``batch_size``, each of one shape; each index once, shapes
    in the order they first appear and indices in order within a shape."""
    by_shape: dict[Hashable, list[int]] = defaultdict(list)
    for i, shape in enumerate(shapes):
        by_shape[shape].append(i)
    return [indices[start : start + batch_size] for indices in by_shape.values()
            for start in range(0, len(indices), batch_size)]

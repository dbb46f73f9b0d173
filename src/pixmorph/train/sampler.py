"""An endless, seeded stream of (index, seed) keys: epoch e is a permutation drawn from (seed, e),
and the stream can start at any position, so a resumed run sees exactly the same samples.

In distributed training every process walks the same global stream and keeps its own slice of
each global batch, so N processes with batch b see what one process with batch N*b would."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class SeededSampler(Sampler):
    def __init__(self, length: int, seed: int, start: int = 0, shuffle: bool = True,
                 shard: tuple[int, int, int] = (0, 1, 1)):
        """``shard`` = (rank, world size, batch size per process); ``start`` counts global positions."""
        self.length, self.seed, self.start, self.shuffle = length, seed, start, shuffle
        self.rank, self.world, self.batch = shard

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.world == 1:
            yield from self._stream()
            return
        global_batch = self.world * self.batch
        for position, key in enumerate(self._stream(), start=self.start):
            if (position % global_batch) // self.batch == self.rank:
                yield key

    def _stream(self) -> Iterator[tuple[int, int]]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.length)
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.length, generator=g) if self.shuffle else torch.arange(self.length)
            sample_seeds = torch.randint(0, 2**62, (self.length,), generator=g)
            for i in range(offset, self.length):
                yield int(order[i]), int(sample_seeds[i])
            position = (epoch + 1) * self.length

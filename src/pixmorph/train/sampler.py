"""An endless, seeded stream of (index, seed) keys: epoch e is a permutation drawn from (seed, e),
and the stream can start at any position, so a resumed run sees exactly the same samples. The
class-balanced stream (two-step's, as its reference code draws) lets the classes take turns instead.

In distributed training every process walks the same global stream and keeps its own slice of
each global batch, so N processes with batch b see what one process with batch N*b would."""

from __future__ import annotations

import hashlib
from typing import Iterator, Sequence

import torch
from torch import Tensor
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


class ClassBalancedSampler(SeededSampler):
    """The same stream of ``(index, seed)`` keys, with the classes taking turns: position p of the stream is an
    image of class ``p % C``, so every batch holds each class equally often (within one when the batch is not a
    multiple of C) whatever the classes' sizes. Class c walks its own seeded permutations of its images, epoch
    after epoch, and the key at any position is computed from the position alone, so resuming stays exact.

    Sharded across processes, each takes its slice of every global batch: when the global batch is a multiple
    of C but the per-process batch is not (a global batch of C over several processes, say), each process sees
    the same subset of the classes in every batch, which SyncBatchNorm (on GPUs) makes harmless and batch norm
    per process (CPU processes) does not; otherwise each process sees every class in turn.

    ``labels``: the class of each dataset index (0 .. C-1, each class with at least one image)."""

    def __init__(self, labels: Sequence[int], seed: int, start: int = 0, shard: tuple[int, int, int] = (0, 1, 1)):
        super().__init__(len(labels), seed, start=start, shard=shard)
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            by_class.setdefault(int(label), []).append(index)
        if sorted(by_class) != list(range(len(by_class))):
            raise ValueError(f"class labels {sorted(by_class)}: expected 0 .. C-1, every class with an image")
        self.members = [torch.tensor(by_class[c]) for c in range(len(by_class))]

    def _stream(self) -> Iterator[tuple[int, int]]:
        classes = len(self.members)
        drawn: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}  # (class, its epoch) -> (order, sample seeds)
        position = self.start
        while True:
            c, n = position % classes, position // classes  # the n-th image drawn from class c
            epoch, offset = divmod(n, len(self.members[c]))
            if (c, epoch) not in drawn:
                drawn = {key: value for key, value in drawn.items() if key[0] != c}
                g = torch.Generator().manual_seed(_class_epoch_seed(self.seed, epoch, c))
                order = self.members[c][torch.randperm(len(self.members[c]), generator=g)]
                drawn[c, epoch] = order, torch.randint(0, 2**62, (len(order),), generator=g)
            order, sample_seeds = drawn[c, epoch]
            yield int(order[offset]), int(sample_seeds[offset])
            position += 1


def _class_epoch_seed(seed: int, epoch: int, c: int) -> int:
    """The generator seed of class ``c``'s ``epoch``: a hash, so that no two (seed, epoch, class) share one
    whatever the number of classes (an arithmetic mix repeats once the classes outnumber its multiplier)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{c}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1

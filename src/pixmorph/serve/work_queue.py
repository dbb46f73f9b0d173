"""One piece of model work at a time on the device, and a bounded number of requests admitted to wait for it.

A request that will run a model takes a place (:meth:`WorkQueue.place`) when it arrives, before its body
is read; with ``max_pending`` places taken it is answered 503 at once, with a Retry-After header, instead
of piling up. Its place is kept while it uploads, decodes, waits and runs, so a slow upload is not
overtaken by quick ones. The networks run in a worker thread (the event loop keeps answering meanwhile),
one call at a time, so that concurrent requests do not fight over the device's cores or memory.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, TypeVar

import anyio

T = TypeVar("T")


class QueueFull(Exception):
    pass


class WorkQueue:
    def __init__(self, max_pending: int = 16):
        if max_pending < 1:
            raise ValueError(f"max_pending={max_pending}: need at least 1")
        self.max_pending = max_pending
        self.pending = 0  # requests holding a place: uploading, waiting or running
        self.served = 0
        self._lock: anyio.Lock | None = None

    @property
    def full(self) -> bool:
        return self.pending >= self.max_pending

    @property
    def busy_message(self) -> str:
        return f"busy: {self.pending} requests are queued or running; try again shortly"

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Hold one of the ``max_pending`` places for the block; :class:`QueueFull` when none is free."""
        if self.full:
            raise QueueFull(self.busy_message)
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def run(self, work: Callable[..., T], *args) -> T:
        """``work(*args)`` in a worker thread, after the model calls before it."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            result = await anyio.to_thread.run_sync(work, *args)
        self.served += 1
        return result

"""One piece of model work at a time on the device, and a bounded number of requests waiting for it.

The networks run in a worker thread (the event loop keeps answering other requests meanwhile), one call
at a time so that concurrent requests do not fight over the device's cores or memory. When
``max_pending`` requests are already queued or running, the next one is answered 503 at once with a
Retry-After header instead of piling up.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import anyio
from fastapi import HTTPException

T = TypeVar("T")


class WorkQueue:
    def __init__(self, max_pending: int = 16):
        if max_pending < 1:
            raise ValueError(f"max_pending={max_pending}: need at least 1")
        self.max_pending = max_pending
        self.pending = 0  # queued or running
        self.served = 0
        self._lock: anyio.Lock | None = None

    @property
    def full(self) -> bool:
        return self.pending >= self.max_pending

    @property
    def busy_message(self) -> str:
        return f"busy: {self.pending} requests are queued or running; try again shortly"

    async def run(self, work: Callable[..., T], *args) -> T:
        if self.full:
            raise HTTPException(503, self.busy_message, headers={"Retry-After": "1"})
        if self._lock is None:
            self._lock = anyio.Lock()
        self.pending += 1
        try:
            async with self._lock:
                result = await anyio.to_thread.run_sync(work, *args)
            self.served += 1
            return result
        finally:
            self.pending -= 1

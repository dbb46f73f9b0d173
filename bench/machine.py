"""What the benchmarks report about the machine they ran on: the CPU's name and this process's memory.
(bench/ is on sys.path when a bench runs as a script.)"""

from __future__ import annotations

import os
import platform
import threading


def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'AMD EPYC 9R45'."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rss_bytes() -> int:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class PeakRSS:
    """The highest resident memory of this process while the block runs, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.002):
        self.start = self.peak = rss_bytes()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def gib_above_start(self) -> float:
        return (self.peak - self.start) / 2**30

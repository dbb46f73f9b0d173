"""How many CPU threads training should use when other processes share the cores.

torch's CPU threads meet at a barrier after every parallel operation (thousands per training step). When
another busy process shares one of their cores, the thread on that core runs only in the scheduler's time
slices and every barrier waits for it: next to one busy process on a 2-core machine the demo's step was
15-20x slower with 2 threads, and 3x faster with 1 thread than with 2 (README, Speed). The loop therefore
measures, from ``/proc/stat`` and this process's own CPU time (its data-loading workers included), how many
of its cores other processes keep busy, and trains with the cores they leave free (at least 1, at most
the threads it started with). Linux only; elsewhere nothing changes.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import torch

CHECK_EVERY_S = 10.0  # between samples of the other processes' load
AGREE = 2  # samples in a row that must propose the same thread count before it changes


def _cpu_ticks(cpus: set[int]) -> int | None:
    """Busy clock ticks (user, nice, system, irq, softirq, steal) of ``cpus`` since boot."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy


def _own_ticks() -> int:
    """Clock ticks used by this process and its live children (DataLoader workers)."""
    total = 0
    for pid in ["self", *(str(p.pid) for p in multiprocessing.active_children())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


class CpuShare:
    """``adjust()`` once per step: every ``CHECK_EVERY_S`` seconds it samples how many cores other
    processes used since the last sample and sets ``torch.set_num_threads`` to what they leave free.
    Returns a message when it changes the thread count, else None."""

    def __init__(self, max_threads: int | None = None):
        self.max_threads = max_threads or torch.get_num_threads()
        try:
            self.cpus = os.sched_getaffinity(0)
        except AttributeError:
            self.cpus = set(range(os.cpu_count() or 1))
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.enabled = self.max_threads > 1 and _cpu_ticks(self.cpus) is not None
        self.threads_before = torch.get_num_threads()
        self.proposals: list[int] = []
        self._mark()

    def _mark(self) -> None:
        self.t = time.monotonic()
        self.busy = _cpu_ticks(self.cpus) if self.enabled else 0
        self.own = _own_ticks() if self.enabled else 0

    def others_busy(self) -> float:
        """Cores that other processes kept busy since the last mark (and set a new mark)."""
        t, busy, own = self.t, self.busy, self.own
        self._mark()
        seconds = max(self.t - t, 1e-3)
        return max(0.0, ((self.busy - busy) - (self.own - own)) / self.hz / seconds)

    def propose(self) -> int:
        free = len(self.cpus) - self.others_busy()
        return max(1, min(self.max_threads, int(free + 0.5)))

    def adjust(self, force: bool = False) -> str | None:
        """``force``: decide now (before the first step), on a sample of at least a quarter second."""
        if not self.enabled or (not force and time.monotonic() - self.t < CHECK_EVERY_S):
            return None
        if force:
            time.sleep(max(0.0, 0.25 - (time.monotonic() - self.t)))
        threads = self.propose()
        self.proposals = (self.proposals + [threads])[-AGREE:]
        current = torch.get_num_threads()
        if threads == current or (not force and (len(self.proposals) < AGREE or len(set(self.proposals)) > 1)):
            return None
        torch.set_num_threads(threads)
        return (f"other processes keep about {len(self.cpus) - threads} of {len(self.cpus)} cores busy: training "
                f"with {threads} thread{'s' if threads > 1 else ''} (was {current}; set train.threads to fix it)")

    def restore(self) -> None:
        """The thread count the process had before (training leaves no process-wide change behind)."""
        if self.enabled:
            torch.set_num_threads(self.threads_before)

"""The loop's CPU thread count follows the cores other processes leave free (train/cpu_share.py): the
measurement counts another busy process, and not this process's own work or its children's. No time is
asserted, only which process the CPU time is charged to."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pixmorph.train.cpu_share import CpuShare

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists() or len(os.sched_getaffinity(0)) < 2,
                                reason="needs Linux and two cores")


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _busy_process() -> subprocess.Popen:
    cpu = min(os.sched_getaffinity(0))
    proc = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    time.sleep(0.5)  # started and spinning
    return proc


def test_another_busy_process_is_counted():
    proc = _busy_process()
    try:
        share = CpuShare(max_threads=2)
        time.sleep(1.0)
        assert share.others_busy() > 0.6
    finally:
        proc.kill()
        proc.wait()


def test_own_work_and_own_children_are_not_counted():
    share = CpuShare(max_threads=2)
    child = multiprocessing.get_context("fork").Process(target=_spin, args=(1.2,))
    child.start()  # as a DataLoader worker would be
    _spin(1.0)
    others = share.others_busy()
    child.join()
    assert others < 0.5


def test_threads_follow_the_free_cores():
    threads = torch.get_num_threads()
    proc = _busy_process()
    try:
        share = CpuShare(max_threads=len(os.sched_getaffinity(0)))
        message = share.adjust(force=True)
        assert torch.get_num_threads() == len(os.sched_getaffinity(0)) - 1
        assert message and "busy" in message and "train.threads" in message
    finally:
        proc.kill()
        proc.wait()
        torch.set_num_threads(threads)
    share.adjust(force=True)  # the other process is gone: back to every core
    assert torch.get_num_threads() == len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)

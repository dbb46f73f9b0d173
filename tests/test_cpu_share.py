"""The loop's CPU thread count follows the cores other processes leave free (train/cpu_share.py): the
measurement charges another busy process to "others" and this process's children to itself. Each check
is one-sided or compares CPU times measured independently, so other load on the machine cannot fail it;
no time is asserted."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pixmorph.train import cpu_share
from pixmorph.train.cpu_share import CpuShare

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists() or len(os.sched_getaffinity(0)) < 2,
                                reason="needs Linux and two cores")
HZ = os.sysconf("SC_CLK_TCK")


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def _spin_then_report(seconds: float, used) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    used.value = time.process_time()
    time.sleep(5)  # alive, idle, until the parent has read its ticks


def _busy_process() -> subprocess.Popen:
    cpu = min(os.sched_getaffinity(0))
    proc = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    time.sleep(0.5)  # started and spinning
    return proc


def test_another_busy_process_is_counted():
    proc = _busy_process()
    try:
        share = CpuShare(max_threads=2)
        t0, cpu0 = time.monotonic(), _proc_cpu_seconds(proc.pid)
        time.sleep(1.0)
        others = share.others_busy()
        its_cores = (_proc_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
    finally:
        proc.kill()
        proc.wait()
    assert its_cores > 0.2 and others >= its_cores - 0.15  # other load can only add to "others"


def test_a_live_child_is_charged_to_this_process():
    """DataLoader workers are this training's own work, not other processes'."""
    context = multiprocessing.get_context("fork")
    used = context.Value("d", 0.0)
    before, parent_before = cpu_share._own_ticks(), time.process_time()
    child = context.Process(target=_spin_then_report, args=(1.0, used))
    child.start()
    while used.value == 0.0:
        time.sleep(0.05)
    own = (cpu_share._own_ticks() - before) / HZ
    parent = time.process_time() - parent_before
    child.kill()
    child.join()
    assert used.value > 0.1 and used.value - 0.05 <= own <= used.value + parent + 0.05


def test_threads_follow_the_free_cores(monkeypatch):
    threads, cores = torch.get_num_threads(), len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    proc = _busy_process()
    try:
        share = CpuShare(max_threads=cores)
        message = share.adjust(force=True)
        assert torch.get_num_threads() <= cores - 1
        assert message and "busy" in message and "train.threads" in message
    finally:
        proc.kill()
        proc.wait()
    try:
        monkeypatch.setattr(share, "others_busy", lambda: 0.0)  # the others are gone
        assert share.adjust() is None  # not yet: samples every CHECK_EVERY_S
        assert share.adjust(force=True) and torch.get_num_threads() == cores
        torch.set_num_threads(1)
        share.restore()  # what the loop does when training ends
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(threads)

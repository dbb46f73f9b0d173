"""How training stops: the first Ctrl-C or SIGTERM asks the loop to save and stop at the end of the step, a
second aborts; data-loading workers leave both signals to the loop and are stopped when it ends."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from torch.utils.data import DataLoader
from tqdm import tqdm

from pixmorph.train import distributed
from pixmorph.train.run_lock import let_go_in_child


class StoppedAndSaved(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training, and the checkpoint of the last step is saved."""


class TrainingAborted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training at once (a second one, or one before the steps began), without
    saving; the message says what the run folder holds and how to go on."""


@contextmanager
def stop_requests(world: distributed.World = distributed.World()):
    """First Ctrl-C (or SIGTERM) asks the loop to save and stop at the end of the step; a second one aborts."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def handler(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        if world.is_main:  # said once, not by every process
            tqdm.write("stopping after this step and saving a checkpoint (press Ctrl-C again to abort)")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested.is_set
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def batches_of(loader: DataLoader) -> Iterator:
    """The loader's batches; its worker processes are stopped when the block ends, also by an exception. They
    ignore SIGTERM (below), so one left to the interpreter's exit, which terminates and then joins them,
    would never end (a traceback that holds the iterator keeps it from being collected)."""
    batches = iter(loader)
    try:
        yield batches
    finally:
        stop_workers = getattr(batches, "_shutdown_workers", None)  # absent without workers
        if stop_workers is not None:
            stop_workers()


def leave_signals_to_the_loop(worker_id: int) -> None:
    """In a data-loading worker: ignore Ctrl-C and SIGTERM. A terminal's Ctrl-C, ``timeout`` and a SLURM
    cancellation signal the whole process group; a worker that died of it took the run down before the
    loop could save, and one that inherited the loop's handler said "stopping" again. The loop stops its
    workers when it has saved. It also lets go of the run folder's lock, which it inherited (train/run_lock.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    let_go_in_child()

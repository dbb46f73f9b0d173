"""One training at a time per run folder.

Two trainings in one folder (a ``--resume`` started while the run still trains, say after the terminal that
started it was closed) would replace each other's checkpoints and interleave their logs. The first takes an
advisory lock on ``RUN/.lock`` (``flock``: the system releases it when the process ends, however it ends),
and a second is refused in one line naming the holder's process and host. Under torchrun the first process
takes it. The file stays (empty of meaning once unlocked): deleting it would let a process that opened it
just before, and one that creates it anew, both hold "the" lock. Where the filesystem cannot lock (some
NFS, Lustre or FUSE mounts) training goes on with a warning; on Windows there is no lock.
"""

from __future__ import annotations

import os
import socket
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # not on Windows: no lock there
    fcntl = None

LOCK = ".lock"
_held: set[int] = set()  # descriptors of the locks this process holds (a forked child inherits them)


class RunFolderInUse(ValueError):
    """Another process trains in this run folder."""


@contextmanager
def run_lock(run_dir: Path, take: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block (creating the folder); ``take=False`` does nothing."""
    if not take or fcntl is None:
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    with open(path, "a+") as handle:
        locked = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise RunFolderInUse(f"{run_dir}: another pixmorph train (process {holder}) is training in this "
                                 f"folder: wait for it or stop it, or give another --out") from None
        except OSError as error:
            warnings.warn(f"{path}: this filesystem cannot lock files ({error.strerror}): nothing stops a second "
                          f"training in {run_dir} meanwhile", stacklevel=3)
            locked = False
        if locked:
            handle.truncate(0)
            handle.write(f"{os.getpid()} on {socket.gethostname()}")
            handle.flush()
            _held.add(handle.fileno())
        try:
            yield
        finally:
            if locked:
                _held.discard(handle.fileno())
                handle.truncate(0)  # (closing the file releases the lock)


def let_go_in_child() -> None:
    """In a forked child (a data-loading worker): drop its inherited copies of the locks. flock belongs to the
    open file, which a fork shares: a child that outlived the training (a kill -9 leaves loader workers running
    for seconds, a hung read for longer) kept the run folder locked. The descriptor is pointed at /dev/null,
    so the parent's file object copied into the child never closes another file."""
    if not _held:
        return
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        for fd in _held:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    _held.clear()

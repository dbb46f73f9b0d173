"""A run started over in a folder that holds a checkpoint (``--overwrite``) keeps the last run's logs, samples
and primitive files aside in ``RUN/.replaced/`` until its own first checkpoint replaces the last run's. A start
over that ends before that (Ctrl-C, an error) puts them back, so the folder holds the last run as it was; a
``--resume`` after a start over killed outright (kill -9) puts them back too."""

from __future__ import annotations

import shutil
from pathlib import Path

ASIDE = ".replaced"
OUTPUTS = ("stats.jsonl", "samples", "tensorboard", "primitive")  # what a run writes beside its checkpoint


def set_aside(run_dir: Path) -> None:
    """Move the last run's outputs into ``RUN/.replaced``. When it is there already (a start over killed before
    its first save), it holds the last run's: the outputs in the folder are the killed start's, and go."""
    aside = run_dir / ASIDE
    if aside.is_dir():
        for name in OUTPUTS:
            _remove(run_dir / name)
        return
    aside.mkdir()
    for name in OUTPUTS:
        if (run_dir / name).exists():
            (run_dir / name).rename(aside / name)


def restore(run_dir: Path) -> None:
    """Put the set-aside outputs back in place of those a start over wrote (nothing when none is aside)."""
    aside = run_dir / ASIDE
    if not aside.is_dir():
        return
    for name in OUTPUTS:
        _remove(run_dir / name)
        if (aside / name).exists():
            (aside / name).rename(run_dir / name)
    shutil.rmtree(aside, ignore_errors=True)


def discard(run_dir: Path) -> None:
    """The start over has saved its checkpoint: the last run's outputs go."""
    shutil.rmtree(run_dir / ASIDE, ignore_errors=True)


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

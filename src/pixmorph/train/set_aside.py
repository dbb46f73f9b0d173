"""A run started over in a folder that holds a checkpoint (``--overwrite``) keeps the last run's logs, samples
and primitive files aside in ``RUN/.replaced/`` until its own first checkpoint replaces the last run's. A start
over that ends before that (Ctrl-C, an error) puts them back, so the folder holds the last run as it was; a
``--resume`` after a start over killed outright (kill -9) puts them back too, when the checkpoint is still the
last run's (a start over killed after its first save keeps its own outputs)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

ASIDE = ".replaced"
MOVING, GOING = ASIDE + ".tmp", ASIDE + ".gone"  # a set-aside being made, one being deleted
REPLACES = ".replaces.json"  # in ASIDE: the checkpoint folder the outputs set aside go with, and their names
OUTPUTS = ("stats.jsonl", "samples", "tensorboard", "primitive")  # what a run writes beside its checkpoint


def set_aside(run_dir: Path) -> None:
    """Move the last run's outputs into ``RUN/.replaced``. When it is there already (a start over killed before
    its first save), it holds the last run's: the outputs in the folder are the killed start's, and go."""
    aside = run_dir / ASIDE
    _recover(run_dir)
    if aside.is_dir():
        for name in OUTPUTS:
            _remove(run_dir / name)
        return
    moving = run_dir / MOVING  # renamed to ASIDE once whole: a kill meanwhile leaves the outputs to _recover
    moving.mkdir()
    names = [name for name in OUTPUTS if (run_dir / name).exists()]
    for name in names:
        (run_dir / name).rename(moving / name)
    (moving / REPLACES).write_text(json.dumps({"checkpoint": _checkpoint_id(run_dir), "outputs": names}))
    moving.rename(aside)


def restore(run_dir: Path) -> None:
    """Put the set-aside outputs back in place of those a start over wrote (nothing when none is aside)."""
    aside = run_dir / ASIDE
    _recover(run_dir)
    if not aside.is_dir():
        return
    last_run = _replaces(aside).get("outputs", OUTPUTS)
    for name in OUTPUTS:  # one put back already (a kill during a restore) stays
        if (aside / name).exists() or name not in last_run:
            _remove(run_dir / name)
        if (aside / name).exists():
            (aside / name).rename(run_dir / name)
    shutil.rmtree(aside, ignore_errors=True)


def discard(run_dir: Path) -> None:
    """The start over has saved its checkpoint: the last run's outputs go (at once from ASIDE: a kill while they
    are deleted must not leave some to be put back)."""
    if (run_dir / ASIDE).is_dir():
        shutil.rmtree(run_dir / GOING, ignore_errors=True)
        (run_dir / ASIDE).rename(run_dir / GOING)
    shutil.rmtree(run_dir / GOING, ignore_errors=True)


def last_run_output(run_dir: Path, name: str) -> Path:
    """Where the output ``name`` of the run whose checkpoint is in the folder is: aside after a start over killed
    before its first save (what is in the folder then is the killed start's), else in the folder. Reads only."""
    aside = run_dir / ASIDE
    if aside.is_dir() and _replaces(aside).get("checkpoint") == _checkpoint_id(run_dir):
        return aside / name
    return run_dir / name


def _recover(run_dir: Path) -> None:
    """What a kill -9 left half done: a set-aside being made (its outputs go back: the start over had written
    nothing yet), one being deleted, and one whose start over saved its checkpoint before the kill (it goes)."""
    moving, aside = run_dir / MOVING, run_dir / ASIDE
    if moving.is_dir():
        for name in OUTPUTS:
            if (moving / name).exists() and not (run_dir / name).exists():
                (moving / name).rename(run_dir / name)
        shutil.rmtree(moving, ignore_errors=True)
    if _replaces(aside).get("checkpoint", _checkpoint_id(run_dir)) != _checkpoint_id(run_dir):
        discard(run_dir)  # the start over saved its checkpoint before the kill
    shutil.rmtree(run_dir / GOING, ignore_errors=True)


def _replaces(aside: Path) -> dict:
    try:
        return json.loads((aside / REPLACES).read_text())
    except (OSError, ValueError):
        return {}


def _checkpoint_id(run_dir: Path) -> str:
    """The checkpoint's identity: the save_id its config.json holds (each save writes a new one, which stays when the
    run folder is copied or moved to another disk), else, for a checkpoint saved before ids, its folder's inode
    (each save writes a new folder, which replaces the last, renamed to ``.checkpoint.old`` meanwhile)."""
    for folder in (run_dir / "checkpoint", run_dir / ".checkpoint.old"):
        if folder.is_dir():
            try:
                save_id = json.loads((folder / "config.json").read_text()).get("save_id")
            except (OSError, ValueError, AttributeError):
                save_id = None
            if isinstance(save_id, str):
                return save_id
            st = os.stat(folder)
            return f"{st.st_dev}:{st.st_ino}"
    return ""


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)

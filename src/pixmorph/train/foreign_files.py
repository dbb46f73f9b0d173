"""Someone else's files where a new run would write: refused before the run starts.

A run writes ``config.json`` into its ``--out`` folder and clears the logs a failed start left there
(``stats.jsonl``, ``samples/``, ``tensorboard/``). In a folder that holds no checkpoint, such names that are not
a run's (a project's own ``samples/`` of photos, another program's ``config.json``) would be replaced or
deleted; other files are left alone, beside the run's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pixmorph.train import checkpoint as ckpt

_RUN_FILES = {  # what a run writes in these folders (save_image's temporary files start with a dot)
    "samples": re.compile(r"^\.?(index\.html|step_\d+\.png)"),
    "tensorboard": re.compile(r"^events\.out\.tfevents\."),
}
# what a file browser leaves in a folder of images a user looked at (macOS Finder, Windows Explorer)
_BROWSER_FILES = re.compile(r"^(\.DS_Store|\._.*|Thumbs\.db|desktop\.ini)$")
_STATS_START = '{"step": '  # how a run's stats.jsonl begins (report.StatsLog)


def refuse_another_programs_files(run_dir: Path) -> None:
    """A one-line FileExistsError naming the files of ``run_dir`` a new run would replace or delete that no run
    wrote; nothing for a run's folder (one with a checkpoint: --resume and --overwrite decide)."""
    if ckpt.holds_checkpoint(run_dir):
        return
    foreign = [name for name in ("config.json", "stats.jsonl", *_RUN_FILES) if _not_a_runs(run_dir / name)]
    if foreign:
        names = [f"{name}/" if (run_dir / name).is_dir() else name for name in foreign]
        is_, them = ("is", "it") if len(names) == 1 else ("are", "them")
        raise FileExistsError(f"{run_dir}: its {', '.join(names)} {is_} not a pixmorph run's, and a run there would "
                              f"replace or delete {them}: give another --out (or move {them} away)")


def _not_a_runs(path: Path) -> bool:
    if not path.exists():
        return False
    if path.name in _RUN_FILES:
        return not path.is_dir() or any(not (_RUN_FILES[path.name].match(p.name) or _BROWSER_FILES.match(p.name))
                                        for p in path.iterdir())
    try:
        text = path.read_text()
    except (OSError, ValueError):
        return True
    if path.name == "stats.jsonl":
        first = text.split("\n", 1)[0]  # a full disk may have cut the run's first line short
        return bool(first) and not (_json_with(first, "step") or first.startswith(_STATS_START)
                                    or _STATS_START.startswith(first))
    return _json_with(text, None) and not _json_with(text, "method", "train")


def _json_with(text: str, *keys: str | None) -> bool:
    """Whether ``text`` is a JSON object holding ``keys`` (``None``: any JSON at all). A config.json that is not
    JSON is most likely a run's own, cut short by a kill while it was written."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return keys == (None,) or (isinstance(value, dict) and set(keys) <= value.keys())

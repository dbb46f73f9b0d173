"""What a run writes for people to look at: sample grids, an HTML page of them, stats and TensorBoard."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from torch import Tensor

from pixmorph.images import make_grid_image, save_image, write_error


def save_samples(run_dir: Path, step: int, rows: list[list[Tensor]], columns: str = "") -> Path:
    """The grid of ``step`` (a failed write, a full disk, is one line naming the file, and leaves no half grid)."""
    path = run_dir / "samples" / f"step_{step:07d}.png"
    save_image(make_grid_image([[t.float().cpu() for t in row] for row in rows]), path)
    write_samples_page(path.parent, columns)
    return path


def write_samples_page(folder: Path, columns: str = "") -> Path:
    """``index.html`` with what the grids' columns show, the latest logged losses and every sample grid,
    newest first."""
    items = "\n".join(
        f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in sorted(folder.glob("step_*.png"), reverse=True)
    )
    page = folder / "index.html"
    try:
        page.write_text(
            "<!doctype html><meta charset=utf-8><title>pixmorph samples</title>"
            "<style>body{font-family:sans-serif}img{image-rendering:pixelated;max-width:100%}"
            "td,th{padding:0 .6em;text-align:right}</style>"
            f"<h1>Samples of {html.escape(folder.parent.name)}</h1>\n"
            + (f'<p id="columns">Columns: {html.escape(columns)}</p>\n' if columns else "")
            + f"{_latest_stats_table(folder.parent)}\n{items}\n"
        )
    except OSError as err:  # a full disk: say which file
        raise write_error(page, err) from None
    return page


def _latest_stats_table(run_dir: Path) -> str:
    """The last line of ``stats.jsonl`` as a one-row table (empty before the first log)."""
    try:
        last = json.loads((run_dir / "stats.jsonl").read_text().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        return ""
    names = list(last)
    head = "".join(f"<th>{html.escape(k)}</th>" for k in names)
    row = "".join(f"<td>{last[k]:.4g}</td>" if isinstance(last[k], float) else f"<td>{last[k]}</td>" for k in names)
    return f'<table id="latest"><caption>last logged means</caption><tr>{head}</tr><tr>{row}</tr></table>'


class StatsLog:
    """Appends one JSON line per log interval to ``stats.jsonl``; mirrors to TensorBoard when available."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, resumed_at: int | None = None):
        self.path = run_dir / "stats.jsonl"
        if resumed_at is not None and self.path.is_file():
            self._drop_after(resumed_at)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # (purge_step: TensorBoard's own record of steps after the checkpoint goes too)
                purge = None if resumed_at is None else resumed_at + 1
                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
            except ImportError:
                pass

    def _drop_after(self, step: int) -> None:
        """Forget the lines of steps after ``step``: a run killed after its last checkpoint logged steps that
        the resume trains again (a plot of the file would go back in time)."""
        kept = []
        for line in self.path.read_text().splitlines(keepends=True):
            try:
                if json.loads(line)["step"] > step:
                    continue
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by the kill
            kept.append(line)
        partial = self.path.with_name(self.path.name + ".tmp")  # (a kill while writing keeps the old file)
        try:
            partial.write_text("".join(kept))
            os.replace(partial, self.path)
        except OSError as err:  # a full disk: say which file, not an errno alone
            partial.unlink(missing_ok=True)
            raise write_error(self.path, err) from None

    def write(self, step: int, values: dict[str, float]) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step, **values}) + "\n")
        except OSError as err:  # a full disk: say which file, not an errno alone
            raise write_error(self.path, err) from None
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

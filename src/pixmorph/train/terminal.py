"""Training's messages on the terminal around its progress bar: warnings above it, errors on a line of their
own (and said by the process whose error it is)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from pixmorph.messages import one_line
from pixmorph.train import distributed


@contextmanager
def warnings_above(bar: tqdm) -> Iterator[None]:
    """While ``bar`` is drawn, each warning is one line written above it (``tqdm.write``), not glued into the
    bar's line (DeepSIM's perceptual network changed on resume, PyTorch's own warnings)."""
    if bar.disable:
        yield
        return
    shown = warnings.showwarning

    def write(message, category, filename, lineno, file=None, line=None) -> None:
        tqdm.write(f"warning: {one_line(message)}", file=file or sys.stderr)

    warnings.showwarning = write
    try:
        yield
    finally:
        warnings.showwarning = shown


@contextmanager
def errors_on_their_own_line(world: distributed.World, bar: tqdm) -> Iterator[None]:
    """An error in the steps closes the progress bar first, so that the CLI's one line starts a line of its
    own. The CLI prints an error once, on rank 0 (every process has the errors of its config and data); an
    error in the steps can be one process's own (an unreadable image in its shard), which rank 0 only sees
    as a closed connection: that process says it (not one that the first process's error stopped: the first
    process says that one)."""
    from pixmorph.errors import USER_ERRORS  # (here: errors imports the loop, which imports this module)

    try:
        yield
    except USER_ERRORS as error:
        bar.close()
        own = distributed.raised_by(error, world) == world.rank
        if world.distributed and not world.is_main and own:  # on a new line: rank 0's bar may be on the same terminal
            print(f"\nerror: {error} (process {world.rank} of {world.size})", file=sys.stderr, flush=True)
            error.said = True  # (the CLI would say it again on the first process of a machine)
        raise
    except BaseException:
        bar.close()
        raise


@contextmanager
def said_by_rank_0(world: distributed.World) -> Iterator[None]:
    """Warnings that every process gives alike (a skipped image, an A|B folder of whole photos), from rank 0 only."""
    with warnings.catch_warnings():
        if not world.is_main:
            warnings.simplefilter("ignore")
        yield

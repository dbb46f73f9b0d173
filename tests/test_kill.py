"""A training process killed with SIGKILL (no handler runs, nothing is flushed) while it writes a checkpoint
leaves the previous checkpoint loadable, and ``--resume`` continues from it. Real processes and signals.

The child is ``pixmorph train`` with a checkpoint at every step, whose checkpoint writer is wrapped (in the
child only) to stop at a chosen point of its third save and say so in a marker file: once the new weights
are written into the temporary folder, or between moving the old checkpoint aside and moving the new one
in. The parent then kills it there. A third test kills at random moments instead."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pixmorph
from conftest import run_main
from pixmorph.train import checkpoint as ckpt
from test_interrupt import ENV, train_command
from test_train import write_unpaired

CHILD = r"""
import hashlib, os, sys, time
from pathlib import Path
from pixmorph.train import checkpoint as ckpt

pause_at, mark = os.environ["PAUSE_AT"], Path(os.environ["MARK"])
saves = {"done": 0}

def pause(new_weights):
    mark.write_text(hashlib.sha256(Path(new_weights).read_bytes()).hexdigest())  # what must not be loaded
    time.sleep(120)  # killed here

real_weights = ckpt.save_weights_file
def weights_then_pause(tensors, path, metadata=None):
    out = real_weights(tensors, path, metadata)
    if pause_at == "weights" and saves["done"] == 2:
        pause(path)
    return out
ckpt.save_weights_file = weights_then_pause

real_rename = Path.rename
def rename_then_pause(self, target):
    out = real_rename(self, target)
    if pause_at == "swap" and saves["done"] == 2 and self.name == "checkpoint":
        pause(self.with_name(".checkpoint.tmp") / "weights.safetensors")  # the old one aside, the new not in place
    return out
Path.rename = rename_then_pause

real_save = ckpt.save_checkpoint
def counting_save(*args, **kwargs):
    out = real_save(*args, **kwargs)
    saves["done"] += 1
    return out
ckpt.save_checkpoint = counting_save

from pixmorph.cli import main
sys.argv = ["pixmorph", *sys.argv[1:]]
main()
"""


def every_step(data: Path, out: Path, *extra: str) -> list[str]:
    return train_command(data, out, "--set", "train.checkpoint_every=1", *extra)


def loadable_step(out: Path) -> int:
    """The step of the checkpoint `pixmorph.load` finds, after checking that its weights load."""
    pixmorph.load(out, precision="fp32")
    return int(ckpt.read_config(ckpt.find_checkpoint(out))["step"])


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the child never reached the point to kill it at"
        time.sleep(0.05)


def resume_to(data: Path, out: Path, steps: int, monkeypatch, capsys) -> None:
    """``pixmorph train --resume`` as ``main()`` in this process: the kills are the child's, a resume is not."""
    code, _, err = run_main(monkeypatch, capsys, *every_step(data, out, "--resume", "--steps", str(steps))[3:])
    assert code == 0, err[-3000:]
    assert loadable_step(out) == steps


@pytest.mark.parametrize("point", ["weights", "swap"])
def test_sigkill_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, point, monkeypatch, capsys):
    data, out, mark = write_unpaired(tmp_path / "data"), tmp_path / "run", tmp_path / "mark"
    child = [sys.executable, "-c", CHILD, *every_step(data, out)[3:]]  # the arguments after `-m pixmorph`
    proc = subprocess.Popen(child, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**ENV, "PAUSE_AT": point, "MARK": str(mark)})
    try:
        wait_for(mark, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    if point == "swap":
        assert not (out / "checkpoint").exists()  # killed with the checkpoint moved aside
    assert loadable_step(out) == 2  # the third save never finished: the second stands
    loaded = hashlib.sha256((ckpt.find_checkpoint(out) / ckpt.WEIGHTS).read_bytes()).hexdigest()
    assert loaded != mark.read_text()  # the weights of the unfinished save are not what is loaded
    resume_to(data, out, 4, monkeypatch, capsys)


def test_sigkill_at_random_moments_never_loses_the_run(tmp_path, monkeypatch, capsys):
    data, out = write_unpaired(tmp_path / "data"), tmp_path / "run"
    rng = random.Random(0)
    last = 0
    for round_ in range(3):
        extra = ("--resume",) if round_ else ()
        proc = subprocess.Popen(every_step(data, out, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=ENV)
        deadline = time.monotonic() + 120
        while loadable_or_none(out) in (None, last) and time.monotonic() < deadline:  # a new save landed
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 1.5))  # then somewhere in the following steps and saves
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        step = loadable_step(out)
        assert step > last, (round_, step, last)
        last = step
    resume_to(data, out, last + 2, monkeypatch, capsys)


def loadable_or_none(out: Path) -> int | None:
    try:
        return json.loads((ckpt.find_checkpoint(out) / ckpt.CONFIG).read_text())["step"]
    except (ckpt.CheckpointError, OSError, ValueError):
        return None

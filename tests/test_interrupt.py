"""Ctrl-C during `pixmorph train` saves a checkpoint at the end of the step and stops; --resume continues
from it; resuming a run already past its last step says so. Real processes and real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_main
from test_train import write_unpaired

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}  # this tree's code

TINY = ["--batch-size", "2", "--workers", "0", "--load-size", "20", "--crop-size", "16", "--device", "cpu",
        "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1", "--set", "model.d_layers=1",
        "--set", "train.tensorboard=false", "--set", "train.log_every=1", "--epochs", "1000", "--epochs-decay", "0"]


def train_command(data, out, *extra):
    return [sys.executable, "-m", "pixmorph", "train", "cyclegan", "--data", str(data), "--out", str(out), *TINY, *extra]


def saved_step(out) -> int:
    return json.loads((out / "checkpoint" / "config.json").read_text())["step"]


def test_ctrl_c_saves_then_resume_continues(tmp_path, monkeypatch, capsys):
    """The training is a real process given a real SIGINT; the commands beside and after it run as ``main()``
    in this process (the console script's code, without a second start of torch in a process of its own)."""
    data, out = write_unpaired(tmp_path / "data"), tmp_path / "run"
    proc = subprocess.Popen(train_command(data, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ENV)
    deadline = time.monotonic() + 120
    while not (out / "stats.jsonl").exists() and not (out / "samples").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # training has started (its first log or samples written)
    # a second training in the folder meanwhile (a --resume from another terminal) is refused in one line
    code, _, err = run_main(monkeypatch, capsys, *train_command(data, out, "--resume")[3:])
    assert code == 1 and err.strip() == (
        f"error: {out}: another pixmorph train (process {proc.pid} on {socket.gethostname()}) is training in this "
        f"folder: wait for it or stop it, or give another --out"), err[-2000:]
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped at step" in output, output[-2000:]
    assert (out / ".lock").read_text() == ""  # unlocked; the file stays (see train/run_lock.py)
    assert f"`pixmorph train cyclegan --out {out} --resume`" in output, output[-2000:]  # the command, whole
    assert "Traceback" not in output
    stopped = saved_step(out)
    assert stopped >= 1

    code, _, err = run_main(monkeypatch, capsys, *train_command(data, out, "--resume", "--steps", str(stopped + 2))[3:])
    assert code == 0, err[-2000:]
    assert saved_step(out) == stopped + 2

    code, again, _ = run_main(monkeypatch, capsys, *train_command(data, out, "--resume", "--steps", str(stopped))[3:])
    assert code == 0 and f"already at step {stopped + 2} of {stopped}: nothing to train" in again


def test_sigterm_to_the_process_group_saves_once(tmp_path):
    """`timeout`, a SLURM cancellation and a terminal's Ctrl-C signal every process of the group, data-loading
    workers included: the run still saves at the end of the step and says so once, and no worker's death
    takes it down first."""
    data, out = write_unpaired(tmp_path / "data"), tmp_path / "run"
    command = train_command(data, out)
    command[command.index("--workers") + 1] = "2"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "stats.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped at step" in output, output[-2000:]
    assert "Traceback" not in output and "killed by signal" not in output, output[-2000:]
    assert output.count("stopping after this step") == 1 and "aborted" not in output, output[-2000:]
    assert saved_step(out) >= 1


def test_a_failed_run_leaves_no_worker_that_keeps_the_interpreter_from_exiting(tmp_path):
    """The loop's data workers ignore SIGTERM, which is how the interpreter's exit stops leftover workers: a
    run that raised while its traceback is still held (pytest holds a failed test's) left them running, and
    the process never exited. The loop now stops its workers when it ends, by an exception too."""
    data = write_unpaired(tmp_path / "data")
    script = f"""
import sys
from pixmorph.config import RunConfig
from pixmorph.methods.cyclegan import CycleGAN
from pixmorph.train.loop import train

def fail(self, batch, update):
    raise RuntimeError("a failing step")

CycleGAN.train_step = fail
cfg = RunConfig.from_dict({{"method": "cyclegan", "model": {{"ngf": 4, "ndf": 4, "n_blocks": 1, "d_layers": 1}},
    "data": {{"root": {str(data)!r}, "load_size": 16, "crop_size": 16, "num_workers": 2}},
    "train": {{"out": {str(tmp_path / "run")!r}, "device": "cpu", "tensorboard": False}}}})
try:
    train(cfg, progress=False)
except RuntimeError as error:
    kept = error
print("exiting")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr[-2000:]


def test_a_data_loading_worker_does_not_hold_the_run_lock(tmp_path):
    """Loader workers are forked with the lock's file open: as long as one lived (about 5 s after a kill -9 of
    the training, or as long as it hung reading an image) it held the lock, and a --resume was refused as if
    the dead process still trained. A worker lets go of its copy; the training's own copy still holds it."""
    import multiprocessing

    import pytest

    from pixmorph.train.stopping import leave_signals_to_the_loop
    from pixmorph.train.run_lock import RunFolderInUse, run_lock

    run = tmp_path / "run"
    started = multiprocessing.get_context("fork").Event()

    def worker():
        leave_signals_to_the_loop(0)
        started.set()
        time.sleep(30)

    with run_lock(run):
        child = multiprocessing.get_context("fork").Process(target=worker, daemon=True)
        child.start()
        assert started.wait(10)
        with pytest.raises(RunFolderInUse):
            with run_lock(run):
                pass
    try:
        with run_lock(run):  # the training is gone; its worker still runs
            pass
    finally:
        child.kill()
        child.join()


def test_a_filesystem_that_cannot_lock_trains_with_a_warning(tmp_path, monkeypatch):
    """flock fails with ENOLCK on some NFS/Lustre mounts: that is no reason to refuse training."""
    import errno

    import pytest

    from pixmorph.train import run_lock

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="cannot lock files .No locks available."):
        with run_lock.run_lock(tmp_path / "run"):
            pass


def test_a_second_ctrl_c_says_what_the_run_folder_holds_and_how_to_resume(tmp_path, monkeypatch, capsys):
    """The second Ctrl-C aborts at once, without saving: its one line names the last intact checkpoint and its
    step and the --resume to continue from it, or says that no checkpoint was saved."""
    import pytest

    from pixmorph.cli import main
    from pixmorph.methods.cyclegan import CycleGAN

    original = CycleGAN.train_step
    calls = {"n": 0, "at": 0}

    def ctrl_c_twice(self, batch, update):
        calls["n"] += 1
        if calls["n"] == calls["at"]:
            os.kill(os.getpid(), signal.SIGINT)  # (each handler runs before the next line)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, update)

    monkeypatch.setattr(CycleGAN, "train_step", ctrl_c_twice)
    data, out = write_unpaired(tmp_path / "data"), tmp_path / "run"
    for at, checkpoint_every in ((2, 100), (4, 2)):
        calls.update(n=0, at=at)
        monkeypatch.setattr(sys, "argv", ["pixmorph", *train_command(data, out, "--set", "train.threads=1",
                                                                     "--set", f"train.checkpoint_every={checkpoint_every}",
                                                                     "--overwrite")[3:]])
        with pytest.raises(SystemExit) as info:
            main()
        said = capsys.readouterr().err.strip().splitlines()[-1]
        assert info.value.code == 130
        if at == 2:
            assert said == (f"aborted without saving: no checkpoint was saved in {out}: there is nothing to --resume; "
                            f"run the command again to start over")
        else:
            assert said == (f"aborted without saving: the last checkpoint, {out / 'checkpoint'} (step 2), is intact: "
                            f"continue from it with `pixmorph train cyclegan --out {out} --resume`")


def test_a_new_run_aborted_before_its_first_checkpoint_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """Ctrl-C twice in a new run after it logged (stats.jsonl) and drew samples, before any checkpoint: the
    folder stayed with those files and a config.json, though the message says there is nothing to --resume."""
    import pytest

    from pixmorph.cli import main
    from pixmorph.methods.cyclegan import CycleGAN

    original = CycleGAN.train_step
    calls = {"n": 0}

    def ctrl_c_twice_at_step_4(self, batch, update):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, update)

    monkeypatch.setattr(CycleGAN, "train_step", ctrl_c_twice_at_step_4)
    data, out = write_unpaired(tmp_path / "data"), tmp_path / "new" / "run"
    monkeypatch.setattr(sys, "argv", ["pixmorph", *train_command(data, out, "--set", "train.threads=1", "--set",
                                                                 "train.log_every=1", "--set", "train.sample_every=2",
                                                                 "--set", "train.checkpoint_every=100")[3:]])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 130
    assert "nothing to --resume" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_start_over_stopped_before_its_first_save_leaves_the_last_run_as_it_was(tmp_path, monkeypatch, capsys):
    """`--overwrite` by mistake, then Ctrl-C: the first save replaced the last run's checkpoint with the new
    run's step 1, and its logs and samples were gone already. Now the last run's checkpoint, logs and samples
    stay until the start over saves its own checkpoint; one that does so replaces them."""
    from pixmorph.cli import main
    from pixmorph.methods.cyclegan import CycleGAN

    data, out = write_unpaired(tmp_path / "data"), tmp_path / "run"

    def run(*extra: str) -> int:
        monkeypatch.setattr(sys, "argv", ["pixmorph", *train_command(data, out, "--set", "train.threads=1",
                                                                     *extra)[3:]])
        try:
            main()
        except SystemExit as e:
            return e.code or 0
        return 0

    assert run("--steps", "2") == 0
    last_run = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert Path("stats.jsonl") in last_run and any(p.parts[0] == "samples" for p in last_run)

    original, calls = CycleGAN.train_step, {"n": 0}

    def ctrl_c_at_the_first_step(self, batch, update):
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGINT)  # the loop finishes the step, then stops
        return original(self, batch, update)

    monkeypatch.setattr(CycleGAN, "train_step", ctrl_c_at_the_first_step)
    assert run("--overwrite", "--steps", "5") == 130
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == (f"aborted without saving: the last checkpoint, {out / 'checkpoint'} (step 2), is intact: "
                    f"continue from it with `pixmorph train cyclegan --out {out} --resume`")
    now = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert now == last_run

    monkeypatch.setattr(CycleGAN, "train_step", original)
    assert run("--overwrite", "--steps", "1") == 0
    assert saved_step(out) == 1 and not (out / ".replaced").exists()
    assert [json.loads(line)["step"] for line in (out / "stats.jsonl").read_text().splitlines()] == [1]


def test_a_start_over_killed_outright_keeps_the_last_runs_outputs_aside(tmp_path):
    """kill -9 before the first save leaves RUN/.replaced: a --resume (of the last run, whose checkpoint it
    still is) puts its outputs back; another start over drops the killed start's outputs and keeps them aside."""
    from pixmorph.train import set_aside

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "stats.jsonl").write_text("last run\n")
    (run / "samples" / "index.html").write_text("last run")
    set_aside.set_aside(run)
    (run / "stats.jsonl").write_text("killed start\n")  # what the start over wrote before the kill
    set_aside.set_aside(run)  # started over again
    assert not (run / "stats.jsonl").exists() and (run / ".replaced" / "stats.jsonl").read_text() == "last run\n"
    (run / "stats.jsonl").write_text("killed again\n")
    set_aside.restore(run)  # --resume
    assert (run / "stats.jsonl").read_text() == "last run\n" and (run / "samples" / "index.html").is_file()
    assert not (run / ".replaced").exists()


def test_a_start_over_killed_after_its_first_save_keeps_its_own_outputs(tmp_path):
    """kill -9 between the start over's first save and the end of dropping RUN/.replaced (the config written
    after the checkpoint, the set-aside samples and logs being deleted): the checkpoint is the start over's, so a
    --resume (or another start over) keeps the start over's outputs and drops the last run's, not the reverse."""
    import shutil

    from pixmorph.train import set_aside

    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "stats.jsonl").write_text("last run\n")
    set_aside.set_aside(run)
    (run / "stats.jsonl").write_text("start over\n")
    (run / ".checkpoint.tmp").mkdir()  # its first save, as checkpoint.save_checkpoint replaces the folder
    (run / "checkpoint").rename(run / ".checkpoint.old")
    (run / ".checkpoint.tmp").rename(run / "checkpoint")
    shutil.rmtree(run / ".checkpoint.old")
    set_aside.restore(run)  # --resume after the kill
    assert (run / "stats.jsonl").read_text() == "start over\n" and not (run / ".replaced").exists()


def test_a_run_folder_copied_after_a_killed_start_over_keeps_the_last_runs_outputs(tmp_path):
    """The checkpoint that the set-aside outputs go with was known by its folder's inode: in a copy of the run folder
    (cp -r, a move to another disk, a backup restored) it differed, so a --resume took the copy's checkpoint for the
    start over's and deleted the last run's logs and samples. Each save's own id (config.json) stays with a copy."""
    import shutil

    import torch

    from pixmorph.train import set_aside
    from pixmorph.train.checkpoint import save_checkpoint

    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint", torch.nn.ModuleDict({"G": torch.nn.Linear(1, 1)}), {"method": "cyclegan"}, None)
    (run / "stats.jsonl").write_text("last run\n")
    set_aside.set_aside(run)  # a start over, killed before its first save
    (run / "stats.jsonl").write_text("killed start\n")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    set_aside.restore(copy)  # --resume in the copy
    assert (copy / "stats.jsonl").read_text() == "last run\n" and not (copy / ".replaced").exists()


def test_a_start_over_killed_while_setting_aside_loses_nothing(tmp_path, monkeypatch):
    """kill -9 with some of the last run's outputs moved aside and the others not yet: a --resume finds them all."""
    import pytest

    from pixmorph.train import set_aside

    run = _last_run(tmp_path)
    _killed_at_the_second_rename(monkeypatch)
    with pytest.raises(SystemExit):
        set_aside.set_aside(run)
    monkeypatch.undo()
    set_aside.restore(run)  # --resume
    assert (run / "stats.jsonl").read_text() == "last run\n" and (run / "samples" / "index.html").is_file()


def test_a_restore_killed_halfway_is_finished_by_the_next(tmp_path, monkeypatch):
    """kill -9 while a stopped start over puts the last run's outputs back: the next --resume puts back the rest
    and keeps those already back."""
    import pytest

    from pixmorph.train import set_aside

    run = _last_run(tmp_path)
    set_aside.set_aside(run)
    (run / "stats.jsonl").write_text("start over\n")
    (run / "tensorboard").mkdir()
    _killed_at_the_second_rename(monkeypatch)
    with pytest.raises(SystemExit):
        set_aside.restore(run)
    monkeypatch.undo()
    set_aside.restore(run)
    assert (run / "stats.jsonl").read_text() == "last run\n" and (run / "samples" / "index.html").is_file()
    assert not (run / "tensorboard").exists() and not (run / ".replaced").exists()


def _last_run(tmp_path: Path) -> Path:
    """A run folder with a checkpoint and the outputs of the run that wrote it."""
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoint").mkdir()
    (run / "stats.jsonl").write_text("last run\n")
    (run / "samples" / "index.html").write_text("last run")
    return run


def _killed_at_the_second_rename(monkeypatch) -> None:
    """A kill -9 as the second Path.rename starts (SystemExit, which no `except Exception` of the code catches)."""
    real_rename, renames = Path.rename, []

    def rename(self, target):
        renames.append(target)
        if len(renames) == 2:
            raise SystemExit("killed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)

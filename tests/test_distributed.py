"""Data-parallel training: torchrun with N processes of batch b trains the same model as one process
with batch N*b (CPU, gloo backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import pixmorph
from conftest import damage_png_pixels, run_main
from safetensors.torch import load_file

from pixmorph.config import RunConfig
from pixmorph.train import distributed
from pixmorph.train.sampler import SeededSampler

TINY = ["--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1", "--set", "model.d_layers=1",
        "--set", "model.pool_size=0",  # the history pool draws random numbers per process
        "--set", "train.tensorboard=false"]


def take(sampler: SeededSampler, n: int) -> list:
    stream = iter(sampler)
    return [next(stream) for _ in range(n)]


def test_shards_tile_the_global_stream():
    # start = step * global batch (6), in the second epoch of 10 keys
    whole = take(SeededSampler(10, seed=3, start=6), 12)
    rank0 = take(SeededSampler(10, seed=3, start=6, shard=(0, 2, 3)), 6)
    rank1 = take(SeededSampler(10, seed=3, start=6, shard=(1, 2, 3)), 6)
    assert rank0 == whole[0:3] + whole[6:9]
    assert rank1 == whole[3:6] + whole[9:12]


def pixmorph_train(args: list[str], processes: int = 1, tiny: list[str] = TINY) -> None:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(launcher + ["-m", "pixmorph", "train", "cyclegan", *args, *tiny],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def train_in_process(monkeypatch, capsys, args: list[str]) -> None:
    """``pixmorph train cyclegan`` with TINY as ``main()`` in this process: for the one-process runs a test compares
    with or prepares for its two-process one (each ``python -m pixmorph`` costs seconds to import torch)."""
    code, _, err = run_main(monkeypatch, capsys, "train", "cyclegan", *args, *TINY)
    assert code == 0, err[-3000:]


def test_two_processes_train_like_one_with_the_global_batch(tmp_path, layouts, monkeypatch, capsys):
    data = layouts.unpaired(tmp_path / "data", n=8, size=(20, 20))
    # fp32: "like one" holds to rounding; bf16 (auto on CPUs with AMX) rounds each shard's activations apart
    common = ["--data", str(data), "--steps", "4", "--load-size", "20", "--crop-size", "16", "--workers", "0",
              "--device", "cpu", "--precision", "fp32"]
    train_in_process(monkeypatch, capsys, common + ["--out", str(tmp_path / "one"), "--batch-size", "4"])
    pixmorph_train(common + ["--out", str(tmp_path / "two"), "--batch-size", "2"], processes=2)
    # one shard alone
    train_in_process(monkeypatch, capsys, common + ["--out", str(tmp_path / "half"), "--batch-size", "2"])
    one, two, half = (load_file(str(tmp_path / run / "checkpoint" / "weights.safetensors"))
                      for run in ("one", "two", "half"))
    assert one.keys() == two.keys()
    # Biases right before an instance norm get a gradient that is zero up to rounding, which Adam
    # rescales to full-size steps of random sign: they cannot match, and do not change any output.
    for name in (k for k in one if k.endswith(".weight")):
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    outputs = {run: pixmorph.load(tmp_path / run, precision="fp32")(x) for run in ("one", "two", "half")}
    torch.testing.assert_close(outputs["two"], outputs["one"], rtol=1e-4, atol=1e-5)
    # the comparison can fail: training on one shard only ends elsewhere
    assert max((half[k] - one[k]).abs().max().item() for k in one if k.endswith(".weight")) > 1e-4
    assert (outputs["half"] - outputs["one"]).abs().max() > 1e-4


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def pixmorph_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pixmorph", "train", "cyclegan", *args, *TINY],
                          capture_output=True, text=True, env=cli_env(), timeout=300)


def test_devices_starts_torchrun_and_a_run_resumes_on_fewer_processes(tmp_path, layouts, monkeypatch, capsys):
    data = layouts.unpaired(tmp_path / "data", n=8, size=(20, 20))
    common = ["--data", str(data), "--load-size", "20", "--crop-size", "16", "--workers", "0", "--device", "cpu",
              "--precision", "fp32", "--batch-size", "2", "--out", str(tmp_path / "run")]
    two = pixmorph_cli(common + ["--steps", "2", "--devices", "2"])
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 processes (gloo), batch 2 each: global batch 4" in two.stdout
    assert two.stdout.count("checkpoint: ") == 1  # rank 0 alone says where it wrote
    saved = tmp_path / "run" / "checkpoint"
    assert json.loads((saved / "config.json").read_text())["step"] == 2
    before = load_file(str(saved / "weights.safetensors"))

    # one process now (main() in this one: the resume is not the torchrun part)
    code, out, err = run_main(monkeypatch, capsys, "train", "cyclegan", *common, "--steps", "4", "--resume", *TINY)
    assert code == 0, err[-3000:]
    assert "resumed with a global batch of 2 (it was 4): the data and the learning-rate schedule go on from " \
           "image 8" in out
    assert json.loads((saved / "config.json").read_text())["step"] == 4
    state = torch.load(saved / "state.pt", weights_only=True)
    assert (state["images_seen"], state["global_batch"]) == (2 * 4 + 2 * 2, 2)  # no image replayed or skipped
    after = load_file(str(saved / "weights.safetensors"))
    assert max((after[k] - before[k]).abs().max().item() for k in before if k.endswith(".weight")) > 1e-4


def test_the_processes_save_and_stop_when_their_launcher_is_killed(tmp_path, layouts):
    """kill -9 of `pixmorph train --devices 2` (or a closed terminal) left both processes training unseen to the
    end of the schedule: now each gets SIGTERM, they save at the end of the step and stop."""
    import time

    data = layouts.unpaired(tmp_path / "data", n=8, size=(20, 20))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "pixmorph", "train", "cyclegan", "--data", str(data), "--load-size", "20",
               "--crop-size", "16", "--workers", "0", "--device", "cpu", "--precision", "fp32", "--batch-size", "2",
               "--out", str(out), "--devices", "2", "--steps", "100000", "--set", "train.log_every=1", *TINY]
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
    deadline = time.monotonic() + 180
    while not (out / "stats.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (out / "stats.jsonl").exists(), "training did not start"
    launcher.kill()
    launcher.wait()
    while time.monotonic() < deadline:  # its processes: gone, after saving
        found = subprocess.run(["pgrep", "-f", "--", f"--out {out} "], capture_output=True, text=True)
        assert found.returncode in (0, 1), found.stderr  # (1: none)
        alive = found.stdout.split()
        if not alive:
            break
        time.sleep(0.5)
    for pid in alive:  # (not to leave them training for the rest of the suite)
        os.kill(int(pid), 9)
    assert not alive, "the training processes outlived their launcher"
    saved = json.loads((out / "checkpoint" / "config.json").read_text())["step"]
    logged = json.loads((out / "stats.jsonl").read_text().splitlines()[-1])["step"]
    assert saved == logged >= 1


def _decide(rank: int, port: int, seen: dict) -> None:
    import torch.distributed as dist

    from pixmorph.train import distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    seen[rank] = distributed.as_main_sees(rank == 0, distributed.World(rank, 2))  # (the folder on rank 0's disk)
    dist.destroy_process_group()


def test_every_process_takes_the_first_ones_view_of_the_run_folder():
    """Whether a start over replaces a checkpoint was read by each process from its own view of the folder: on
    machines that do not share it, a stop before the first save broke out on one and waited in the save on the
    others."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen = mp.Manager().dict()
    mp.spawn(_decide, args=(port, seen), nprocs=2)
    assert dict(seen) == {0: True, 1: True}


ON_ITS_OWN_DISK = """
import os, sys
from pathlib import Path
from pixmorph.config import RunConfig
from pixmorph.train.loop import train
base, resume = Path(sys.argv[1]), sys.argv[2] in ("resume", "stats rewrite full")
out = base / f"run{os.environ['RANK']}"  # the same --out on two machines' own disks: each sees its own folder
def full(*args, **kwargs):
    raise OSError(28, "No space left on device")
every = {"sample full": {"sample_every": 1}, "checkpoint full": {"checkpoint_every": 1},
         "stats full": {"log_every": 1}}.get(sys.argv[2], {})
if sys.argv[2] == "other settings" and os.environ["RANK"] == "1":  # as read from another copy of config.json
    every = {"seed": 1}
if sys.argv[2] == "full disk" and os.environ["RANK"] == "0":  # what the first process alone writes fails
    import pixmorph.train.loop as loop
    loop.save_json = full
if sys.argv[2] == "sample full" and os.environ["RANK"] == "0":  # the first sample grid, at step 1 of 2
    from PIL import Image
    Image.Image.save = full
if sys.argv[2] == "checkpoint full" and os.environ["RANK"] == "0":  # the second save (step 2 of 2)
    import pixmorph.train.checkpoint as ckpt
    write = ckpt.save_weights_file
    ckpt.save_weights_file = lambda *a: full() if ckpt.saved else (setattr(ckpt, "saved", 1), write(*a))[1]
    ckpt.saved = 0
if sys.argv[2] == "stats full" and os.environ["RANK"] == "0":  # stats.jsonl's line of step 1 of 2
    import pixmorph.train.report as report
    report.open = full
if sys.argv[2] == "stats rewrite full" and os.environ["RANK"] == "0":  # a resume's rewrite of stats.jsonl
    import types
    import pixmorph.train.report as report
    report.os = types.SimpleNamespace(replace=full)
cfg = RunConfig.from_dict({"method": "cyclegan", "data": {"root": str(base / "data"), "load_size": 16,
                           "crop_size": 16, "num_workers": 0},
                           "model": {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 1, "pool_size": 0},
                           "train": {"out": str(out), "max_steps": 2, "device": "cpu", "batch_size": 1,
                                     "tensorboard": False, "precision": "fp32", "resume": resume, **every}})
if sys.argv[2] == "one step":
    cfg.train.max_steps = 1
try:
    train(cfg, progress=False)
except Exception as error:
    print(f"{type(error).__name__}: {error}", flush=True)
    import torch.distributed as dist
    sys.exit(3 if dist.is_initialized() else 1)  # a group left to the exit's teardown at times aborted (SIGABRT)
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_as_two_machines(tmp_path, mode: str) -> list[str]:
    """ON_ITS_OWN_DISK in two processes, started as two machines' launchers would (no torchrun agent here to stop
    the others); the last line each printed, once both have stopped."""
    port = free_port()
    processes = [subprocess.Popen([sys.executable, "-c", ON_ITS_OWN_DISK, str(tmp_path), mode],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**cli_env(), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
                                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
                 for rank in (0, 1)]
    try:
        ended = [p.communicate(timeout=120) for p in processes]
    finally:
        for p in processes:
            p.kill()
    lines = [out.strip().splitlines()[-1] if out.strip() else err[-2000:] for out, err in ended]
    assert [p.returncode for p in processes] == [1, 1], lines
    return lines


@pytest.mark.parametrize("case", ["refused on 0", "refused on 1", "unreadable on 1", "other step on 0",
                                  "full disk on 0"])
def test_an_error_of_some_processes_before_the_first_collective_stops_all_with_it(tmp_path, layouts, case,
                                                                                   monkeypatch, capsys):
    """What a process reads from a run folder on its own machine's disk can fail there only (a start over refused
    beside a checkpoint, another program's files, an unreadable checkpoint): the others went on into the first
    collective and waited there (NCCL: until its timeout; gloo: a lost connection, and the error unsaid where
    it was not rank 0's). Now every process stops at once with the same error, another process's named."""
    layouts.unpaired(tmp_path / "data", n=4, size=(16, 16))
    run0, run1 = tmp_path / "run0", tmp_path / "run1"
    if case == "refused on 0":
        (run0 / "checkpoint").mkdir(parents=True)
        said = f"FileExistsError: {run0}: holds a checkpoint already"
    elif case == "refused on 1":
        run1.mkdir()
        (run1 / "config.json").write_text('{"theirs": 1}')
        said = f"FileExistsError: {run1}: its config.json is not a pixmorph run's"
    elif case == "unreadable on 1":
        (run1 / "checkpoint").mkdir(parents=True)
        for name in ("weights.safetensors", "config.json"):  # (and no training state)
            (run1 / "checkpoint" / name).write_text("{}")
        said = f"CheckpointError: {run1 / 'checkpoint' / 'state.pt'}: missing"
    elif case == "full disk on 0":  # the run's config.json, which the first process alone writes
        said = "OSError: [Errno 28] No space left on device"
    else:
        train_in_process(monkeypatch, capsys, ["--data", str(tmp_path / "data"), "--out", str(run0), "--steps", "1",
                                               "--load-size", "16", "--crop-size", "16", "--workers", "0", "--device",
                                               "cpu", "--batch-size", "1"])
        said = f"ValueError: {run0}: --resume: the processes found checkpoints of different steps (0, 1; step 0"
    lines = start_as_two_machines(tmp_path, "resume" if case in ("unreadable on 1", "other step on 0") else
                                  "full disk" if case == "full disk on 0" else "new")
    if case == "other step on 0":  # each names its own folder, here of another name
        lines[1] = lines[1].replace(str(run1), str(run0))
    assert lines[0] == lines[1] and lines[0].startswith(said), lines
    assert lines[0].endswith(" (process 1 of 2)") == case.endswith("on 1"), lines


@pytest.mark.parametrize("case", ["no config on 1, torchrun", "no config on 0", "no GPU on 1"])
def test_an_error_of_one_machine_before_the_processes_join_stops_the_others(tmp_path, layouts, case):
    """What `pixmorph train` reads before its processes join (the --config file, a --resume's run folder, the device)
    can be missing on one machine only: its processes stopped there, and the other machines' waited in
    init_process_group for 30 minutes. Each "machine" here is a folder of its own (relative paths) and a launcher
    of its own: torchrun with two nodes, whose launcher holds the store, or the processes alone (the first one's)."""
    for machine in ("m0", "m1"):
        layouts.unpaired(tmp_path / machine / "data", n=4, size=(16, 16))
        (tmp_path / machine / "my.yaml").write_text("train:\n  seed: 1\n")
    failing = 0 if case.endswith("on 0") else 1
    if case.startswith("no config"):
        (tmp_path / f"m{failing}" / "my.yaml").unlink()
    port = free_port()
    processes = []
    for rank in (0, 1):
        device = "cuda" if case == "no GPU on 1" and rank == 1 else "cpu"
        args = ["-m", "pixmorph", "train", "cyclegan", "--config", "my.yaml", "--data", "data", "--out", "run",
                "--steps", "1", "--load-size", "16", "--crop-size", "16", "--workers", "0", "--device", device, *TINY]
        env = {**cli_env(), "CUDA_VISIBLE_DEVICES": ""}
        if case.endswith("torchrun"):
            args = ["-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
                    "--master-addr", "127.0.0.1", "--master-port", str(port), *args]
        else:
            env.update(RANK=str(rank), LOCAL_RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        processes.append(subprocess.Popen([sys.executable, *args], cwd=tmp_path / f"m{rank}", env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        ended = [p.communicate(timeout=180) for p in processes]
    finally:
        for p in processes:
            p.kill()
    said = ("error: my.yaml: config file not found" if case.startswith("no config") else
            "error: device 'cuda' asked for, but CUDA is not available here")
    for rank, (_, err) in enumerate(ended):
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1 and lines[0].startswith(said), (rank, err[-3000:])
        assert lines[0].endswith(" (process 1 of 2)") == (failing == 1), lines
    assert [p.returncode for p in processes] == [1, 1]
    assert not (tmp_path / "m0" / "run").exists() and not (tmp_path / "m1" / "run").exists()


def test_processes_given_other_settings_are_refused(tmp_path, layouts):
    """`pixmorph train --resume` reads RUN/config.json in each process, before they join: a machine that saw
    another copy of it (a run folder not on shared storage) trained with other settings, silently (another seed
    here: each process drew its shard of another stream) or until a collective of other-sized weights hung."""
    layouts.unpaired(tmp_path / "data", n=4, size=(16, 16))
    said = (f"ValueError: {tmp_path / 'run0'}: the processes were given different settings (train.seed: 0 on process "
            f"0, 1 on process 1 of 2): give every machine the same options; a --resume reads RUN/config.json, which "
            f"must be on storage every machine sees")
    assert start_as_two_machines(tmp_path, "other settings") == [said, said]


def test_what_each_machine_may_give_its_own_is_not_compared(monkeypatch):
    """A machine's own data folder, loader processes and CPU threads (the same images at another path; fewer
    cores) are its own, and so are the paths of files beside the data; another model width is refused."""
    from pixmorph.train import loop

    world = distributed.World(rank=0, size=2)
    mine = RunConfig.from_dict({"method": "cyclegan", "model": {"ngf": 64}, "data": {"root": "/a/data"},
                                "train": {"out": "/a/run"}})

    def other_machine(**changes) -> RunConfig:
        d = mine.to_dict()
        for key, value in changes.items():
            section, name = key.split("__")
            d[section][name] = value
        return RunConfig.from_dict(d)

    def both(cfg: RunConfig):
        monkeypatch.setattr(distributed, "all_values", lambda value, world: [value, loop._settings(cfg)])
        loop._refuse_other_settings(mine, world)

    both(other_machine(data__root="/b/data", data__num_workers=8, train__threads=3, train__out="/b/run"))
    with pytest.raises(ValueError, match=r"^/a/run: the processes were given different settings \(model.ngf: 64 on "
                                         r"process 0, 32 on process 1 of 2\)"):
        both(other_machine(model__ngf=32))

    # DeepSIM's primitive file (and FUNIT's list files) at a path of the machine's own; not a file against computed
    mine = RunConfig.from_dict({"method": "deepsim", "data": {"root": "/a/car.png", "options": {
        "primitive": "/a/car_seg.png", "kind": "seg"}}, "train": {"out": "/a/run"}})
    both(other_machine(data__root="/b/car.png", data__options={"primitive": "/b/seg.png", "kind": "seg"}))
    with pytest.raises(ValueError, match=r"\(data.options.primitive: 'a file' on process 0, 'auto-seg' on process 1"):
        both(other_machine(data__options={"primitive": "auto-seg", "kind": "seg"}))
    mine = RunConfig.from_dict({"method": "funit", "data": {"root": "/a/faces", "options": {
        "source_list": "/a/train.txt", "image_root": "/a/images"}}, "train": {"out": "/a/run"}})
    both(other_machine(data__options={"source_list": "/b/train.txt", "image_root": "/b/images"}))


@pytest.mark.parametrize("case", ["sample full", "checkpoint full", "stats full"])
def test_the_first_processes_failing_to_write_in_the_steps_stops_all_with_its_error(tmp_path, layouts, case):
    """The first process alone writes the stats' lines, the sample grids and the checkpoint; where that failed (a
    full disk), the others went on into their next collective and waited there for it (NCCL: ten minutes) or
    lost the connection (gloo), and said no error of their own. Now every process stops there with its line. A
    checkpoint that fails to save leaves the last one as it was."""
    layouts.unpaired(tmp_path / "data", n=4, size=(16, 16))
    run0 = tmp_path / "run0"
    said = {"sample full": f"OSError: {run0 / 'samples' / 'step_0000001.png'}: could not write it (No space left "
                           f"on device)",
            "checkpoint full": f"CheckpointError: {run0 / 'checkpoint'}: could not write checkpoint (No space left on "
                               f"device); the previous checkpoint at {run0 / 'checkpoint'} is intact",
            "stats full": f"OSError: {run0 / 'stats.jsonl'}: could not write it (No space left on device)"}[case]
    lines = start_as_two_machines(tmp_path, case)
    assert lines == [said, said], lines
    if case == "checkpoint full":
        assert json.loads((run0 / "checkpoint" / "config.json").read_text())["step"] == 1


def test_the_first_processes_failing_to_rewrite_the_stats_of_a_resume_stops_all_with_its_error(tmp_path, layouts):
    """A resume rewrites stats.jsonl (the lines of steps after the checkpoint go) on the first process alone, after
    the processes joined and outside any agreement: where that failed (a full disk), the others went on into the
    first step's collective and waited there for it (NCCL: ten minutes) or lost the connection (gloo); and the line
    named no file. Now every process stops there with one line naming stats.jsonl."""
    import shutil

    layouts.unpaired(tmp_path / "data", n=4, size=(16, 16))
    run0 = tmp_path / "run0"
    one_process = {**cli_env(), "RANK": "0", "WORLD_SIZE": "1"}
    done = subprocess.run([sys.executable, "-c", ON_ITS_OWN_DISK, str(tmp_path), "one step"], capture_output=True,
                          text=True, env=one_process, timeout=120)
    assert done.returncode == 0 and (run0 / "stats.jsonl").is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    shutil.copytree(run0, tmp_path / "run1")  # the other machine's copy of the run
    said = f"OSError: {run0 / 'stats.jsonl'}: could not write it (No space left on device)"
    assert start_as_two_machines(tmp_path, "stats rewrite full") == [said, said]


def test_a_launcher_that_is_the_first_process_is_not_taken_for_dead():
    """In a container whose entrypoint is the launcher, a worker's parent is process 1: the check for a launcher
    that died before the request made every worker stop itself at start."""
    code = ("import os; os.getppid = lambda: 1\n"
            "from pixmorph.train.distributed import stop_with_the_launcher\n"
            "stop_with_the_launcher(); print('alive')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "alive", (done.returncode, done.stderr[-500:])


def test_devices_leaves_out_the_launchers_own_log_lines():
    """Ctrl-C of `pixmorph train --devices 2` printed torch's "W1203 ... api.py:753] Received 2 death signal,
    shutting down workers" into the progress bar: the agent's logger sets its own level (WARNING), so setting
    the level of "torch.distributed" alone left it on."""
    import logging

    from pixmorph.train.launch import silence_launcher_logs
    from torch.distributed.elastic.agent.server import api as agent

    silence_launcher_logs()
    assert not agent.logger.isEnabledFor(logging.WARNING)
    assert not logging.getLogger("torch.distributed.elastic.multiprocessing.api").isEnabledFor(logging.ERROR)


def test_devices_options():
    from pixmorph.train.launch import check_devices, without_devices

    assert without_devices(["train", "cyclegan", "--devices", "4", "--devices=2", "--steps", "3"]) == \
        ["train", "cyclegan", "--steps", "3"]
    check_devices(8, "cpu")  # CPU processes: any number
    if torch.cuda.device_count() < 64:
        with pytest.raises(ValueError, match="--devices 64: this machine has"):
            check_devices(64, "cuda")


def test_batch_norm_is_synchronised_on_gpus_only():
    from torch import nn

    from pixmorph.train.distributed import sync_batch_norm

    nets = nn.ModuleDict({"G": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), "D": nn.Conv2d(3, 1, 3)})
    weight = nets["G"][1].weight
    sync_batch_norm(nets, torch.device("cpu"))
    assert type(nets["G"][1]) is nn.BatchNorm2d  # torch has no CPU SyncBatchNorm
    sync_batch_norm(nets, torch.device("cuda"))  # converting needs no GPU
    assert isinstance(nets["G"][1], nn.SyncBatchNorm) and nets["G"][1].weight is weight  # optimizers keep theirs
    assert set(nets.state_dict()) == {"G.0.weight", "G.0.bias", "G.1.weight", "G.1.bias", "G.1.running_mean",
                                      "G.1.running_var", "G.1.num_batches_tracked", "D.weight", "D.bias"}


def test_synchronised_batch_norm_still_normalises_per_image_outside_training():
    """A run that started at batch 1 draws its sample grids with batch norm per image (nn/norm.py); on several
    GPUs torch's conversion to SyncBatchNorm made plain layers, which normalised them by the running averages."""
    from torch import nn

    from pixmorph.nn.norm import BatchNorm2d, normalise_per_image
    from pixmorph.train.distributed import sync_batch_norm

    torch.manual_seed(0)
    nets = nn.ModuleDict({"G": nn.Sequential(nn.Conv2d(3, 4, 3), BatchNorm2d(4)),
                          "D": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))})
    normalise_per_image(nets, trained_at_batch_1=True)
    x = torch.randn(2, 3, 8, 8) * 5 + 3
    before = nets["G"].eval()(x)
    sync_batch_norm(nets, torch.device("cuda"))  # converting needs no GPU; outside training it runs on the CPU
    assert isinstance(nets["G"][1], nn.SyncBatchNorm) and nets["G"][1].per_image
    assert type(nets["D"][1]) is nn.SyncBatchNorm  # torch's own layer stays torch's
    assert torch.allclose(nets["G"].eval()(x), before, atol=1e-6)
    normalise_per_image(nets, trained_at_batch_1=False)  # a resume at a larger batch: the running averages
    assert not torch.allclose(nets["G"](x), before, atol=1e-2)


def test_a_skipped_image_is_warned_once_not_by_every_process(tmp_path, layouts):
    """With data.skip_bad, each of the N processes printed the same warning for every unreadable file."""
    data = layouts.unpaired(tmp_path / "data", n=8, size=(20, 20))
    (data / "trainA" / "empty.png").write_bytes(b"")
    two = pixmorph_cli(["--data", str(data), "--load-size", "20", "--crop-size", "16", "--workers", "0", "--device",
                        "cpu", "--batch-size", "1", "--steps", "1", "--devices", "2", "--set", "data.skip_bad=true",
                        "--out", str(tmp_path / "run")])
    assert two.returncode == 0, two.stderr[-3000:]
    warned = [line for line in two.stderr.splitlines() if line.startswith("warning: ") and "empty.png" in line]
    assert warned == [f"warning: {data / 'trainA' / 'empty.png'}: empty file"], two.stderr[-3000:]


def test_an_unreadable_image_in_one_process_is_named_by_that_process(tmp_path, monkeypatch, capsys):
    """A file that passes the check and fails when decoded, in process 1's shard: process 1 names the file
    (rank 0, the one that prints errors, only saw a closed connection and a traceback came out), process 0
    says that another process stopped; no traceback. Alone, the error starts a line, not the progress bar's."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("trainA", "trainB"):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(8 if split == "trainB" else 7):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "data" / split / f"{i}.png")
    bad = tmp_path / "data" / "trainA" / "z.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(bad)
    damage_png_pixels(bad)
    common = ["--data", str(tmp_path / "data"), "--load-size", "32", "--crop-size", "32", "--workers", "0",
              "--device", "cpu", "--batch-size", "1", "--steps", "8", "--seed", "1"]
    two = pixmorph_cli(common + ["--out", str(tmp_path / "two"), "--devices", "2"])
    assert two.returncode == 1 and "Traceback" not in two.stderr, two.stderr[-3000:]
    lines = [line for line in two.stderr.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert any("z.png: truncated or corrupt image" in line and "(process 1 of 2)" in line for line in lines), lines
    assert any(line.startswith("error: process 0: another process of this run stopped") for line in lines), lines
    code, _, err = run_main(monkeypatch, capsys, "train", "cyclegan", *common, "--out", tmp_path / "one", *TINY)
    assert code == 1 and "Traceback" not in err
    assert any(line.startswith("error: ") and "z.png" in line for line in err.replace("\r", "\n").splitlines())


def test_every_process_but_the_first_draws_its_own_noise():
    """Two-step's z, DeepSIM's warps and dropout masks come from the global RNG, which every process seeds
    alike (so the weights start alike): the others then reseed from (seed, rank, step), the first keeps the
    one-process stream."""
    import random

    from pixmorph.train.distributed import World, seed_process

    def draws(rank: int, step: int) -> tuple:
        torch.manual_seed(0)
        random.seed(0)
        seed_process(World(rank=rank, size=3), seed=0, step=step)
        return tuple(torch.rand(4).tolist()) + (random.random(),)

    torch.manual_seed(0)
    random.seed(0)
    alone = tuple(torch.rand(4).tolist()) + (random.random(),)
    assert draws(0, 5) == alone  # the first process: a one-process run's stream
    assert len({draws(0, 5), draws(1, 5), draws(2, 5), draws(1, 6)}) == 4
    assert draws(1, 5) == draws(1, 5)  # a function of (seed, rank, step): a resume at step 5 draws the same


def test_two_processes_with_noise_in_the_step_resume_exactly(tmp_path, layouts):
    """Dropout draws from each process's own stream, and each process keeps its own history pool of fakes;
    stopped at step 2 and resumed, a two-process run ends bit-identical to one that ran straight through
    (the other process's noise follows from the step, its pool comes back from the checkpoint)."""
    data = layouts.unpaired(tmp_path / "data", n=8, size=(20, 20))
    common = ["--data", str(data), "--load-size", "20", "--crop-size", "16", "--workers", "0", "--device", "cpu",
              "--precision", "fp32", "--batch-size", "2", "--set", "model.dropout=0.5", "--set", "train.threads=1"]
    pools = [*TINY, "--set", "model.pool_size=4"]  # full after step 2: resumed, the pools decide D's inputs
    pixmorph_train(common + ["--out", str(tmp_path / "straight"), "--steps", "4"], processes=2, tiny=pools)
    pixmorph_train(common + ["--out", str(tmp_path / "parts"), "--steps", "2"], processes=2, tiny=pools)
    pixmorph_train(common + ["--out", str(tmp_path / "parts"), "--steps", "4", "--resume"], processes=2, tiny=pools)
    a, b = (load_file(str(tmp_path / run / "checkpoint" / "weights.safetensors")) for run in ("straight", "parts"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_another_process_stopped_by_the_first_ones_error_does_not_say_it_as_its_own(capsys):
    """Process 1, stopped by process 0's full disk (failing_together raises that error there, ``raised_by`` 0),
    printed it as its own, `(process 1 of 2)`, beside the line process 0 prints; its own errors it still says."""
    from tqdm import tqdm

    from pixmorph.train.distributed import World
    from pixmorph.train.terminal import errors_on_their_own_line

    def said(error: OSError) -> str:
        with pytest.raises(OSError), errors_on_their_own_line(World(rank=1, size=2), tqdm(disable=True)):
            raise error
        return capsys.readouterr().err

    of_process_0 = OSError("run/stats.jsonl: could not write it (No space left on device)")
    of_process_0.raised_by = 0
    assert said(of_process_0) == ""
    assert said(OSError("data/z.jpg: truncated")) == "\nerror: data/z.jpg: truncated (process 1 of 2)\n"


def test_a_mistake_in_the_options_is_said_once_under_torchrun(tmp_path):
    """A usage error (here a --resume of a folder that holds no run, read before the processes join) was printed
    by every process of `--devices N`; now by rank 0 alone, as pixmorph's other errors (their line: test_user_errors).
    Started as torchrun starts process 1, without torchrun: the error comes before any process joins another."""
    done = subprocess.run([sys.executable, "-m", "pixmorph", "train", "cyclegan", "--out", str(tmp_path / "none"),
                           "--resume"], capture_output=True, text=True, timeout=120,
                          env={**cli_env(), "RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"})
    assert (done.returncode, done.stderr) == (2, ""), done.stderr[-2000:]


def test_settings_that_differ_by_an_option_given_as_null_on_one_process_only_are_named():
    """An option given as null on one process and not at all on another (model.*, data.options.*: free-form
    sections) made the settings differ, but the search for the first differing one compared null with absent as
    equal and found none: a StopIteration traceback instead of the line."""
    from pixmorph.train import loop

    world = distributed.World(rank=0, size=2)
    mine = RunConfig.from_dict({"method": "cyclegan", "data": {"options": {"max_side": None}}, "train": {"out": "/a"}})
    theirs = RunConfig.from_dict({"method": "cyclegan", "train": {"out": "/a"}})
    for first, other in ((mine, theirs), (theirs, mine)):
        values = [loop._settings(first), loop._settings(other)]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(distributed, "all_values", lambda value, world: values)
            with pytest.raises(ValueError, match=r"^/a: the processes were given different settings "
                                                 r"\(data.options.max_side: "):
                loop._refuse_other_settings(first, world)


def test_how_to_go_on_does_not_bind_the_run_to_its_number_of_processes():
    """The stop message said to resume "on 2 processes again", though a run goes on with any number (tested above)."""
    from pixmorph.train.loop import _go_on_with

    cfg = RunConfig.from_dict({"method": "cyclegan", "train": {"out": "runs/x"}})
    said = _go_on_with(cfg, distributed.World(rank=0, size=2))
    assert "`pixmorph train cyclegan --out runs/x --resume` with torchrun or --devices 2 as now (or another number of " \
           "processes" in said and "again" not in said
    assert _go_on_with(cfg, distributed.World()).endswith("--resume`")

"""The one training loop. It owns devices, precision, data loading, schedules, checkpoints,
logging and the progress bar; the method only computes losses for a batch.

Under ``torchrun`` it trains data-parallel (``train/distributed.py``): each process takes its shard
of every global batch, ``update`` averages the gradients, and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

import pixmorph
from pixmorph.config import RunConfig, build_method_config, save_json
from pixmorph.data.layouts import build_dataset
from pixmorph.data.resolve import resolve_data
from pixmorph.nn.norm import normalise_per_image
from pixmorph.methods import Method, get_method
from pixmorph.train import checkpoint as ckpt
from pixmorph.train import distributed, set_aside, speed as speedups
from pixmorph.train.cpu_share import CpuShare
from pixmorph.train.report import StatsLog, save_samples
from pixmorph.train.run_lock import LOCK, RunFolderInUse, let_go_in_child, run_lock
from pixmorph.train.sampler import ClassBalancedSampler, SeededSampler
from pixmorph.train.schedules import build_schedulers, plan, schedule_position

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingDiverged(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here: use the CPU (--device cpu; "
                         f"device=\"cpu\" from Python)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
                         f"cuda:{torch.cuda.device_count() - 1}")
    return device


def build_method(cfg: RunConfig) -> Method:
    method_cls = get_method(cfg.method)
    return method_cls(build_method_config(method_cls.Config, cfg.model))


def checkpoint_config(cfg: RunConfig, step: int, image_size: tuple[int, int] | None = None,
                      batch_norm_per_image: bool | None = None) -> dict:
    """What ``checkpoint/config.json`` holds; ``image_size``: (width, height) of a dataset of one fixed size
    (DeepSIM's image), which the square ``data.load_size``/``crop_size`` cannot say; ``batch_norm_per_image``:
    whether batch norm translates each image by its own statistics (a run that started at a global batch of 1)."""
    config = {"pixmorph_version": pixmorph.__version__, "method": cfg.method, "step": step, "run": cfg.to_dict()}
    if image_size is not None:
        config["image_size"] = list(image_size)
    if batch_norm_per_image is not None:
        config["batch_norm_per_image"] = batch_norm_per_image
    return config


def train(cfg: RunConfig, progress: bool = True,
          on_start: Callable[[Dataset], list[Path]] | None = None) -> Path:
    """Train ``cfg.method`` on ``cfg.data``; returns the run folder (its ``checkpoint/`` is the latest).
    Ctrl-C or SIGTERM saves a checkpoint at the end of the step, then raises ``KeyboardInterrupt``. A second
    training in the same folder meanwhile is refused (train/run_lock.py). ``on_start`` (on the main process)
    writes the caller's own files into the run folder once the run is accepted: under the lock, after the
    config is checked and a start over without ``overwrite`` is refused, so a refused run changes no file; it
    is given the training dataset, as read before the last run's outputs were set aside, and returns the
    files. A run folder this call created is removed again when the run fails before its first checkpoint and
    holds nothing else (a refused start leaves no folder behind)."""
    run_dir, main = Path(cfg.train.out), os.environ.get("RANK", "0") == "0"
    for folder in (run_dir, *run_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder}: a file, not a folder: give --out (train.out) a folder for the run")
    new = _first_missing(run_dir)
    written: list[Path] = []

    def start(dataset: Dataset) -> None:
        if on_start is not None:
            written.extend(on_start(dataset))

    try:
        with run_lock(run_dir, take=main):
            try:
                return _train(cfg, progress, start)
            except BaseException:
                if main:  # a start over that ends before its first save: the last run's outputs come back
                    set_aside.restore(run_dir)
                raise
    except RunFolderInUse:
        raise  # another training holds the folder, and what is in it (a set-aside, a new folder) is its own
    except BaseException as error:
        if main and new is not None and not (run_dir / "checkpoint").exists():
            for f in written:
                f.unlink(missing_ok=True)
            _remove_if_empty(run_dir, new)
        if isinstance(error, KeyboardInterrupt) and not isinstance(error, StoppedAndSaved):
            raise TrainingAborted(_aborted_state(run_dir, cfg.method)) from None
        raise


def _aborted_state(run_dir: Path, method: str) -> str:
    """What a run folder holds after training stopped without saving: its last intact checkpoint, or none."""
    try:
        folder = ckpt.find_checkpoint(run_dir)
        step = ckpt.read_config(folder)["step"]
    except (ckpt.CheckpointError, KeyError):
        return (f"no checkpoint was saved in {run_dir}: there is nothing to --resume; run the command again to "
                f"start over")
    return (f"the last checkpoint, {folder} (step {step}), is intact: continue from it with "
            f"`pixmorph train {method} --out {run_dir} --resume`")


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder`` and its parents that does not exist yet (None: ``folder`` exists)."""
    missing = None
    for f in (folder, *folder.parents):
        if f.exists():
            break
        missing = f
    return missing


def _remove_if_empty(folder: Path, top: Path) -> None:
    """Remove ``folder`` and its parents up to ``top`` if ``folder`` holds no file at any depth but the
    ``config.json`` a run writes before its first step and the run's lock file (only empty subfolders)."""
    leftovers = {folder / "config.json", folder / LOCK}
    if not folder.is_dir() or any(p.is_file() and p not in leftovers for p in folder.rglob("*")):
        return
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if parent == top.parent or not parent.is_dir() or any(parent.iterdir()):
            break
        parent.rmdir()


def _balanced_batches(dataset, method: Method, cfg: RunConfig) -> bool:
    """Whether the classes take turns in the stream of training images (data.balance_classes, else the
    method's choice) instead of images drawn uniformly."""
    if cfg.data.balance_classes is None:
        return method.balanced_batches and hasattr(dataset, "labels")
    if cfg.data.balance_classes and not hasattr(dataset, "labels"):
        raise ValueError(f"data.balance_classes=true: {cfg.method}'s data ({method.data_layout} layout) has no "
                         f"class labels to balance; leave it unset")
    return cfg.data.balance_classes


def _train(cfg: RunConfig, progress: bool, on_start: Callable[[Dataset], None] | None = None) -> Path:
    t = cfg.train
    if t.precision not in (*PRECISIONS, "auto"):
        raise ValueError(f"unknown precision {t.precision!r}: use fp32, bf16, fp16 or auto")
    if t.resume:  # before anything is built: another method's run would fail later, on its weights
        ckpt.check_resumed_method(t.out, cfg.method)
    world, device = distributed.init(resolve_device(t.device))
    precision = resolve_precision(t.precision, device)
    speed = speedups.resolve(t, device, precision)
    speedups.apply_to_backend(speed, t, device)
    cpu_share = CpuShare() if device.type == "cpu" and t.threads is None else None
    data_root, cfg.data = resolve_data(cfg.data, get_method(cfg.method).reference_sizes)
    if get_method(cfg.method).data_layout == "single":  # trains at its image's size: the square sizes do not apply
        cfg.data = dataclasses.replace(cfg.data, load_size=None, crop_size=None)
    run_dir = Path(t.out)
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(t.seed)
    method = build_method(cfg)
    cfg.model = {k: v for k, v in method.cfg.__dict__.items()}  # save the resolved method config
    dataset = build_dataset(method.data_layout, data_root, cfg.data)
    _check_fits_the_networks(dataset, method, data_root, cfg.data.crop_size)
    balanced = _balanced_batches(dataset, method, cfg)
    if t.batch_size < 1 or (t.max_steps is not None and t.max_steps < 0) or min(t.epochs, t.epochs_decay) < 0:
        raise ValueError(f"train.batch_size={t.batch_size}, train.max_steps={t.max_steps}, train.epochs={t.epochs}, "
                         f"train.epochs_decay={t.epochs_decay}: need batch_size >= 1, the others >= 0")
    global_batch = t.batch_size * world.size  # train.batch_size is per process
    if len(dataset) < global_batch:
        per_process = f" ({t.batch_size} per process)" if world.distributed else ""
        raise ValueError(f"{data_root}: {len(dataset)} training images, fewer than the batch size {global_batch}"
                         f"{per_process}: give --batch-size {max(1, len(dataset) // world.size)} or less")
    resumed = _read_checkpoint(run_dir, world) if t.resume else None
    state = resumed[1] if resumed else {}
    step = int(state.get("step", 0))
    images_seen = int(state.get("images_seen", step * global_batch))  # of the global stream the sampler continues
    if resumed and cfg.data.balance_classes is None:  # the method's choice: the stream the run was drawing
        balanced = bool(state.get("balanced_classes", False))  # (saved before two-step balanced: uniform)
    schedule_batch = int(state.get("schedule_batch", state.get("global_batch", global_batch)))
    schedule = plan(len(dataset), t.epochs, t.epochs_decay, t.max_steps, step, images_seen, global_batch,
                    schedule_batch)
    last_step = schedule.last_step
    if t.max_steps is not None and t.max_steps > schedule.end > step and world.is_main:
        print(f"train.max_steps={t.max_steps} (--steps) is past the end of the schedule: it ends at step "
              f"{schedule.end} (train.epochs={t.epochs:g} + epochs_decay={t.epochs_decay:g} of "
              f"{schedule.steps_per_epoch} steps), and training stops there; for more steps give more "
              f"--epochs / --epochs-decay")
    if last_step == 0 and not t.resume:
        raise ValueError(f"nothing to train: train.epochs={t.epochs} + epochs_decay={t.epochs_decay} of "
                         f"{schedule.steps_per_epoch} steps, max_steps={t.max_steps}: the schedule has no step")
    # Batch norm of a run that started at a global batch of 1 normalised every image by its own statistics:
    # it translates that way (the sample grids too), also after a resume at another batch.
    norm_per_image = schedule_batch == 1
    normalise_per_image(method.nets, norm_per_image)
    position = partial(schedule_position, step0=step, images0=images_seen, batch=global_batch, unit=schedule_batch)
    schedulers = build_schedulers(method.optimizers, t.lr_policy, schedule.constant, schedule.decay, position)
    scalers = {name: torch.amp.GradScaler(device.type, enabled=precision == "fp16") for name in method.optimizers}

    method.nets.to(device).train()
    if world.distributed:
        distributed.sync_batch_norm(method.nets, device)
        distributed.broadcast_weights(method.nets)
    if t.resume:
        if resumed:
            _restore(*resumed, method, schedulers, scalers, world)
        if state.get("global_batch", global_batch) != global_batch and world.is_main:
            print(f"resumed with a global batch of {global_batch} (it was {state['global_batch']}): the data and the "
                  f"learning-rate schedule go on from image {images_seen}; steps from here count {global_batch} "
                  f"images, so the schedule ends at step {schedule.end}")
        if step >= last_step:
            if world.is_main:
                print(f"{run_dir}: already at step {step} of {last_step}: nothing to train (raise --steps or the epochs)")
            if world.distributed:
                distributed.shutdown()
            return run_dir
    elif not t.overwrite:
        ckpt.refuse_to_start_over(run_dir)
    # Starting over beside a checkpoint, the last run's logs and samples wait aside until the first save
    # replaces its checkpoint (train/set_aside.py); without one they go.
    replacing = not t.resume and ckpt.holds_checkpoint(run_dir)
    if world.is_main:
        if t.resume:
            set_aside.restore(run_dir)  # a start over killed before its first save: the run resumed is the last one
        elif replacing:
            set_aside.set_aside(run_dir)
        else:
            for old_output in ("stats.jsonl", "samples", "tensorboard"):  # not primitive/: it may hold this run's input
                path = run_dir / old_output
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if on_start is not None and world.is_main:
        on_start(dataset)
    speedups.apply_to_nets(method.nets, speed)
    speedups.apply_to_optimizers(method.optimizers, speed)  # after the resume: saved groups carry their own flag
    # Beside a checkpoint (starting over, or resumed with other settings) its config.json stays with it until the
    # first save replaces both, so a run that fails first leaves the old one resumable as it was.
    config_pending = ckpt.holds_checkpoint(run_dir)
    if world.is_main and not config_pending:
        save_json(cfg.to_dict(), run_dir / "config.json")

    shard = (world.rank, world.size, t.batch_size)
    sampler = (ClassBalancedSampler(dataset.labels, t.seed, start=images_seen, shard=shard) if balanced
               else SeededSampler(len(dataset), t.seed, start=images_seen, shard=shard))
    loader = DataLoader(dataset, batch_size=t.batch_size, drop_last=True, num_workers=cfg.data.num_workers,
                        sampler=sampler,
                        pin_memory=speed.pin_memory, persistent_workers=cfg.data.num_workers > 0,
                        worker_init_fn=_leave_signals_to_the_loop,
                        # its own generator: creating the iterator must not draw from the global RNG
                        generator=torch.Generator().manual_seed(t.seed))
    sample_batch = _fixed_batch(dataset, device)
    stats = StatsLog(run_dir, t.tensorboard, resumed_at=step if t.resume else None) if world.is_main else None
    autocast_dtype = PRECISIONS[precision]
    update = _make_update(method, scalers, world)

    def save(at_step: int) -> None:
        nonlocal replacing
        _check_finite(method, sums, steps_since_log, at_step, run_dir, world)  # never replace a good checkpoint with NaNs
        # each process's own method state (CycleGAN's history pools hold that process's fakes), for its resume
        method_states = distributed.gather_to_main(method.extra_state(), world)
        if not world.is_main:
            replacing = False
            distributed.barrier(world)  # wait until rank 0 has written it
            return
        state = {"step": at_step, "images_seen": images_seen, "global_batch": global_batch,
                 "schedule_batch": schedule_batch, "balanced_classes": balanced,
                 "rng": ckpt.rng_state(), "method": method_states[0],
                 "optimizers": {k: o.state_dict() for k, o in method.optimizers.items()},
                 "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
                 "scalers": {k: s.state_dict() for k, s in scalers.items()}}
        if world.distributed:
            state["method_by_rank"] = method_states
        config = checkpoint_config(cfg, at_step, getattr(dataset, "image_size", None), norm_per_image)
        ckpt.save_checkpoint(run_dir / "checkpoint", method.nets, config, state)
        if config_pending:
            save_json(cfg.to_dict(), run_dir / "config.json")
        if replacing:
            set_aside.discard(run_dir)
            replacing = False
        distributed.barrier(world)

    sums: dict[str, torch.Tensor] = {}
    seen_since_log, steps_since_log, t_log, t_start = 0, 0, time.perf_counter(), time.perf_counter()
    t_saved = t_start
    if world.distributed and world.is_main:
        print(f"{world.size} processes ({distributed.backend()}), batch {t.batch_size} each: global batch {global_batch}",
              flush=True)
    bar = tqdm(total=None if t.time_budget else last_step, initial=step,  # a budget's end: estimated each step
               disable=not (progress and world.is_main), unit="step", dynamic_ncols=True)
    first_step = step
    if t.time_budget and world.is_main and progress:
        tqdm.write(f"training for {t.time_budget:.0f} s or {last_step} steps, whichever ends first")
    out_of_time = stopped = False
    with _stop_requests(world) as stop_requested, _warnings_above(bar), _batches(loader) as batches, \
            _errors_on_their_own_line(world, bar):
        if cpu_share and (message := cpu_share.adjust(force=True)) and world.is_main:
            tqdm.write(message)
        while step < last_step:
            batch = _to_device(_next_batch(batches), device, speed.memory_format)
            distributed.seed_process(world, t.seed, step)  # the other processes' noise: their own, and resumable
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                losses = method.train_step(batch, update)
            with warnings.catch_warnings():
                # Every schedule follows the global step, also for an optimizer that did not step this time
                # (a two-step stage that trains only some networks, an fp16 step skipped on overflow).
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
                for s in schedulers.values():
                    s.step()
            step += 1
            seen_since_log += global_batch
            images_seen += global_batch
            steps_since_log += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.float()
            if t.time_budget:  # the bar ends where the budget or the schedule ends, whichever comes first
                spent = time.perf_counter() - t_start
                rate = (step - first_step) / max(spent, 1e-9)
                bar.total = min(last_step, step + int(rate * max(t.time_budget - spent, 0)))
            bar.update(1)

            out_of_time = t.time_budget is not None and time.perf_counter() - t_start >= t.time_budget
            finishing = step == last_step or distributed.any_rank(out_of_time or stop_requested(), world)
            stopped = finishing and distributed.any_rank(stop_requested(), world)
            if step % t.log_every == 0 or finishing:
                elapsed = time.perf_counter() - t_log
                means = _means(sums, steps_since_log, step, run_dir, world)
                means["images_per_s"] = seen_since_log / max(elapsed, 1e-9)
                if stats:
                    stats.write(step, means)
                bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                sums, seen_since_log, t_log = {}, 0, time.perf_counter()
                steps_since_log = 0
            if world.is_main and (step % t.sample_every == 0 or finishing):
                _write_samples(method, sample_batch, run_dir, step)
            due = step % t.checkpoint_every == 0 or finishing
            if not due and t.checkpoint_minutes and step % t.log_every == 0:  # the same steps on every process
                due = distributed.any_rank(time.perf_counter() - t_saved >= 60 * t.checkpoint_minutes, world)
            if due and replacing and stopped:
                break  # a start over stopped before its first save: the last run stays as it was (see train())
            if due:
                save(step)
                t_saved = time.perf_counter()
            if finishing:
                break
            if cpu_share and (message := cpu_share.adjust()) and world.is_main:
                tqdm.write(message)
    bar.close()
    if cpu_share:
        cpu_share.restore()
    if stats:
        stats.close()
    unsaved = stopped and replacing
    if stop_requested() and world.is_main and not unsaved:
        print(f"stopped at step {step}; checkpoint saved in {run_dir / 'checkpoint'}: continue with "
              f"`pixmorph train {cfg.method} --out {run_dir} --resume`{_processes_hint(world)}")
    elif out_of_time and step < last_step and world.is_main and not unsaved:
        decaying = " (the learning rate has not decayed to its end)" if schedule.decay and t.lr_policy != "constant" \
            else ""
        print(f"time budget of {t.time_budget:.0f} s reached at step {step} of {last_step}: the schedule did not "
              f"finish{decaying}; checkpoint saved in {run_dir / 'checkpoint'}: continue with "
              f"`pixmorph train {cfg.method} --out {run_dir} --resume`{_processes_hint(world)}")
    if world.distributed:
        distributed.shutdown()
    if unsaved:
        raise KeyboardInterrupt  # train() says what the folder holds
    if stop_requested():  # saved cleanly; the caller (a script, the shell: exit code 130) still sees the Ctrl-C
        raise StoppedAndSaved
    return run_dir


def _processes_hint(world: distributed.World) -> str:
    """How a multi-process run goes on as it ran (it may go on with any number: its schedule is in images)."""
    return f" on {world.size} processes again (torchrun, or --devices {world.size})" if world.distributed else ""


def _check_fits_the_networks(dataset, method: Method, data_root: Path, crop: int | None) -> None:
    """Training images the generators cannot take, said before the first step fails inside a network: a
    dataset of one fixed size (DeepSIM's image) below their least input, or a square crop that is not a
    multiple of their stride (a ResNet's 4, a U-Net's 2^num_downs) or below their least input."""
    generators = method.translators().values()
    need = max((getattr(g, "min_size", 1) for g in generators), default=1)
    size = getattr(dataset, "image_size", None)
    if size and min(size) < need:
        source = getattr(dataset, "source_size", size)  # before --max-side scaled it down
        larger = "a larger --max-side" if min(source) >= need else "a larger image"
        raise ValueError(f"{data_root}: {source[0]}x{source[1]}, trained at {size[0]}x{size[1]}, smaller than the "
                         f"{need}x{need} the networks need: use {larger}, or a generator with fewer downsamplings")
    if size or crop:
        method.check_training_size(*(size or (crop, crop)))
    stride = math.lcm(*(getattr(g, "stride", 1) for g in generators)) if generators else 1
    # (below one stride a method may know better what to change: pix2pix names model.num_downs)
    if size is None and crop and crop >= stride and (crop % stride or crop < need):
        fits = max(need, round(crop / stride) * stride)
        raise ValueError(f"data.crop_size={crop}: the {method.name} generators take sides that are multiples of "
                         f"{stride} and at least {need}: use --crop-size {fits} (or a generator with fewer "
                         f"downsamplings)")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where it is faster (CUDA with bf16, a CPU with AMX or AVX512-BF16), else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if speedups.bf16_is_fast(device) else "fp32"


def _to_device(batch: dict, device: torch.device, memory_format: torch.memory_format) -> dict:
    """Copy a batch to the device without waiting (pinned on CUDA); images in the networks' layout."""
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        out[k] = v.contiguous(memory_format=memory_format) if v.dim() == 4 else v
    return out


def _next_batch(batches):
    """The next batch; an error raised in a loader worker comes back wrapped in the worker's traceback,
    so it is raised again with its own one-line message."""
    try:
        return next(batches)
    except Exception as e:
        text = str(e)
        if "Original Traceback" not in text:
            raise
        last = [line for line in text.splitlines() if line.strip()][-1]
        try:
            error = type(e)(last.split(": ", 1)[-1])
        except Exception:
            raise e from None
        raise error from None


def _make_update(method: Method, scalers: dict[str, torch.amp.GradScaler],
                 world: distributed.World = distributed.World()):
    def update(loss: torch.Tensor, name: str) -> None:
        optimizer, scaler = method.optimizers[name], scalers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if world.distributed:
            distributed.average_gradients(optimizer, world)
        scaler.step(optimizer)
        scaler.update()
        # The step runs inside the step's autocast region and changed the weights in place: the bf16/fp16
        # copies autocast cached of them are stale, and a network used again after its own update in the
        # same step (pix2pix, FUNIT and two-step run D's update before G's loss through D) would see them.
        torch.clear_autocast_cache()

    return update


def _means(sums: dict[str, torch.Tensor], count: int, step: int, run_dir: Path,
           world: distributed.World = distributed.World()) -> dict[str, float]:
    """Mean losses since the last log over all processes (one host sync per interval, not per step);
    stops on NaN/inf."""
    if not sums:
        return {}
    names = list(sums)
    values = distributed.average_scalars(torch.stack([sums[k] for k in names]), world).tolist()
    for k, v in zip(names, values):
        if not math.isfinite(v):
            raise TrainingDiverged(f"loss {k} became {v} by step {step}; {_last_good(run_dir)}")
    return {k: v / max(count, 1) for k, v in zip(names, values)}


def _check_finite(method: Method, sums: dict, count: int, step: int, run_dir: Path,
                  world: distributed.World = distributed.World()) -> None:
    _means(sums, count, step, run_dir, world)
    for name, p in method.nets.named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingDiverged(f"weight {name} became NaN/inf by step {step}; {_last_good(run_dir)}")


def _last_good(run_dir: Path) -> str:
    advice = "try a lower learning rate, or train.precision=fp32"
    try:
        return f"the last good checkpoint is in {ckpt.find_checkpoint(run_dir)} ({advice})"
    except ckpt.CheckpointError:
        return f"no checkpoint was saved before ({advice})"


def _read_checkpoint(run_dir: Path, world: distributed.World) -> tuple[Path, dict] | None:
    """The checkpoint folder of a run and its training state; None when the run has no checkpoint yet."""
    try:
        folder = ckpt.find_checkpoint(run_dir)
    except ckpt.CheckpointError:
        if world.is_main:
            print(f"no checkpoint in {run_dir} yet: starting from step 0")
        return None
    return folder, ckpt.load_state(folder)


def _restore(folder: Path, state: dict, method: Method, schedulers: dict, scalers: dict,
             world: distributed.World = distributed.World()) -> None:
    """Restore everything a checkpoint holds: weights, optimizers, schedules, scalers, the method's state, RNG."""
    try:
        ckpt.load_weights(folder, method.nets)
    except ckpt.CheckpointError as error:
        raise _changed_network(folder, method) or error from None
    changed = []
    for name, opt in method.optimizers.items():
        # the moments come from the checkpoint; the settings from this run's config (--set model.lr=... on a
        # resume changes the rate from here on: load_state_dict alone would put the saved one back)
        chosen = [{k: g[k] for k in OPTIMIZER_SETTINGS if k in g} for g in opt.param_groups]
        opt.load_state_dict(state["optimizers"][name])
        for group, settings in zip(opt.param_groups, chosen):
            for key, value in settings.items():
                if group.get(key) != value:
                    changed.append(f"{name} {OPTIMIZER_SETTINGS[key]} {group.get(key)} -> {value}")
                    group[key] = value
    for name, s in schedulers.items():
        s.load_state_dict(state["schedulers"][name])
        s.base_lrs = [g["initial_lr"] for g in s.optimizer.param_groups]
        for group, base, factor in zip(s.optimizer.param_groups, s.base_lrs, s.lr_lambdas):
            group["lr"] = base * factor(s.last_epoch)
        s._last_lr = [g["lr"] for g in s.optimizer.param_groups]
    for name, s in scalers.items():
        s.load_state_dict(state["scalers"][name])
    by_rank = state.get("method_by_rank") or []  # a multi-process run's: each process its own (first: a new one)
    method.load_extra_state(by_rank[world.rank] if world.rank < len(by_rank) else state["method"])
    ckpt.set_rng_state(state["rng"])
    if world.is_main:
        print(f"resumed from {folder} at step {state['step']}"
              + (f", with changed optimizer settings: {', '.join(dict.fromkeys(changed))}" if changed else ""))


# The optimizer settings a config decides (name in the group -> name in a message; initial_lr is the learning
# rate the schedule scales).
OPTIMIZER_SETTINGS = {"initial_lr": "lr", "betas": "betas", "weight_decay": "weight_decay", "eps": "eps",
                      "alpha": "alpha", "momentum": "momentum"}


def _changed_network(folder: Path, method: Method) -> ckpt.CheckpointError | None:
    """When a resumed run's weights do not fit: the model settings that differ from the checkpoint's, named
    (a weight's shape says little to someone who passed --set model.ngf=32)."""
    try:
        saved = (ckpt.read_config(folder).get("run") or {}).get("model") or {}
    except (ckpt.CheckpointError, OSError, ValueError):
        return None
    now = method.cfg.__dict__
    changed = [f"model.{k}={now[k]!r} (trained with {v!r})" for k, v in saved.items() if k in now and now[k] != v]
    if not changed:
        return None
    return ckpt.CheckpointError(f"{folder}: the network is not the one this run trained: {', '.join(changed)}; a run "
                                f"keeps its network (drop those settings, or start a new run with another --out)")


def _fixed_batch(dataset, device: torch.device, n: int = 4) -> dict[str, torch.Tensor]:
    """The same few samples for every grid; drawn with fixed seeds so no training randomness is used."""
    items = [dataset[(i % len(dataset), 1234 + i)] for i in range(min(n, len(dataset)))]
    return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}


def _write_samples(method: Method, batch: dict, run_dir: Path, step: int) -> None:
    method.nets.eval()
    rows = [row for i in range(next(iter(batch.values())).shape[0])
            for row in method.visuals({k: v[i : i + 1] for k, v in batch.items()})]
    method.nets.train()
    save_samples(run_dir, step, rows, method.visual_columns())


@contextmanager
def _warnings_above(bar: tqdm) -> Iterator[None]:
    """While ``bar`` is drawn, each warning is one line written above it (``tqdm.write``), not glued into the
    bar's line (DeepSIM's perceptual network changed on resume, PyTorch's own warnings)."""
    if bar.disable:
        yield
        return
    shown = warnings.showwarning

    def write(message, category, filename, lineno, file=None, line=None) -> None:
        tqdm.write(f"warning: {message}", file=file or sys.stderr)

    warnings.showwarning = write
    try:
        yield
    finally:
        warnings.showwarning = shown


class StoppedAndSaved(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training, and the checkpoint of the last step is saved."""


class TrainingAborted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training at once (a second one, or one before the steps began), without
    saving; the message says what the run folder holds and how to go on."""


@contextmanager
def _batches(loader: DataLoader) -> Iterator:
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


def _leave_signals_to_the_loop(worker_id: int) -> None:
    """In a data-loading worker: ignore Ctrl-C and SIGTERM. A terminal's Ctrl-C, ``timeout`` and a SLURM
    cancellation signal the whole process group; a worker that died of it took the run down before the
    loop could save, and one that inherited the loop's handler said "stopping" again. The loop stops its
    workers when it has saved. It also lets go of the run folder's lock, which it inherited (train/run_lock.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    let_go_in_child()


@contextmanager
def _errors_on_their_own_line(world: distributed.World, bar: tqdm) -> Iterator[None]:
    """An error in the steps closes the progress bar first, so that the CLI's one line starts a line of its
    own. The CLI prints an error once, on rank 0 (every process has the errors of its config and data); an
    error in the steps can be one process's own (an unreadable image in its shard), which rank 0 only sees
    as a closed connection: that process says it."""
    from pixmorph.errors import USER_ERRORS  # (errors imports this module)

    try:
        yield
    except USER_ERRORS as error:
        bar.close()
        if world.distributed and not world.is_main:  # on a new line: rank 0's bar may be on the same terminal
            print(f"\nerror: {error} (process {world.rank} of {world.size})", file=sys.stderr, flush=True)
        raise
    except BaseException:
        bar.close()
        raise


@contextmanager
def _stop_requests(world: distributed.World = distributed.World()):
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

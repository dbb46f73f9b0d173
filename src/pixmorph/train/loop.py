"""The one training loop. It owns devices, precision, data loading, schedules, checkpoints,
logging and the progress bar; the method only computes losses for a batch.

Under ``torchrun`` it trains data-parallel (``train/distributed.py``): each process takes its shard
of every global batch, ``update`` averages the gradients, and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

import pixmorph
from pixmorph.config import RunConfig, TrainConfig, build_method_config, save_json
from pixmorph.data.folders import SKIP_BAD_HINT
from pixmorph.data.layouts import build_dataset
from pixmorph.data.resolve import resolve_data
from pixmorph.images import ImageReadError
from pixmorph.nn.norm import normalise_per_image
from pixmorph.methods import Method, get_method
from pixmorph.train import checkpoint as ckpt
from pixmorph.train import distributed, resume, set_aside, speed as speedups, stopping, terminal
from pixmorph.train.cpu_share import CpuShare
from pixmorph.train.foreign_files import refuse_another_programs_files
from pixmorph.train.report import StatsLog, save_samples
from pixmorph.train.run_lock import LOCK, RunFolderInUse, run_lock
from pixmorph.train.sampler import ClassBalancedSampler, SeededSampler
from pixmorph.train.schedules import Plan, build_schedulers, plan, schedule_position

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
RUN_LOGS = ("stats.jsonl", "samples", "tensorboard")  # a run's logs and sample grids, of no use without its checkpoint


class TrainingDiverged(RuntimeError):
    pass


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is a GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (an Apple GPU,
    never chosen by ``auto``: no Apple machine tests it here)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):  # xpu, meta...: a traceback deep in a network
        raise ValueError(f"device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but Apple's Metal (MPS) is not available here: use the CPU "
                         f"(--device cpu; device=\"cpu\" from Python)")
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


def complete_config(cfg: RunConfig, dry_run: bool = False) -> RunConfig:
    """``cfg`` as ``pixmorph train`` runs it: what its method reads from its data filled in (a method's
    ``complete_run_config``: two-step's classes, channels, image size and the last step of its stage; then a new
    config is returned) and the model section checked and given every field. A ``dry_run`` writes nothing (a
    built-in task is not prepared)."""
    method_cls = get_method(cfg.method)
    if hasattr(method_cls, "complete_run_config"):
        cfg = RunConfig.from_dict(method_cls.complete_run_config(cfg.to_dict(), dry_run=dry_run))
    cfg.model = dict(build_method_config(method_cls.Config, cfg.model).__dict__)
    _check_image_channels(method_cls, cfg.model, cfg.data.channels)  # here: --dry-run refuses it too
    return cfg


def train(cfg: RunConfig, progress: bool = True,
          on_start: Callable[[Dataset], list[Path]] | None = None) -> Path:
    """Train ``cfg.method`` on ``cfg.data``; returns the run folder (its ``checkpoint/`` is the latest).
    ``cfg`` is completed (:func:`complete_config`) once its run folder is accepted, so a ``RunConfig.from_dict``
    of any method trains as ``pixmorph train`` with the same settings would.
    Ctrl-C or SIGTERM saves a checkpoint at the end of the step, then raises ``KeyboardInterrupt``. A second
    training in the same folder meanwhile is refused (train/run_lock.py). ``on_start`` (on the main process)
    writes the caller's own files into the run folder once the run is accepted: under the lock, after the
    config is checked and a start over without ``overwrite`` is refused, so a refused run changes no file; it
    is given the training dataset, as read before the last run's outputs were set aside, and returns the
    files. A run folder this call created is removed again when the run fails before its first checkpoint and
    holds nothing else (a refused start leaves no folder behind)."""
    with distributed.failing_together_before_joining():  # (a device one machine lacks: cuda:3 on a 2-GPU one)
        device = resolve_device(cfg.train.device)
    world, device = distributed.init(device)
    try:
        _refuse_other_settings(cfg, world)
        # (a run folder seen by one machine only refuses a run there alone: all must stop, not wait for it)
        with distributed.failing_together(world) as agreed:
            return _train_in_folder(cfg, world, device, agreed, progress, on_start)
    finally:
        # also after an error: a process group left for the interpreter's exit to tear down at times aborts the
        # process hosting its store (SIGABRT, "terminate called without an active exception") after the error line
        distributed.shutdown()


# Settings each machine may give its own: where it finds the run folder (what it finds there is checked apart) and
# the data (the same images in a folder of its own), its loader processes and CPU threads.
PER_MACHINE = ("train.out", "data.root", "data.num_workers", "train.threads")
# Options that name a file or folder beside the data (DeepSIM's primitive and edge map, FUNIT's image root and list
# files): a machine may keep its copy at a path of its own; compared only as a file given or not (DeepSIM's
# "auto" ones, computed from the image, stay themselves).
PATH_OPTIONS = ("data.options.primitive", "data.options.edges", "data.options.image_root",
                "data.options.source_list", "data.options.target_list")
COMPUTED_PRIMITIVES = ("auto", "auto-edges", "auto-seg")


def _refuse_other_settings(cfg: RunConfig, world: distributed.World) -> None:
    """Every process must train with the same settings. The CLI reads a ``--resume``'s RUN/config.json in each
    process before they join: a machine that sees another copy of it, or none (a run folder not on shared
    storage), trained with settings of its own, silently or until a collective of other-sized weights hung. Not
    compared: what may differ from machine to machine (:data:`PER_MACHINE`)."""
    if not world.distributed:
        return
    (out, first), *others = distributed.all_values(_settings(cfg), world)
    for rank, (_, other) in enumerate(others, start=1):
        if other != first:  # (an option of model or data.options given as null on one process only differs too)
            key = next(k for k in sorted(first.keys() | other.keys()) if k not in first or k not in other
                       or first[k] != other[k])
            given = [repr(settings[key]) if key in settings else "not given" for settings in (first, other)]
            raise ValueError(f"{out}: the processes were given different settings ({key}: {given[0]} on "
                             f"process 0, {given[1]} on process {rank} of {world.size}): give every machine "
                             f"the same options; a --resume reads RUN/config.json, which must be on storage every "
                             f"machine sees")


def _settings(cfg: RunConfig) -> tuple[str, dict]:
    """A process's run folder, and its settings that every process must share."""
    settings = _flat(cfg.to_dict())
    shared = {k: v for k, v in settings.items() if k not in PER_MACHINE}
    for key in PATH_OPTIONS:
        if shared.get(key) not in (None, *COMPUTED_PRIMITIVES):
            shared[key] = "a file"
    return settings["train.out"], shared


def _flat(d: dict, prefix: str = "") -> dict:
    """``{"train": {"seed": 0}}`` as ``{"train.seed": 0}``."""
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _train_in_folder(cfg: RunConfig, world: distributed.World, device: torch.device, agreed: Callable[[], None],
                     progress: bool, on_start: Callable[[Dataset], list[Path]] | None) -> Path:
    """:func:`train` once the processes are joined: the run folder checked, locked, cleaned up after a failure."""
    # The run folder's checks come before the config is completed: they are cheap, and completing it can be
    # slow and write (two-step reads its classes from the data, preparing a built-in task, maybe downloading).
    run_dir, main = Path(cfg.train.out), world.is_main
    _refuse_the_folder(run_dir)
    new = first_missing(run_dir)
    written: list[Path] = []

    def start(dataset: Dataset) -> None:
        if on_start is not None:
            written.extend(on_start(dataset))

    try:
        with run_lock(run_dir, take=main):
            try:
                _check_the_start(cfg)
                return _train(complete_config(cfg), world, device, agreed, progress, start)
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
            remove_if_empty(run_dir, new, keep_logs=isinstance(error, TrainingDiverged))  # how it diverged
        if isinstance(error, KeyboardInterrupt) and not isinstance(error, stopping.StoppedAndSaved):
            raise stopping.TrainingAborted(resume.aborted_state(run_dir, cfg.method)) from None
        raise


def check_run_folder(cfg: RunConfig) -> None:
    """What :func:`train` refuses in ``cfg.train.out`` before it builds anything (``--dry-run`` checks it too):
    a file for a folder, another program's files, another method's run to resume, or a checkpoint that a start
    over without ``overwrite`` would replace."""
    _refuse_the_folder(Path(cfg.train.out))
    _check_the_start(cfg)


def _refuse_the_folder(run_dir: Path) -> None:
    for folder in (run_dir, *run_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder}: a file, not a folder: give --out (train.out) a folder for the run")
    refuse_another_programs_files(run_dir)


def _check_the_start(cfg: RunConfig) -> None:
    """(under the run's lock in a run: what another training is writing there is not judged half-written)"""
    if cfg.train.resume:  # before anything is built: another method's run would fail later, on its weights
        ckpt.check_resumed_method(Path(cfg.train.out), cfg.method)
    elif not cfg.train.overwrite:
        ckpt.refuse_to_start_over(cfg.train.out, cfg.method)


def first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder`` and its parents that does not exist yet (None: ``folder`` exists)."""
    missing = None
    for f in (folder, *folder.parents):
        if f.exists():
            break
        missing = f
    return missing


def remove_if_empty(folder: Path, top: Path, keep_logs: bool = False) -> None:
    """Remove ``folder`` and its parents up to ``top`` if ``folder`` holds no file at any depth but the
    ``config.json`` a run writes before its first step, the run's lock file and its logs and sample grids
    (a run aborted before its first checkpoint has written them, unless ``keep_logs``; only empty subfolders
    besides)."""
    leftovers = {folder / "config.json", folder / LOCK}
    logs = [] if keep_logs else [folder / name for name in RUN_LOGS]

    def left_by_the_run(path: Path) -> bool:
        return path in leftovers or any(path == log or log in path.parents for log in logs)

    if not folder.is_dir() or any(p.is_file() and not left_by_the_run(p) for p in folder.rglob("*")):
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


def _train(cfg: RunConfig, world: distributed.World, device: torch.device, agreed: Callable[[], None],
           progress: bool, on_start: Callable[[Dataset], None] | None = None) -> Path:
    t = cfg.train
    precision = resolve_precision(t.precision, device)
    speed = speedups.resolve(t, device, precision)
    speedups.apply_to_backend(speed, t, device)
    cpu_share = CpuShare() if device.type == "cpu" and t.threads is None else None
    single = get_method(cfg.method).data_layout == "single"
    if single:  # trains at its image's size: the square sizes do not apply, nor are they checked against each other
        cfg.data = dataclasses.replace(cfg.data, load_size=None, crop_size=None)
    data_root, cfg.data = resolve_data(cfg.data, get_method(cfg.method).reference_sizes)
    if single:
        cfg.data = dataclasses.replace(cfg.data, load_size=None, crop_size=None)
    run_dir = Path(t.out)
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(t.seed)
    method = build_method(cfg)
    cfg.model = {k: v for k, v in method.cfg.__dict__.items()}  # save the resolved method config
    with terminal.said_by_rank_0(world):  # every process reads the same folders: one warning per skipped file, not N
        dataset = build_dataset(method.data_layout, data_root, cfg.data)
    _check_fits_the_networks(dataset, method, data_root, cfg.data.crop_size)
    balanced = _balanced_batches(dataset, method, cfg)
    global_batch = t.batch_size * world.size  # train.batch_size is per process
    if len(dataset) < global_batch:
        per_process = f" ({t.batch_size} per process)" if world.distributed else ""
        raise ValueError(f"{data_root}: {len(dataset)} training images, fewer than the batch size {global_batch}"
                         f"{per_process}: give --batch-size {max(1, len(dataset) // world.size)} or less")
    resumed = resume.read_checkpoint(run_dir, world) if t.resume else None
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
        print(_past_the_end(t, schedule))
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
    if resumed:
        resume.restore(*resumed, method, schedulers, scalers, world)
        if world.is_main and (changed := resume.changed_data(resumed[0], cfg.data)):
            print(changed)
    method.check_start(dataset, data_root)
    # What the first process alone writes comes before the first collective, so that its failing (a full disk)
    # stops every process: past it, the others would wait for it in their first step.
    replacing = not t.resume and ckpt.holds_checkpoint(run_dir)  # the first process's view decides (below)
    # Beside a checkpoint (starting over, or resumed with other settings) its config.json stays with it until the
    # first save replaces both, so a run that fails first leaves the old one resumable as it was.
    config_pending = ckpt.holds_checkpoint(run_dir)
    if world.is_main and not (t.resume and step >= last_step):
        _clear_the_last_runs_outputs(run_dir, t.resume, replacing)
        if on_start is not None:
            on_start(dataset)
        if not config_pending:
            save_json(cfg.to_dict(), run_dir / "config.json")
    agreed()  # the first collective: every process raises an error that any process raised above
    if world.distributed:
        distributed.sync_batch_norm(method.nets, device)
        distributed.broadcast_weights(method.nets)
    if t.resume:
        if world.distributed and len(steps := set(distributed.all_values(step, world))) > 1:
            raise ValueError(f"{run_dir}: --resume: the processes found checkpoints of different steps "
                             f"({', '.join(map(str, sorted(steps)))}; step 0: none found): the run folder must be on "
                             f"storage every machine sees")
        if state.get("global_batch", global_batch) != global_batch and world.is_main:
            print(f"resumed with a global batch of {global_batch} (it was {state['global_batch']}): the data and the "
                  f"learning-rate schedule go on from image {images_seen}; steps from here count {global_batch} "
                  f"image{'s' if global_batch != 1 else ''}, so the schedule ends at step {schedule.end}")
        if step >= last_step:
            if world.is_main:
                print(f"{run_dir}: already at step {step} of {last_step}: nothing to train "
                      f"({method.train_on_hint(schedule.end if step >= schedule.end else None)})")
            if world.distributed:
                distributed.shutdown()
            return run_dir
    # every process stops before a start over's first save, or none does (each would wait for the others)
    replacing = distributed.as_main_sees(replacing, world)
    speedups.apply_to_nets(method.nets, speed, method.step_modules())
    speedups.apply_to_optimizers(method.optimizers, speed)  # after the resume: saved groups carry their own flag

    loader = _loader(dataset, cfg, balanced, images_seen, world, speed.pin_memory)
    sample_batch = _fixed_batch(dataset, device)
    with distributed.failing_together(world):  # the first process alone writes (a resume rewrites stats.jsonl)
        stats = StatsLog(run_dir, t.tensorboard, resumed_at=step if t.resume else None) if world.is_main else None
    autocast_dtype = PRECISIONS[precision]
    update = _make_update(method, scalers, world)

    def training_state(at_step: int) -> dict | None:
        """What the checkpoint of ``at_step`` holds besides the weights, on the first process (None on the
        others). Every process takes part: its checks and its gathering are collectives."""
        # never replace a good checkpoint with NaNs
        _check_finite(method, sums, steps_since_log, at_step, run_dir, world, precision, finite_steps or None)
        # each process's own method state (CycleGAN's history pools hold that process's fakes), for its resume
        method_states = distributed.gather_to_main(method.extra_state(), world)
        if not world.is_main:
            return None
        state = {"step": at_step, "images_seen": images_seen, "global_batch": global_batch,
                 "schedule_batch": schedule_batch, "balanced_classes": balanced,
                 "rng": ckpt.rng_state(), "method": method_states[0],
                 "optimizers": {k: o.state_dict() for k, o in method.optimizers.items()},
                 "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
                 "scalers": {k: s.state_dict() for k, s in scalers.items()}}
        if world.distributed:
            state["method_by_rank"] = method_states
        return state

    def save(at_step: int, state: dict) -> None:  # the first process alone
        config = checkpoint_config(cfg, at_step, getattr(dataset, "image_size", None), norm_per_image)
        ckpt.save_checkpoint(run_dir / "checkpoint", method.nets, config, state)
        if config_pending:
            save_json(cfg.to_dict(), run_dir / "config.json")
        if replacing:
            set_aside.discard(run_dir)

    sums: dict[str, torch.Tensor] = {}
    # fp16: a step whose losses overflowed is one the loss scaler skips (its gradients are not finite) and lowers
    # its scale for: counted apart, not as divergence, unless a loss overflowed in every step since the last log
    finite_steps: dict[str, torch.Tensor] = {}
    seen_since_log, steps_since_log, t_log, t_start = 0, 0, time.perf_counter(), time.perf_counter()
    t_saved = t_start
    if world.distributed and world.is_main:
        print(f"{world.size} processes ({distributed.backend()}), batch {t.batch_size} each: global batch {global_batch}",
              flush=True)
    bar = tqdm(total=None if t.time_budget else last_step, initial=step,  # a budget's end: estimated each step
               disable=not (progress and world.is_main), unit=" step", dynamic_ncols=True)
    first_step = step
    if t.time_budget and world.is_main and progress:
        tqdm.write(f"training for {t.time_budget:.0f} s or {last_step} steps, whichever ends first")
    out_of_time = stopped = False
    with stopping.stop_requests(world) as stop_requested, terminal.warnings_above(bar), \
            stopping.batches_of(loader) as batches, terminal.errors_on_their_own_line(world, bar):
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
                v = v.float()
                if precision == "fp16":
                    finite = torch.isfinite(v)
                    v = torch.where(finite, v, 0.0)
                    finite_steps[k] = finite_steps.get(k, 0) + finite.float()
                sums[k] = sums.get(k, 0) + v
            if t.time_budget:  # the bar ends where the budget or the schedule ends, whichever comes first
                spent = time.perf_counter() - t_start
                rate = (step - first_step) / max(spent, 1e-9)
                bar.total = min(last_step, step + int(rate * max(t.time_budget - spent, 0)))
            bar.update(1)

            out_of_time = t.time_budget is not None and time.perf_counter() - t_start >= t.time_budget
            finishing = step == last_step or distributed.any_rank(out_of_time or stop_requested(), world)
            stopped = finishing and distributed.any_rank(stop_requested(), world)
            logging = step % t.log_every == 0 or finishing
            if logging:
                elapsed = time.perf_counter() - t_log
                means = _means(sums, steps_since_log, step, run_dir, world, precision, finite_steps or None)
                means["images_per_s"] = seen_since_log / max(elapsed, 1e-9)
                bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                sums, finite_steps, seen_since_log, t_log = {}, {}, 0, time.perf_counter()
                steps_since_log = 0
            sampling = step % t.sample_every == 0 or finishing
            due = step % t.checkpoint_every == 0 or finishing
            if not due and t.checkpoint_minutes and step % t.log_every == 0:  # the same steps on every process
                due = distributed.any_rank(time.perf_counter() - t_saved >= 60 * t.checkpoint_minutes, world)
            # (a start over stopped before its first save: the last run stays as it was, see train())
            saving = due and not (replacing and stopped)
            state = training_state(step) if saving else None
            if logging or sampling or saving:  # steps that every process knows
                # The first process alone writes; at the end every process learns whether that failed (a full
                # disk), and all stop with its error, instead of the others going on to wait for it in a collective.
                with distributed.failing_together(world):
                    if world.is_main:
                        if logging and stats:
                            stats.write(step, means)
                        if sampling:
                            _write_samples(method, sample_batch, run_dir, step)
                        if saving:
                            save(step, state)
                if saving:
                    replacing = False
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
    if world.is_main and not unsaved:
        if stop_requested():
            print(f"stopped at step {step}; {_go_on_with(cfg, world)}")
        elif out_of_time and step < last_step:
            decaying = " (the learning rate has not decayed to its end)" \
                if schedule.decay and t.lr_policy != "constant" else ""
            print(f"time budget of {t.time_budget:.0f} s reached at step {step} of {last_step}: the schedule did "
                  f"not finish{decaying}; {_go_on_with(cfg, world)}")
    if world.distributed:
        distributed.shutdown()
    if unsaved:
        raise KeyboardInterrupt  # train() says what the folder holds
    if stop_requested():  # saved cleanly; the caller (a script, the shell: exit code 130) still sees the Ctrl-C
        raise stopping.StoppedAndSaved
    return run_dir


def _past_the_end(t: TrainConfig, schedule: Plan) -> str:
    return (f"train.max_steps={t.max_steps} (--steps) is past the end of the schedule: it ends at step "
            f"{schedule.end} (train.epochs={t.epochs:g} + epochs_decay={t.epochs_decay:g} of "
            f"{schedule.steps_per_epoch} steps), and training stops there; for more steps give more "
            f"--epochs / --epochs-decay")


def _clear_the_last_runs_outputs(run_dir: Path, resuming: bool, replacing: bool) -> None:
    """Starting over beside a checkpoint, the last run's logs, samples and primitive wait aside until the first
    save replaces its checkpoint (train/set_aside.py); without one they go."""
    if resuming:
        set_aside.restore(run_dir)  # a start over killed before its first save: the run resumed is the last one
    elif replacing:
        set_aside.set_aside(run_dir)
    else:
        for old_output in RUN_LOGS:  # not primitive/: it may hold this run's input
            path = run_dir / old_output
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _loader(dataset: Dataset, cfg: RunConfig, balanced: bool, images_seen: int, world: distributed.World,
            pin_memory: bool) -> DataLoader:
    """This process's share of the seeded stream of training samples, from image ``images_seen`` on."""
    t, workers = cfg.train, cfg.data.num_workers
    shard = (world.rank, world.size, t.batch_size)
    sampler = (ClassBalancedSampler(dataset.labels, t.seed, start=images_seen, shard=shard) if balanced
               else SeededSampler(len(dataset), t.seed, start=images_seen, shard=shard))
    return DataLoader(dataset, batch_size=t.batch_size, drop_last=True, num_workers=workers, sampler=sampler,
                      pin_memory=pin_memory, persistent_workers=workers > 0,
                      worker_init_fn=stopping.leave_signals_to_the_loop,
                      # its own generator: creating the iterator must not draw from the global RNG
                      generator=torch.Generator().manual_seed(t.seed))


def _go_on_with(cfg: RunConfig, world: distributed.World) -> str:
    """Where the checkpoint is and how to go on, as the run ran (a multi-process run may go on with any number
    of processes: its schedule is in images)."""
    run_dir = Path(cfg.train.out)
    processes = (f" with torchrun or --devices {world.size} as now (or another number of processes: the run goes on "
                 f"in images, each step then of another global batch)") if world.distributed else ""
    return (f"checkpoint saved in {run_dir / 'checkpoint'}: continue with "
            f"`pixmorph train {cfg.method} --out {run_dir} --resume`{processes}")


def _check_fits_the_networks(dataset, method: Method, data_root: Path, crop: int | None) -> None:
    """Training images the generators cannot take, said before the first step fails inside a network: a
    dataset of one fixed size (DeepSIM's image) below their least input, or a square crop that is not a
    multiple of their stride (a ResNet's 4, a U-Net's 2^num_downs) or below their least input
    (:func:`check_crop_fits_the_networks`)."""
    generators = method.translators().values()
    need = max((getattr(g, "min_size", 1) for g in generators), default=1)
    size = getattr(dataset, "image_size", None)
    if size and min(size) < need:
        source = getattr(dataset, "source_size", size)  # before --max-side scaled it down
        larger = "a larger --max-side" if min(source) >= need else "a larger image"
        raise ValueError(f"{data_root}: {source[0]}x{source[1]}, trained at {size[0]}x{size[1]}, smaller than the "
                         f"{need}x{need} the networks need: use {larger}, or a generator with fewer downsamplings")
    if size:
        method.check_training_size(*size)
    elif crop:
        check_crop_fits_the_networks(method, crop)


def check_crop_fits_the_networks(method: Method, crop: int) -> None:
    """A square training crop the networks cannot take (``--dry-run`` checks it too): not a multiple of the
    generators' stride, or below their least input or the discriminator's."""
    generators = method.translators().values()
    need = max((getattr(g, "min_size", 1) for g in generators), default=1)
    method.check_training_size(crop, crop)
    stride = math.lcm(*(getattr(g, "stride", 1) for g in generators)) if generators else 1
    # (below one stride a method may know better what to change: pix2pix names model.num_downs)
    if crop >= stride and (crop % stride or crop < need):
        fits = max(need, round(crop / stride) * stride)
        least = f" and at least {need}" if need > stride else ""  # (not "multiples of 32 and at least 1")
        raise ValueError(f"data.crop_size={crop}: the {method.name} generators take sides that are multiples of "
                         f"{stride}{least}: use --crop-size {fits} (or a generator with fewer downsamplings)")
    judges = max((getattr(net, "min_size", 1) for net in method.nets.values() if net not in generators), default=1)
    if crop < judges:  # (a PatchGAN failed at the first step: 'more than 1 value per channel')
        fits = -(-max(need, judges) // stride) * stride
        layers = getattr(method.cfg, "d_layers", None)
        fewer = f" (model.d_layers={layers}): use --crop-size {fits}, or, starting a new run, fewer model.d_layers" \
            if layers is not None else f": use --crop-size {fits}"
        raise ValueError(f"data.crop_size={crop}: the {method.name} discriminator takes sides of at least {judges}"
                         f"{fewer}")


def _check_image_channels(method: type[Method], model: dict, channels: int) -> None:
    """``data.channels`` other than the channels the image-to-image networks are built for (CycleGAN, pix2pix:
    model.in_channels and out_channels, 3 unless set), said before the first step fails inside a convolution."""
    if method.data_layout not in ("paired", "unpaired"):  # the others size their networks from the data or say so
        return
    built = {side: model.get(f"{side}_channels", channels) for side in ("in", "out")}
    if set(built.values()) != {channels}:
        raise ValueError(f"data.channels={channels}: the {method.name} networks are built for model.in_channels="
                         f"{built['in']}, model.out_channels={built['out']}: set both to {channels} too (--set "
                         f"model.in_channels={channels} --set model.out_channels={channels})")


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
    so it is raised again with its own one-line message. An image that fails here (one the up-front check
    passed: changed since, or damaged where neither its header nor its end shows it) gets the same hint as one
    that fails that check."""
    try:
        return next(batches)
    except Exception as e:
        text = str(e)
        if "Original Traceback" not in text:
            if isinstance(e, ImageReadError):
                raise _with_skip_bad_hint(e) from None
            raise
        last = [line for line in text.splitlines() if line.strip()][-1]
        try:
            error = type(e)(last.split(": ", 1)[-1] + (SKIP_BAD_HINT if isinstance(e, ImageReadError) else ""))
        except Exception:
            raise e from None
        raise error from None


def _with_skip_bad_hint(error: ImageReadError) -> ImageReadError:
    return type(error)(f"{error}{SKIP_BAD_HINT}")


def _make_update(method: Method, scalers: dict[str, torch.amp.GradScaler],
                 world: distributed.World = distributed.World()) -> _Update:
    return _Update(method, scalers, world)


class _Update:
    """The ``update`` a method's ``train_step`` is given (methods/base.py ``Update``)."""

    def __init__(self, method: Method, scalers: dict[str, torch.amp.GradScaler], world: distributed.World):
        self.method, self.scalers, self.world = method, scalers, world

    def __call__(self, loss: torch.Tensor, name: str) -> None:
        optimizer, scaler = self.method.optimizers[name], self.scalers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.world.distributed:
            distributed.average_gradients(optimizer, self.world)
        scaler.step(optimizer)
        scaler.update()
        # The step runs inside the step's autocast region and changed the weights in place: the bf16/fp16
        # copies autocast cached of them are stale, and a network used again after its own update in the
        # same step (pix2pix, FUNIT and two-step run D's update before G's loss through D) would see them.
        torch.clear_autocast_cache()

    def grad(self, output: torch.Tensor, inputs: torch.Tensor, name: str) -> torch.Tensor:
        scaler = self.scalers[name]
        if not scaler.is_enabled():
            return torch.autograd.grad(output, inputs, create_graph=True)[0]
        # fp16: the gradient of the output times the loss scale, unscaled after (torch's AMP recipe for gradient
        # penalties): unscaled, the fp16 gradients inside the network fall below 6e-8 and become 0. The scale
        # as a tensor (scale() of a one), so that nothing waits for the device.
        scale = scaler.scale(torch.ones((), device=output.device))
        return torch.autograd.grad(output * scale, inputs, create_graph=True)[0] / scale


def _means(sums: dict[str, torch.Tensor], count: int, step: int, run_dir: Path,
           world: distributed.World = distributed.World(), precision: str = "auto",
           finite_steps: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Mean losses since the last log over all processes (one host sync per interval, not per step);
    stops on NaN/inf. ``finite_steps`` (fp16): each loss's sum is over the steps it was finite in, counted
    here; a loss that was finite in none of them stops the run."""
    if not sums:
        return {}
    names = list(sums)
    counts = [finite_steps[k] if finite_steps else float(count) for k in names]
    values = distributed.average_scalars(torch.stack([sums[k] for k in names] +
                                                     [torch.as_tensor(c, device=sums[names[0]].device).float()
                                                      for c in counts]), world).tolist()
    values, counts = values[:len(names)], values[len(names):]
    for k, v, n in zip(names, values, counts):
        if not math.isfinite(v) or n == 0:
            became = v if n else "inf/NaN in every step since the last log (fp16 overflow: not a skipped step)"
            raise TrainingDiverged(f"loss {k} became {became} by step {step}; "
                                   f"{resume.last_good(run_dir, precision)}")
    return {k: v / n for k, v, n in zip(names, values, counts)}


def _check_finite(method: Method, sums: dict, count: int, step: int, run_dir: Path,
                  world: distributed.World = distributed.World(), precision: str = "auto",
                  finite_steps: dict[str, torch.Tensor] | None = None) -> None:
    _means(sums, count, step, run_dir, world, precision, finite_steps)
    for name, p in method.nets.named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingDiverged(f"weight {name} became NaN/inf by step {step}; "
                                   f"{resume.last_good(run_dir, precision)}")


def _fixed_batch(dataset, device: torch.device, n: int = 4) -> dict[str, torch.Tensor]:
    """The same few samples for every grid; drawn with fixed seeds so no training randomness is used. The seeds
    are drawn, not consecutive: a fresh generator's first draw from seeds 1234, 1235, ... is nearly the same
    (CycleGAN's grid showed one B image in every row of a 2, 4 or 8 image trainB/)."""
    seeds = torch.randint(0, 2**62, (n,), generator=torch.Generator().manual_seed(1234)).tolist()
    try:
        items = [dataset[(i % len(dataset), seeds[i])] for i in range(min(n, len(dataset)))]
    except ImageReadError as e:  # one of them damaged where the up-front check did not see it
        raise _with_skip_bad_hint(e) from None
    return {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}


def _write_samples(method: Method, batch: dict, run_dir: Path, step: int) -> None:
    method.nets.eval()
    rows = [row for i in range(next(iter(batch.values())).shape[0])
            for row in method.visuals({k: v[i : i + 1] for k, v in batch.items()})]
    method.nets.train()
    save_samples(run_dir, step, rows, method.visual_columns())

"""Going on from a checkpoint: reading it, putting every piece of training state back (weights, optimizers
with this run's settings, schedules, scalers, the method's own state, RNG), and saying what a run folder
holds when training stopped without saving or diverged."""

from __future__ import annotations

from pathlib import Path

from pixmorph.config import DataConfig
from pixmorph.methods import Method
from pixmorph.train import checkpoint as ckpt
from pixmorph.train import distributed


def aborted_state(run_dir: Path, method: str) -> str:
    """What a run folder holds after training stopped without saving: its last intact checkpoint, or none."""
    try:
        folder = ckpt.find_checkpoint(run_dir)
        step = ckpt.read_config(folder)["step"]
    except (ckpt.CheckpointError, KeyError):
        return (f"no checkpoint was saved in {run_dir}: there is nothing to --resume; run the command again to "
                f"start over")
    return (f"the last checkpoint, {folder} (step {step}), is intact: continue from it with "
            f"`pixmorph train {method} --out {run_dir} --resume`")


def last_good(run_dir: Path, precision: str = "auto") -> str:
    """Where a run that diverged can go on from, and what to change (``precision``: what the run trained in)."""
    advice = "try a lower learning rate" + ("" if precision == "fp32" else ", or train.precision=fp32")
    try:
        return f"the last good checkpoint is in {ckpt.find_checkpoint(run_dir)} ({advice})"
    except ckpt.CheckpointError:
        logged = run_dir / "stats.jsonl"
        losses = f"; the losses until then are in {logged}" if logged.is_file() else ""
        return f"no checkpoint was saved before{losses} ({advice})"


def read_checkpoint(run_dir: Path, world: distributed.World) -> tuple[Path, dict] | None:
    """The checkpoint folder of a run and its training state; None when the run has no checkpoint yet."""
    try:
        folder = ckpt.find_checkpoint(run_dir)
    except ckpt.CheckpointError:
        if world.is_main:
            print(f"no checkpoint in {run_dir} yet: starting from step 0")
        return None
    return folder, ckpt.load_state(folder)


def restore(folder: Path, state: dict, method: Method, schedulers: dict, scalers: dict,
             world: distributed.World = distributed.World()) -> None:
    """Restore everything a checkpoint holds: weights, optimizers, schedules, scalers, the method's state, RNG."""
    try:
        ckpt.load_weights(folder, method.nets)
    except ckpt.CheckpointError as error:
        raise changed_network(folder, method) or error from None
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


# The data settings that change what the networks are trained on (not where the data is, nor how it is loaded).
DATA_SETTINGS = ("load_size", "crop_size", "flip")


def changed_data(folder: Path, data: DataConfig) -> str | None:
    """The line a resume prints when it trains on other crops than the checkpoint's run did (--crop-size,
    --load-size, data.flip given anew), as it does for changed optimizer settings; None when none changed."""
    try:
        saved = (ckpt.read_config(folder).get("run") or {}).get("data") or {}
    except ckpt.CheckpointError:
        return None
    changed = [f"{key} {saved[key]} -> {getattr(data, key)}" for key in DATA_SETTINGS
               if key in saved and saved[key] is not None and saved[key] != getattr(data, key)]
    return f"resumed with changed data settings: {', '.join(changed)}" if changed else None


# The optimizer settings a config decides (name in the group -> name in a message; initial_lr is the learning
# rate the schedule scales).
OPTIMIZER_SETTINGS = {"initial_lr": "lr", "betas": "betas", "weight_decay": "weight_decay", "eps": "eps",
                      "alpha": "alpha", "momentum": "momentum"}


def changed_network(folder: Path, method: Method) -> ckpt.CheckpointError | None:
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

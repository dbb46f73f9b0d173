"""Checkpoints: a folder with ``weights.safetensors`` (every network), ``config.json`` (what rebuilds
the run) and ``state.pt`` (optimizers, schedulers, step, RNG states, method state; tensors and
primitives only, so it loads with ``weights_only=True``). Written to a temporary folder and swapped
in, so a crash or a full disk never leaves a half-written checkpoint in place."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pixmorph.images import FILE_MODE

WEIGHTS, CONFIG, STATE = "weights.safetensors", "config.json", "state.pt"


class CheckpointError(RuntimeError):
    pass


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder holding ``checkpoint/``, or a file of either (its
    ``weights.safetensors``, ``config.json`` or ``state.pt``, as a user may point at a file)."""
    given = Path(path)
    path = given.parent if given.is_file() else given
    for candidate in (path, path / "checkpoint", path / ".checkpoint.old"):
        if (candidate / WEIGHTS).is_file() and (candidate / CONFIG).is_file():
            return candidate
    if not given.exists():
        raise CheckpointError(f"{given}: no such checkpoint or run folder")
    if (path / CONFIG).is_file() and "train" in _json_or_empty(path / CONFIG):  # training writes it at its start
        raise CheckpointError(f"{path}: a run folder without a checkpoint yet: its training saves one every "
                              f"train.checkpoint_every steps, after train.checkpoint_minutes, and when it stops")
    runs = sorted(f"{p.name}/" for p in path.iterdir() if p.is_dir() and (p / "checkpoint" / WEIGHTS).is_file())
    held = f"; it holds run folders ({', '.join(runs[:5])}{', ...' if len(runs) > 5 else ''}): give one" if runs else ""
    raise CheckpointError(f"{given}: not a pixmorph checkpoint (no {WEIGHTS} and {CONFIG}; give a run folder or its "
                          f"checkpoint/){held}")


def _json_or_empty(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_config(ckpt: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((ckpt / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{ckpt / CONFIG}: unreadable checkpoint config ({e})") from None
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{ckpt / CONFIG}: unreadable checkpoint config (a JSON {type(loaded).__name__}, "
                              f"not an object)")
    return loaded


def config_that_ran(run: str | Path) -> dict[str, Any]:
    """The run config its latest checkpoint was trained with, which the checkpoint keeps (RUN/config.json is
    written just after it, so a kill -9 between the two leaves a start over's checkpoint beside the last run's
    config.json); RUN/config.json where no checkpoint is readable."""
    run = Path(run)
    try:
        ran = read_config(find_checkpoint(run)).get("run")
    except CheckpointError:
        ran = None
    if isinstance(ran, dict):
        return ran
    saved = run / "config.json"
    try:
        ran = json.loads(saved.read_text())
    except ValueError as e:  # not JSON, or not text
        raise ValueError(f"{saved}: unreadable run config ({e})") from None
    if not isinstance(ran, dict):
        raise ValueError(f"{saved}: not a run config (a JSON {type(ran).__name__}, not an object)")
    return ran


def holds_checkpoint(run_dir: str | Path) -> bool:
    """Whether a run folder holds a checkpoint: RUN/checkpoint, or the last one as RUN/.checkpoint.old where a
    save was killed between its two renames (which find_checkpoint and --resume take)."""
    return (Path(run_dir) / "checkpoint").exists() or (Path(run_dir) / ".checkpoint.old").exists()


def refuse_to_start_over(out: str | Path, method: str | None = None) -> None:
    """A new run (no --resume, no --overwrite) in a folder that holds a checkpoint: refused, in one line; a run of
    another ``method`` than the one asked for is named (--resume would refuse it)."""
    if not holds_checkpoint(out):
        return
    held = _held_config(Path(out)).get("method")
    if method and held and held != method:
        raise FileExistsError(f"{out}: holds a {held} run already; you asked for {method}: give another --out, or "
                              f"start over with --overwrite (that run goes on with `pixmorph train {held} --out {out} "
                              f"--resume`)")
    raise FileExistsError(f"{out}: holds a checkpoint already: continue it with --resume, or start over "
                          f"with --overwrite (from Python: train.resume=True, or train.overwrite=True)")


def _held_config(out: Path) -> dict[str, Any]:
    """The config of the run in folder ``out``: its config.json, else its checkpoint's; {} when there is none
    or it is unreadable (training says so)."""
    saved = out / CONFIG
    try:
        config = json.loads(saved.read_text()) if saved.is_file() else read_config(find_checkpoint(out))
    except (ValueError, CheckpointError, OSError):
        return {}
    return config if isinstance(config, dict) else {}


def check_resumed_method(out: str | Path, method: str) -> None:
    """Resuming the run folder ``out`` with ``method`` when it holds another method's run: one line saying so
    (ValueError), before that run's weights or options are refused. No run there, or an unreadable one: nothing
    (training says so)."""
    out = Path(out)
    config = _held_config(out)
    held = config.get("method")
    if held is None and "classifier" in config:  # `pixmorph classifier train` folders hold checkpoints too
        raise ValueError(f"{out} holds a classifier (pixmorph classifier), not a training run: give another --out")
    if held and held != method:
        raise ValueError(f"{out} holds a {held} run; you asked for {method} "
                         f"(resume it with `pixmorph train {held} --out {out} --resume`, or give another --out)")


def save_checkpoint(folder: str | Path, nets: nn.ModuleDict, config: dict[str, Any], state: dict[str, Any] | None) -> Path:
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in nets.state_dict().items()}
        save_weights_file(weights, tmp / WEIGHTS)
        # save_id: which save this is, kept when the folder is copied or moved to another disk (set_aside.py)
        config = {**config, "save_id": uuid.uuid4().hex}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if state is not None:
            torch.save(state, tmp / STATE)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    except Exception as e:  # safetensors and torch.save report a failed write as their own error types
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the previous checkpoint at {folder} is intact" if folder.exists() else "no checkpoint was written"
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{folder}: could not write checkpoint ({reason}); {kept}") from None
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def save_weights_file(tensors: dict[str, torch.Tensor], path: str | Path,
                      metadata: dict[str, str] | None = None) -> Path:
    """``safetensors``' ``save_file`` with the permissions of any other file written (``0666 & ~umask``):
    it writes through a private temporary file, which leaves the weights readable by their owner only."""
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, FILE_MODE)
    return Path(path)


def load_weights(ckpt: Path, nets: nn.ModuleDict) -> None:
    """Load weights, with a one-line error when they do not fit the networks the config builds."""
    try:
        weights = load_file(str(ckpt / WEIGHTS))
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{ckpt / WEIGHTS}: unreadable weights ({e})") from None
    expected = nets.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"{wrong[0]} has shape {tuple(weights[wrong[0]].shape)}, the network wants {tuple(expected[wrong[0]].shape)}")
        raise CheckpointError(f"{ckpt / WEIGHTS}: weights do not match the network in {CONFIG}: {detail}")
    nets.load_state_dict(weights)


def load_state(ckpt: Path) -> dict[str, Any]:
    path = ckpt / STATE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing: this checkpoint has weights only and cannot resume training")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as e:  # cut short or overwritten
        reason = " ".join(str(e).split(". ")[0].split())[:160] or type(e).__name__
        raise CheckpointError(f"{path}: unreadable training state ({reason}): training cannot resume from it; its "
                              f"weights still translate and export") from None


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(_as_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(x):
    return tuple(_as_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x

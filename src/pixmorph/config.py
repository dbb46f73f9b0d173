"""Run configuration: small dataclasses, read from YAML, overridden from the command line,
saved as JSON beside every checkpoint so a run can be rebuilt from its folder alone."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DataConfig:
    root: str = "fashion-edges"  # a folder, or the name of a built-in task
    load_size: int | None = None  # None: the built-in task's image size, else 286
    crop_size: int | None = None  # None: the built-in task's image size, else 256
    flip: bool = True
    channels: int = 3  # 3 = RGB, 1 = grayscale (set the model's in/out channels to match)
    num_workers: int = 2
    skip_bad: bool = False  # skip unreadable images with a warning instead of stopping
    options: dict[str, Any] = field(default_factory=dict)  # settings of one data layout (see data/layouts.py)


@dataclass
class TrainConfig:
    out: str = "runs/run"
    batch_size: int = 1
    epochs: float = 100  # at the initial learning rate (fractions allowed: 0.5 = half an epoch)
    epochs_decay: float = 100  # linear decay to 0 afterwards
    max_steps: int | None = None  # stop early at this step (the schedule keeps its length)
    time_budget: float | None = None  # seconds of training, then save and stop
    lr_policy: str = "linear"  # linear | constant
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # fp32 | bf16 | fp16 | auto (bf16 on CUDA and AMX CPUs, else fp32)
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    resume: bool = False
    overwrite: bool = False  # start over in a run folder that holds a checkpoint
    tensorboard: bool = True  # when tensorboard is installed
    # Speed switches (train/speed.py); None = on where measured to win.
    channels_last: bool | None = None  # networks and batches in NHWC
    compile: bool | None = None  # torch.compile each network in place
    compile_mode: str = "default"  # torch.compile mode; reduce-overhead = CUDA graphs (static shapes)
    fused_optimizer: bool = True  # fused Adam/AdamW/SGD kernels (CUDA and CPU)
    cudnn_benchmark: bool = True  # CUDA: autotune convolution algorithms
    tf32: bool = True  # CUDA: TF32 tensor cores for fp32 matmuls and convolutions
    pin_memory: bool = True  # CUDA: page-locked batches, copied with non_blocking
    threads: int | None = None  # CPU threads (torch.set_num_threads); None: torch's default
    winograd: bool | None = None  # CPU: Winograd 3x3 convolutions where they win (nn/winograd.py)


@dataclass
class RunConfig:
    method: str = "cyclegan"
    model: dict[str, Any] = field(default_factory=dict)  # the method's own config, by field name
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config section(s): {', '.join(sorted(unknown))} (use method, model, data, train)")
        return cls(
            method=d.get("method", "cyclegan"),
            model=dict(d.get("model") or {}),
            data=_build(DataConfig, d.get("data") or {}, "data"),
            train=_build(TrainConfig, d.get("train") or {}, "train"),
        )


def _build(kind: type, values: dict[str, Any], section: str):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {section} option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
    return kind(**values)


def build_method_config(config_class: type, values: dict[str, Any]):
    """The method's dataclass from ``values``, rejecting misspelt names."""
    return _build(config_class, values, "model")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 5e-4 (no dot) as a string; read it as the float everyone means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML: 1e-4, true, [1, 2]) to a config dict."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"override {item!r}: expected section.key=value, e.g. model.ngf=32 or train.batch_size=4")
        section, name = key.split(".", 1)
        if section not in ("model", "data", "train"):
            raise ValueError(f"override {item!r}: section must be model, data or train")
        d.setdefault(section, {})[name] = yaml.load(raw, Loader=_Loader)
    return d


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        d = yaml.load(Path(path).read_text(), Loader=_Loader)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping with sections method, model, data, train")
    for section in ("model", "data", "train"):  # "train:" with every key commented out reads as None
        if d.get(section) is None and section in d:
            d[section] = {}
        elif section in d and not isinstance(d[section], dict):
            raise ValueError(f"{path}: section {section!r} must be a mapping of names to values")
    return d


def save_json(d: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")

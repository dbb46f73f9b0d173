"""Download and unpack the public CycleGAN and pix2pix datasets.

Naming scheme
-------------
CycleGAN (unpaired) datasets keep their upstream names: ``horse2zebra``,
``maps``, ``facades`` ... The pix2pix (paired) datasets carry a ``pix2pix/``
prefix: ``pix2pix/facades``, ``pix2pix/maps``, ``pix2pix/edges2shoes`` ...
The name is also the folder under ``root``, so both kinds can live side by side::

    datasets/horse2zebra/{trainA,trainB,testA,testB}
    datasets/pix2pix/facades/{train,val,test}

Archives are fetched with ``urllib`` into ``root/.downloads/<file>.part``;
an interrupted download resumes from the ``.part`` file with an HTTP Range
request. The complete archive is checked (size, and sha256 where the registry
has one), renamed to ``root/.downloads/<file>``, unpacked into a temporary
folder beside the destination and only then renamed into place, so a failure
never leaves a half-unpacked dataset behind.

Mirrors: ``base_url`` (or the ``PIXMORPH_DATA_MIRROR`` environment variable)
replaces ``http://efrosgans.eecs.berkeley.edu``; the path is kept, e.g.
``{mirror}/cyclegan/datasets/horse2zebra.zip``. A ``file://`` mirror works too.

Every failure raises :class:`DownloadError` with a one-line message naming
the dataset, the URL and the problem.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from tqdm import tqdm

from pixmorph.messages import one_line

MIRROR_ENV = "PIXMORPH_DATA_MIRROR"
OFFICIAL_HOST = "http://efrosgans.eecs.berkeley.edu"
DOWNLOADS_DIR = ".downloads"
_CHUNK = 1 << 16


class DownloadError(Exception):
    """A dataset could not be downloaded or unpacked (one-line message)."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset lives and how to check and unpack it."""

    name: str
    url: str
    kind: Literal["unpaired", "paired"]
    archive: Literal["zip", "tar.gz"]
    size: int | None = None  # bytes, when known
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name


_CYCLEGAN = [
    "horse2zebra",
    "apple2orange",
    "summer2winter_yosemite",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "facades",
    "iphone2dslr_flower",
]
_PIX2PIX = ["facades", "maps", "edges2shoes", "edges2handbags", "cityscapes", "night2day"]

DATASETS: dict[str, DatasetSource] = {
    **{
        name: DatasetSource(
            name, f"{OFFICIAL_HOST}/cyclegan/datasets/{name}.zip", "unpaired", "zip"
        )
        for name in _CYCLEGAN
    },
    **{
        f"pix2pix/{name}": DatasetSource(
            f"pix2pix/{name}", f"{OFFICIAL_HOST}/pix2pix/datasets/{name}.tar.gz", "paired", "tar.gz"
        )
        for name in _PIX2PIX
    },
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`download`, sorted."""
    return sorted(DATASETS)


def get_source(name: str) -> DatasetSource:
    """Look up a dataset, raising :class:`DownloadError` for an unknown name."""
    try:
        return DATASETS[name]
    except KeyError:
        from pixmorph.data import builtin

        if name in builtin.TASKS:
            raise DownloadError(f"{name} is built in and needs no download: train on it with --data {name} "
                                f"(its files: pixmorph data path {name})") from None
        known = ", ".join(list_datasets())
        raise DownloadError(f"unknown dataset {name!r}; known datasets: {known}") from None


def dataset_dir(name: str, root: str | Path = "datasets") -> Path:
    """The folder ``download(name, root)`` fills (it may not exist yet)."""
    return Path(root).joinpath(*PurePosixPath(get_source(name).name).parts)


def resolve_url(source: DatasetSource, base_url: str | None = None) -> str:
    """The URL to fetch: the official one, or the same path under a mirror."""
    mirror = base_url or os.environ.get(MIRROR_ENV)
    if not mirror:
        return source.url
    return mirror.rstrip("/") + urlsplit(source.url).path


def download(
    name: str,
    root: str | Path = "datasets",
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 30,
    keep_archive: bool = False,
) -> Path:
    """Download and unpack dataset ``name`` under ``root``; return its folder.

    A dataset that is already unpacked is returned as is. A complete archive
    already in ``root/.downloads`` is unpacked without downloading it again.
    The archive is deleted after unpacking unless ``keep_archive`` is set.
    """
    source = get_source(name)
    target = dataset_dir(name, root)
    if target.is_dir() and any(target.iterdir()):
        return target

    url = resolve_url(source, base_url)
    downloads = Path(root) / DOWNLOADS_DIR
    archive = downloads / source.filename
    part = archive.with_name(archive.name + ".part")
    try:
        if not archive.is_file():
            try:
                downloads.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DownloadError(_msg(source, url, f"cannot create {downloads}: {exc}")) from exc
            _fetch(source, url, part, target, progress=progress, timeout=timeout)
            _verify(source, url, part)
            os.replace(part, archive)
        _extract(source, url, archive, target)
        if not keep_archive:
            archive.unlink(missing_ok=True)
    finally:  # leave no empty file or folder behind (a partial download stays, to resume)
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()
        _remove_if_empty(downloads)
    return target


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone
        pass


# --- messages -----------------------------------------------------------------


def _msg(source: DatasetSource, url: str, problem: str) -> str:
    return one_line(f"dataset {source.name!r} ({url}): {problem}")


def _offline_msg(source: DatasetSource, url: str, target: Path, reason: object) -> str:
    where = "no such file there" if url.startswith("file:") else "network unreachable?"
    return one_line(
        f"dataset {source.name!r}: cannot reach {url} ({where}): {reason}. "
        f"Download it elsewhere and unpack it into {target}, or set {MIRROR_ENV}"
    )


# --- HTTP download with resume ------------------------------------------------


def _fetch(
    source: DatasetSource, url: str, part: Path, target: Path, *, progress: bool, timeout: float
) -> None:
    """Bring ``part`` up to the full archive, resuming what is already there."""
    offset = part.stat().st_size if part.is_file() else 0
    if source.size is not None and offset > source.size:
        part.unlink()
        offset = 0

    response = _open(source, url, offset, target, timeout)
    if response is None:  # 416: the server says the part is already complete
        return
    with response:
        start, total = _response_range(source, url, response, offset)
        if total is not None and source.size is not None and total != source.size:
            part.unlink(missing_ok=True)
            raise DownloadError(
                _msg(source, url, f"server reports {total} bytes, expected {source.size}")
            )
        _stream(source, url, response, part, start, total, progress)


def _open(
    source: DatasetSource, url: str, offset: int, target: Path, timeout: float
) -> http.client.HTTPResponse | None:
    request = Request(url, headers={"User-Agent": "pixmorph"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urlopen(request, timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            if _range_total(exc.headers.get("Content-Range")) == offset:
                return None
            # The part does not fit what the server has: start over.
            return _open(source, url, 0, target, timeout)
        raise DownloadError(_msg(source, url, f"HTTP {exc.code} {exc.reason}")) from exc
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(_offline_msg(source, url, target, reason)) from exc
    except http.client.HTTPException as exc:
        raise DownloadError(_msg(source, url, f"bad HTTP response: {exc!r}")) from exc


def _range_total(content_range: str | None) -> int | None:
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _response_range(
    source: DatasetSource, url: str, response: http.client.HTTPResponse, offset: int
) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's full size, if known.

    A server that ignores Range answers 200 with the whole file: start is 0.
    """
    if response.status == 206:
        header = response.headers.get("Content-Range", "")
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", header.strip())
        if not match or int(match.group(1)) != offset:
            raise DownloadError(_msg(source, url, f"unexpected Content-Range {header!r}"))
        total = match.group(2)
        return offset, None if total == "*" else int(total)
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _stream(
    source: DatasetSource,
    url: str,
    response: http.client.HTTPResponse,
    part: Path,
    start: int,
    total: int | None,
    progress: bool,
) -> None:
    limit = total if total is not None else source.size
    written = start
    try:
        with open(part, "ab" if start else "wb") as out, tqdm(
            total=limit,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=source.filename,
            disable=not progress,
        ) as bar:
            for chunk in _chunks(source, url, response):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
                if limit is not None and written > limit:
                    break  # oversized: _verify rejects it
    except OSError as exc:  # disk full, permissions...
        raise DownloadError(_msg(source, url, f"cannot write {part}: {exc}")) from exc
    if total is not None and written < total:
        raise DownloadError(
            _msg(
                source,
                url,
                f"connection closed after {written} of {total} bytes; "
                f"run again to resume from {part}",
            )
        )


def _chunks(source: DatasetSource, url: str, response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        try:
            chunk = response.read(_CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(
                _msg(source, url, f"connection lost ({exc!r}); run again to resume")
            ) from exc
        if not chunk:
            return
        yield chunk


def _verify(source: DatasetSource, url: str, path: Path) -> None:
    """Check the finished download against the registry; delete it if wrong."""
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        path.unlink()
        problem = f"size mismatch: got {size} bytes, expected {source.size}; deleted it"
        raise DownloadError(_msg(source, url, problem))
    if source.sha256 is not None:
        digest = _sha256(path)
        if digest != source.sha256.lower():
            path.unlink()
            problem = f"sha256 mismatch: got {digest}, expected {source.sha256}; deleted it"
            raise DownloadError(_msg(source, url, problem))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# --- safe extraction ----------------------------------------------------------


class _UnsafeMember(Exception):
    pass


def _extract(source: DatasetSource, url: str, archive: Path, target: Path) -> None:
    """Unpack into a temporary folder beside ``target``, then rename it into place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        )
    except OSError as exc:
        raise DownloadError(_msg(source, url, f"cannot create {target.parent}: {exc}")) from exc
    try:
        _unpack(source, url, archive, scratch)
        if target.exists():
            target.rmdir()  # an empty leftover; a filled one was returned earlier
        os.replace(_content_root(scratch), target)
    except OSError as exc:
        problem = f"cannot unpack {archive} into {target}: {exc}"
        raise DownloadError(_msg(source, url, problem)) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unpack(source: DatasetSource, url: str, archive: Path, dest: Path) -> None:
    try:
        if source.archive == "zip":
            _unpack_zip(archive, dest)
        else:
            _unpack_tar(archive, dest)
    except _UnsafeMember as exc:
        archive.unlink(missing_ok=True)
        problem = f"refused unsafe archive member {exc}; deleted {archive}"
        raise DownloadError(_msg(source, url, problem)) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        archive.unlink(missing_ok=True)
        problem = f"corrupt archive ({exc}); deleted {archive}"
        raise DownloadError(_msg(source, url, problem)) from exc


def _unpack_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _write_member(dest, info.filename, info.is_dir(), lambda info=info: zf.open(info))


def _unpack_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            if not (member.isfile() or member.isdir()):
                raise _UnsafeMember(f"{member.name!r} (links and special files are not allowed)")
            _write_member(dest, member.name, member.isdir(), lambda m=member: tf.extractfile(m))


def _write_member(
    dest: Path, name: str, is_dir: bool, opener: Callable[[], IO[bytes] | None]
) -> None:
    path = _member_path(dest, name)
    if path is None:
        return
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    source = opener()
    if source is None:
        return
    with source, open(path, "wb") as out:
        shutil.copyfileobj(source, out)


def _member_path(dest: Path, name: str) -> Path | None:
    """Where a member goes, refusing anything that could land outside ``dest``."""
    normalized = name.replace("\\", "/")
    parts = PurePosixPath(normalized).parts
    if normalized.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise _UnsafeMember(repr(name))
    return dest.joinpath(*parts) if parts else None


def _content_root(scratch: Path) -> Path:
    """The dataset folder inside an unpacked archive.

    Upstream archives hold a single top folder (``horse2zebra/``); anything
    else is taken to be the dataset itself.
    """
    entries = [p for p in scratch.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return scratch

"""Tests for pixmorph.data.download against a local HTTP server (no internet)."""

from __future__ import annotations

import errno
import hashlib
import io
import re
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from pixmorph.data import download as dl
from pixmorph.data.download import DatasetSource, DownloadError, download

SPLITS = ("trainA", "trainB", "testA", "testB")


# --- fixtures -------------------------------------------------------------------


def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def _cyclegan_files(name: str) -> dict[str, bytes]:
    files = {}
    for i, split in enumerate(SPLITS):
        for j in range(2):
            files[f"{name}/{split}/{j}.png"] = _png((40 * i, 100 * j, 7))
    return files


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buf.getvalue()


def _tar_gz_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Server:
    """What the test handler serves and how it misbehaves; records requests."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    drop_after: int | None = None  # send this many bytes, then hang up
    extra: bytes = b""  # appended to the body, sent without Content-Length
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _make_handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and not state.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            if state.extra:
                self.close_connection = True
                body += state.extra
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.drop_after is not None:
                body = body[: state.drop_after]
                self.close_connection = True
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server():
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # a short poll interval makes shutdown() return quickly
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch):
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)


@pytest.fixture
def tiny(server, monkeypatch):
    """Register dataset 'tiny' (a CycleGAN-style zip) served by the test server."""
    files = _cyclegan_files("tiny")
    payload = _zip_bytes(files)
    server.files["/tiny.zip"] = payload

    def register(**overrides) -> DatasetSource:
        fields = dict(name="tiny", url=f"{server.url}/tiny.zip", kind="unpaired", archive="zip")
        fields.update(overrides)
        source = DatasetSource(**fields)
        monkeypatch.setitem(dl.DATASETS, "tiny", source)
        return source

    register()
    return files, payload, register


def _assert_extracted(folder: Path, files: dict[str, bytes], name: str) -> None:
    got = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    want = {k.removeprefix(f"{name}/"): v for k, v in files.items()}
    assert got == want
    assert sorted(p.name for p in folder.iterdir()) == sorted(SPLITS)


def _leftovers(root: Path) -> list[str]:
    """Anything besides .downloads at the top of root (dataset or scratch folders)."""
    return sorted(p.name for p in root.iterdir() if p.name != ".downloads") if root.exists() else []


# --- registry -------------------------------------------------------------------


def test_registry_covers_official_datasets():
    names = dl.list_datasets()
    assert names == sorted(names)
    assert "horse2zebra" in names and "pix2pix/facades" in names and "facades" in names
    assert len(names) == 16
    h2z = dl.DATASETS["horse2zebra"]
    assert h2z.url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    assert (h2z.kind, h2z.archive) == ("unpaired", "zip")
    p2p = dl.DATASETS["pix2pix/edges2shoes"]
    assert p2p.url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2shoes.tar.gz"
    assert (p2p.kind, p2p.archive, p2p.filename) == ("paired", "tar.gz", "edges2shoes.tar.gz")
    assert dl.dataset_dir("pix2pix/maps", "d") == Path("d/pix2pix/maps")


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(DownloadError) as info:
        download("horse2giraffe", tmp_path, progress=False)
    message = str(info.value)
    assert "horse2giraffe" in message and "horse2zebra" in message and "pix2pix/facades" in message
    assert "\n" not in message


# --- downloading ----------------------------------------------------------------


def test_fresh_download_extracts_dataset(tmp_path, server, tiny):
    files, _, _ = tiny
    folder = download("tiny", tmp_path / "data", progress=True)
    assert folder == tmp_path / "data" / "tiny"
    _assert_extracted(folder, files, "tiny")
    assert server.requests == [("/tiny.zip", None)]
    # archive, .part and the emptied .downloads are cleaned up, no scratch folders remain
    assert not (tmp_path / "data" / ".downloads").exists()
    assert _leftovers(tmp_path / "data") == ["tiny"]


def test_already_extracted_is_not_downloaded_again(tmp_path, server, tiny):
    download("tiny", tmp_path, progress=False)
    server.files.clear()  # a second request would now 404
    assert download("tiny", tmp_path, progress=False) == tmp_path / "tiny"
    assert len(server.requests) == 1


def test_keep_archive(tmp_path, server, tiny):
    _, payload, _ = tiny
    download("tiny", tmp_path, progress=False, keep_archive=True)
    assert (tmp_path / ".downloads" / "tiny.zip").read_bytes() == payload


def test_resume_from_partial_file(tmp_path, server, tiny):
    files, payload, register = tiny
    register(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    half = len(payload) // 2
    part = tmp_path / ".downloads" / "tiny.zip.part"
    part.parent.mkdir()
    part.write_bytes(payload[:half])

    folder = download("tiny", tmp_path, progress=False)

    assert server.requests == [("/tiny.zip", f"bytes={half}-")]
    _assert_extracted(folder, files, "tiny")
    assert not part.exists()


def test_server_ignoring_range_restarts_download(tmp_path, server, tiny):
    files, payload, _ = tiny
    server.ignore_range = True
    part = tmp_path / ".downloads" / "tiny.zip.part"
    part.parent.mkdir()
    part.write_bytes(b"\xff" * (len(payload) // 2))  # garbage: must be overwritten, not appended to

    folder = download("tiny", tmp_path, progress=False, keep_archive=True)

    assert server.requests[0][1] == f"bytes={len(payload) // 2}-"
    assert (tmp_path / ".downloads" / "tiny.zip").read_bytes() == payload
    _assert_extracted(folder, files, "tiny")


def test_complete_part_answered_416_is_used(tmp_path, server, tiny):
    files, payload, _ = tiny
    part = tmp_path / ".downloads" / "tiny.zip.part"
    part.parent.mkdir()
    part.write_bytes(payload)
    folder = download("tiny", tmp_path, progress=False)
    assert server.requests == [("/tiny.zip", f"bytes={len(payload)}-")]
    _assert_extracted(folder, files, "tiny")


def test_dropped_connection_keeps_part_and_resumes(tmp_path, server, tiny):
    files, payload, _ = tiny
    server.drop_after = 100
    with pytest.raises(DownloadError, match="run again to resume"):
        download("tiny", tmp_path, progress=False)
    part = tmp_path / ".downloads" / "tiny.zip.part"
    assert part.read_bytes() == payload[:100]
    assert _leftovers(tmp_path) == []

    server.drop_after = None
    folder = download("tiny", tmp_path, progress=False)
    assert server.requests[-1] == ("/tiny.zip", "bytes=100-")
    _assert_extracted(folder, files, "tiny")


def test_truncated_file_fails_size_check(tmp_path, server, tiny):
    _, payload, register = tiny
    register(size=len(payload))
    server.files["/tiny.zip"] = payload[: len(payload) // 2]  # honest Content-Length, wrong file
    with pytest.raises(DownloadError) as info:
        download("tiny", tmp_path, progress=False)
    message = str(info.value)
    assert str(len(payload)) in message and "/tiny.zip" in message and "\n" not in message
    assert not (tmp_path / ".downloads").exists()
    assert _leftovers(tmp_path) == []


def test_oversized_response_fails_size_check_and_is_deleted(tmp_path, server, tiny):
    _, payload, register = tiny
    register(size=len(payload))
    server.extra = b"x" * 5000  # no Content-Length: only the registry size can catch it
    with pytest.raises(DownloadError, match="size mismatch"):
        download("tiny", tmp_path, progress=False)
    assert not (tmp_path / ".downloads").exists()
    assert _leftovers(tmp_path) == []


def test_checksum_mismatch_deletes_file(tmp_path, server, tiny):
    _, _, register = tiny
    register(sha256="0" * 64)
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download("tiny", tmp_path, progress=False)
    assert not (tmp_path / ".downloads").exists()
    assert _leftovers(tmp_path) == []


def test_http_404_names_url(tmp_path, server, tiny):
    server.files.clear()
    with pytest.raises(DownloadError) as info:
        download("tiny", tmp_path, progress=False)
    message = str(info.value)
    assert "404" in message and f"{server.url}/tiny.zip" in message and "tiny" in message
    assert "\n" not in message


def test_unreachable_host_gives_offline_message(tmp_path):
    with pytest.raises(DownloadError) as info:
        download("horse2zebra", tmp_path, base_url="http://127.0.0.1:1", progress=False, timeout=5)
    message = str(info.value)
    assert "cannot reach http://127.0.0.1:1/cyclegan/datasets/horse2zebra.zip" in message
    assert str(tmp_path / "horse2zebra") in message and dl.MIRROR_ENV in message
    assert "\n" not in message
    assert not (tmp_path / "horse2zebra").exists() and not (tmp_path / ".downloads").exists()


def test_a_folder_name_with_spaces_or_a_line_break_is_named_as_it_is(tmp_path):
    """The messages collapsed every run of whitespace, the folder's name included: `my  data` was named as
    `my data`, a folder that is not there; a line break in a name is shown escaped, on one line."""
    root = tmp_path / "my  data\nset"
    with pytest.raises(DownloadError) as info:
        download("horse2zebra", root, base_url=(tmp_path / "mirror").as_uri(), progress=False)
    message = str(info.value)
    assert f"unpack it into {tmp_path}/my  data\\nset/horse2zebra" in message and "\n" not in message, message


def test_a_file_mirror_without_the_archive_says_so(tmp_path):
    (tmp_path / "mirror").mkdir()
    with pytest.raises(DownloadError) as info:
        download("horse2zebra", tmp_path / "data", base_url=(tmp_path / "mirror").as_uri(), progress=False)
    message = str(info.value)
    assert "no such file there" in message and "network" not in message and "\n" not in message
    assert not (tmp_path / "data" / ".downloads").exists()


def test_mirror_env_var_replaces_official_host(tmp_path, server, monkeypatch):
    files = _cyclegan_files("horse2zebra")
    server.files["/cyclegan/datasets/horse2zebra.zip"] = _zip_bytes(files)
    monkeypatch.setenv(dl.MIRROR_ENV, server.url + "/")
    folder = download("horse2zebra", tmp_path, progress=False)
    assert server.requests == [("/cyclegan/datasets/horse2zebra.zip", None)]
    _assert_extracted(folder, files, "horse2zebra")


# --- unpacking ------------------------------------------------------------------


def test_pix2pix_tar_gz_goes_under_pix2pix_folder(tmp_path, server):
    files = {
        f"facades/{split}/{i}.png": _png((i, 0, 0)) for split in ("train", "val") for i in range(2)
    }
    server.files["/pix2pix/datasets/facades.tar.gz"] = _tar_gz_bytes(files)
    folder = download("pix2pix/facades", tmp_path, base_url=server.url, progress=False)
    assert folder == tmp_path / "pix2pix" / "facades"
    assert (folder / "train" / "1.png").read_bytes() == files["facades/train/1.png"]
    assert sorted(p.name for p in folder.iterdir()) == ["train", "val"]


def test_tar_with_path_traversal_is_refused(tmp_path, server, monkeypatch):
    root = tmp_path / "root"
    payload = _tar_gz_bytes({"evil/trainA/0.png": _png((1, 2, 3)), "../evil": b"pwned"})
    server.files["/evil.tar.gz"] = payload
    monkeypatch.setitem(
        dl.DATASETS, "evil", DatasetSource("evil", f"{server.url}/evil.tar.gz", "paired", "tar.gz")
    )
    with pytest.raises(DownloadError, match="unsafe"):
        download("evil", root, progress=False)
    assert not (tmp_path / "evil").exists()
    assert _leftovers(root) == []
    assert not (root / ".downloads").exists()


def test_corrupt_archive_is_reported_and_deleted(tmp_path, server, tiny):
    server.files["/tiny.zip"] = b"this is not a zip file" * 10
    with pytest.raises(DownloadError, match="corrupt archive"):
        download("tiny", tmp_path, progress=False)
    assert not (tmp_path / ".downloads").exists()
    assert _leftovers(tmp_path) == []


def test_disk_full_while_unpacking_leaves_no_dataset_folder(tmp_path, server, tiny, monkeypatch):
    _, payload, _ = tiny
    calls = []

    def full_disk(src, dst, *args):
        calls.append(dst)
        if len(calls) > 3:  # a few files made it, then the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device")
        dst.write(src.read())

    monkeypatch.setattr(dl.shutil, "copyfileobj", full_disk)
    with pytest.raises(DownloadError) as info:
        download("tiny", tmp_path, progress=False)
    assert "No space left on device" in str(info.value) and "\n" not in str(info.value)
    assert _leftovers(tmp_path) == []
    # the verified archive is kept so a retry need not download it again
    assert (tmp_path / ".downloads" / "tiny.zip").read_bytes() == payload

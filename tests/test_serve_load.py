"""`pixmorph serve` under hostile and heavy traffic, against real servers on 127.0.0.1 (in this process).

* Fuzzing (hypothesis): random bytes, damaged PNG/JPEG/GIF/... files, random file names and types, random
  form values (model names, path-like strings, directions, unicode) and random numbers of few-shot class
  images sent to /api/translate, /api/fewshot, /api/edit and the primitive route. Every answer is a status
  below 500 with a one-line JSON ``detail`` (or a PNG on 200), and the server answers /api/health after.
* Malformed requests beyond test_serve_api.py's: multipart bodies with a missing, wrong or empty boundary,
  bare-LF headers, a huge part header, parts without a name, non-UTF-8 names, duplicated fields, a line
  break in a file name (shown escaped in the detail); HTTP-level garbage; a client that stops mid-body;
  an ICO file whose frame has more pixels than the limit (refused before that frame is decoded).
* Load: 16 client threads for a few seconds against a server with ``max_pending=4``, mixing translate,
  few-shot, edit and model listing. Every request is answered 200 or 503 (with Retry-After, when the queue
  is full), never a connection error; the queue's count of served requests matches the 200s; clients that
  give up while queued leave no pending slot behind; the process's resident memory does not keep growing
  over a second round of the same load.

Everything sent goes to 127.0.0.1 only, every loop is bounded in count and in time.
"""

from __future__ import annotations

import ctypes
import gc
import io
import socket
import threading
import time
from collections import Counter
from urllib.parse import quote, urlsplit

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from serving import png, running, served_models, served_runs, server  # noqa: F401  (fixtures)

TIMEOUT = (5, 30)  # connect, read: no request of these tests may wait longer
MODEL_NAMES = ["cyclegan", "funit", "edges", "segedges"]
FUZZ = settings(max_examples=70, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- what every answer must look like -----------------------------------------------------------------


def one_line_detail(response: requests.Response) -> str:
    """The JSON ``detail`` of an error answer, checked to be one non-empty line."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.text[:300]
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.strip(), detail
    assert len(detail.splitlines()) == 1, f"detail is not one line: {detail!r}"
    return detail


def check_answer(response: requests.Response) -> None:
    """A status below 500, and a PNG (200) or a one-line JSON detail (anything else)."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 200:
        assert response.headers["content-type"] == "image/png"
        Image.open(io.BytesIO(response.content)).load()
    else:
        one_line_detail(response)


def assert_up(url: str) -> None:
    """Healthy, and its queue drains: a request cut off mid-body may still be leaving it (seen once on a
    busy machine: pending 1 right after the garbage)."""
    for _ in range(50):
        health = requests.get(f"{url}/api/health", timeout=TIMEOUT)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        if health.json()["pending"] == 0:
            return
        time.sleep(0.1)
    assert health.json()["pending"] == 0


# -- files to send ------------------------------------------------------------------------------------


def encoded(fmt: str, width: int = 20, height: int = 16, mode: str = "RGB", seed: int = 0) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


VALID_FILES = [png(), png(16, 16, 1, "L"), encoded("PNG", mode="RGBA"), encoded("PNG", mode="I;16"),
               encoded("JPEG"), encoded("JPEG", mode="L"), encoded("GIF", mode="P"), encoded("BMP"),
               encoded("TIFF"), encoded("WEBP"), encoded("ICO")]


@st.composite
def damaged_files(draw) -> bytes:
    """A valid image file with a few bytes flipped, cut, inserted or repeated."""
    data = bytearray(draw(st.sampled_from(VALID_FILES)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "truncate", "cut", "insert", "repeat"]))
        if op == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[i:i] = data[i:i + draw(st.integers(1, 256))]
    return bytes(data)


# Characters that quoting, escaping or line splitting could trip on: a quote, slashes, percent, controls,
# the characters Python splits lines at (form feed, NEL, U+2028/2029, ...), a right-to-left mark, a BOM.
TRICKY_CHARACTERS = "a.\"\\/%; \x00\x0b\x0c\x1c\x1e\x85\u2028\u2029\u200f\ufeffé"
file_bytes = st.one_of(st.sampled_from(VALID_FILES), damaged_files(), st.binary(max_size=2048))
file_names = st.one_of(st.none(), st.sampled_from(["a.png", "photo.JPG", "", ".png", "../../etc/passwd", "C:\\x\\y.png",
                                                   "a/b/c.png", "%00.png", "x" * 300 + ".png"]),
                       st.text(max_size=40), st.text(TRICKY_CHARACTERS, max_size=12))
content_types = st.one_of(st.none(), st.sampled_from(["image/png", "image/jpeg", "application/octet-stream",
                                                      "text/plain", "image/png; charset=utf-8", "", "*/*",
                                                      "multipart/form-data; boundary=inner"]))
uploads = st.tuples(file_names, file_bytes, content_types)
model_names = st.one_of(st.sampled_from(MODEL_NAMES), st.sampled_from(["../cyclegan", "/etc/passwd", "cyclegan/",
                                                                       "CycleGAN", " cyclegan", "cyclegan\0", ""]),
                        st.text(max_size=30))
directions = st.one_of(st.none(), st.sampled_from(["AtoB", "BtoA", "to:class4", "to:", "", "atob", "AtoB\n"]),
                       st.text(max_size=20))


def as_file(upload: tuple) -> tuple:
    name, data, content_type = upload
    return (name, data) if content_type is None else (name, data, content_type)


@pytest.fixture(scope="module")
def fuzz_server(served_models):
    """The four tiny models behind small limits, so that no damaged header can ask for a long render."""
    from pixmorph.serve.app import create_app
    from pixmorph.serve.uploads import Limits

    limits = Limits(max_body_bytes=2**20, max_pixels=128 * 128, max_class_images=8)
    with running(create_app(served_models, limits)) as url:
        yield url
        assert_up(url)


# -- fuzzing ------------------------------------------------------------------------------------------


@FUZZ
@given(model=st.one_of(st.just("cyclegan"), model_names), direction=directions, image=uploads)
def test_fuzz_translate(fuzz_server, model, direction, image):
    form = {"model": model} if direction is None else {"model": model, "direction": direction}
    check_answer(requests.post(f"{fuzz_server}/api/translate", data=form, files={"image": as_file(image)},
                               timeout=TIMEOUT))


@FUZZ
@given(model=st.one_of(st.just("funit"), model_names), content=uploads,
       class_images=st.lists(st.one_of(st.just(("c.png", png(16, 16, 5, "L"), None)), uploads), max_size=10))
def test_fuzz_fewshot(fuzz_server, model, content, class_images):
    files = [("content", as_file(content))] + [("class_images", as_file(f)) for f in class_images]
    response = requests.post(f"{fuzz_server}/api/fewshot", data={"model": model}, files=files, timeout=TIMEOUT)
    check_answer(response)
    if model == "funit" and len(class_images) > 8 and all(name for name, _, _ in [content, *class_images]):
        assert response.status_code == 413  # all sent as files: counted before any is decoded


@FUZZ
@given(model=st.one_of(st.sampled_from(["edges", "segedges"]), model_names), primitive=uploads,
       edges=st.one_of(st.none(), uploads))
def test_fuzz_edit(fuzz_server, model, primitive, edges):
    files = {"primitive": as_file(primitive)}
    if edges is not None:
        files["edges"] = as_file(edges)
    check_answer(requests.post(f"{fuzz_server}/api/edit", data={"model": model}, files=files, timeout=TIMEOUT))


@settings(FUZZ, max_examples=60)
@given(name=model_names, layer=st.one_of(st.sampled_from(["seg", "edges"]), st.text(max_size=12)))
def test_fuzz_primitive_route(fuzz_server, name, layer):
    response = requests.get(f"{fuzz_server}/api/models/{quote(name, safe='')}/primitive/{quote(layer, safe='')}",
                            timeout=TIMEOUT)
    check_answer(response)


# -- malformed requests -------------------------------------------------------------------------------

BOUNDARY = b"xyz"


def field(name: bytes, value: bytes, boundary: bytes = BOUNDARY) -> bytes:
    return b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"


def file_part(name: bytes, filename: bytes, data: bytes, boundary: bytes = BOUNDARY) -> bytes:
    return (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"; filename="' + filename
            + b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n")


END = b"--xyz--\r\n"
GOOD = field(b"model", b"cyclegan") + file_part(b"image", b"a.png", png()) + END
MULTIPART = "multipart/form-data; boundary=xyz"


def post_raw_body(url: str, body: bytes, content_type: str = MULTIPART) -> requests.Response:
    return requests.post(f"{url}/api/translate", data=body, headers={"Content-Type": content_type}, timeout=TIMEOUT)


def test_the_handmade_body_is_good(server):
    """The bodies below are this one, damaged: it must itself work."""
    response = post_raw_body(server, GOOD)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("body, content_type", [
    pytest.param(GOOD, "multipart/form-data", id="no boundary parameter"),
    pytest.param(GOOD, "multipart/form-data; boundary=abc", id="wrong boundary"),
    pytest.param(GOOD, "multipart/form-data; boundary=", id="empty boundary"),
    pytest.param(GOOD.replace(b"\r\n", b"\n"), MULTIPART, id="bare LF line ends"),
    pytest.param(GOOD.replace(b'name="model"', b'name="model"; x="' + b"a" * 200_000 + b'"'), MULTIPART,
                 id="200 kB part header line"),
    pytest.param(b"--xyz\r\nContent-Disposition: form-data\r\n\r\ncyclegan\r\n" + GOOD, MULTIPART,
                 id="part without name"),
    pytest.param(b"--xyz\r\nContent-Type: text/plain\r\n\r\ncyclegan\r\n" + GOOD, MULTIPART,
                 id="part without Content-Disposition"),
    pytest.param(field(b"mo\xff\xfedel", b"cyclegan") + file_part(b"image", b"a.png", png()) + END, MULTIPART,
                 id="non-UTF-8 field name"),
    pytest.param(field(b"model", b"cycle\xffgan") + file_part(b"image", b"a.png", png()) + END, MULTIPART,
                 id="non-UTF-8 model name"),
    pytest.param(field(b"model", b"cyclegan") + file_part(b"im\xc0ge", b"a.png", png()) + END, MULTIPART,
                 id="non-UTF-8 file field name"),
    pytest.param(field(b"model", b"cyclegan") + field(b"model", b"funit") + file_part(b"image", b"a.png", png()) + END,
                 MULTIPART, id="duplicated model, the last a few-shot model"),
    pytest.param(field(b"model", b"cyclegan") + file_part(b"image", b"a.png", png())
                 + file_part(b"image", b"b.png", b"not an image") + END, MULTIPART,
                 id="duplicated image, the last not an image"),
    pytest.param(field(b"model", b"cyclegan") + field(b"image", png()) + END, MULTIPART, id="image sent as a field"),
    pytest.param(file_part(b"model", b"m.txt", b"cyclegan") + file_part(b"image", b"a.png", png()) + END, MULTIPART,
                 id="model sent as a file"),
    pytest.param(b"--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\ncyclegan" + b"\r\n" * 5, MULTIPART,
                 id="headers never end"),
    pytest.param(field(b"model", b"cyclegan") + file_part(b"image", b"a.png", png())[:-40], MULTIPART,
                 id="body ends inside the file"),
    pytest.param(b"".join(field(b"f%d" % i, b"v") for i in range(1500)) + GOOD, MULTIPART, id="1500 fields"),
    pytest.param(field(b"model", b"c" * (2 * 2**20)) + file_part(b"image", b"a.png", png()) + END, MULTIPART,
                 id="2 MiB field value"),
])
def test_malformed_multipart_gets_a_4xx(server, body, content_type):
    response = post_raw_body(server, body, content_type)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    one_line_detail(response)
    assert_up(server)


def test_the_last_of_duplicated_fields_counts(server):
    """Of a field sent twice the server takes the last, as for any form: the answer follows from it."""
    body = field(b"model", b"funit") + field(b"model", b"cyclegan") + file_part(b"image", b"a.png", png()) + END
    assert post_raw_body(server, body).status_code == 200
    body = field(b"model", b"cyclegan") + field(b"model", b"funit") + file_part(b"image", b"a.png", png()) + END
    response = post_raw_body(server, body)
    assert response.status_code == 422 and "'funit'" in one_line_detail(response)


@pytest.mark.parametrize("filename, shown", [(b"two\nlines.png", "two\\nlines.png"),
                                             (b"tab\there.png", "tab\\there.png"),
                                             (b"line\xe2\x80\xa8sep.png", "line\\u2028sep.png"),
                                             (b"nel\xc2\x85.png", "nel\\x85.png")])
@pytest.mark.parametrize("data, status", [(b"", 400), (b"not an image", 415), (png()[:100], 415)])
def test_a_file_name_cannot_break_the_one_line_detail(server, filename, shown, data, status):
    """The name a client gives its file is quoted in the error; a line feed in it (a bare LF is legal inside
    a multipart header), or any other line break, is shown escaped, not sent as a second line."""
    body = field(b"model", b"cyclegan") + file_part(b"image", filename, data) + END
    response = post_raw_body(server, body)
    assert response.status_code == status
    assert one_line_detail(response).startswith(shown + ": ")


def exchange(url: str, request: bytes, half_close: bool = False, timeout: float = 5) -> bytes:
    """Send raw bytes to the server and return what it answers until it closes (or ``timeout`` passes)."""
    where = urlsplit(url)
    received = b""
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return received


def http_request(body: bytes, extra_headers: bytes = b"", content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    return (b"POST /api/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: " + MULTIPART.encode() + b"\r\n" + extra_headers
            + b"Content-Length: %d\r\n\r\n" % length + body)


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"HELLO THERE\r\n\r\n", id="not HTTP"),
    pytest.param(b"POST /api/translate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", id="bad chunk size"),
    pytest.param(http_request(GOOD, b"Transfer-Encoding: chunked\r\n"), id="Content-Length and chunked"),
    pytest.param(http_request(GOOD, content_length=-1), id="negative Content-Length"),
])
def test_http_garbage_gets_a_4xx(server, request_bytes):
    status_line = exchange(server, request_bytes).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), status_line
    assert_up(server)


def test_a_client_that_stops_mid_body_leaves_the_server_as_it_was(server):
    """Half a body, then the client closes: no answer is owed, nothing is left pending, nothing breaks."""
    request = http_request(GOOD[:300], content_length=len(GOOD))
    exchange(server, request, half_close=True)
    exchange(server, request, timeout=0.5)  # the client gives up while the server waits for the rest
    assert exchange(server, http_request(GOOD)).startswith(b"HTTP/1.1 200")
    assert_up(server)


def test_an_ico_frame_is_not_decoded_past_the_pixel_limit(served_models, monkeypatch):
    """An ICO file declares a small icon and holds a PNG of many more pixels: Pillow decodes that frame
    while opening the file, so the pixel limit must already apply then (413 without the pixels)."""
    import struct

    from PIL import ImageFile

    from pixmorph.serve.app import create_app
    from pixmorph.serve.uploads import Limits

    buffer = io.BytesIO()
    Image.new("RGB", (1000, 1000), (200, 10, 10)).save(buffer, format="PNG")
    frame = buffer.getvalue()
    ico = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(frame), 22) + frame
    decoded = []
    load = ImageFile.ImageFile.load

    def recording_load(self):
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    with running(create_app(served_models, Limits(max_pixels=40 * 40))) as url:
        response = requests.post(f"{url}/api/translate", data={"model": "cyclegan"},
                                 files={"image": ("icon.ico", ico)}, timeout=TIMEOUT)
    assert response.status_code == 413 and "icon.ico" in one_line_detail(response)
    assert all(w * h <= 2 * 40 * 40 for w, h in decoded), f"decoded {decoded} before refusing"


# -- load ---------------------------------------------------------------------------------------------

CLIENTS = 16
MAX_PENDING = 4
ROUND_SECONDS = 4.0
MAX_REQUESTS_PER_CLIENT = 2000
BACKOFF = 0.02  # seconds a client waits after a 503
RSS_GROWTH_LIMIT = 16 * 2**20  # over the second round: ~2 MiB seen; keeping every upload adds ~25 MiB


def settled_rss() -> int:
    """This process's resident memory (VmRSS) once garbage is collected and the C heap hands its free
    memory back, so that what is cached between rounds does not count as growth."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the bound is generous enough without it
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_requests(url: str) -> list[tuple[str, str, dict]]:
    """(kind, URL, requests keyword arguments): one of each kind the page makes."""
    seg = requests.get(f"{url}/api/models/segedges/primitive/seg", timeout=TIMEOUT).content
    seg_edges = requests.get(f"{url}/api/models/segedges/primitive/edges", timeout=TIMEOUT).content
    edges = requests.get(f"{url}/api/models/edges/primitive/edges", timeout=TIMEOUT).content
    return [  # noise images (~50 kB a request, they do not compress): a leak of the uploads would show
        ("translate", f"{url}/api/translate",
         {"data": {"model": "cyclegan", "direction": "BtoA"}, "files": {"image": ("a.png", png(128, 128, 1))}}),
        ("fewshot", f"{url}/api/fewshot",
         {"data": {"model": "funit"}, "files": [("content", ("c.png", png(128, 128, 2, "L"))),
                                                ("class_images", ("k1.png", png(128, 128, 3, "L"))),
                                                ("class_images", ("k2.png", png(128, 128, 4, "L")))]}),
        ("edit", f"{url}/api/edit", {"data": {"model": "edges"}, "files": {"primitive": ("e.png", edges)}}),
        ("edit seg+edges", f"{url}/api/edit",
         {"data": {"model": "segedges"}, "files": {"primitive": ("s.png", seg), "edges": ("e.png", seg_edges)}}),
        ("models", f"{url}/api/models", {}),
    ]


def load_round(url: str, seconds: float) -> list[tuple[str, int | str, str]]:
    """CLIENTS threads, each sending the kinds in turn for ``seconds``: (kind, status or error, what the
    answer showed of itself). Only these short records are kept, so that the memory measured is the server's."""
    kinds = load_requests(url)
    results: list = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        mine = []
        with requests.Session() as session:
            for n in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    break
                kind, target, kwargs = kinds[(index + n) % len(kinds)]
                try:
                    if kind == "models":
                        response = session.get(target, timeout=TIMEOUT)
                    else:
                        response = session.post(target, timeout=TIMEOUT, **kwargs)
                except requests.RequestException as err:
                    mine.append((kind, f"{type(err).__name__}: {err}", ""))
                    continue
                mine.append((kind, response.status_code, shown(response)))
                if response.status_code == 503:
                    time.sleep(BACKOFF)  # shorter than Retry-After, to keep the queue full
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not any(t.is_alive() for t in threads), "a client thread did not finish"
    return results


def shown(response: requests.Response) -> str:
    """What the load test checks of an answer: a 503's Retry-After and detail, another answer's type."""
    if response.status_code == 503:
        return f"Retry-After {response.headers.get('Retry-After')}: {one_line_detail(response)}"
    return response.headers.get("content-type", "")


def check_round(results) -> Counter:
    statuses = Counter((kind, status) for kind, status, _ in results)
    errors = [status for _, status, _ in results if not isinstance(status, int)]
    assert not errors, f"{len(errors)} requests failed: {errors[:3]}"
    assert {status for _, status in statuses} <= {200, 503}, statuses
    for kind, status, answer in results:
        if status == 503:
            assert kind != "models"  # only model work is queued
            assert answer.startswith("Retry-After 1: busy"), answer
        else:
            assert answer == ("application/json" if kind == "models" else "image/png"), (kind, answer)
    return statuses


def test_load_gets_answers_and_503s_and_keeps_memory(served_models):
    from pixmorph.serve.app import create_app

    with running(create_app(served_models, max_pending=MAX_PENDING)) as url:
        before = requests.get(f"{url}/api/health", timeout=TIMEOUT).json()["served"]
        warm = check_round(load_round(url, ROUND_SECONDS))
        rss_warm = settled_rss()
        statuses = check_round(load_round(url, ROUND_SECONDS))
        rss_after = settled_rss()
        health = requests.get(f"{url}/api/health", timeout=TIMEOUT).json()

    both = warm + statuses
    print(f"\nload, {CLIENTS} clients, max_pending {MAX_PENDING}, 2 x {ROUND_SECONDS:g} s: {dict(both)}; "
          f"RSS {rss_warm / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB")
    for kind in ("translate", "fewshot", "edit", "edit seg+edges", "models"):
        assert both[(kind, 200)] > 0, f"no {kind} request was served: {dict(both)}"
    assert sum(n for (_, status), n in both.items() if status == 503) > 0, "16 clients never filled a queue of 4"
    work_done = sum(n for (kind, status), n in both.items() if status == 200 and kind != "models")
    assert health["served"] - before == work_done and health["pending"] == 0
    assert rss_after - rss_warm < RSS_GROWTH_LIMIT, f"RSS grew by {(rss_after - rss_warm) / 2**20:.0f} MiB"


def test_clients_that_give_up_while_queued_free_their_places(served_models):
    """Clients time out while their requests wait for the model: once the work is done the queue is empty
    again (no place is held by a request whose client left) and the next request is served."""
    from pixmorph.serve.app import create_app

    with running(create_app(served_models, max_pending=MAX_PENDING)) as url:
        kwargs = {"data": {"model": "cyclegan"}, "files": {"image": ("a.png", png(96, 96, 1))}}
        gave_up = []

        def impatient() -> None:
            for _ in range(5):
                try:
                    requests.post(f"{url}/api/translate", timeout=(5, 0.01), **kwargs)
                except requests.Timeout:
                    gave_up.append(1)

        threads = [threading.Thread(target=impatient, daemon=True) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert gave_up
        deadline = time.monotonic() + 30
        while requests.get(f"{url}/api/health", timeout=TIMEOUT).json()["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert_up(url)
        assert requests.post(f"{url}/api/translate", timeout=TIMEOUT, **kwargs).status_code == 200

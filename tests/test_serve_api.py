"""`pixmorph serve`'s HTTP API against a real server on 127.0.0.1: every endpoint, every limit."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import requests
from PIL import Image

from serving import png, served_models, served_runs, server  # noqa: F401  (fixtures)


def image_of(response: requests.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_models_describe_what_each_can_do(server):
    models = {m["name"]: m for m in requests.get(f"{server}/api/models").json()}
    assert {n: m["task"] for n, m in models.items()} == {"cyclegan": "translate", "funit": "fewshot", "edges": "edit",
                                                        "segedges": "edit"}
    assert models["cyclegan"]["directions"] == ["AtoB", "BtoA"]
    assert models["edges"]["primitive"]["kind"] == "edges" and models["edges"]["image_size"] == [64, 48]
    seg = models["segedges"]["primitive"]
    assert seg["layers"] == ["seg", "edges"] and len(seg["palette"]) >= 2
    assert requests.get(f"{server}/api/health").json()["status"] == "ok"
    page = requests.get(server + "/")
    assert page.status_code == 200 and "<canvas" in page.text
    schema = requests.get(f"{server}/openapi.json").json()
    assert {"/api/translate", "/api/fewshot", "/api/edit", "/api/models"} <= set(schema["paths"])


def test_page_loads_nothing_from_elsewhere(server):
    """Offline: no script, style or image from another host."""
    text = requests.get(server + "/").text
    assert "src=\"http" not in text and "href=\"http" not in text and "@import" not in text


def test_translate_keeps_the_size_and_changes_the_image(server):
    data = png(24, 20)
    out = image_of(requests.post(f"{server}/api/translate", data={"model": "cyclegan", "direction": "BtoA"},
                                 files={"image": ("in.png", data, "image/png")}))
    assert out.size == (24, 20)
    assert np.abs(np.asarray(out, np.int16) - np.asarray(Image.open(io.BytesIO(data)), np.int16)).mean() > 5


def test_translate_takes_gray_rgba_and_16_bit_files(server):
    for mode in ("L", "RGBA", "I;16"):
        buffer = io.BytesIO()
        array = np.random.default_rng(1).integers(0, 255, (18, 22, 4), dtype=np.uint8)
        image = {"L": Image.fromarray(array[..., 0]), "RGBA": Image.fromarray(array, "RGBA"),
                 "I;16": Image.fromarray(array[..., 0].astype(np.uint16) * 257)}[mode]
        image.save(buffer, format="PNG")
        out = image_of(requests.post(f"{server}/api/translate", data={"model": "cyclegan"},
                                     files={"image": (f"{mode}.png", buffer.getvalue(), "image/png")}))
        assert out.size == (22, 18)


def test_translate_side_by_side_takes_the_half_the_direction_starts_from(server):
    """An A|B pair (pix2pix's dataset files) could only be translated whole: side_by_side cuts it as
    `pixmorph translate --side-by-side` does, BtoA from the right half."""
    pair = Image.open(io.BytesIO(png(48, 24, seed=7)))
    right = io.BytesIO()
    pair.crop((24, 0, 48, 24)).save(right, format="PNG")

    def translated(name: str, data: bytes, **fields) -> requests.Response:
        return requests.post(f"{server}/api/translate", data={"model": "cyclegan", "direction": "BtoA", **fields},
                             files={"image": (name, data, "image/png")})

    buffer = io.BytesIO()
    pair.save(buffer, format="PNG")
    halved = translated("pair.png", buffer.getvalue(), side_by_side="true")
    assert "X-Pixmorph-Warning" not in halved.headers
    assert np.array_equal(np.asarray(image_of(halved)), np.asarray(image_of(translated("right.png", right.getvalue()))))
    square = translated("square.png", png(24, 24), side_by_side="true")
    assert image_of(square).size == (12, 24)
    assert unquote(square.headers["X-Pixmorph-Warning"]).startswith(
        "24x24, not a side-by-side pair (A|B, twice as wide as high): only its right half was translated")
    narrow = translated("narrow.png", png(1, 24), side_by_side="true")
    assert narrow.status_code == 422 and narrow.json()["detail"] == "1x24: width 1: expected A and B side by side (A|B)"


def test_fewshot_renders_at_the_training_size_and_depends_on_the_class(server):
    content = ("content.png", png(16, 16, 1, "L"), "image/png")
    a = image_of(requests.post(f"{server}/api/fewshot", data={"model": "funit"},
                               files=[("content", content), ("class_images", ("a.png", png(16, 16, 2, "L")))]))
    b = image_of(requests.post(f"{server}/api/fewshot", data={"model": "funit"},
                               files=[("content", content), ("class_images", ("b1.png", png(30, 20, 3))),
                                      ("class_images", ("b2.png", png(16, 16, 4, "L")))]))
    assert a.size == b.size == (16, 16)
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_edit_renders_the_training_primitive_and_an_edited_one(server):
    primitive = requests.get(f"{server}/api/models/edges/primitive/edges")
    assert primitive.status_code == 200
    drawn = Image.open(io.BytesIO(primitive.content))
    assert drawn.size == (64, 48) and drawn.mode == "L"
    out = image_of(requests.post(f"{server}/api/edit", data={"model": "edges"},
                                 files={"primitive": ("edges.png", primitive.content, "image/png")}))
    assert out.size == (64, 48)
    edited = np.asarray(drawn).copy()
    edited[10:30, 20:24] = 0  # a stroke
    buffer = io.BytesIO()
    Image.fromarray(edited).save(buffer, format="PNG")
    changed = image_of(requests.post(f"{server}/api/edit", data={"model": "edges"},
                                     files={"primitive": ("edited.png", buffer.getvalue(), "image/png")}))
    assert not np.array_equal(np.asarray(out), np.asarray(changed))


def test_seg_and_edges_model_takes_both_files(server):
    seg = requests.get(f"{server}/api/models/segedges/primitive/seg").content
    edges = requests.get(f"{server}/api/models/segedges/primitive/edges").content
    out = image_of(requests.post(f"{server}/api/edit", data={"model": "segedges"},
                                 files={"primitive": ("seg.png", seg), "edges": ("edges.png", edges)}))
    assert out.size == (64, 48)
    missing = requests.post(f"{server}/api/edit", data={"model": "segedges"}, files={"primitive": ("seg.png", seg)})
    assert missing.status_code == 422 and "edges" in missing.json()["detail"]
    assert requests.get(f"{server}/api/models/edges/primitive/seg").status_code == 404


@pytest.mark.parametrize("request_args, status, words", [
    ({"data": {"model": "nope"}, "files": {"image": ("a.png", png())}}, 404, ["unknown model 'nope'", "cyclegan"]),
    ({"data": {"model": "../../etc/passwd"}, "files": {"image": ("a.png", png())}}, 404, ["unknown model"]),
    ({"data": {"model": "funit"}, "files": {"image": ("a.png", png())}}, 422, ["funit", "not one for translate"]),
    ({"data": {"model": "cyclegan", "direction": "sideways"}, "files": {"image": ("a.png", png())}}, 422,
     ["direction 'sideways'", "AtoB, BtoA"]),
    ({"data": {"model": "cyclegan"}}, 400, ["missing form field 'image'"]),
    ({"files": {"image": ("a.png", png())}}, 400, ["missing form field 'model'"]),
    ({"data": {"model": "cyclegan"}, "files": {"image": ("empty.png", b"")}}, 400, ["empty.png: empty file"]),
    # curl -F image=a.png (for -F image=@a.png) sends the name as text; said as that, not as pydantic's
    # "Value error, Expected UploadFile, received: <class 'str'>"
    ({"data": {"model": "cyclegan", "image": "a.png"}}, 400,
     ["form field 'image' is text, not a file: send the file's content (curl: -F image=@FILE)"]),
    ({"data": {"image": "a.png"}, "files": {"model": ("m.png", png())}}, 400,
     ["form field 'model' is a file (m.png), not text: send a value (curl: -F model=VALUE); "
      "form field 'image' is text"]),
    ({"data": {"model": "cyclegan"}, "files": {"image": ("notes.png", b"hello, not an image")}}, 415,
     ["notes.png", "not an image"]),
    ({"data": {"model": "cyclegan"}, "files": {"image": ("cut.png", png(64, 64)[:300])}}, 415, ["cut.png"]),
])
def test_bad_requests_get_a_status_and_one_line(server, request_args, status, words):
    response = requests.post(f"{server}/api/translate", **request_args)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    for word in words:
        assert word in detail


def test_limits(served_models):
    from pixmorph.serve.app import create_app
    from pixmorph.serve.uploads import Limits
    from serving import running

    limits = Limits(max_body_bytes=50_000, max_pixels=40 * 40, max_class_images=2)
    with running(create_app(served_models, limits)) as url:
        big = requests.post(f"{url}/api/translate", data={"model": "cyclegan"},
                            files={"image": ("big.png", b"\0" * 60_000)})
        assert big.status_code == 413 and "over the limit of 50000 bytes" in big.json()["detail"]
        assert big.json()["detail"].endswith("(pixmorph serve --max-upload-mb 0.047684)")  # 50000 bytes again

        def chunks():  # no Content-Length: counted as it arrives
            boundary = b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"s.png\"\r\n\r\n"
            yield boundary
            for _ in range(100):
                yield b"\0" * 1000
        streamed = requests.post(f"{url}/api/translate", data=chunks(),
                                 headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert streamed.status_code == 413

        wide = requests.post(f"{url}/api/translate", data={"model": "cyclegan"},
                             files={"image": ("wide.png", png(41, 40))})
        assert wide.status_code == 413 and "wide.png" in wide.json()["detail"] and "1600" in wide.json()["detail"]
        assert wide.json()["detail"].endswith("(pixmorph serve --max-pixels 1640 takes it)")
        assert requests.post(f"{url}/api/translate", data={"model": "cyclegan"},
                             files={"image": ("ok.png", png(40, 40))}).status_code == 200

        many = requests.post(f"{url}/api/fewshot", data={"model": "funit"},
                             files=[("content", ("c.png", png(16, 16)))] + [("class_images", (f"{i}.png", png(16, 16)))
                                                                              for i in range(3)])
        assert many.status_code == 413 and many.json()["detail"] == (
            "3 class images: the limit is 2 (pixmorph serve --max-class-images 2)")


@pytest.mark.parametrize("width, height, limit", [(41, 40, 1600), (400, 300, 1600), (40, 40, 1599)])
def test_an_image_over_the_pixel_limit_is_told_the_limit_that_takes_it(width, height, limit):
    """The 413 for too many pixels named the --max-pixels the server has, not the one that would take the image
    (refused by Pillow on opening it, far or just over the limit, or by pixmorph's own check of its size)."""
    from fastapi import HTTPException

    from pixmorph.serve.uploads import Limits, decode

    with pytest.raises(HTTPException) as refused:
        decode(png(width, height), "wide.png", Limits(max_pixels=limit))
    assert refused.value.status_code == 413
    assert refused.value.detail.startswith("wide.png: image ") and f" {limit} pixels" in refused.value.detail
    assert refused.value.detail.endswith(f"(pixmorph serve --max-pixels {width * height} takes it)")


@pytest.mark.parametrize("given", ["0.001", "0.05", "2.5", "32", "1000"])
def test_a_body_over_the_limit_is_told_the_upload_option_as_given(given):
    """`--max-upload-mb 0.001` was echoed back as 0.000999451 (its bytes, rounded down, in MB)."""
    import anyio

    from pixmorph.serve.uploads import BodyLimit

    sent = []

    async def send(message):
        sent.append(message)

    limit = int(float(given) * 2**20)  # as `pixmorph serve` makes it
    scope = {"type": "http", "headers": [(b"content-length", str(limit + 1).encode())]}
    anyio.run(BodyLimit(None, limit), scope, None, send)
    assert sent[0]["status"] == 413
    detail = json.loads(sent[1]["body"])["detail"]
    assert detail == f"request body of {limit + 1} bytes is over the limit of {limit} bytes (pixmorph serve " \
                     f"--max-upload-mb {given})"


def test_malformed_multipart_is_answered(server):
    for body, content_type in [(b"garbage", "multipart/form-data; boundary=xyz"),
                               (b"--xyz\r\nbroken", "multipart/form-data; boundary=xyz"),
                               (b"model=cyclegan", "application/x-www-form-urlencoded"),
                               (b"{}", "application/json"),
                               (b"", "multipart/form-data")]:
        response = requests.post(f"{server}/api/translate", data=body, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
    assert requests.get(f"{server}/api/health").json()["status"] == "ok"


def test_queue_places_and_one_call_at_a_time():
    import anyio

    from pixmorph.serve.work_queue import QueueFull, WorkQueue

    async def main():
        queue = WorkQueue(max_pending=2)
        started = anyio.Event()
        release = anyio.Event()
        running_now, most = [0], [0]
        results = []

        def slow():
            running_now[0] += 1
            most[0] = max(most[0], running_now[0])
            anyio.from_thread.run_sync(started.set)
            anyio.from_thread.run(release.wait)
            running_now[0] -= 1
            return "done"

        async def call():
            async with queue.place():
                results.append(await queue.run(slow))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call)
            await started.wait()
            tasks.start_soon(call)
            await anyio.sleep(0.05)
            assert queue.pending == 2 and queue.full
            with pytest.raises(QueueFull, match="busy: 2 requests are queued or running"):
                async with queue.place():
                    pass
            release.set()
        assert results == ["done", "done"] and queue.pending == 0 and queue.served == 2
        assert most[0] == 1  # the second call waited for the first

    anyio.run(main)


def test_a_model_is_named_after_its_run_however_it_is_given(tmp_path):
    from pixmorph.serve.models import model_name

    run = tmp_path / "horse2zebra run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "weights.safetensors").write_bytes(b"")
    for given in (run, run / "checkpoint", run / "checkpoint" / "weights.safetensors"):
        assert model_name(given) == "horse2zebra-run"
    (tmp_path / "demo" / "run").mkdir(parents=True)
    assert model_name(tmp_path / "demo" / "run") == "demo"


def test_serve_command_refuses_what_it_cannot_serve(tmp_path, served_runs):
    from click.testing import CliRunner

    from pixmorph.serve.models import load_models

    with pytest.raises(ValueError, match="two models named 'x'"):
        load_models([f"x={served_runs.cyclegan}", f"x={served_runs.funit}"])
    with pytest.raises(Exception, match="no such checkpoint"):
        load_models([str(tmp_path / "missing")])
    from pixmorph.cli import cli
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--max-pixels" in result.output


def test_serve_options_set_the_apps_limits(served_runs, monkeypatch):
    """Each limit the 413 detail names an option for is one: --max-class-images did not exist (64 was fixed)."""
    import uvicorn
    from click.testing import CliRunner

    from pixmorph.cli import cli
    from pixmorph.serve import app as serve_app

    made = {}
    monkeypatch.setattr(serve_app, "create_app", lambda models, limits, **kw: made.update(limits=limits, **kw))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: None)
    result = CliRunner().invoke(cli, ["serve", str(served_runs.funit), "--port", "0", "--max-class-images", "5",
                                      "--max-pixels", "1000", "--max-upload-mb", "2", "--max-pending", "3"])
    assert result.exit_code == 0, result.output
    limits = made["limits"]
    assert (limits.max_class_images, limits.max_pixels, limits.max_body_bytes, made["max_pending"]) == (5, 1000, 2 * 2**20, 3)


def test_an_upload_limit_under_one_byte_is_refused(monkeypatch, capsys):
    """`--max-upload-mb 1e-7` made a limit of 0 bytes, which answered every request 413."""
    from conftest import run_main

    code, _, err = run_main(monkeypatch, capsys, "serve", "nowhere", "--port", "0", "--max-upload-mb", "1e-7")
    assert code == 2 and err.strip().splitlines() == [
        "error: Invalid value for --max-upload-mb: 1e-07 MB is less than one byte (see `pixmorph serve --help`)"], err


def test_load_models_takes_paths_and_one_run_alone(served_runs):
    """From Python: a Path in the list was a TypeError ('PosixPath' is not iterable), and one run given alone was
    read character by character ('/: not a pixmorph checkpoint')."""
    from pixmorph.serve.models import load_models, model_name

    run = Path(served_runs.cyclegan)
    assert list(load_models([run])) == list(load_models(run)) == list(load_models(str(run))) == [model_name(run)]
    assert list(load_models([f"x={run}"])) == ["x"]
    with pytest.raises(ValueError, match=r"the model name before '=' is empty: give NAME=PATH, or PATH alone"):
        load_models([f"={run}"])  # (it served the run under its folder's name without a word)


def test_a_stalled_body_is_answered_408_and_a_full_queue_503(served_models, monkeypatch):
    import socket
    from urllib.parse import urlparse

    from pixmorph.serve.app import create_app
    from pixmorph.serve.uploads import Limits
    from pixmorph.serve.work_queue import WorkQueue
    from serving import running

    with running(create_app(served_models, Limits(idle_timeout=0.5))) as url:
        where = urlparse(url)
        with socket.create_connection((where.hostname, where.port), timeout=10) as s:
            s.sendall(b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      b"Content-Length: 1000\r\n\r\n--b\r\n")  # then nothing
            answer = b""
            while chunk := s.recv(4096):  # the server closes the connection after answering
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"stopped arriving for 0.5 s" in answer

        monkeypatch.setattr(WorkQueue, "full", property(lambda self: True))  # refused before the body is read
        busy = requests.post(f"{url}/api/translate", data={"model": "cyclegan"}, files={"image": ("a.png", png())})
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1" and "busy" in busy.json()["detail"]
        assert requests.get(f"{url}/api/health").status_code == 200  # GETs still answered


def test_a_failing_model_gives_a_one_line_500_and_the_server_goes_on(served_models, monkeypatch):
    from pixmorph.serve.app import create_app
    from pixmorph.serve.models import ServedModel
    from serving import running

    def broken(self, image, direction, side_by_side):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    monkeypatch.setattr(ServedModel, "translate", broken)
    with running(create_app(served_models)) as url:
        answer = requests.post(f"{url}/api/translate", data={"model": "cyclegan"}, files={"image": ("a.png", png())})
        assert answer.status_code == 500
        assert answer.json()["detail"] == "server error: RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"
        assert requests.get(f"{url}/api/health").json()["pending"] == 0


def test_an_edit_warning_names_the_upload_not_a_temporary_file(served_models):
    coloured = png(64, 48, seed=5)  # a colour image given to an edges model
    with pytest.warns(UserWarning, match=r"^coloured\.png: a colour image, but this edges model"):
        image = served_models["edges"].edit(coloured, None, ("coloured.png", None))
    assert image.size == (64, 48)


def test_serve_says_a_port_in_use_before_loading_anything(tmp_path):
    import socket

    from pixmorph.serve.cli import listen

    taken = listen("127.0.0.1", 0)
    port = taken.getsockname()[1]
    with pytest.raises(ValueError, match=rf"^cannot listen on 127.0.0.1:{port}: Address already in use$"):
        listen("127.0.0.1", port)
    with pytest.raises(ValueError, match=r"^cannot listen on 999.1.1.1:0: 999.1.1.1 is no address or host name of this "
                                         r"machine$"):  # it said "Unknown error -2"
        listen("999.1.1.1", 0)
    taken.close()
    free = listen("127.0.0.1", 0)
    assert free.getsockname()[1] > 0 and free.type == socket.SOCK_STREAM
    free.close()


def test_an_edit_model_whose_training_files_are_gone_starts_blank(served_runs, tmp_path):
    import shutil

    from pixmorph.serve.models import load_models

    moved = tmp_path / "moved"
    shutil.copytree(served_runs.deepsim_edges, moved)
    config = moved / "checkpoint" / "config.json"
    import json
    saved = json.loads(config.read_text())
    saved["run"]["data"]["root"] = str(tmp_path / "gone.png")
    config.write_text(json.dumps(saved))
    model = load_models([str(moved)], precision="fp32")["moved"]
    assert model.describe()["primitive"]["from_training"] is False
    edges = np.asarray(model.primitive["edges"])
    assert edges.shape == (48, 64) and (edges == 255).all()  # white: no line yet


def test_a_warning_reaches_the_client(server):
    answer = requests.post(f"{server}/api/edit", data={"model": "edges"},
                           files={"primitive": ("photo.png", png(64, 48, seed=7))})  # colour, to an edges model
    assert answer.status_code == 200
    assert answer.headers["X-Pixmorph-Warning"].startswith("photo.png: a colour image, but this edges model")
    plain = requests.post(f"{server}/api/translate", data={"model": "cyclegan"}, files={"image": ("a.png", png())})
    assert "X-Pixmorph-Warning" not in plain.headers


def test_a_warning_naming_a_non_ascii_file_comes_back_whole(server):
    answer = requests.post(f"{server}/api/edit", data={"model": "edges"},
                           files={"primitive": ("café 100%.png", png(64, 48, seed=7))})
    header = answer.headers["X-Pixmorph-Warning"]
    assert header.isascii()
    assert unquote(header).startswith("café 100%.png: a colour image, but this edges model")


CAR_SEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepsim" / "car" / "train_seg" / "car.png"


@pytest.mark.skipif(not CAR_SEG.is_file(), reason="../shared/data/deepsim not here")
def test_the_palette_offers_the_regions_of_an_antialiased_segmentation():
    """The paper's car segmentation has 2,134 colours, most of them its borders' blends: the edit view's
    palette is its five regions, without their near-copies."""
    from pixmorph.serve.models import region_colours

    seg = np.asarray(Image.open(CAR_SEG).convert("RGB").resize((160, 80), Image.Resampling.BICUBIC))
    colours = region_colours(seg)
    regions = [(253, 253, 253), (253, 13, 0), (248, 253, 6), (0, 253, 9), (52, 0, 252)]
    assert [tuple(c) for c in colours.tolist()] == regions  # and no more: the borders' blends are no labels
    assert all(np.abs(colours[i].astype(int) - colours[:i].astype(int)).max(axis=1).min() > 32
               for i in range(1, len(colours)))


def _moved_run(run: Path, to: Path, **changes: str) -> Path:
    """A copy of a run folder whose saved config points elsewhere: ``root`` (the image) and data.options."""
    import json
    import shutil

    shutil.copytree(run, to)
    config = to / "checkpoint" / "config.json"
    saved = json.loads(config.read_text())
    data = saved["run"]["data"]
    data["root"] = changes.pop("root", data["root"])
    data["options"].update(changes)
    config.write_text(json.dumps(saved))
    return to


def test_a_missing_training_segmentation_is_named_not_the_photo_that_is_there(served_runs, served_models, tmp_path):
    from pixmorph.serve.models import load_models

    seg = tmp_path / "cat_seg.png"
    served_models["segedges"].primitive["seg"].save(seg)
    run = _moved_run(served_runs.deepsim_seg_edges, tmp_path / "catseg", primitive=str(seg))
    assert load_models([str(run)], precision="fp32")["catseg"].primitive_from_training  # the file is there
    seg.unlink()
    model = load_models([str(run)], precision="fp32")["catseg"]
    note = model.primitive_note()
    assert note.startswith(f"{seg} (its training segmentation) is not where it was: the page's seg layer starts "
                           "blank, with 16 generic colours to paint; put it back")
    assert str(served_runs.photo) not in note
    assert model.describe()["primitive"]["from_training"] is False
    edges = served_models["segedges"].primitive["edges"]  # computed from the photo, which is still there
    assert np.array_equal(np.asarray(model.primitive["edges"]), np.asarray(edges))


def test_a_computed_primitive_comes_back_from_the_runs_copy_with_its_palette(served_runs, served_models, tmp_path):
    """The CLI keeps a computed primitive in RUN/primitive: with the training image gone, the page still gets it,
    and the palette of its segmentation (not 16 generic colours)."""
    import shutil

    from pixmorph import load
    from pixmorph.cli_deepsim import save_training_primitive
    from pixmorph.serve.models import load_models

    photo = Path(shutil.copy(served_runs.photo, tmp_path / "cat.png"))
    run = _moved_run(served_runs.deepsim_seg_edges, tmp_path / "catseg", root=str(photo))
    photo.unlink()
    gone = load_models([str(run)], precision="fp32")["catseg"]
    assert gone.primitive_note() == (f"{photo} (its training image) is not where it was: the page's canvas starts "
                                     "blank, with 16 generic colours to paint; put it back to edit the training "
                                     "primitive")
    shutil.copy(served_runs.photo, photo)
    config = load(run).config
    config.train.out = str(run)
    save_training_primitive(config)  # as `pixmorph train deepsim` does, into RUN/primitive
    photo.unlink()
    model = load_models([str(run)], precision="fp32")["catseg"]
    trained = served_models["segedges"]
    assert model.primitive_note() is None and model.describe()["primitive"]["from_training"] is True
    assert model.palette == trained.palette
    for layer in ("seg", "edges"):
        assert np.array_equal(np.asarray(model.primitive[layer]), np.asarray(trained.primitive[layer]))


def test_a_given_segmentation_comes_back_from_the_runs_copy_when_it_has_moved(tmp_path):
    """`pixmorph train deepsim --seg FILE` keeps the segmentation as the model sees it in RUN/primitive: when
    FILE has moved (or the run went to another machine) the page still starts from it, with its palette, where
    it started blank with 16 generic colours."""
    from click.testing import CliRunner

    from pixmorph.cli import cli
    from pixmorph.serve.models import load_models
    from serving import DEEPSIM_TINY

    photo, seg, run = tmp_path / "photo.png", tmp_path / "seg.png", tmp_path / "run"
    _regions((256, 192), 1, [(90, 120, 200), (200, 60, 40), (40, 160, 60), (230, 200, 30)]).save(seg)
    _regions((256, 192), 1, [(120, 140, 210), (180, 80, 60), (70, 150, 80), (220, 190, 90)]).save(photo)
    tiny = [f"--set=model.{k}={v}" for k, v in DEEPSIM_TINY.items()]
    result = CliRunner().invoke(cli, ["train", "deepsim", "--image", str(photo), "--seg", str(seg), "--out", str(run),
                                      "--steps", "1", "--device", "cpu", "--set=train.tensorboard=false", *tiny])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "computed" not in result.output  # nothing was computed: no hint to edit a copy
    [there] = load_models([str(run)], precision="fp32").values()
    seg.rename(tmp_path / "moved.png")
    [moved] = load_models([str(run)], precision="fp32").values()
    assert moved.primitive_note() is None and len(moved.palette) == 4 and moved.palette == there.palette
    assert np.array_equal(np.asarray(moved.primitive["seg"]), np.asarray(there.primitive["seg"]))

    # A start over (--overwrite) killed before its first save: RUN/primitive is aside, and a file in its place
    # would be the killed start's; the checkpoint is still this run's, and so is the primitive the page gets.
    from pixmorph.train import set_aside

    set_aside.set_aside(run)
    (run / "primitive").mkdir()
    Image.new("RGB", (256, 192), (9, 9, 9)).save(run / "primitive" / "photo_seg.png")
    [killed] = load_models([str(run)], precision="fp32").values()
    assert np.array_equal(np.asarray(killed.primitive["seg"]), np.asarray(there.primitive["seg"]))


def _regions(size: tuple[int, int], scale: int, values: list) -> Image.Image:
    """Four regions (a background, a disc, a bar, a triangle) drawn ``scale`` times larger, for smoothing down."""
    from PIL import ImageDraw

    mode = "L" if isinstance(values[0], int) else "RGB"
    image = Image.new(mode, (size[0] * scale, size[1] * scale), values[0])
    draw = ImageDraw.Draw(image)
    draw.ellipse([v * scale for v in (20, 20, 140, 150)], fill=values[1])
    draw.rectangle([v * scale for v in (120, 60, 240, 180)], fill=values[2])
    draw.polygon([(x * scale, y * scale) for x, y in ((10, 180), (100, 100), (200, 190))], fill=values[3])
    return image.resize(size, Image.Resampling.LANCZOS) if scale > 1 else image


@pytest.mark.parametrize("case", ["antialiased", "jpeg", "gray jpeg"])
def test_the_palette_is_the_label_colours_of_a_smoothed_or_jpeg_segmentation(case, tmp_path):
    """Anti-aliasing and JPEG make hundreds of colours of a segmentation's four labels (a gray JPEG of label
    indices: every value a label, coloured by the fixed palette); the palette offers the four."""
    from pixmorph.data import primitives as P
    from pixmorph.images import to_pil
    from pixmorph.serve.models import region_colours

    size = (256, 192)
    if case == "gray jpeg":
        labels = [0, 85, 170, 255]
        _regions(size, 1, labels).save(tmp_path / "seg.jpg", quality=75)
        expected = {tuple(P.PALETTE[v]) for v in labels}
    else:
        labels = [(250, 250, 250), (230, 20, 10), (20, 200, 30), (40, 10, 240)]
        _regions(size, 4, labels).save(tmp_path / "seg.jpg", quality=75 if case == "jpeg" else 100)
        expected = set(labels)
    seg = np.asarray(to_pil(P.load_seg(tmp_path / "seg.jpg", size)))  # as the edit model's canvas holds it
    assert len(np.unique(seg.reshape(-1, 3), axis=0)) > 40
    colours = [tuple(c) for c in region_colours(seg).tolist()]
    assert len(colours) == 4
    if case == "gray jpeg":
        assert set(colours) == expected
    else:  # JPEG shifts a region's colour a little
        assert all(min(np.abs(np.subtract(c, e)).max() for c in colours) <= 8 for e in expected)


def test_the_palette_of_an_exact_segmentation_keeps_its_small_labels():
    from pixmorph.serve.models import region_colours

    seg = np.zeros((100, 100, 3), np.uint8)
    seg[40:42, 40:42] = (255, 0, 0)  # 4 pixels, no interior: a label all the same
    assert [tuple(c) for c in region_colours(seg).tolist()] == [(0, 0, 0), (255, 0, 0)]


def test_a_pix2pix_upload_shaped_like_an_a_b_pair_gets_a_warning(tmp_path):
    """A pix2pix dataset file (A|B side by side) uploaded to the page was translated whole without a word: the
    output is a translation of both halves squeezed into one. It says which half to give (here A, the left)."""
    import warnings

    from pixmorph.serve.models import load_models
    from test_user_errors import make_checkpoint

    [model] = load_models([str(make_checkpoint(tmp_path / "p2p"))], device="cpu", precision="fp32").values()
    with pytest.warns(UserWarning, match=r"^64x32, about twice as wide as high: .* give its A half \(the left one\)"):
        model.translate(Image.new("RGB", (64, 32)), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.translate(Image.new("RGB", (32, 32)), None)

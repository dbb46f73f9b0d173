"""The HTTP API and the page, as one FastAPI app: ``create_app(load_models([...]))``.

Endpoints (the OpenAPI description is at ``/openapi.json``):

* ``GET /`` the page; ``GET /api/health``; ``GET /api/models`` what is served;
  ``GET /api/models/{name}/primitive/{layer}`` an edit model's training primitive (PNG);
* ``POST /api/translate`` (model, direction, image) -> PNG;
* ``POST /api/fewshot`` (model, content, class_images x K) -> PNG;
* ``POST /api/edit`` (model, primitive, edges for seg+edges models) -> PNG.

Errors are JSON ``{"detail": "one line"}``: 400 a missing or empty field, 404 an unknown model, 413 a body
or image over the limits, 415 a file that does not decode as an image, 422 a request the model cannot do
(wrong task, unknown direction, wrong primitive), 503 the queue is full.
"""

from __future__ import annotations

import logging
import warnings
from importlib import resources
from typing import Annotated, Literal, Mapping
from urllib.parse import quote

import anyio
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from pydantic import BaseModel
from starlette.datastructures import UploadFile as StarletteUploadFile

from pixmorph.images import ImageReadError
from pixmorph.serve.models import ServedModel, png_bytes
from pixmorph.serve.uploads import BodyLimit, Limits, decode, printable_name, read_upload
from pixmorph.serve.work_queue import QueueFull, WorkQueue

log = logging.getLogger("pixmorph.serve")
PNG = {"content": {"image/png": {}}, "description": "the result, a PNG image"}


class PrimitiveInfo(BaseModel):
    kind: Literal["edges", "seg", "seg+edges"]
    layers: list[str]
    palette: list[list[int]]
    from_training: bool  # False: the training files were not found, the primitive is blank


class ModelInfo(BaseModel):
    name: str
    method: str
    task: Literal["translate", "fewshot", "edit"]
    step: int
    channels: int
    directions: list[str] | None = None
    image_size: list[int] | None = None
    primitive: PrimitiveInfo | None = None


class Health(BaseModel):
    status: str
    models: int
    pending: int
    served: int


def create_app(models: Mapping[str, ServedModel], limits: Limits = Limits(), max_pending: int = 16) -> FastAPI:
    app = FastAPI(title="pixmorph", summary="Image-to-image translation: translate, few-shot, edit",
                  docs_url=None, redoc_url=None)  # their pages load scripts from a CDN; the API works offline
    queue = WorkQueue(max_pending)
    page = resources.files("pixmorph.serve").joinpath("page.html").read_text(encoding="utf-8")

    def served(name: str, task: str) -> ServedModel:
        model = models.get(name)
        if model is None:
            raise HTTPException(404, f"unknown model {name!r}: this server has {', '.join(models)}")
        if model.task != task:
            raise HTTPException(422, f"model {name!r} is a {model.method} model ({model.task}), not one for {task}")
        return model

    def with_warnings(work, *args) -> tuple[bytes, list[str]]:
        """The work's PNG and its warnings (a colour image given as an edge map, say): the client is told
        them too, in the X-Pixmorph-Warning header (see :func:`header_text`)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = png_bytes(work(*args))
        notes = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
        for note in notes:
            log.warning(note)
        return png, notes

    async def run(work, *args) -> Response:
        try:
            png, notes = await queue.run(with_warnings, work, *args)
        except (ValueError, ImageReadError) as err:
            raise HTTPException(422, " ".join(str(err).split())) from None
        headers = {"X-Pixmorph-Warning": header_text(" | ".join(notes))} if notes else {}
        return Response(png, media_type="image/png", headers=headers)

    async def decoded(upload: UploadFile, field: str, mode: str = "RGB") -> tuple[Image.Image, bytes, str]:
        """An uploaded file read and decoded (in a worker thread: decoding is work too)."""
        data, name = await read_upload(upload, limits, field)
        return await anyio.to_thread.run_sync(decode, data, name, limits, mode), data, name

    @app.middleware("http")
    async def admit_or_refuse(request: Request, call_next):
        """A request for model work takes its place in the queue on arrival, or is answered 503 before its
        body is read and its images decoded."""
        if request.method != "POST":
            return await call_next(request)
        try:
            async with queue.place():
                return await call_next(request)
        except QueueFull as full:
            return JSONResponse({"detail": str(full)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = dict.fromkeys(form_problem(error) for error in exc.errors())  # K text class_images: said once
        return JSONResponse({"detail": "; ".join(problems)}, status_code=400)

    @app.exception_handler(Exception)
    async def one_line_server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)  # the traceback, in the log
        return JSONResponse({"detail": f"server error: {type(exc).__name__}: {' '.join(str(exc).split())}"},
                            status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/api/health")
    async def health() -> Health:
        return Health(status="ok", models=len(models), pending=queue.pending, served=queue.served)

    @app.get("/api/models")
    async def list_models() -> list[ModelInfo]:
        return [ModelInfo(**m.describe()) for m in models.values()]

    @app.get("/api/models/{name}/primitive/{layer}", responses={200: PNG})
    async def primitive(name: str, layer: Literal["seg", "edges"]) -> Response:
        model = served(name, "edit")
        if layer not in model.primitive:
            raise HTTPException(404, f"model {name!r} takes {model.primitive_kind}: it has no {layer} layer")
        return Response(png_bytes(model.primitive[layer]), media_type="image/png")

    @app.post("/api/translate", responses={200: PNG})
    async def translate(model: Annotated[str, Form(description="a served model's name")],
                        image: Annotated[UploadFile, File(description="the image to translate")],
                        direction: Annotated[str | None, Form(description="AtoB, BtoA, to:CLASS, ...")] = None,
                        side_by_side: Annotated[bool, Form(description="the image is an A|B pair (pix2pix's "
                                                           "layout): translate the half the direction starts "
                                                           "from")] = False
                        ) -> Response:
        m = served(model, "translate")
        picture, _, _ = await decoded(image, "image", m.translator.image_mode)
        return await run(m.translate, picture, direction, side_by_side)

    @app.post("/api/fewshot", responses={200: PNG})
    async def fewshot(model: Annotated[str, Form(description="a served FUNIT model's name")],
                      content: Annotated[UploadFile, File(description="the image whose content is kept")],
                      class_images: Annotated[list[UploadFile], File(description="K >= 1 images of the class")]
                      ) -> Response:
        m = served(model, "fewshot")
        if len(class_images) > limits.max_class_images:
            raise HTTPException(413, f"{len(class_images)} class images: the limit is {limits.max_class_images} "
                                     f"(pixmorph serve --max-class-images {limits.max_class_images})")
        mode = m.translator.image_mode
        content_image, _, _ = await decoded(content, "content", mode)
        examples = [(await decoded(f, "class_images", mode))[0] for f in class_images]
        return await run(m.fewshot, content_image, examples)

    @app.post("/api/edit", responses={200: PNG})
    async def edit(model: Annotated[str, Form(description="a served DeepSIM model's name")],
                   primitive: Annotated[UploadFile, File(description="the edited edge map or segmentation")],
                   edges: Annotated[UploadFile | None, File(description="seg+edges models: the edited edges")] = None
                   ) -> Response:
        m = served(model, "edit")
        _, primitive_data, primitive_name = await decoded(primitive, "primitive")  # an image within the limits
        edges_data = edges_name = None
        if edges is not None:
            _, edges_data, edges_name = await decoded(edges, "edges")
        if m.primitive_kind == "seg+edges" and edges_data is None:
            raise HTTPException(422, f"model {model!r} takes seg+edges: send the segmentation as 'primitive' "
                                     "and its edge map as 'edges'")
        return await run(m.edit, primitive_data, edges_data, (primitive_name, edges_name))

    app.add_middleware(BodyLimit, limit=limits.max_body_bytes, idle_timeout=limits.idle_timeout)
    return app


def form_problem(error: Mapping) -> str:
    """One validation error of a request as the client can act on it: a missing field, a file field sent as text
    (curl's ``-F image=x.png`` for ``-F image=@x.png``) or a text field sent as a file, else the field and what
    was wrong with its value."""
    loc = error.get("loc", ())
    field = str(loc[1]) if len(loc) > 1 else "request"
    value = error.get("input")
    if error.get("type") == "missing":
        return f"missing form field {field!r}"
    if isinstance(value, str) and "UploadFile" in str(error.get("msg")):
        return f"form field {field!r} is text, not a file: send the file's content (curl: -F {field}=@FILE)"
    if isinstance(value, StarletteUploadFile):
        sent = f" ({printable_name(value.filename)})" if value.filename else ""
        return f"form field {field!r} is a file{sent}, not text: send a value (curl: -F {field}=VALUE)"
    return f"{'.'.join(str(x) for x in loc[1:]) or 'request'}: {error.get('msg')}"


# Printable ASCII passes as it is; "%" and everything else (a file named café.png) is percent-encoded UTF-8.
_HEADER_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) != "%")


def header_text(text: str) -> str:
    """``text`` as an HTTP header value (ASCII only): ``urllib.parse.unquote`` or JavaScript's
    ``decodeURIComponent`` gives it back."""
    return quote(text, safe=_HEADER_SAFE)

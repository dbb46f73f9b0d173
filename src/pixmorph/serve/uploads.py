"""What a request may send: a bounded body, and files that are images because they decode as images.

The body limit is applied while the body arrives (by its Content-Length, and by counting when it has
none), so an oversized upload is refused before it is buffered. Each file is then decoded with the same
reader as files on disk (:func:`pixmorph.images.decode_image`): the pixel count is checked from the
header before any pixel is decoded, and the name in an error is the name the client gave.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import anyio

from fastapi import HTTPException, UploadFile
from PIL import Image

from pixmorph.images import ImageReadError, ImageTooLarge, decode_image


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 32 * 2**20  # one request, all its files together
    max_pixels: int = 4096 * 4096  # one image
    max_class_images: int = 64  # few-shot K
    idle_timeout: float = 60.0  # seconds a request body may stop arriving before its end


class BodyTooLarge(Exception):
    pass


class BodyStalled(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 without being read whole, and
    one that stops arriving for ``idle_timeout`` seconds before its end is answered 408 (a client that
    sends half a body and waits would otherwise hold its connection and buffer forever)."""

    def __init__(self, app, limit: int, idle_timeout: float = 60.0):
        self.app, self.limit, self.idle_timeout = app, limit, idle_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send, 413, f"request body of {int(declared)} bytes is over the limit of "
                                                 f"{self.limit} bytes{self._option}")
        received = 0
        body_done = response_started = False
        refusal: tuple[int, str] | None = None

        async def counting_receive():
            nonlocal received, body_done, refusal
            if body_done:  # after the body, receive() waits for a disconnect: no time limit on that
                return await receive()
            try:
                with anyio.fail_after(self.idle_timeout):
                    message = await receive()
            except TimeoutError:
                refusal = 408, f"request body stopped arriving for {self.idle_timeout:g} s"
                raise BodyStalled() from None
            received += len(message.get("body", b""))
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if received > self.limit:
                refusal = 413, f"request body is over the limit of {self.limit} bytes{self._option}"
                raise BodyTooLarge()
            return message

        async def guarded_send(message):
            # The framework may turn our exception into a 400 of its own: answer 413 in its place.
            nonlocal response_started
            if refusal:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._refuse(send, *refusal)
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except (BodyTooLarge, BodyStalled):
            if not response_started:
                await self._refuse(send, *refusal)

    @property
    def _option(self) -> str:
        """Where the limit is set, for whoever runs the server."""
        return f" (pixmorph serve --max-upload-mb {megabytes(self.limit)})"

    @staticmethod
    async def _refuse(send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def megabytes(limit: int) -> str:
    """``limit`` bytes as the --max-upload-mb that gives it (``int(mb * 2**20)`` bytes), with the fewest
    decimals: what the user gave (0.001, where the bytes in MB are 0.000999451) or a figure as short."""
    mb = limit / 2**20
    shortest = next((round(mb, d) for d in range(20) if int(round(mb, d) * 2**20) == limit), mb)
    return f"{shortest:.15g}"


def printable_name(name: str) -> str:
    """A client's file name as it may appear in a one-line message: each character that would break the
    line or not show (a line feed, U+2028, a control character) written as its escape, ``\\n``."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in name)


async def read_upload(upload: UploadFile, limits: Limits, field: str) -> tuple[bytes, str]:
    """The bytes of one uploaded file and the name to call it by (printable); an empty file is refused."""
    name = printable_name(upload.filename) if upload.filename else field
    data = await upload.read()
    if not data:
        raise HTTPException(400, f"{name}: empty file ({field})")
    return data, name


def decode(data: bytes, name: str, limits: Limits, mode: str = "RGB") -> Image.Image:
    """An uploaded file as a decoded 8-bit image, or an HTTP error naming it: 413 for too many pixels,
    415 for anything that does not decode as an image."""
    try:
        return decode_image(io.BytesIO(data), name, mode=mode, max_pixels=limits.max_pixels)
    except ImageTooLarge as err:
        takes_it = f"{err.pixels} takes it" if err.pixels else f"is {limits.max_pixels}"  # the server's option to raise
        raise HTTPException(413, f"{err} (pixmorph serve --max-pixels {takes_it})") from None
    except ImageReadError as err:
        raise HTTPException(415, str(err)) from None
    except Exception as err:  # whatever else a damaged file makes a decoder raise: still the file's problem
        raise HTTPException(415, f"{name}: not a readable image ({' '.join(str(err).split())})") from None

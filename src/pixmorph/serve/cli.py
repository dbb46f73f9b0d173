"""The ``pixmorph serve`` command."""

from __future__ import annotations

import ipaddress
import os
import socket

import click

from pixmorph.cli_types import FiniteFloat


@click.command("serve")
@click.argument("checkpoints", nargs=-1, required=True, metavar="[NAME=]RUN...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines in (there is no authentication).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 takes a free one (printed).")
@click.option("--device", default="auto", show_default=True, help="auto (a GPU when there is one), cpu, cuda, cuda:N, mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: bf16 on CUDA and on CPUs with AMX or AVX512-BF16, else fp32.")
@click.option("--max-upload-mb", default=32.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Largest request body (all its files together).")
@click.option("--max-pixels", default=4096 * 4096, show_default=True, type=click.IntRange(min=1),
              help="Largest image, in pixels.")
@click.option("--max-class-images", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most class images (K) in one few-shot request.")
@click.option("--max-pending", default=16, show_default=True, type=click.IntRange(min=1),
              help="Requests queued or running at once; more are answered 503 (busy).")
def serve_command(checkpoints: tuple[str, ...], host: str, port: int, device: str, precision: str,
                  max_upload_mb: float, max_pixels: int, max_class_images: int, max_pending: int) -> None:
    """Serve run folders over HTTP: a page and a JSON/multipart API (/openapi.json) to translate images,
    translate few-shot (FUNIT) and edit primitives (DeepSIM). RUN is a run folder (or its checkpoint/);
    NAME=RUN names its model, else it is the folder's name (its parent's for .../run and .../checkpoint)."""
    import uvicorn

    from pixmorph.serve.app import create_app
    from pixmorph.serve.models import load_models
    from pixmorph.serve.uploads import Limits

    if int(max_upload_mb * 2**20) < 1:  # (a limit of 0 bytes would refuse every request)
        raise click.BadParameter(f"{max_upload_mb:g} MB is less than one byte", param_hint="--max-upload-mb")
    listening = listen(host, port)  # first: a port in use is said before the models load
    models = load_models(checkpoints, device=device, precision=precision)
    limits = Limits(max_body_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels,
                    max_class_images=max_class_images)
    app = create_app(models, limits, max_pending=max_pending)
    for m in models.values():
        click.echo(f"model {m.name}: {m.method} ({m.task}), step {m.translator.step}, {m.path}")
        note = m.primitive_note() if m.task == "edit" else None
        if note:
            click.echo(f"  {note}", err=True)
    if not _is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use the models "
                   "(no authentication)", err=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving at http://{shown}:{listening.getsockname()[1]}/ (Ctrl-C stops)")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or a one-line error (a port in use, an address not here)."""
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as err:
        if err.errno is not None and err.errno < 0:  # the resolver's (EAI_*), which os.strerror calls "Unknown error -2"
            raise ValueError(f"cannot listen on {host}:{port}: {host} is no address or host name of this machine") \
                from None
        raise ValueError(f"cannot listen on {host}:{port}: {os.strerror(err.errno) if err.errno else err}") from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

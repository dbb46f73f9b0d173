"""A corpus of awkward and broken image files, run through every command that reads images.

The corpus is generated here (PIL, numpy and raw bytes; nothing committed): a zero-byte file, a truncated
PNG, a truncated JPEG, text named .png, a decompression bomb (a real 30000x30000 1-bit PNG: ~110 KB on disk,
900 megapixels decoded), 1x1, 100000x1, a 64x8 strip, 16-bit gray, palette, palette with transparency,
CMYK JPEG, an animated GIF (3 frames), an EXIF-rotated JPEG, grayscale, RGBA, LA, and PNG bytes under a
.jpg name. Each case has an expected outcome: "handled" (the command works with it) or "refused" (the
command stops with an error naming it); a few (command, case) pairs accept either.

Commands, called in-process through the console entry point ``pixmorph.cli.main`` (sys.argv set; stdout,
stderr and the exit code as a user would get them), and two cases again through ``python -m pixmorph`` in
a subprocess, to show the in-process runs see what a user sees:

- ``pixmorph translate RUN FILE --out DIR`` (CycleGAN),
- ``pixmorph fewshot RUN --content FILE --class-images FILE --out DIR`` (FUNIT: the file as the content image,
  and as the class image),
- ``pixmorph edit RUN FILE --out DIR`` (DeepSIM on edges),
- ``pixmorph eval GENERATED --ref REF --pairs`` (the file among GENERATED, a same-named reference in REF;
  unreadable files stop eval with their names, as the README's Evaluation section says),
- ``pixmorph train cyclegan --data DIR --steps 1`` (the file in trainA; a few cases, tests/test_bad_input.py
  has the rest of bad training data),
- ``pixmorph train deepsim --image FILE --steps 1`` (the file as DeepSIM's single training image).

Asserted. Handled: exit code 0 and an output of the right size (translate: the image's upright size;
fewshot: the model's 16x16; edit: the upright size rounded to multiples of 16; eval: both pairs scored;
train: a checkpoint at step 1). Refused: a non-zero exit code; stderr's last non-empty line is the error,
names the file and says what is wrong, and every line before it is a one-line ``warning:`` (or a progress
bar). Always: no "Traceback" in the output (pixmorph has no --debug flag that would show one).

``pytest -s tests/test_bad_input_corpus.py`` prints a summary table: (case, command) pairs tried, handled,
refused with a one-line error, and mishandled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import traceback
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from pixmorph.cli import main
from pixmorph.data.primitives import round_size
from serving import DEEPSIM_TINY, served_runs  # noqa: F401  (fixture)

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}

HANDLED, REFUSED, EITHER = "handled", "refused", "handled or refused"
PROGRESS = re.compile(r"\s*\d+%\|")  # a progress bar's line (tqdm, on stderr)
W, H = 40, 36  # the ordinary images' size: not square, not a multiple of 4 or 16, >= 32 once rounded to 16s


# ---------------------------------------------------------------------------
# The corpus


def noise(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    array = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return array[:, :, 0] if channels == 1 else array


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def build_empty(path: Path) -> None:
    path.write_bytes(b"")


def build_truncated_png(path: Path) -> None:
    Image.fromarray(noise(64, 48)).save(path)
    cut_in_half(path)


def build_truncated_jpeg(path: Path) -> None:
    Image.fromarray(noise(64, 64)).save(path, quality=95)  # header intact, pixel data cut
    cut_in_half(path)


def build_not_an_image(path: Path) -> None:
    path.write_text("These are my notes, not a picture.\n" * 20)


def build_bomb(path: Path) -> None:
    """A valid 30000x30000 1-bit PNG, all black: ~110 KB on disk, 900 megapixels decoded."""
    side = 30000
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte, then 8 pixels a byte
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data)
                     + png_chunk(b"IEND", b""))
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # Pillow would refuse it too
    try:
        with Image.open(path) as im:  # a real PNG of that size
            assert im.size == (side, side)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def build_rgb(width: int, height: int) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        Image.fromarray(noise(width, height)).save(path)
    return build


def build_gray16(path: Path) -> None:
    Image.fromarray(np.linspace(0, 65535, W * H).reshape(H, W).astype(np.uint16)).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16"), im.mode  # really 16 bits a pixel on disk


def build_palette(path: Path) -> None:
    Image.fromarray(noise(W, H)).quantize(16).save(path)


def build_palette_transparency(path: Path) -> None:
    Image.fromarray(noise(W, H)).quantize(16).save(path, transparency=3)


def build_cmyk_jpeg(path: Path) -> None:
    Image.fromarray(noise(W, H, 4), "CMYK").save(path, quality=95)


def build_animated_gif(path: Path) -> None:
    frames = [Image.fromarray(noise(W, H, seed=s)).quantize(32) for s in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3


def build_exif_rotated_jpeg(path: Path) -> None:
    """Stored 40 wide x 24 high with EXIF orientation 6 (turn 90 degrees clockwise to view): upright 24x40."""
    img = Image.fromarray(noise(40, 24))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif, quality=95)


def build_gray(path: Path) -> None:
    Image.fromarray(noise(W, H, 1)).save(path)


def build_rgba(path: Path) -> None:
    Image.fromarray(noise(W, H, 4), "RGBA").save(path)


def build_la(path: Path) -> None:
    Image.fromarray(noise(W, H, 2), "LA").save(path)


def build_png_named_jpg(path: Path) -> None:
    Image.fromarray(noise(W, H)).save(path, format="PNG")


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    build: Callable[[Path], None]
    expected: str  # HANDLED or REFUSED
    upright: tuple[int, int] | None = None  # handled: (width, height) as the image is shown
    problem: str = ""  # refused: what the error line must say besides the file's name

    @property
    def file_name(self) -> str:
        return f"{self.name}{self.suffix}"


CORPUS = [
    Case("empty", ".png", build_empty, REFUSED, problem="empty file"),
    Case("truncated_png", ".png", build_truncated_png, REFUSED, problem="truncated"),
    Case("truncated_jpeg", ".jpg", build_truncated_jpeg, REFUSED, problem="truncated"),
    Case("not_an_image", ".png", build_not_an_image, REFUSED, problem="not an image"),
    Case("bomb", ".png", build_bomb, REFUSED, problem="too large"),
    Case("one_pixel", ".png", build_rgb(1, 1), HANDLED, (1, 1)),
    Case("wide_100000x1", ".png", build_rgb(100000, 1), HANDLED, (100000, 1)),
    Case("strip_64x8", ".png", build_rgb(64, 8), HANDLED, (64, 8)),
    Case("gray16", ".png", build_gray16, HANDLED, (W, H)),
    Case("palette", ".png", build_palette, HANDLED, (W, H)),
    Case("palette_transparency", ".png", build_palette_transparency, HANDLED, (W, H)),
    Case("cmyk", ".jpg", build_cmyk_jpeg, HANDLED, (W, H)),
    Case("animated", ".gif", build_animated_gif, HANDLED, (W, H)),
    Case("exif_rotated", ".jpg", build_exif_rotated_jpeg, HANDLED, (24, 40)),
    Case("gray", ".png", build_gray, HANDLED, (W, H)),
    Case("rgba", ".png", build_rgba, HANDLED, (W, H)),
    Case("la", ".png", build_la, HANDLED, (W, H)),
    Case("png_named_jpg", ".jpg", build_png_named_jpg, HANDLED, (W, H)),
]
CASES = {case.name: case for case in CORPUS}

# (command, case) pairs whose right outcome is either: training DeepSIM on an image too small for its
# generator may upscale it or refuse it, as long as a refusal is the one line naming the file.
EXPECTED: dict[tuple[str, str], str] = {("train deepsim", "one_pixel"): EITHER,
                                        ("train deepsim", "strip_64x8"): EITHER}

# Known mishandlings, (command, case) -> what goes wrong; xfail(strict=True), so a fix turns them red.
KNOWN: dict[tuple[str, str], str] = {}

# What each (command, case) pair did, for the summary.
OUTCOMES: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Every case built once, as ``<name><suffix>`` in one folder; tests use copies."""
    folder = tmp_path_factory.mktemp("corpus")
    for case in CORPUS:
        case.build(folder / case.file_name)
    return {case.name: folder / case.file_name for case in CORPUS}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if not OUTCOMES:
        return
    by_command: dict[str, Counter] = {}
    for (command, _), outcome in OUTCOMES.items():
        by_command.setdefault(command, Counter())[outcome] += 1
    rows = [*by_command.items(), ("all", Counter(OUTCOMES.values()))]
    print("\n\nbad-input corpus, (case, command) pairs:")
    print(f"{'command':24s} {'tried':>5s} {'handled':>8s} {'refused, one line':>18s} {'mishandled':>11s}")
    for command, counts in rows:
        print(f"{command:24s} {sum(counts.values()):5d} {counts[HANDLED]:8d} {counts[REFUSED]:18d} "
              f"{counts['mishandled']:11d}")
    for (command, name), outcome in sorted(OUTCOMES.items()):
        if outcome == "mishandled":
            print(f"mishandled: {command} {name}: {KNOWN.get((command, name), 'not a known case')}")


def cases_for(command: str, names: list[str] | None = None) -> list:
    """The corpus (or the named cases) as pytest params for ``command``, known mishandlings xfail(strict)."""
    chosen = CORPUS if names is None else [CASES[n] for n in names]
    return [pytest.param(case, id=case.name,
                         marks=[pytest.mark.xfail(strict=True, reason=KNOWN[(command, case.name)])]
                         if (command, case.name) in KNOWN else [])
            for case in chosen]


# ---------------------------------------------------------------------------
# Running a command and judging what it did


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_main(args: list, monkeypatch, capsys) -> Result:
    """``pixmorph ARGS`` through the console entry point, in this process: the exit code, stdout and stderr
    a user would get. An exception escaping ``main`` is a traceback and exit code 1 there; a warning escaping
    it is Python's two-line warning on stderr: both are added to stderr here."""
    monkeypatch.setattr(sys, "argv", ["pixmorph", *map(str, args)])
    capsys.readouterr()
    code, extra = 0, ""
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("default")  # what python shows by default:
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception:  # noqa: BLE001  (what the interpreter would print)
            code, extra = 1, traceback.format_exc()
    captured = capsys.readouterr()
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in escaped)
    return Result(code, captured.out, captured.err + shown + extra)


def run_console(args: list) -> Result:
    """``python -m pixmorph ARGS`` in a subprocess, with this tree's code."""
    done = subprocess.run([sys.executable, "-m", "pixmorph", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=ENV)
    return Result(done.returncode, done.stdout, done.stderr)


def judge(result: Result, case: Case, named: Path, command: str, check_output: Callable[[], None]) -> None:
    """Assert that ``command`` dealt with ``case`` as expected; record the outcome for the summary."""
    OUTCOMES[(command, case.name)] = "mishandled"
    expected = EXPECTED.get((command, case.name), case.expected)
    everything = result.out + result.err
    assert "Traceback" not in everything, f"{command} {case.name}: a traceback\n{everything[-3000:]}"
    if expected == HANDLED or (expected == EITHER and result.code == 0):
        assert result.code == 0, f"{command} {case.name}: exit code {result.code}\n{everything[-3000:]}"
        check_output()
        OUTCOMES[(command, case.name)] = HANDLED
        return
    assert result.code != 0, f"{command} {case.name}: exit code 0 for a bad file\n{everything[-3000:]}"
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines, f"{command} {case.name}: exit code {result.code} and nothing on stderr"
    error = lines[-1]
    assert str(named) in error, f"{command} {case.name}: the error line does not name {named}: {error!r}"
    assert case.problem in error.replace(str(named), ""), \
        f"{command} {case.name}: the error line does not say {case.problem!r}: {error!r}"
    others = [line for line in lines[:-1] if not line.startswith("warning:") and not PROGRESS.match(line)]
    assert not others, f"{command} {case.name}: more than one error line on stderr:\n{result.err[-3000:]}"
    OUTCOMES[(command, case.name)] = REFUSED


def size_of(path: Path) -> tuple[int, int]:
    assert path.is_file(), f"no output {path}"
    with Image.open(path) as im:
        return im.size


def place(corpus: dict[str, Path], case: Case, folder: Path, stem: str | None = None) -> Path:
    """A copy of the case's file in ``folder`` (named ``stem + suffix`` when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(corpus[case.name], folder / f"{stem or case.name}{case.suffix}"))


def random_png(path: Path, size: tuple[int, int], seed: int, channels: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise(*size, channels, seed=seed)).save(path)
    return path


# ---------------------------------------------------------------------------
# translate (CycleGAN)


@pytest.mark.parametrize("case", cases_for("translate"))
def test_translate(case, corpus, served_runs, tmp_path, monkeypatch, capsys):
    source = place(corpus, case, tmp_path / "in")
    out = tmp_path / "out"
    result = run_main(["translate", served_runs.cyclegan, source, "--out", out, "--device", "cpu"], monkeypatch, capsys)

    def at_its_upright_size():
        assert size_of(out / f"{case.name}.png") == case.upright

    judge(result, case, source, "translate", at_its_upright_size)


# ---------------------------------------------------------------------------
# fewshot (FUNIT): the file as the content image, and as the (only) class image

FEWSHOT = ["fewshot --content", "fewshot --class-images"]


@pytest.mark.parametrize("command, case", [pytest.param(command, *param.values, id=f"{command[10:]}-{param.id}",
                                                         marks=param.marks)
                                            for command in FEWSHOT for param in cases_for(command)])
def test_fewshot(command, case, corpus, served_runs, tmp_path, monkeypatch, capsys):
    source = place(corpus, case, tmp_path / "unseen")  # not a class the model was trained on
    good = random_png(tmp_path / "unseen" / "good.png", (16, 16), seed=5, channels=1)
    content, class_image = (source, good) if command == "fewshot --content" else (good, source)
    out = tmp_path / "out"
    result = run_main(["fewshot", served_runs.funit, "--content", content, "--class-images", class_image,
                       "--out", out, "--device", "cpu"], monkeypatch, capsys)

    def at_the_model_size():
        assert size_of(out / f"{content.stem}.png") == (16, 16)

    judge(result, case, source, command, at_the_model_size)


# ---------------------------------------------------------------------------
# edit (DeepSIM on edges)


@pytest.mark.parametrize("case", cases_for("edit"))
def test_edit(case, corpus, served_runs, tmp_path, monkeypatch, capsys):
    source = place(corpus, case, tmp_path / "in")
    out = tmp_path / "out"
    result = run_main(["edit", served_runs.deepsim_edges, source, "--out", out, "--device", "cpu"], monkeypatch,
                      capsys)

    def rounded_to_16s():  # the served run has no max_side
        assert size_of(out / f"{case.name}.png") == round_size(*case.upright)

    judge(result, case, source, "edit", rounded_to_16s)


# ---------------------------------------------------------------------------
# eval --pairs: the file among the generated images, a reference of its name and upright size in --ref


@pytest.mark.parametrize("case", cases_for("eval"))
def test_eval(case, corpus, tmp_path, monkeypatch, capsys):
    generated, ref = tmp_path / "generated", tmp_path / "ref"
    source = place(corpus, case, generated, stem="x")
    random_png(generated / "good.png", (16, 16), seed=7)
    random_png(ref / "good.png", (16, 16), seed=8)
    random_png(ref / "x.png", case.upright or (16, 16), seed=9)
    report = tmp_path / "eval.json"
    result = run_main(["eval", generated, "--ref", ref, "--pairs", "--metrics", "l1,psnr", "--device", "cpu",
                       "--json", report], monkeypatch, capsys)

    def both_pairs_scored():
        scored = json.loads(report.read_text())
        assert scored["n_pairs"] == 2 and 0 < scored["l1"] < 2 and np.isfinite(scored["psnr"]), scored

    judge(result, case, source, "eval", both_pairs_scored)


# ---------------------------------------------------------------------------
# train cyclegan: the file in trainA (a few cases; tests/test_bad_input.py has the rest of bad training data)

CYCLEGAN_TINY = ["--steps", "1", "--batch-size", "2", "--workers", "0", "--load-size", "16", "--crop-size", "16",
                 "--device", "cpu", "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
                 "--set", "model.d_layers=1", "--set", "train.tensorboard=false"]
CYCLEGAN_CASES = ["empty", "bomb", "wide_100000x1", "cmyk", "animated", "exif_rotated"]


@pytest.mark.parametrize("case", cases_for("train cyclegan", CYCLEGAN_CASES))
def test_train_cyclegan(case, corpus, tmp_path, monkeypatch, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    source = place(corpus, case, data / "trainA", stem="a")  # with b.png, trainA's only images: in the batch
    random_png(data / "trainA" / "b.png", (W, H), seed=1)
    for j in range(2):
        random_png(data / "trainB" / f"{j}.png", (W, H), seed=20 + j)
    result = run_main(["train", "cyclegan", "--data", data, "--out", run, *CYCLEGAN_TINY], monkeypatch, capsys)
    judge(result, case, source, "train cyclegan", lambda: trained_one_step(run))


def trained_one_step(run: Path) -> None:
    assert json.loads((run / "checkpoint" / "config.json").read_text())["step"] == 1


# ---------------------------------------------------------------------------
# train deepsim: the file as the single training image (its Canny edges the primitive)

DEEPSIM_SETS = [arg for key, value in DEEPSIM_TINY.items() for arg in ("--set", f"model.{key}={value}")]
DEEPSIM_TINY_ARGS = ["--steps", "1", "--device", "cpu", *DEEPSIM_SETS, "--set", "train.tensorboard=false",
                     "--set", "train.sample_every=1000000"]
# All but 100000x1, which costs ~10 s here (Canny and the warps at 100000x16); 64x8 fails the same way.
DEEPSIM_CASES = [case.name for case in CORPUS if case.name != "wide_100000x1"]


@pytest.mark.parametrize("case", cases_for("train deepsim", DEEPSIM_CASES))
def test_train_deepsim(case, corpus, tmp_path, monkeypatch, capsys):
    source = place(corpus, case, tmp_path / "in")
    run = tmp_path / "run"
    result = run_main(["train", "deepsim", "--image", source, "--out", run, *DEEPSIM_TINY_ARGS], monkeypatch, capsys)
    judge(result, case, source, "train deepsim", lambda: trained_one_step(run))
    if result.code != 0:  # a refused run leaves nothing behind (not even the computed edges it wrote first)
        assert not run.exists(), sorted(map(str, run.rglob("*")))


# ---------------------------------------------------------------------------
# The real console entry point, for two cases: the in-process runs above judge what a user sees


@pytest.mark.parametrize("name, command", [("bomb", "translate"), ("truncated_jpeg", "eval")])
def test_console_script_gives_the_same_one_line_error(name, command, corpus, served_runs, tmp_path, monkeypatch,
                                                      capsys):
    case = CASES[name]
    if command == "translate":
        source = place(corpus, case, tmp_path / "in")
        args = ["translate", served_runs.cyclegan, source, "--out", tmp_path / "out", "--device", "cpu"]
    else:
        source = place(corpus, case, tmp_path / "generated")
        random_png(tmp_path / "ref" / f"{case.name}.png", (16, 16), seed=0)
        args = ["eval", tmp_path / "generated", "--ref", tmp_path / "ref", "--pairs", "--metrics", "l1",
                "--device", "cpu"]
    real = run_console(args)
    judge(real, case, source, f"{command} (console)", lambda: None)
    del OUTCOMES[(f"{command} (console)", case.name)]  # counted once, by the in-process test
    in_process = run_main(args, monkeypatch, capsys)
    assert in_process.code == real.code
    assert in_process.err.strip().splitlines()[-1] == real.err.strip().splitlines()[-1]

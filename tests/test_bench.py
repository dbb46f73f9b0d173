"""The speed benchmarks run for every method they cover and count what they claim to count. No test
here measures or asserts a time: the figures belong in the README, from the commands it names."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import deepsim_ablation  # noqa: E402
import deepsim_render_speed  # noqa: E402
import fast_quality  # noqa: E402
import omp_waits  # noqa: E402
import quality  # noqa: E402
import serve_load  # noqa: E402
import train_speed  # noqa: E402
import translate_speed  # noqa: E402


@pytest.mark.parametrize("method", ["cyclegan", "funit", "deepsim"])
def test_training_bench_runs_each_method_and_counts_its_flops(method, tmp_path, capsys):
    out = tmp_path / "speed.json"
    train_speed.main(["--method", method, "--device", "cpu", "--size", "32", "--batch-sizes", "1", "--steps", "1",
                      "--warmup", "0", "--json", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    assert row["flops_per_step"] > 0 and row["images_per_s"] > 0 and row["peak_mem_gib"] > 0
    assert train_speed.METHODS[method][0] in capsys.readouterr().out
    if method == "cyclegan":  # DESIGN.md: ~1.9 TFLOP per image at 256x256, i.e. /64 at 32x32
        assert row["flops_per_step"] / 1e12 == pytest.approx(train_speed.DESIGN_TFLOP_256_B1 / 64, rel=0.05)


@pytest.mark.parametrize("method", ["cyclegan", "funit", "deepsim"])
def test_translation_bench_runs_each_method(method, capsys):
    translate_speed.main(["--method", method, "--device", "cpu", "--size", "32", "--batch-sizes", "1", "--rounds", "1",
                          "--no-onnx"])
    out = capsys.readouterr().out
    assert translate_speed.TRANSLATORS[method] in out and "torch fp32" in out
    assert float(out.split("forward: ")[1].split(" GFLOP")[0]) > 0
    assert ("DESIGN.md: 99.1 for CycleGAN's" in out) == (method == "cyclegan")  # (it was printed for every method)


def test_gpu_session_checks_pass_on_the_cpu_and_the_script_parses():
    """bench/gpu/ is run only on a lent GPU: keep its checks and shell script working here."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(root / "bench/gpu/checks.py"), "--device", "cpu", "--no-compile"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS  pixmorph instance_norm") == 2 and "ResNet generator (batch 1" in done.stdout
    for script in ("session.sh", "prepare.sh"):
        assert subprocess.run(["bash", "-n", str(root / "bench/gpu" / script)]).returncode == 0


def test_twostep_bench_trains_step_one_once_and_each_encoder_from_it(tmp_path):
    """bench/twostep_compare.py's training half on a tiny class-folder dataset: step 1 once, then step 2
    resumed from a copy of it per encoder variant (the scoring half needs the built-in classifier)."""
    import numpy as np
    from PIL import Image
    from safetensors.torch import load_file

    import twostep_compare

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "data" / "train" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "data" / "train" / cls / f"{i}.png")
    runs = twostep_compare.train_twostep(tmp_path / "out", str(tmp_path / "data"), 2, 2, 4,
                                         {"z-MSE": {}, "scratch": {"encoder_init": "random"}})
    step1 = load_file(str(tmp_path / "out" / "step1" / "checkpoint" / "weights.safetensors"))
    weights = {name: load_file(str(run / "checkpoint" / "weights.safetensors")) for name, (run, _) in runs.items()}
    for name, w in weights.items():
        assert all(torch.equal(step1[k], w[k]) for k in w if k.startswith("G.")), f"{name} moved G"
        assert json.loads((runs[name][0] / "checkpoint" / "config.json").read_text())["step"] == 4
    trunk = [k for k in step1 if k.startswith("E.trunk.") and k.endswith("weight")]
    assert not all(torch.equal(weights["z-MSE"][k], weights["scratch"][k]) for k in trunk)


def test_serve_load_sends_edit_primitives_in_their_own_aspect():
    """The load bench squashed each training primitive to a --size square: every edit request (a 64x48 model's)
    was warned of and logged as a shape the model never trained on, hundreds of lines in the bench's output."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 48), 255).save(buffer, format="PNG")
    assert Image.open(io.BytesIO(serve_load.primitive_at(buffer.getvalue(), 32))).size == (32, 24)


def test_quality_bench_refuses_a_device_that_is_not_here_in_one_line(monkeypatch, capsys, tmp_path):
    """`python bench/quality.py --budget gpu --device cuda` on a machine without CUDA ended in a traceback."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        quality.main(["--budget", "gpu", "--device", "cuda", "--out", str(tmp_path / "q")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(  # after the program's name
        ": error: device 'cuda' asked for, but CUDA is not available here: use the CPU (--device cpu; "
        'device="cpu" from Python)')
    assert not (tmp_path / "q").exists()
    with pytest.raises(SystemExit):  # (0 ran the budget's default number)
        quality.main(["--n-test", "0", "--out", str(tmp_path / "q")])
    assert capsys.readouterr().err.splitlines()[-1].endswith(": error: --n-test 0: give 1 or more held-out items")


def test_quality_bench_scores_the_fashion_edges_baselines_only_after_a_fashion_edges_row(monkeypatch, tmp_path):
    """`python bench/quality.py --methods twostep` printed the fashion-edges baseline rows, which bound CycleGAN and
    pix2pix alone. Rows, baselines and the evaluator are stand-ins here: what is checked is which rows are scored."""
    from types import SimpleNamespace

    class StandIn:
        inception, lpips = SimpleNamespace(description="stand-in"), SimpleNamespace(name="stand-in")
        classifier = SimpleNamespace(test_accuracy={"top1": 1.0})

        def __init__(self, *args, **kwargs) -> None:
            pass

        def __call__(self, generated, reference, pairs=False, label=None) -> dict:
            return {"l1": 0.5}

    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / quality.ckpt.WEIGHTS).touch()
    monkeypatch.setattr(quality, "default_classifier_dir", lambda domain: tmp_path / "classifier")
    monkeypatch.setattr(quality, "Evaluator", StandIn)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # --device cpu's one thread: not for the other tests
    monkeypatch.setattr(quality, "baselines", lambda b: {name: quality.Scored(tmp_path, tmp_path) for name in
                                                         ("fashion-edges: input unchanged", "fashion-edges: ground truth")})
    for method in ("twostep", "pix2pix"):
        monkeypatch.setitem(quality.ROWS, method, lambda b, method=method: quality.Scored(tmp_path, tmp_path, title=method))

    def scored(methods: str) -> list[str]:
        report = quality.main(["--methods", methods, "--device", "cpu", "--out", str(tmp_path / "q")])
        return [r["method"] for r in report["rows"]]

    assert scored("twostep") == ["twostep"]
    assert scored("twostep,pix2pix") == ["twostep", "pix2pix", "fashion-edges: input unchanged",
                                         "fashion-edges: ground truth"]


SPEED_BENCH_MISTAKES = [
    (["--device", "cuda"], "device 'cuda' asked for, but CUDA is not available here"),
    (["--batch-sizes", "a"], "--batch-sizes 'a': give whole numbers separated by commas, e.g. 1,4"),
    (["--batch-sizes", "1,0"], "--batch-sizes '1,0': every value must be at least 1"),
    (["--size", "0"], "--size 0: must be"),
    (["--threads", "0"], "--threads 0: must be at least 1"),
]


@pytest.mark.parametrize("bench", [train_speed, translate_speed], ids=["train_speed", "translate_speed"])
@pytest.mark.parametrize("argv, message", SPEED_BENCH_MISTAKES, ids=[" ".join(a) for a, _ in SPEED_BENCH_MISTAKES])
def test_speed_benches_refuse_a_mistake_in_one_usage_line(bench, argv, message, monkeypatch, capsys):
    """--device cuda without CUDA and a --batch-sizes that is not numbers ended in tracebacks; --size 0 (and
    translate_speed's --rounds 0) silently ran the default instead; --batch-sizes 0 broke translate_speed."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        bench.parse_args(argv)
    assert exit_.value.code == 2
    assert f": error: {message}" in capsys.readouterr().err.splitlines()[-1]


def test_translation_bench_refuses_zero_rounds(capsys):
    with pytest.raises(SystemExit):
        translate_speed.parse_args(["--rounds", "0"])
    assert capsys.readouterr().err.splitlines()[-1].endswith("error: --rounds 0: must be at least 1")


@pytest.mark.parametrize("argv, message", [
    (["--size", "30"], "--size 30: must be a multiple of 4 and at least 24 for these networks"),
    (["--method", "deepsim", "--size", "24"], "--size 24: must be a multiple of 16 and at least 32 for these networks"),
    (["--compare", "plain", "bogus"], "--compare 'bogus': unknown switch 'bogus' (channels_last, fused"),
    (["--compare", "plain", "bf16,threads=x"], "--compare 'bf16,threads=x': threads takes a whole number"),
    (["--compare", "fused=1"], "--compare 'fused=1': unknown switch 'fused=1'"),
])
def test_training_bench_refuses_a_size_or_compare_setting_it_cannot_run(argv, message, capsys):
    """A size off the generator's stride failed in a traceback deep in the cycle loss; a bad --compare spec was
    found only after the header (`threads=x`: a traceback), and `fused=1` was taken as `fused`."""
    with pytest.raises(SystemExit) as exit_:
        train_speed.parse_args(["--device", "cpu", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_training_bench_runs_at_the_smallest_size_it_accepts(tmp_path):
    out = tmp_path / "speed.json"
    train_speed.main(["--device", "cpu", "--size", "24", "--batch-sizes", "1", "--steps", "1", "--warmup", "0",
                      "--json", str(out)])
    assert json.loads(out.read_text())["rows"][0]["images_per_s"] > 0


def test_deepsim_render_bench_says_what_it_times_and_refuses_a_size_without_a_height(capsys):
    """Its --help cut the description off mid-sentence ('one primitive per generator call (``batch_size=1``,'),
    and `--size 320` or `--batch-sizes a` ended in tracebacks."""
    with pytest.raises(SystemExit):
        deepsim_render_speed.main(["--help"])
    assert "the best pass of each is\nprinted" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        deepsim_render_speed.main(["--size", "320"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("error: --size '320': give WIDTHxHEIGHT, e.g. 320x240")


def test_deepsim_render_bench_runs(capsys):
    deepsim_render_speed.main(["--net", "cpu-sized", "--size", "32x16", "--count", "2", "--batch-sizes", "1,2",
                               "--rounds", "1"])
    out = capsys.readouterr().out
    assert "batch_size 1: " in out and "batch_size 2: " in out


def test_training_bench_writes_its_comparison_to_json(tmp_path, capsys):
    """--json was ignored with --compare: nothing written, without a word."""
    out = tmp_path / "compare.json"
    train_speed.main(["--device", "cpu", "--size", "24", "--batch-sizes", "1", "--steps", "1", "--warmup", "0",
                      "--compare", "plain", "fused", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["setting"] for r in rows] == ["plain", "fused"] and rows[0]["ratio_to_first"] == 1.0
    assert all(r["flops_per_step"] > 0 and r["sec_per_step"] > 0 for r in rows)
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"], "device 'cuda' asked for, but CUDA is not available here"),
    (["--seeds", "0 1"], "--seeds '0 1': give whole numbers separated by commas, e.g. 0,1"),
    (["--epochs", "0"], "--epochs 0: must be more than 0"),
])
def test_fast_quality_bench_refuses_a_mistake_before_training(argv, message, monkeypatch, tmp_path, capsys):
    """--device cuda without CUDA and --seeds '0 1' ended in tracebacks; --epochs 0 trained nothing and scored it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        fast_quality.main([*argv, "--out", str(tmp_path / "q")])
    assert exit_.value.code == 2
    assert f": error: {message}" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("argv, message", [(["--steps", "0"], "--steps 0: must be at least 1"),
                                           (["--busy", "-1"], "--busy -1: must be 0 or more")])
def test_omp_waits_bench_refuses_a_count_it_cannot_use(argv, message, capsys):
    """--steps 0 was passed on to five training processes, and --busy -1 ran as --busy 0, without a word."""
    with pytest.raises(SystemExit) as exit_:
        omp_waits.main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {message}")


def test_deepsim_speed_bench_refuses_a_missing_device_in_one_line(monkeypatch, capsys):
    """`deepsim_ablation.py speed --device cuda` (the README's GPU command) on a machine without CUDA: a traceback."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        deepsim_ablation.main(["speed", "--device", "cuda", "--paper"])
    assert exit_.value.code == 2
    assert "error: device 'cuda' asked for, but CUDA is not available here" in capsys.readouterr().err


def test_deepsim_speed_bench_applies_model_settings_to_the_papers_networks(tmp_path):
    """--model was dropped without a word under --paper (help: settings on top of the networks), and the JSON
    said "paper"."""
    out = tmp_path / "speed.json"
    deepsim_ablation.main(["speed", "--size", "32", "--paper", "--model", "n_blocks=1", "--model", "n_downsampling=2",
                           "--steps", "1", "--warmup", "0", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["model"] == {"paper": True, "n_blocks": 1, "n_downsampling": 2} and result["s_per_step"] > 0
    assert deepsim_ablation.CPU_MODEL == {"ngf": 16, "ndf": 16}  # --model no longer rewrites the module's default


def test_serve_load_bench_refuses_a_missing_device_before_training(monkeypatch, capsys):
    """`serve_load.py --device cuda` without CUDA trained its tiny runs first, then ended in a traceback."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        serve_load.parse_args(["--device", "cuda"])
    assert exit_.value.code == 2
    assert "error: device 'cuda' asked for, but CUDA is not available here" in capsys.readouterr().err

"""bench/funit_fewshot.py's classifiers: trained once per output folder, reused, and trained again when the
folder holds one that does not load, with the broken one kept aside."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import funit_fewshot  # noqa: E402
from pixmorph.metrics.classify import Domain  # noqa: E402


def tiny_domain() -> Domain:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 16, 16), dtype=np.uint8)
    labels = np.array([0, 1] * 4, dtype=np.int64)
    return Domain("tiny", ("a", "b"), ("a", "b"), lambda split: (images, labels), flip=False, description="tiny")


@pytest.mark.parametrize("damage", ["config", "extra file"])
def test_a_broken_classifier_is_set_aside_and_trained_again(tmp_path, capsys, damage):
    """An unreadable config.json, or a file beside the classifier, made the bench stop: load_classifier failed
    and train_classifier(overwrite=True) refused the folder."""
    folder = tmp_path / "font_classifier"
    first = funit_fewshot.classifier(tiny_domain(), folder, epochs=1)
    assert funit_fewshot.classifier(tiny_domain(), folder, epochs=1).classes == first.classes  # reused
    if damage == "config":
        (folder / "config.json").write_text('{"kind": "pixmorph-classif')  # cut short
    else:
        (folder / "notes.txt").write_text("mine")
        (folder / "weights.safetensors").write_bytes(b"")  # and the weights lost
    capsys.readouterr()
    again = funit_fewshot.classifier(tiny_domain(), folder, epochs=1)
    out = capsys.readouterr().out.strip()
    assert list(again.classes) == ["a", "b"] and (folder / "config.json").is_file()
    assert len(out.splitlines()) == 1 and "font_classifier: not a classifier that loads" in out, out
    assert "moved to font_classifier.broken1, training a new one" in out
    kept = tmp_path / "font_classifier.broken1"
    assert (kept / "notes.txt").read_text() == "mine" if damage != "config" else (kept / "config.json").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--skip-training"], "--skip-training: no FUNIT run in {out}/funit to evaluate"),
    (["--steps", "0"], "--steps 0: must be at least 1"),
    (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
])
def test_a_mistake_is_one_usage_line_before_anything_runs(argv, message, tmp_path, capsys):
    """--skip-training without a run prepared the glyphs, then ended in a CheckpointError traceback; --steps 0 and
    --batch-size 0 were passed on to training unchecked."""
    with pytest.raises(SystemExit) as exit_:
        funit_fewshot.main([*argv, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert f"error: {message.format(out=tmp_path)}" in capsys.readouterr().err.splitlines()[-1]

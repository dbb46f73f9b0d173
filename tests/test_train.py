"""The training loop: exact resume, and a CycleGAN that really learns the built-in task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import pixmorph
from pixmorph.api import Translator
from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.builtin import prepare_task
from pixmorph.images import list_images, read_image, to_tensor
from pixmorph.train.loop import build_method, train

# pool_size 2: the history pool fills in the first step, so resume must restore it exactly
TINY_CYCLEGAN = {"ngf": 8, "ndf": 8, "n_blocks": 1, "d_layers": 1, "pool_size": 2}


def write_unpaired(root, n=8, size=20, seed=0):
    rng = np.random.default_rng(seed)
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / f"{i}.png")
    return root


def tiny_run(data, out, max_steps, resume=False, workers=0, **train):
    return RunConfig(
        method="cyclegan",
        model=dict(TINY_CYCLEGAN),
        data=DataConfig(root=str(data), load_size=20, crop_size=16, num_workers=workers),
        train=TrainConfig(out=str(out), batch_size=2, epochs=1, epochs_decay=1, max_steps=max_steps, resume=resume,
                          log_every=2, sample_every=3, checkpoint_every=100, tensorboard=False, **train),
    )


def assert_beats_baselines(trained, untrained, inputs, truth):
    """L1 to the ground truth clearly below the input itself and the untrained generator."""
    l1_trained = (trained(inputs) - truth).abs().mean().item()
    l1_untrained = (untrained(inputs) - truth).abs().mean().item()
    l1_identity = (inputs - truth).abs().mean().item()
    print(f"L1 to truth: trained {l1_trained:.3f}, untrained {l1_untrained:.3f}, identity {l1_identity:.3f}")
    assert l1_trained < 0.8 * l1_identity
    assert l1_trained < 0.75 * l1_untrained


def weights(run_dir):
    return load_file(str(run_dir / "checkpoint" / "weights.safetensors"))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_bit_identical(tmp_path, workers):
    """8 images, batch 2: 4 steps constant lr then 4 of decay; stop at 3, resume to 8 == straight to 8."""
    data = write_unpaired(tmp_path / "data")
    # a fixed thread count: on a busy machine the CPU share would train with fewer, adding in another order
    straight = train(tiny_run(data, tmp_path / "straight", 8, workers=workers, threads=1), progress=False)
    train(tiny_run(data, tmp_path / "stopped", 3, workers=workers, threads=1), progress=False)
    resumed = train(tiny_run(data, tmp_path / "stopped", 8, resume=True, workers=workers, threads=1), progress=False)

    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # and the run did train: the weights moved from their initial values
    init = build_method(tiny_run(data, tmp_path / "x", 1)).nets.state_dict()
    assert not torch.equal(init["G_A.model.1.weight"], a["G_A.model.1.weight"])


@pytest.mark.parametrize("minutes", [1e-9, None])
def test_a_run_that_dies_keeps_its_last_timed_checkpoint(tmp_path, monkeypatch, minutes):
    """checkpoint_minutes saves at the log steps once that much time has passed (here: at once), so a run that
    dies between the steps' checkpoints (every 100 here) loses minutes; without it, everything."""
    from pixmorph.methods.cyclegan import CycleGAN
    from pixmorph.train import checkpoint as ckpt

    data = write_unpaired(tmp_path / "data")
    original, calls = CycleGAN.train_step, []

    def dies_at_step_five(self, batch, update):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("killed")
        return original(self, batch, update)

    monkeypatch.setattr(CycleGAN, "train_step", dies_at_step_five)
    with pytest.raises(RuntimeError, match="killed"):
        train(tiny_run(data, tmp_path / "run", 8, checkpoint_minutes=minutes), progress=False)
    if minutes:
        assert ckpt.read_config(tmp_path / "run" / "checkpoint")["step"] == 4  # log_every 2
    else:
        assert not (tmp_path / "run" / "checkpoint").exists()


def test_resume_without_resume_starts_over(tmp_path):
    data = write_unpaired(tmp_path / "data")
    train(tiny_run(data, tmp_path / "run", 2), progress=False)
    first = weights(tmp_path / "run")
    train(tiny_run(data, tmp_path / "run", 2, overwrite=True), progress=False)
    again = weights(tmp_path / "run")
    assert all(torch.equal(first[k], again[k]) for k in first), "same seed, same run: identical weights"


def test_a_checkpoint_left_mid_save_is_not_started_over_without_overwrite(tmp_path):
    """A save killed between its two renames leaves the last checkpoint as RUN/.checkpoint.old, which --resume
    continues: a new run there without --overwrite is refused as beside RUN/checkpoint (it trained over it,
    deleting the last run's logs at once and that checkpoint at its first save)."""
    data = write_unpaired(tmp_path / "data")
    run = tmp_path / "run"
    train(tiny_run(data, run, 2), progress=False)
    before = weights(run)
    (run / "checkpoint").rename(run / ".checkpoint.old")
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_run(data, run, 1), progress=False)
    assert (run / "stats.jsonl").is_file()
    kept = load_file(str(run / ".checkpoint.old" / "weights.safetensors"))
    assert all(torch.equal(before[k], kept[k]) for k in before)


@pytest.mark.slow
def test_cyclegan_learns_fashion_edges(tmp_path):
    """After a short CPU training the edges->item translation is far closer to the true item than both
    the untrained generator and the input itself."""
    root = prepare_task("fashion-edges", tmp_path / "cache", n_train=400, n_test=64)
    cfg = RunConfig(
        method="cyclegan",
        model={"ngf": 16, "ndf": 16, "n_blocks": 3, "d_layers": 2},
        data=DataConfig(root=str(root), load_size=32, crop_size=32, flip=True, num_workers=0),
        # 1 + 1 epochs (100 steps): trained/identity L1 0.72-0.75 over seeds 0-3 (the bound 0.8); 2 + 2 gave 0.67-0.78
        train=TrainConfig(out=str(tmp_path / "run"), batch_size=8, epochs=1, epochs_decay=1,
                          log_every=10, sample_every=1000, checkpoint_every=1000, tensorboard=False),
    )
    untrained = Translator(build_method(cfg), cfg, torch.device("cpu"), 0)
    train(cfg, progress=False)
    trained = pixmorph.load(tmp_path / "run")

    files = list_images(root / "testA")
    edges = torch.stack([to_tensor(read_image(f)) for f in files])
    truth = torch.stack([to_tensor(read_image(root / "testB" / f.name)) for f in files])
    assert_beats_baselines(trained, untrained, edges, truth)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(tmp_path, precision):
    """The autocast (and, for fp16, gradient scaler) path runs, stays finite and saves a resumable state."""
    data = write_unpaired(tmp_path / "data")
    run = train(tiny_run(data, tmp_path / "run", 3, precision=precision), progress=False)
    w = weights(run)
    assert all(torch.isfinite(v).all() for v in w.values())
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert state["step"] == 3
    assert state["scalers"]["G"] != {} if precision == "fp16" else state["scalers"]["G"] == {}


def test_a_network_used_after_its_update_sees_the_new_weights_under_autocast():
    """The update runs inside the step's autocast region: a network used again after its own update in
    the same step (D in pix2pix, FUNIT, two-step) must not run on the bf16 copy cached before it."""
    from types import SimpleNamespace

    from pixmorph.train.loop import _make_update

    torch.manual_seed(0)
    net, x = torch.nn.Linear(8, 8), torch.randn(4, 8)
    method = SimpleNamespace(optimizers={"D": torch.optim.SGD(net.parameters(), lr=1.0)})
    update = _make_update(method, {"D": torch.amp.GradScaler("cpu", enabled=False)})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = net(x)
        update(before.float().pow(2).mean(), "D")
        after = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fresh = net(x)
    assert not torch.equal(after, before) and torch.equal(after, fresh)


def test_a_gradient_for_a_penalty_does_not_underflow_in_fp16():
    """``update.grad`` (FUNIT's R1 penalty on d D(x) / d x): in fp16 the gradients inside the network of a mean
    over many outputs fall below fp16's least number (6e-8) and become 0; the loop takes it of the output scaled
    by the loss scale, as the losses' backward is, and unscales it. Without scaling (fp32, bf16): as autograd."""
    from types import SimpleNamespace

    from pixmorph.train.loop import _make_update

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 16, 3, padding=1)
    torch.nn.init.normal_(net.weight, std=1e-4)
    x = torch.rand(2, 1, 32, 32, requires_grad=True)
    method = SimpleNamespace(optimizers={"D": torch.optim.SGD(net.parameters(), lr=1.0)})
    truth = torch.autograd.grad(net(x).mean(), x)[0]
    for scaled in (False, True):
        update = _make_update(method, {"D": torch.amp.GradScaler("cpu", enabled=scaled)})
        with torch.autocast("cpu", dtype=torch.float16):
            out = net(x).float().mean()
            grad = update.grad(out, x, "D")
        assert grad.requires_grad  # (a penalty on it trains D)
        if scaled:
            torch.testing.assert_close(grad, truth, rtol=5e-2, atol=0)  # (fp16 weights: 3 digits)
        else:
            assert truth.abs().min() > 0 and torch.equal(grad, torch.zeros_like(grad))  # what FUNIT got in fp16
    update = _make_update(method, {"D": torch.amp.GradScaler("cpu", enabled=False)})
    torch.testing.assert_close(update.grad(net(x).mean(), x, "D"), truth)


@pytest.mark.slow
def test_pix2pix_learns_paired_edges(tmp_path):
    """The paired reference: after a short training on A|B files its L1 to the truth beats the baselines."""
    root = prepare_task("fashion-edges-paired", tmp_path / "cache", n_train=300, n_test=64)
    cfg = RunConfig(
        method="pix2pix",
        model={"ngf": 16, "ndf": 16, "num_downs": 5},
        data=DataConfig(root=str(root), load_size=32, crop_size=32, num_workers=0),
        train=TrainConfig(out=str(tmp_path / "run"), batch_size=8, epochs=2, epochs_decay=2,
                          sample_every=1000, checkpoint_every=1000, tensorboard=False),
    )
    untrained = Translator(build_method(cfg), cfg, torch.device("cpu"), 0)
    train(cfg, progress=False)
    trained = pixmorph.load(tmp_path / "run")

    pairs = [to_tensor(read_image(f)) for f in list_images(root / "test")]
    edges = torch.stack([p[:, :, :32] for p in pairs])
    truth = torch.stack([p[:, :, 32:] for p in pairs])
    assert_beats_baselines(trained, untrained, edges, truth)


def test_a_resume_with_another_global_batch_keeps_the_schedule_in_images(tmp_path):
    """More or fewer processes (or another --batch-size) on resume: the run still trains the schedule's
    images and its learning rate follows the same curve, by images; the epochs were turned into steps of the
    new batch while the step count went on, so a 2 -> 4 resume stopped at 12 of 16 images, mid-decay."""
    import dataclasses

    data = write_unpaired(tmp_path / "data")  # 8 images: at batch 2, 4 steps an epoch, 1 + 1 epochs
    straight = train(tiny_run(data, tmp_path / "straight", None), progress=False)
    first = tiny_run(data, tmp_path / "changed", 2)
    train(first, progress=False)
    resumed = dataclasses.replace(first, train=dataclasses.replace(first.train, batch_size=4, max_steps=None,
                                                                   resume=True))
    changed = train(resumed, progress=False)

    def end(run):
        state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
        return state["step"], state["images_seen"], state["optimizers"]["G"]["param_groups"][0]["lr"]

    assert end(straight) == (8, 16, pytest.approx(2e-4 * 0.2))
    assert end(changed) == (2 + 3, 16, pytest.approx(2e-4 * 0.2))  # 2 steps of 2 images, then 3 of 4


def test_a_schedule_plan_is_counted_in_images():
    """100 images, 2 + 2 epochs at a first global batch of 10: 40 steps. Resumed at step 15 (150 images) with a
    global batch of 20, the 250 images left take 13 steps; --steps 20 stops this invocation there."""
    from pixmorph.train.schedules import Plan, plan

    assert plan(100, 2, 2, None, 0, 0, 10, 10) == Plan(10, 10, 20, 20, 40, 40)
    assert plan(100, 2, 2, None, 15, 150, 20, 10) == Plan(10, 10, 20, 20, 28, 28)
    assert plan(100, 2, 2, 20, 15, 150, 20, 10).last_step == 20
    assert plan(5, 1, 0, None, 0, 0, 10, 10).steps_per_epoch == 1  # fewer images than a batch: still one step


def test_batch_norm_per_image_follows_the_run_not_its_last_resume(tmp_path, layouts, make_config, capsys):
    """A pix2pix run started at batch 1 translates each image by its own statistics, also after a resume at
    batch 2 (it went by the last invocation's batch); one started at batch 2 by the running averages."""
    import dataclasses

    from pixmorph.nn.norm import BatchNorm2d
    from pixmorph.train import checkpoint as ckpt

    data = layouts.paired_folders(tmp_path / "data")
    first = make_config("pix2pix", data, tmp_path / "one", batch_size=1, max_steps=1)
    train(first, progress=False)
    train(dataclasses.replace(first, train=dataclasses.replace(first.train, batch_size=2, max_steps=2, resume=True)),
          progress=False)
    train(dataclasses.replace(first, train=dataclasses.replace(first.train, batch_size=1, max_steps=3, resume=True)),
          progress=False)
    said = capsys.readouterr().out  # ("steps from here count 1 images")
    assert "resumed with a global batch of 1 (it was 2): the data and the learning-rate schedule go on from image 3; " \
           "steps from here count 1 image, so" in said, said
    two = train(make_config("pix2pix", data, tmp_path / "two", batch_size=2, max_steps=1), progress=False)
    for run, per_image in ((tmp_path / "one", True), (two, False)):
        assert ckpt.read_config(ckpt.find_checkpoint(run))["batch_norm_per_image"] is per_image
        norms = [m for m in pixmorph.load(run).method.nets.modules() if isinstance(m, BatchNorm2d)]
        assert norms and all(m.per_image is per_image for m in norms)


def test_the_sample_grid_shows_more_than_one_b_image_of_a_small_trainb(tmp_path, layouts):
    """The grid's samples were drawn with seeds 1234, 1235, ...: their first random draw nearly agrees, so with
    4 trainB images every row's B was the same image (trainB_3)."""
    from pixmorph.data.folders import unpaired
    from pixmorph.train.loop import _fixed_batch

    data = layouts.unpaired(tmp_path / "data", n=4)
    dataset = unpaired(data, DataConfig(root=str(data), load_size=24, crop_size=24, flip=False), "train")
    b_images = _fixed_batch(dataset, torch.device("cpu"))["B"]
    assert len({tuple(b.flatten().tolist()) for b in b_images}) > 1

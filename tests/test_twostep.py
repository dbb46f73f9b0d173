"""Two-step latent translation (Dong et al. 2017): the classes layout, the frozen generator in step 2,
exact resume across the two steps, the encoder inverting G, and translation through the public API."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from click.testing import CliRunner
from safetensors.torch import load_file

import pixmorph
from pixmorph.cli import cli
from pixmorph.config import DataConfig, RunConfig, TrainConfig
from pixmorph.data.classes import ClassFolders, list_classes
from pixmorph.data.transforms import TrainTransform
from pixmorph.images import list_images, read_image, to_tensor
from pixmorph.methods.twostep import TwoStep, TwoStepConfig
from pixmorph.train.loop import train

SIZE = 16
CLASSES = ["hbar", "vbar"]  # sorted, as the layout lists them
TINY = dict(class_names=CLASSES, channels=1, image_size=SIZE, z_dim=4, embed_dim=4, ngf=8, ndf=8)


def write_bars(root, n=48, seed=0):
    """Two classes of 16x16 gray images: a horizontal or a vertical soft white bar (3 px wide, 12 long, blurred
    with sigma 0.7) on black at a random place. The class is the orientation, the content (what translation
    must keep) is where the bar is. (Bars of random width and length with hard edges need a longer GAN run:
    at the budget below the source/other error ratio was 0.74-0.79 on them, 0.48-0.50 on these.)"""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for cls in CLASSES:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                a = np.zeros((SIZE, SIZE))
                at = rng.integers(2, SIZE - 5)
                a[at : at + 3, 2 : SIZE - 2] = 1.0
                a = gaussian_filter(a, 0.7)
                a = a.T if cls == "vbar" else a
                Image.fromarray((255 * a / a.max()).round().astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    return write_bars(tmp_path_factory.mktemp("bars"))


def run_config(data, out, step1, step2, max_steps=None, resume=False, model=None, batch_size=8):
    return RunConfig(
        method="twostep",
        model={**TINY, "step1_steps": step1, "step2_steps": step2, **(model or {})},
        data=DataConfig(root=str(data), load_size=SIZE, crop_size=SIZE, flip=False, channels=1, num_workers=0),
        train=TrainConfig(out=str(out), batch_size=batch_size, lr_policy="constant", epochs=1000, epochs_decay=0,
                          max_steps=step1 + step2 if max_steps is None else max_steps, resume=resume,
                          log_every=50, sample_every=1000, checkpoint_every=1000, tensorboard=False),
    )


def weights(run):
    return load_file(str(run / "checkpoint" / "weights.safetensors"))


def test_classes_layout_reads_class_folders_and_the_cyclegan_layout(tmp_path, bars, layouts):
    assert list_classes(bars) == CLASSES
    ds = ClassFolders(bars, TrainTransform(SIZE, SIZE, flip=False), mode="L")
    labels = [int(ds[(i, 0)]["label"]) for i in range(len(ds))]
    assert len(ds) == 96 and labels.count(0) == labels.count(1) == 48
    item = ds[(60, 0)]
    assert item["image"].shape == (1, SIZE, SIZE) and item["label"].dtype == torch.long
    # only some classes, in the order given
    assert ClassFolders(bars, TrainTransform(SIZE, SIZE), mode="L", classes=["vbar"]).classes == ["vbar"]
    with pytest.raises(ValueError, match="not among the classes"):
        ClassFolders(bars, TrainTransform(SIZE, SIZE), classes=["dress"])
    # the CycleGAN layout: trainA/trainB are the classes A and B
    unpaired = layouts.unpaired(tmp_path / "ab", n=2)
    assert list_classes(unpaired) == ["A", "B"]
    ab = ClassFolders(unpaired, TrainTransform(16, 16), mode="RGB")
    assert sorted(int(ab[(i, 0)]["label"]) for i in range(len(ab))) == [0, 0, 1, 1]
    with pytest.raises(FileNotFoundError, match="class folders"):
        list_classes(tmp_path)
    # FUNIT's class folders ROOT/<class>/ (no train/ split): the same class data trains both methods
    flat = tmp_path / "flat"
    for name in CLASSES:
        (flat / name).mkdir(parents=True)
        for f in list((bars / "train" / name).iterdir())[:3]:
            (flat / name / f.name).write_bytes(f.read_bytes())
    assert list_classes(flat) == CLASSES
    assert len(ClassFolders(flat, TrainTransform(SIZE, SIZE), mode="L")) == 6
    with pytest.raises(FileNotFoundError, match="class folders test/<class>/"):
        list_classes(flat, phase="test")


def test_an_empty_class_folder_is_named_and_can_be_left_out(tmp_path, bars):
    """FUNIT's ROOT/<class>/ layout with one empty class folder was not recognised at all ('no labelled data:
    expected class folders train/<class>/ ...', naming no folder), and data.options.classes could not leave it out."""
    flat = tmp_path / "flat"
    for name in CLASSES:
        (flat / name).mkdir(parents=True)
        for f in list((bars / "train" / name).iterdir())[:2]:
            (flat / name / f.name).write_bytes(f.read_bytes())
    (flat / "empty class").mkdir()
    assert list_classes(flat) == ["empty class", *CLASSES]
    with pytest.raises(ValueError, match=r"empty class: an empty class folder \(no image files\): add its images, "
                                         r"remove it, or list the classes to train with --set"):
        ClassFolders(flat, TrainTransform(SIZE, SIZE), mode="L")
    kept = ClassFolders(flat, TrainTransform(SIZE, SIZE), mode="L", classes=CLASSES)
    assert kept.classes == CLASSES and len(kept) == 4
    assert list_classes(flat, {"classes": CLASSES}) == CLASSES


def test_the_classes_option_takes_a_comma_list_as_funits_lists_do(bars):
    """`--set data.options.classes=bag,boot` (as FUNIT's target_classes takes it) said 'expected a list of class
    folder names'; only `=[bag, boot]` worked."""
    assert list_classes(bars, {"classes": "vbar, hbar"}) == ["vbar", "hbar"]
    assert ClassFolders(bars, TrainTransform(SIZE, SIZE), mode="L", classes=list_classes(bars, {"classes": "vbar"})
                        ).classes == ["vbar"]
    with pytest.raises(ValueError, match=r"data.options.classes=\{'a': 1\}: expected a list of class names"):
        list_classes(bars, {"classes": {"a": 1}})


def test_config_needs_consistent_classes():
    assert TwoStepConfig(num_classes=3).class_names == ["0", "1", "2"]
    with pytest.raises(ValueError, match="class_names"):
        TwoStepConfig()
    with pytest.raises(ValueError, match="num_classes=3"):
        TwoStepConfig(class_names=["a", "b"], num_classes=3)


def test_reconstruct_takes_class_names_indices_and_tensors():
    """reconstruct, translate and sample take a class as translate always did (name, index, N indices), and
    also a one-element tensor or a numpy integer; a wrong label is one line naming the classes."""
    torch.manual_seed(0)
    method = TwoStep(TwoStepConfig(**TINY))
    method.nets.eval()
    x = torch.rand(3, 1, SIZE, SIZE) * 2 - 1
    expected = method.reconstruct(x, torch.tensor([1, 1, 1]))
    for label in ("vbar", 1, np.int64(1), torch.tensor(1), torch.tensor([1])):
        torch.testing.assert_close(method.reconstruct(x, label), expected, rtol=0, atol=0)
    torch.testing.assert_close(method.translate(x, np.int64(1)), expected, rtol=0, atol=0)
    assert method.sample(torch.randn(3, TINY["z_dim"]), torch.tensor(0)).shape == x.shape
    with pytest.raises(ValueError, match=r"^unknown class 'dress': this model knows hbar, vbar$"):
        method.translate(x, "dress")
    with pytest.raises(ValueError, match=r"^unknown class 'dress': this model knows hbar, vbar$"):
        method.reconstruct(x, "dress")
    with pytest.raises(ValueError, match=r"^class 5: this model has classes 0..1$"):
        method.reconstruct(x, torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match=r"^2 class labels for 3 images"):
        method.reconstruct(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^class labels must be integer class indices, got a torch.float32"):
        method.reconstruct(x, torch.tensor([0.0, 1.0, 1.0]))


@pytest.mark.parametrize("g_updates", [2, 1])
def test_step_one_follows_the_reference_rules(bars, g_updates):
    """As zsdonghao/Unsup-Im2Im's train.py: one D update then g_updates G updates (on the same z), each fake
    generated for the class of the real image beside it, and D's loss the unhalved sum real + fake + class."""
    torch.manual_seed(0)
    method = TwoStep(TwoStepConfig(**TINY, g_updates=g_updates))
    method.nets.train()
    ds = ClassFolders(bars, TrainTransform(SIZE, SIZE), mode="L")
    batch = {k: torch.stack([ds[(i, i)][k] for i in (0, 3, 50, 60, 70, 90)]) for k in ("image", "label")}
    assert batch["label"].tolist() == [0, 0, 1, 1, 1, 1]  # not balanced: a uniform draw would differ
    asked, updates = [], []
    generator = method.nets["G"]
    original = generator.forward
    generator.forward = lambda z, c: (asked.append((z.clone(), c.clone())), original(z, c))[1]

    def update(loss, name):
        updates.append((name, loss.item()))
        opt = method.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    losses = method.train_step(batch, update)
    assert [name for name, _ in updates] == ["D"] + ["G"] * g_updates
    assert len(asked) == g_updates and all(torch.equal(c, batch["label"]) for _, c in asked)
    assert all(torch.equal(z, asked[0][0]) for z, _ in asked)
    torch.testing.assert_close(updates[0][1], (losses["D_gan"] + losses["D_cls"]).item())
    assert losses["D_gan"].item() > 2 * 0.6  # two BCE terms near log 2 at the start, not their mean
    # the G losses logged: the mean over the G updates (lambda_cls 1: each update's loss is gan + cls)
    g_losses = [loss for name, loss in updates if name == "G"]
    torch.testing.assert_close((losses["G_gan"] + losses["G_cls"]).item(), sum(g_losses) / g_updates)
    with pytest.raises(ValueError, match="g_updates=0"):
        TwoStepConfig(**TINY, g_updates=0)


def test_encoder_step_leaves_the_generator_untouched(bars):
    """Step 2 moves E only: G's (and D's) weights and batch-norm statistics stay bit-identical."""
    torch.manual_seed(0)
    method = TwoStep(TwoStepConfig(**TINY, step1_steps=2, step2_steps=3))
    method.nets.train()

    def update(loss, name):
        opt = method.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ds = ClassFolders(bars, TrainTransform(SIZE, SIZE), mode="L")
    batch = {k: torch.stack([ds[(i, i)][k] for i in range(0, 96, 12)]) for k in ("image", "label")}
    for _ in range(2):
        assert "G_gan" in method.train_step(batch, update)  # step 1
    before = copy.deepcopy(method.nets.state_dict())
    for _ in range(3):
        losses = method.train_step(batch, update)  # step 2
        assert set(losses) == {"E_z"}
    after = method.nets.state_dict()
    for k in before:
        if k.startswith(("G.", "D.")):
            assert torch.equal(before[k], after[k]), f"{k} changed in the encoder step"
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("E."))
    assert not any(p.requires_grad for p in method.nets["G"].parameters())
    # the encoder's trunk started as the discriminator's (then trained on)
    assert method.step == 5


def test_resume_inside_and_between_the_steps_is_exact(tmp_path, bars):
    """Straight through both steps == stopped in step 1, resumed to the end of step 1, resumed to the end."""
    straight = train(run_config(bars, tmp_path / "straight", 3, 3), progress=False)
    train(run_config(bars, tmp_path / "parts", 3, 3, max_steps=2), progress=False)
    train(run_config(bars, tmp_path / "parts", 3, 3, max_steps=3, resume=True), progress=False)
    step1 = weights(tmp_path / "parts")
    parts = train(run_config(bars, tmp_path / "parts", 3, 3, resume=True), progress=False)
    a, b = weights(straight), weights(parts)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # step 2 (3 steps, resumed) left G and D as step 1 had made them, and trained E
    assert all(torch.equal(step1[k], b[k]) for k in b if k.startswith(("G.", "D.")))
    assert not all(torch.equal(step1[k], b[k]) for k in b if k.startswith("E."))
    state = torch.load(parts / "checkpoint" / "state.pt", weights_only=True)
    assert state["method"]["step"] == 6


def test_a_resumed_run_keeps_the_batches_it_was_drawing(tmp_path, bars):
    """A run that drew uniform batches (data.balance_classes=false, or saved before two-step balanced them by
    default) goes on drawing them when resumed without the option: resumed, it trains as straight through."""
    def config(out, max_steps, resume=False, balance=None):
        cfg = run_config(bars, out, 4, 1, max_steps=max_steps, resume=resume)
        cfg.data.balance_classes = balance
        return cfg

    straight = weights(train(config(tmp_path / "straight", 4, balance=False), progress=False))
    for saved_before in (False, True):
        run = tmp_path / f"parts{int(saved_before)}"
        train(config(run, 2, balance=False), progress=False)
        if saved_before:  # a checkpoint saved before the sampler's choice was
            state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
            del state["balanced_classes"]
            torch.save(state, run / "checkpoint" / "state.pt")
        parts = weights(train(config(run, 4, resume=True), progress=False))
        assert all(torch.equal(straight[k], parts[k]) for k in straight), saved_before


def test_resuming_a_step_one_saved_under_the_earlier_rules_says_so():
    method = TwoStep(TwoStepConfig(**TINY, step1_steps=4, step2_steps=2))
    with pytest.warns(UserWarning, match=r"step 1 began under pixmorph's earlier rules .* from step 2"):
        method.load_extra_state({"step": 2})  # a checkpoint from before the rules were saved
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        method.load_extra_state(method.extra_state())
        method.load_extra_state({"step": 4})  # step 1 was over: the encoder's step is unchanged


@pytest.fixture(scope="module")
def trained(bars, tmp_path_factory):
    """A small model trained through both steps on the bars (shared by the tests below). A GAN needs this
    much: at ngf 8 and 150 steps of 16 images G still drew noise, and no encoder can reconstruct from that.
    One thread: these nets are so small that a second one only waits on the first (and on shared cores, a lot)."""
    out = tmp_path_factory.mktemp("twostep") / "run"
    cfg = run_config(bars, out, 500, 300, batch_size=32, model={"ngf": 32, "ndf": 32, "lr_encoder": 1e-3})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_encoder_recovers_z(trained):
    """E(G(z, c)) is far closer to z than chance: the best guess without the image (z's mean, 0) has MSE 1.
    Not near 0: the bars vary in position only, so G leaves some of z's directions nearly invisible and no
    encoder can read those back (an untrained G, whose noise images show all of z, gave 0.02). In image
    space, G(E(G(z, c)), c) is much closer to G(z, c) than G's image of another z is."""
    method = pixmorph.load(trained).method
    g = torch.Generator().manual_seed(1)
    z = torch.randn(512, TINY["z_dim"], generator=g)
    c = torch.randint(0, 2, (512,), generator=g)
    images = method.sample(z, c)
    z_mse = torch.nn.functional.mse_loss(method.encode(images), z).item()
    image_l1 = (method.sample(method.encode(images), c) - images).abs().mean().item()
    chance_l1 = (images.roll(1, 0)[c.roll(1, 0) == c] - images[c.roll(1, 0) == c]).abs().mean().item()
    print(f"MSE(E(G(z, c)), z) = {z_mse:.3f} (chance 1.0); L1(G(E(G(z, c)), c), G(z, c)) = {image_l1:.3f} "
          f"(another z of the class: {chance_l1:.3f})")
    assert z_mse < 0.5
    assert image_l1 < 0.5 * chance_l1


def test_translating_to_the_source_class_reconstructs_best(trained, bars):
    """G(E(x), source class) is closer to x than G(E(x), other class), and closer than a black image: the bar
    comes back where it was (a blank or wrongly placed output cannot pass the second check)."""
    translator = pixmorph.load(trained)
    assert set(translator.directions) == {"to:hbar", "to:vbar", "reconstruct"}
    errors, blank = {}, {}
    for source in CLASSES:
        x = torch.stack([to_tensor(read_image(f, mode="L")) for f in list_images(bars / "test" / source)])
        blank[source] = (x + 1).abs().mean().item()
        for target in CLASSES:
            errors[source, target] = (translator(x, f"to:{target}") - x).abs().mean().item()
    print({f"{s}->{t}": round(e, 3) for (s, t), e in errors.items()}, "black image:", {s: round(e, 3) for s, e in blank.items()})
    for source, other in (("hbar", "vbar"), ("vbar", "hbar")):
        assert errors[source, source] < 0.8 * errors[source, other]
        assert errors[source, source] < 0.8 * blank[source]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # the antialiased bicubic resize has no bf16 CPU kernel
def test_translator_resizes_to_the_model_size(trained, precision):
    translator = pixmorph.load(trained, precision=precision)
    x = torch.rand(2, 1, 24, 20) * 2 - 1
    y = translator(x, "to:vbar")
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert translator(x, "reconstruct").shape == x.shape
    with pytest.raises(ValueError, match="to:hbar"):
        translator(x, "to:dress")


def test_run_config_takes_classes_from_the_data_and_ends_at_the_stage(bars):
    """What `pixmorph train twostep` adds: the data's classes, channels and size; the stage's last step."""
    data = {"root": str(bars), "channels": 1, "load_size": SIZE, "crop_size": SIZE}
    d = TwoStep.complete_run_config({"model": {"step1_steps": 10, "step2_steps": 5}, "data": data})
    assert d["model"]["class_names"] == CLASSES and d["model"]["channels"] == 1 and d["model"]["image_size"] == SIZE
    assert d["train"]["max_steps"] == 15
    train = RunConfig.from_dict({**d, "method": "twostep"}).train  # the paper's settings where not given
    assert train.batch_size == 64 and train.lr_policy == "constant"
    stage1 = TwoStep.complete_run_config({"model": {"step1_steps": 10, "step2_steps": 5, "stage": 1}, "data": {"root": str(bars)}})
    assert stage1["train"]["max_steps"] == 10
    # resuming a stage-1 run (its saved max_steps is 10) as stage 2 runs to the end of step 2 ...
    stage2 = TwoStep.complete_run_config({**stage1, "model": {**stage1["model"], "stage": "2"},
                                         "train": {**stage1["train"], "resume": True}})
    assert stage2["train"]["max_steps"] == 15
    # ... and a step inside the stage is kept (stop early, resume later)
    early = TwoStep.complete_run_config({"model": {"step1_steps": 10, "step2_steps": 5}, "data": {"root": str(bars)},
                                         "train": {"max_steps": 7, "batch_size": 4}})
    assert early["train"]["max_steps"] == 7 and early["train"]["batch_size"] == 4
    with pytest.raises(ValueError, match="model.stage"):
        TwoStepConfig(**TINY, stage="3")


def test_dry_run_prepares_no_built_in_task_but_checks_a_folder(tmp_path, monkeypatch, bars):
    """`pixmorph train twostep --dry-run` writes nothing: a built-in task is not materialised into the cache
    (its classes are known without it, in the order a prepared task gives them); a folder is still read
    for its class folders."""
    import json

    from pixmorph.data import builtin

    cache = tmp_path / "cache"
    monkeypatch.setenv(builtin.ENV_CACHE, str(cache))

    def dry_run(*args):
        return CliRunner().invoke(cli, ["train", "twostep", "--out", str(tmp_path / "run"), *args, "--dry-run"])

    result = dry_run("--data", "fashion-classes")
    assert result.exit_code == 0, result.output + repr(result.exception)
    printed = json.loads(result.stdout)
    assert printed["model"]["class_names"] == sorted(c.slug for c in builtin.FASHION_CLASSES)
    assert printed["model"]["image_size"] == printed["data"]["crop_size"] == 32
    result = dry_run("--data", "sneaker2boot", "--set", "data.options={classes: [B, A]}")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads(result.stdout)["model"]["class_names"] == ["B", "A"]
    assert not cache.exists() and not (tmp_path / "run").exists(), "a dry run must write nothing"

    assert json.loads(dry_run("--data", str(bars)).stdout)["model"]["class_names"] == CLASSES
    (tmp_path / "flat" / "train").mkdir(parents=True)
    result = dry_run("--data", str(tmp_path / "flat"))
    assert isinstance(result.exception, FileNotFoundError) and "no class folders" in str(result.exception)


def test_a_python_config_is_completed_from_the_data_as_the_command_does(tmp_path, bars):
    """train(RunConfig.from_dict(...)) of two-step was refused ('twostep needs its classes: set
    model.class_names'), and given the classes it would have trained 1e6 epochs: only `pixmorph train` filled in
    the data's classes, channels and size, and ended the run after step 2."""
    cfg = RunConfig.from_dict({
        "method": "twostep", "model": {"z_dim": 4, "embed_dim": 4, "ngf": 8, "ndf": 8, "step1_steps": 2, "step2_steps": 1},
        "data": {"root": str(bars), "load_size": SIZE, "crop_size": SIZE, "channels": 1, "num_workers": 0},
        "train": {"out": str(tmp_path / "run"), "batch_size": 4, "tensorboard": False}})
    translator = pixmorph.load(train(cfg, progress=False))
    assert translator.step == 3 and translator.method.cfg.class_names == CLASSES
    assert translator(torch.zeros(1, 1, SIZE, SIZE), "to:vbar").shape == (1, 1, SIZE, SIZE)


def test_a_finished_stage_says_how_to_train_on(tmp_path, bars, capsys):
    """`--resume` of a finished model.stage=1 run said 'nothing to train (raise --steps, ...)', and a raised --steps
    is cut back to the stage's end: it trained nothing again. It now names --set model.stage=2."""
    run = train(run_config(bars, tmp_path / "run", 2, 1, max_steps=2, model={"stage": "1"}), progress=False)
    capsys.readouterr()
    for steps in (None, 5):
        cfg = RunConfig.of_run(run)
        cfg.train.resume, cfg.train.max_steps = True, steps
        train(cfg, progress=False)
        assert capsys.readouterr().out.splitlines()[-1] == (f"{run}: already at step 2 of 2: nothing to train (model.stage=1 "
                                                   f"ends at step 1's end: --resume --set model.stage=2 trains the "
                                                   f"encoder)")
    cfg = RunConfig.of_run(run)
    cfg.train.resume, cfg.model["stage"] = True, "2"
    assert pixmorph.load(train(cfg, progress=False)).step == 3
    capsys.readouterr()
    train(cfg, progress=False)
    assert "nothing to train (two-step ends at model.step1_steps + model.step2_steps = 3: raise model.step2_steps " \
           "and --steps to the new end)" in capsys.readouterr().out
    cfg.model["step2_steps"], cfg.train.max_steps = 2, 4  # as it says
    assert pixmorph.load(train(cfg, progress=False)).step == 4


def test_a_run_stopped_inside_its_steps_says_a_command_that_trains_on(tmp_path, bars, capsys):
    """The warning of a run stopped before its encoder trained said 'train on with --resume', and the stage-2 error
    'run model.stage=1 first': a plain --resume keeps the run's --steps (nothing to train, which then said 'raise
    model.step2_steps'), and a stage=1 run ends at step 1. Each now names a command that trains on; followed, it does."""
    def resumed(run, **changes):
        cfg = RunConfig.of_run(run)  # keeps the run's --steps, as `--resume` does
        cfg.train.resume, cfg.train.max_steps = True, changes.pop("max_steps", cfg.train.max_steps)
        cfg.model.update(changes)
        return cfg

    run = train(run_config(bars, tmp_path / "both", 3, 2, max_steps=2), progress=False)
    with pytest.warns(UserWarning, match=r"untrained encoder; train on with --resume --steps 5, or"):
        pixmorph.load(run)
    capsys.readouterr()
    train(resumed(run), progress=False)
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "already at step 2 of 2: nothing to train (--steps 2 ended it: train on with --resume --steps 5)")
    assert pixmorph.load(train(resumed(run, max_steps=5), progress=False)).step == 5

    run = train(run_config(bars, tmp_path / "stage1", 3, 2, max_steps=1, model={"stage": "1"}), progress=False)
    finish = "finish step 1 with --resume --set model.stage=1 --steps 3, then --resume --set model.stage=2"
    with pytest.warns(UserWarning, match=f"untrained encoder; {finish}, or"):
        pixmorph.load(run)
    with pytest.raises(ValueError, match=f"this run is at step 1 of 3: {finish}$"):
        train(resumed(run, stage="2"), progress=False)
    assert pixmorph.load(train(resumed(run, stage="1", max_steps=3), progress=False)).step == 3
    with pytest.warns(UserWarning, match="untrained encoder; train it with --resume --set model.stage=2, or"):
        pixmorph.load(run)
    assert pixmorph.load(train(resumed(run, stage="2"), progress=False)).step == 5


def test_stage_two_needs_a_finished_step_one(tmp_path, bars):
    cfg = run_config(bars, tmp_path / "run", 3, 3, model={"stage": "2"})
    with pytest.raises(ValueError, match="run model.stage=1 first"):
        train(cfg, progress=False)
    # the command refuses it before training starts (no progress bar) and leaves no run folder
    out = tmp_path / "cli_run"
    result = CliRunner().invoke(cli, ["train", "twostep", "--data", str(bars), "--out", str(out),
                                      "--set", "model.stage=2", "--set", "data.channels=1"])
    assert isinstance(result.exception, ValueError) and "run model.stage=1 first" in str(result.exception)
    assert "%|" not in result.output and not out.exists()


def test_stage_two_of_an_unfinished_step_one_is_refused_before_the_first_step(tmp_path, bars, capsys):
    """--resume --set model.stage=2 of a run inside step 1 was refused by the first training step, after the
    progress bar had started; it is refused before, with the same line."""
    run = train(run_config(bars, tmp_path / "run", 3, 2, max_steps=1, model={"stage": "1"}), progress=False)
    cfg = RunConfig.of_run(run)
    cfg.train.resume, cfg.model["stage"] = True, "2"
    capsys.readouterr()
    with pytest.raises(ValueError, match="^model.stage=2 trains the encoder of a finished step 1, but this run is at "
                                         "step 1 of 3: finish step 1 with --resume --set model.stage=1 --steps 3, "
                                         "then --resume --set model.stage=2$"):
        train(cfg, progress=True)
    assert "%|" not in capsys.readouterr().err


def test_translate_without_a_class_or_with_two_directions_says_so(trained, bars, tmp_path):
    """A two-step model has no AtoB: `pixmorph translate` without --to names the classes (the API's default
    direction says the same), and --to with another --direction is refused, both before anything is read."""
    out = tmp_path / "out"
    inputs = str(bars / "test" / "hbar")
    result = CliRunner().invoke(cli, ["translate", str(trained), inputs, "--out", str(out)])
    assert isinstance(result.exception, ValueError), result.output
    assert "hbar, vbar" in str(result.exception) and "--to CLASS" in str(result.exception)
    with pytest.raises(ValueError, match="hbar, vbar"):
        pixmorph.load(trained).default_direction()
    result = CliRunner().invoke(cli, ["translate", str(trained), inputs, "--out", str(out), "--to", "vbar",
                                      "--direction", "BtoA"])
    assert result.exit_code == 2 and "give one of them" in result.output
    # --to a class the model lacks is said as typed (it said "direction 'to:dress': ... has to:hbar, to:vbar, ...")
    result = CliRunner().invoke(cli, ["translate", str(trained), inputs, "--out", str(out), "--to", "dress"])
    assert isinstance(result.exception, ValueError)
    assert str(result.exception) == "--to dress: this twostep checkpoint has no class 'dress'; its classes: hbar, vbar"
    assert "%|" not in result.output and not out.exists()
    result = CliRunner().invoke(cli, ["translate", str(trained), inputs, "--out", str(out), "--to", "VBar"])
    assert str(result.exception).endswith("its classes: hbar, vbar (did you mean --to vbar?)")


def test_a_run_that_stops_before_the_encoder_trained_says_so(tmp_path, bars):
    """`--steps` inside step 1 trains no encoder: training says so before it starts, and loading the checkpoint
    (translate, eval, serve, export) warns that its translations come from an untrained encoder; a run that
    reached step 2 loads without a word."""
    out = tmp_path / "run"
    args = ["train", "twostep", "--data", str(bars), "--out", str(out), "--set", "data.channels=1",
            "--batch-size", "4", "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "train.log_every=1"]
    with pytest.warns(UserWarning, match=r"--steps 2 \(train.max_steps\) ends inside step 1 "
                                         r"\(model.step1_steps=20000\): the encoder"):
        result = CliRunner().invoke(cli, [*args, "--steps", "2"])
    assert result.exit_code == 0, result.output
    with pytest.warns(UserWarning, match=r"saved at step 2, before the encoder trained .* lower model.step1_steps"):
        pixmorph.load(out)
    import warnings

    trained_run = train(run_config(bars, tmp_path / "both", 2, 1), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixmorph.load(trained_run)


def test_a_crop_size_the_dcgan_nets_cannot_take_names_the_option(tmp_path, bars):
    """The model's image size comes from the crop size: an odd one named only model.image_size, which the user
    never gave."""
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "twostep", "--data", str(bars), "--out", str(out), "--steps", "1",
                                      "--load-size", "12", "--crop-size", "12"])
    assert isinstance(result.exception, ValueError), result.output
    assert str(result.exception).startswith("crop size 12 (--crop-size, data.crop_size): two-step's DCGAN nets take "
                                            "a square of a power of two >= 8")
    assert not out.exists()

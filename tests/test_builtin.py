from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.feature import canny

from pixmorph.data import builtin

N_TRAIN, N_TEST = 20, 10

# Probe the local folders only: collecting tests must never start a download.
HAVE_DATA = all(
    any(builtin._split_files(folder, split) for folder in builtin._candidate_dirs())
    for split in ("train", "test")
)

needs_data = pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST not installed")


def read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "L"
        return np.asarray(im)


def index_of(path: Path) -> int:
    match = re.fullmatch(r"(train|test)_(\d{6})\.png", path.name)
    assert match, path.name
    return int(match.group(2))


def indices(folder: Path) -> set[int]:
    return {index_of(p) for p in folder.iterdir()}


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def edges_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edges")
    return builtin.prepare_task("fashion-edges", root, n_train=N_TRAIN, n_test=N_TEST)


def test_registry() -> None:
    for name in ("fashion-edges", "fashion-edges-paired", "sneaker2boot",
                 "tshirt2pullover", "sandal2sneaker", "fashion-classes"):
        assert builtin.is_builtin(name)
        assert builtin.TASKS[name].name == name
    assert not builtin.is_builtin("horse2zebra")
    assert [c.slug for c in builtin.FASHION_CLASSES] == [
        "tshirt", "trouser", "pullover", "dress", "coat",
        "sandal", "shirt", "sneaker", "bag", "boot",
    ]


def test_unknown_task_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown built-in task 'nope'") as info:
        builtin.prepare_task("nope", tmp_path)
    assert all(name in str(info.value) for name in builtin.TASKS)
    assert not any(tmp_path.iterdir())


@needs_data
def test_load_fashion_mnist() -> None:
    images, labels = builtin.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(10))
    train_images, _ = builtin.load_fashion_mnist("train")
    assert train_images.shape == (60000, 28, 28)


@needs_data
def test_fashion_edges_layout(edges_root: Path) -> None:
    counts = {p.name: len(list(p.iterdir())) for p in edges_root.iterdir()}
    assert counts == {"trainA": N_TRAIN, "trainB": N_TRAIN, "testA": N_TEST, "testB": N_TEST}
    for path in edges_root.rglob("*.png"):
        assert read(path).shape == (32, 32)


@needs_data
def test_fashion_edges_train_halves_are_disjoint(edges_root: Path) -> None:
    a, b = indices(edges_root / "trainA"), indices(edges_root / "trainB")
    assert len(a) == len(b) == N_TRAIN
    assert a.isdisjoint(b)
    assert all(p.name.startswith("train_") for p in (edges_root / "trainA").iterdir())


@needs_data
def test_fashion_edges_test_pairs_match(edges_root: Path) -> None:
    names_a = sorted(p.name for p in (edges_root / "testA").iterdir())
    names_b = sorted(p.name for p in (edges_root / "testB").iterdir())
    assert names_a == names_b
    images, _ = builtin.load_fashion_mnist("test")
    for name in names_a:
        photo = read(edges_root / "testB" / name)
        # The photo is the padded source item, black border included.
        np.testing.assert_array_equal(photo[2:30, 2:30], images[index_of(Path(name))])
        assert not photo[:2].any() and not photo[:, -2:].any()
        expected = canny(photo / 255.0, sigma=builtin.EDGE_SIGMA,
                         low_threshold=builtin.EDGE_LOW, high_threshold=builtin.EDGE_HIGH)
        edges = read(edges_root / "testA" / name)
        assert set(np.unique(edges)) <= {0, 255}
        np.testing.assert_array_equal(edges == 255, expected)
        assert expected.sum() > 20  # an outline, not an empty map


@needs_data
@pytest.mark.parametrize("task, slug_a, slug_b", [
    ("sneaker2boot", "sneaker", "boot"),
    ("tshirt2pullover", "tshirt", "pullover"),
    ("sandal2sneaker", "sandal", "sneaker"),
])
def test_class_pairs_hold_only_their_classes(tmp_path: Path, task: str, slug_a: str, slug_b: str) -> None:
    root = builtin.prepare_task(task, tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    label = {c.slug: i for i, c in enumerate(builtin.FASHION_CLASSES)}
    for split, count in (("train", N_TRAIN), ("test", N_TEST)):
        images, labels = builtin.load_fashion_mnist(split)
        for side, slug in (("A", slug_a), ("B", slug_b)):
            files = sorted((root / f"{split}{side}").iterdir())
            assert len(files) == count
            for path in files:
                assert path.name.startswith(f"{split}_")
                assert labels[index_of(path)] == label[slug]
                np.testing.assert_array_equal(read(path)[2:30, 2:30], images[index_of(path)])


@needs_data
def test_paired_layout(tmp_path: Path) -> None:
    root = builtin.prepare_task("fashion-edges-paired", tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    images, _ = builtin.load_fashion_mnist("train")
    train = sorted((root / "train").iterdir())
    assert len(train) == N_TRAIN and len(list((root / "test").iterdir())) == N_TEST
    for path in train:
        pair = read(path)
        assert pair.shape == (32, 64)
        edges, photo = pair[:, :32], pair[:, 32:]
        np.testing.assert_array_equal(photo[2:30, 2:30], images[index_of(path)])
        np.testing.assert_array_equal(edges, builtin.edge_map(photo))


@needs_data
def test_classes_layout(tmp_path: Path) -> None:
    root = builtin.prepare_task("fashion-classes", tmp_path, n_train=3, n_test=2)
    slugs = sorted(c.slug for c in builtin.FASHION_CLASSES)
    for split, count in (("train", 3), ("test", 2)):
        _, labels = builtin.load_fashion_mnist(split)
        assert sorted(p.name for p in (root / split).iterdir()) == slugs
        for label, cls in enumerate(builtin.FASHION_CLASSES):
            files = list((root / split / cls.slug).iterdir())
            assert len(files) == count
            assert all(labels[index_of(p)] == label for p in files)


@needs_data
def test_builds_are_deterministic(tmp_path: Path, edges_root: Path) -> None:
    again = builtin.prepare_task("fashion-edges", tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    assert again != edges_root and again.name == edges_root.name
    first, second = all_files(edges_root), all_files(again)
    assert len(first) == 2 * (N_TRAIN + N_TEST)
    assert first == second


@needs_data
def test_second_call_reuses_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = builtin.prepare_task("sneaker2boot", tmp_path, n_train=5, n_test=3)
    probe = root / "testA" / sorted(p.name for p in (root / "testA").iterdir())[0]
    stamps = (root.stat().st_mtime_ns, probe.stat().st_mtime_ns)
    monkeypatch.setitem(builtin._BUILDERS, "sneaker2boot", lambda *args: pytest.fail("rebuilt"))
    assert builtin.prepare_task("sneaker2boot", tmp_path, n_train=5, n_test=3) == root
    assert (root.stat().st_mtime_ns, probe.stat().st_mtime_ns) == stamps
    # Only the finished folder is left behind, no staging folders.
    assert [p.name for p in tmp_path.iterdir()] == [root.name]


@needs_data
def test_sizes_get_their_own_folders(tmp_path: Path) -> None:
    small = builtin.prepare_task("sneaker2boot", tmp_path, n_train=2, n_test=1)
    large = builtin.prepare_task("sneaker2boot", tmp_path, n_train=4, n_test=1)
    assert small != large
    assert len(list((small / "trainA").iterdir())) == 2
    assert len(list((large / "trainA").iterdir())) == 4


@needs_data
def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only .* available"):
        builtin.prepare_task("sneaker2boot", tmp_path, n_train=N_TRAIN, n_test=5000)
    assert list(tmp_path.iterdir()) == []


def test_missing_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    downloads = []
    monkeypatch.setenv(builtin.ENV_DATA_DIR, str(empty))
    monkeypatch.setenv(builtin.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(builtin, "DEBIAN_DIR", empty)
    monkeypatch.setattr(builtin, "_download_with_torchvision", lambda: downloads.append(1))
    with pytest.raises(FileNotFoundError) as info:
        builtin.load_fashion_mnist("train")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Fashion-MNIST not found")
    assert "apt-get install dataset-fashion-mnist" in message
    assert builtin.ENV_DATA_DIR in message
    assert message.endswith(f"(it is set, to {empty}, which holds no train-images-idx3-ubyte and "
                            "train-labels-idx1-ubyte, .gz or not: give the folder of those files)")
    assert downloads == [1]  # the download fallback was reached, but stubbed out
    with pytest.raises(FileNotFoundError):
        builtin.prepare_task("fashion-edges", tmp_path / "root", n_train=2, n_test=2)
    assert not any((tmp_path / "root").iterdir())


def test_data_dir_env_var_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 9, 0], dtype=np.uint8)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + np.array([3, 28, 28], ">u4").tobytes() + images.tobytes())
    # An uncompressed labels file is accepted too.
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(
        bytes([0, 0, 8, 1]) + np.array([3], ">u4").tobytes() + labels.tobytes())
    monkeypatch.setenv(builtin.ENV_DATA_DIR, str(tmp_path))
    monkeypatch.setattr(builtin, "_download_with_torchvision", lambda: pytest.fail("download"))
    got_images, got_labels = builtin.load_fashion_mnist("test")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels.astype(np.int64))
    assert got_labels.dtype == np.int64


def test_a_cut_short_idx_file_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A .gz cut short (an interrupted copy or download) raised EOFError, which click takes for Ctrl-D at a
    prompt: `pixmorph data path fashion-edges` said `aborted` with exit code 130, naming nothing. Now one
    line names the file, exit code 1; and any other EOFError is an error, not `aborted`."""
    from conftest import run_main

    images = tmp_path / "train-images-idx3-ubyte.gz"
    pixels = np.random.default_rng(0).integers(0, 256, 50 * 28 * 28, dtype=np.uint8).tobytes()
    with gzip.open(images, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + np.array([50, 28, 28], ">u4").tobytes() + pixels)
    images.write_bytes(images.read_bytes()[:5000])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + np.array([50], ">u4").tobytes() + bytes(50))
    monkeypatch.setenv(builtin.ENV_DATA_DIR, str(tmp_path))
    monkeypatch.setenv("PIXMORPH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(images))}: unreadable \(.*\): the file is cut short"):
        builtin.load_fashion_mnist("train")
    monkeypatch.setattr(builtin, "_read_idx", lambda path: (_ for _ in ()).throw(EOFError("Ran out of input")))
    code, _, err = run_main(monkeypatch, capsys, "data", "path", "fashion-edges")
    assert code == 1 and err.strip().splitlines()[-1] == "error: a file ended too soon (Ran out of input)", err


def test_an_uncompressed_idx_file_cut_short_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An uncompressed images file cut short said '...: expected (50, 28, 28) values, found 5000' (what to do
    left to guess, unlike a .gz cut short); it now says the file is cut short or damaged, as the .gz case does."""
    images = tmp_path / "train-images-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + np.array([50, 28, 28], ">u4").tobytes()
    images.write_bytes(header + bytes(5000))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + np.array([50], ">u4").tobytes() + bytes(50))
    monkeypatch.setenv(builtin.ENV_DATA_DIR, str(tmp_path))
    monkeypatch.setenv("PIXMORPH_CACHE", str(tmp_path / "cache"))
    builtin._read_idx.cache_clear()
    with pytest.raises(ValueError) as err:
        builtin.load_fashion_mnist("train")
    assert str(err.value) == (f"{images}: 5000 values where its header says 50 x 28 x 28 (39200): the file is cut "
                              "short or damaged; get it again")


def test_the_demo_does_not_write_over_a_page_of_its_folder(tmp_path: Path) -> None:
    """`pixmorph demo --out .` in a folder with its own index.html wrote the demo's page over it (after minutes
    of training); it is refused before anything is done."""
    from pixmorph.demo import run_demo

    page = tmp_path / "site" / "index.html"
    page.parent.mkdir()
    page.write_text("<html>my site</html>")
    with pytest.raises(FileExistsError, match=r"index.html: not a page of the demo, which it would write over"):
        run_demo(page.parent, minutes=0.01, device="cpu")
    assert page.read_text() == "<html>my site</html>" and sorted(page.parent.iterdir()) == [page]


@needs_data
def test_the_demo_runs_again_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pixmorph demo` twice in the same folder: the second run starts over (it stopped with "holds a checkpoint
    already", suggesting options the demo does not have)."""
    import json

    from pixmorph import demo
    from pixmorph.demo import run_demo

    # Its grid's 16 held-out items, not 200: the 200 are read by three generators each run, ~3/4 of its time
    monkeypatch.setattr(demo, "N_TEST", demo.N_SHOWN)
    for _ in range(2):
        result = run_demo(tmp_path / "demo", minutes=0.01, device="cpu")
        step = json.loads((result["run"] / "checkpoint" / "config.json").read_text())["step"]
        assert 1 <= step < 50 and result["page"].is_file()  # a new short run each time, not one resumed

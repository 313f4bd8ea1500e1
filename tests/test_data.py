"""Data: IDX decoding, checksums, look-up order and errors, the stratified split."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from fmnist_core import data
from fmnist_core.data import DataError, load_dataset, parse_idx, stratified_split


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_parse_idx_matches_independent_decoding():
    """Our reader vs a byte-by-byte decoding of the real test labels and first images."""
    path = data.find_data_dir("fashion") / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    arr = parse_idx(raw)
    # Independent: magic 2051, then three big-endian counts, then row-major pixels.
    magic, n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
    assert (magic, n, rows, cols) == (2051, 10000, 28, 28)
    assert arr.shape == (n, rows, cols)
    for k in (0, 1, 9999):
        start = 16 + k * 784
        expected = [[raw[start + r * 28 + c] for c in range(28)] for r in range(28)]
        assert arr[k].tolist() == expected


def test_parse_idx_roundtrip_and_errors():
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    assert np.array_equal(parse_idx(_idx_bytes(a)), a)
    with pytest.raises(DataError, match="size mismatch"):
        parse_idx(_idx_bytes(a)[:-1])
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        parse_idx(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DataError):
        parse_idx(b"\x00")


def test_real_dataset_counts_and_checksums(dataset):
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_test.shape == (10000, 28, 28)
    assert np.bincount(dataset.y_train).tolist() == [6000] * 10
    assert np.bincount(dataset.y_test).tolist() == [1000] * 10
    assert len(dataset.checks) == 4 and all(c.ok for c in dataset.checks)
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[9] == "Ankle boot"


def test_corrupt_file_fails_with_fix(tmp_path):
    src = data.find_data_dir("fashion")
    folder = tmp_path / "fashion-mnist"
    shutil.copytree(src, folder)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: still a valid IDX file
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_dataset("fashion", folder=folder)
    assert "python -m fmnist_core data --download" in str(err.value)
    labels.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip"):
        load_dataset("fashion", folder=folder)


def test_missing_data_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "candidate_dirs", lambda _dataset="fashion": [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(DataError) as err:
        load_dataset("fashion")
    msg = str(err.value)
    assert str(tmp_path / "a") in msg and str(tmp_path / "b") in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_env_var_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path))
    assert data.candidate_dirs("fashion")[0] == tmp_path
    assert data.candidate_dirs("fashion")[-1].as_posix() == "/usr/share/datasets/fashion-mnist"


def test_mnist_digits_use_the_same_loader(tmp_path):
    """Digits files in the same IDX format load through the same code (synthetic files here)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(20) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(10),
    }
    for stem, arr in arrays.items():
        (folder / f"{stem}.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    ds = load_dataset("mnist", folder=folder, verify=False)
    assert ds.class_names[3] == "3" and ds.x_train.shape == (20, 28, 28)
    assert np.array_equal(ds.y_test, np.arange(10))
    with pytest.raises(DataError, match="checksum mismatch"):  # not the real digits
        load_dataset("mnist", folder=folder)


def test_split_is_stratified_seeded_and_disjoint():
    y = np.repeat(np.arange(10), 600)
    tr, va = stratified_split(y, 0.2, seed=7)
    assert len(tr) == 4800 and len(va) == 1200 and not set(tr) & set(va)
    assert np.bincount(y[va]).tolist() == [120] * 10
    tr2, va2 = stratified_split(y, 0.2, seed=7)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    _, va3 = stratified_split(y, 0.2, seed=8)
    assert not np.array_equal(va, va3)
    # Not the last rows (what Keras' validation_split would take).
    assert va.max() > 0 and va.min() < len(y) - 1200


def test_split_limit_keeps_classes_balanced():
    y = np.repeat(np.arange(10), 600)
    tr, va = stratified_split(y, 0.2, seed=0, limit=500)
    assert len(tr) + len(va) == 500
    assert np.bincount(y[np.concatenate([tr, va])]).tolist() == [50] * 10
    with pytest.raises(ValueError, match="too small"):
        stratified_split(y, 0.2, seed=0, limit=15)


def test_small_split_keeps_one_validation_image_per_class():
    # 5% of 100 images is 5, fewer than the classes: sklearn refuses that, so the split takes 10.
    from fmnist_core.config import preset
    from fmnist_core.estimate import split_sizes

    y = np.repeat(np.arange(10), 100)
    tr, va = stratified_split(y, 0.05, seed=0, limit=100)
    assert len(va) == 10 and sorted(np.bincount(y[va])) == [1] * 10
    assert not set(tr) & set(va) and len(tr) == 90
    assert split_sizes(preset("fast", limit=100), total=len(y)) == (90, 10)
    tr, va = stratified_split(y, 0.2, seed=0, limit=500)  # large enough: the share, rounded up
    assert (len(tr), len(va)) == (400, 100) == split_sizes(preset("paper", limit=500), total=len(y))

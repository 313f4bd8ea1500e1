"""Find, verify, download and load the Fashion-MNIST (or MNIST digits) IDX files.

Look-up order (first folder holding all four files wins):
``$FMNIST_DATA_DIR`` -> ``./data/<dataset>/`` -> ``~/.keras/datasets/<dataset>/`` ->
``/usr/share/datasets/<dataset>/`` (Debian package ``dataset-fashion-mnist``) -> download.

Checksums: the dataset README gives MD5s of the ``.gz`` files. Debian recompresses the files
(same bytes inside, different gzip header), so a file also passes when the MD5 of its
*uncompressed* bytes matches the published MD5 of the original uncompressed file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import class_names

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# (md5 of the official .gz, md5 of the uncompressed file) per file.
CHECKSUMS: dict[str, dict[str, tuple[str, str]]] = {
    "fashion": {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
    },
    "mnist": {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
    },
}

FOLDER_NAMES = {"fashion": "fashion-mnist", "mnist": "mnist"}
MIRRORS = {
    "fashion": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
}
DEBIAN_PACKAGES = {"fashion": "dataset-fashion-mnist", "mnist": "dataset-mnist"}


class DataError(RuntimeError):
    """The dataset is missing or corrupt; the message says where we looked and how to fix it."""


@dataclass
class FileCheck:
    """The result of verifying one IDX file."""

    name: str
    path: str
    md5: str
    ok: bool
    matched: str  # "gz", "raw" or "" when no checksum matched


@dataclass
class Dataset:
    """Train and test arrays (uint8 images N x 28 x 28, uint8 labels) with their origin."""

    name: str
    folder: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checks: list[FileCheck] = field(default_factory=list)

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.name)


def candidate_dirs(dataset: str = "fashion") -> list[Path]:
    """Folders searched for the IDX files, in order."""
    folder = FOLDER_NAMES[dataset]
    dirs: list[Path] = []
    env = os.environ.get("FMNIST_DATA_DIR")
    if env:
        # The variable names one folder; for MNIST a sibling 'mnist' folder is accepted too.
        dirs.append(Path(env) if dataset == "fashion" else Path(env).parent / folder)
    dirs += [
        Path.cwd() / "data" / folder,
        Path.home() / ".keras" / "datasets" / folder,
        Path("/usr/share/datasets") / folder,
    ]
    return dirs


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        p = folder / name
        if p.is_file():
            return p
    return None


def find_data_dir(dataset: str = "fashion") -> Path | None:
    """The first candidate folder that holds all four files, or None."""
    for d in candidate_dirs(dataset):
        if all(_file_in(d, stem) for stem in FILES.values()):
            return d
    return None


def fix_hint(dataset: str = "fashion") -> str:
    """The commands that make the data available, for error messages and the Home page."""
    return (
        f"install the Debian package (sudo apt-get install {DEBIAN_PACKAGES[dataset]}), "
        f"or download it with: python -m fmnist_core data --download --dataset {dataset} "
        f"(or put the four .gz files in ./data/{FOLDER_NAMES[dataset]}/ or set FMNIST_DATA_DIR)"
    )


def _read_bytes(path: Path) -> tuple[bytes, bytes]:
    """Return (bytes on disk, uncompressed bytes)."""
    disk = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return disk, gzip.decompress(disk)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is not a valid gzip file ({exc}); {fix_hint()}") from exc
    return disk, disk


def verify_file(path: Path, dataset: str, stem: str, disk: bytes, raw: bytes) -> FileCheck:
    """Compare a file's MD5s with the published ones."""
    gz_md5, raw_md5 = CHECKSUMS[dataset][stem]
    disk_md5 = hashlib.md5(disk).hexdigest()
    if path.suffix == ".gz" and disk_md5 == gz_md5:
        return FileCheck(stem, str(path), disk_md5, True, "gz")
    content_md5 = disk_md5 if disk is raw else hashlib.md5(raw).hexdigest()
    ok = content_md5 == raw_md5
    return FileCheck(stem, str(path), content_md5, ok, "raw" if ok else "")


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode IDX bytes (unsigned-byte data only, as in (Fashion-)MNIST) into an array."""
    if len(raw) < 4:
        raise DataError("IDX data is shorter than its 4-byte header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"IDX size mismatch: header says {dims} ({expected} bytes), file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_dataset(dataset: str = "fashion", folder: Path | None = None, verify: bool = True) -> Dataset:
    """Load the four files of ``dataset`` from ``folder`` (or the first folder found).

    Raises DataError, naming every folder searched and the fix, when data is missing or corrupt.
    """
    class_names(dataset)  # validates the name
    if folder is None:
        folder = find_data_dir(dataset)
    if folder is None:
        looked = "\n  ".join(str(d) for d in candidate_dirs(dataset))
        raise DataError(f"{dataset} data not found. Looked in:\n  {looked}\nFix: {fix_hint(dataset)}")
    arrays: dict[str, np.ndarray] = {}
    checks: list[FileCheck] = []
    for key, stem in FILES.items():
        path = _file_in(folder, stem)
        if path is None:
            raise DataError(f"{folder} lacks {stem}(.gz). Fix: {fix_hint(dataset)}")
        disk, raw = _read_bytes(path)
        if verify:
            check = verify_file(path, dataset, stem, disk, raw)
            checks.append(check)
            if not check.ok:
                raise DataError(
                    f"checksum mismatch for {path} (md5 {check.md5}); the file is corrupt or not "
                    f"{dataset} data. Delete it and fix: {fix_hint(dataset)}"
                )
        arrays[key] = parse_idx(raw)
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(f"{split}: {n_img} images but {n_lab} labels in {folder}")
    return Dataset(
        dataset,
        folder,
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        checks,
    )


def download(dataset: str = "fashion", dest: Path | None = None, quiet: bool = False) -> Path:
    """Download the four files from the official mirror into ``dest`` with progress and MD5 check."""
    dest = dest or Path.cwd() / "data" / FOLDER_NAMES[dataset]
    dest.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        target = dest / (stem + ".gz")
        if target.exists():
            continue
        url = MIRRORS[dataset] + stem + ".gz"
        tmp = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0)
                done = 0
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if not quiet:
                        shown = f"{100 * done / total:5.1f}%" if total else f"{done >> 10} KiB"
                        print(f"\r{stem}.gz {shown}", end="", file=sys.stderr, flush=True)
            if not quiet:
                print(file=sys.stderr)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DataError(f"download of {url} failed ({exc}). Fix: {fix_hint(dataset)}") from exc
        disk = tmp.read_bytes()
        try:
            raw = gzip.decompress(disk)
        except (OSError, EOFError):
            raw = b""
        check = verify_file(target, dataset, stem, disk, raw)
        if not check.ok:
            tmp.unlink(missing_ok=True)
            raise DataError(f"downloaded {url} has a wrong checksum ({check.md5}); try again later")
        os.replace(tmp, target)
    return dest


def validation_size(n: int, val_fraction: float, n_classes: int = 10) -> int:
    """Validation images in a stratified split of ``n``: the share rounded up (as sklearn does),
    but at least one per class, so a 5% split of 100 images gets 10, not 5 (which sklearn refuses)."""
    return max(math.ceil(val_fraction * n), n_classes)


def stratified_split(
    y: np.ndarray, val_fraction: float = 0.2, seed: int = 42, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified (train_idx, val_idx) over ``y``.

    ``limit`` first draws that many rows (stratified) from ``y``; the split is then made in them.
    Keras' ``validation_split`` takes the last rows unshuffled, hence this function.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if limit is not None and limit < len(y):
        if limit < 2 * len(np.unique(y)):
            raise ValueError(f"limit={limit} is too small: need at least 2 images per class")
        idx, _ = train_test_split(idx, train_size=limit, stratify=y, random_state=seed)
    if val_fraction <= 0:
        return np.sort(idx), np.array([], dtype=int)
    n_val = validation_size(len(idx), val_fraction, len(np.unique(y[idx])))
    tr, va = train_test_split(idx, test_size=n_val, stratify=y[idx], random_state=seed)
    return np.sort(tr), np.sort(va)


def class_counts(y: np.ndarray, n_classes: int = 10) -> list[int]:
    """How many labels of each class ``y`` holds."""
    return np.bincount(y, minlength=n_classes).astype(int).tolist()

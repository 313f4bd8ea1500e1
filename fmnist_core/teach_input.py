"""Labelled photos a class gives to teach a head: a folder of class folders, a zip of them, or uploads.

Folder names map to classes as in ``photos.folder_classes`` (the dev photos' names, the ten
class names, and hat / skirt / shorts / none = "none of the ten"). Nothing here trusts its
input: a zip is read in memory member by member, never extracted, and refused or skipped when
it is a bomb (total unpacked size, packing ratio), holds absolute or ``..`` paths, links or
encrypted members; a file that is no image is skipped and named. Every refusal is a
``TeachError`` with one line saying what to do.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .photos import IMAGE_SUFFIXES, folder_classes
from .preprocess import MAX_BYTES

MAX_PHOTOS = 2000  # per head: 100 photos teach in seconds; 2,000 take a few minutes on the slow CPU
MAX_ENTRIES = 10_000  # members of a zip (a zip of a million empty files is refused before any read)
MAX_UNPACKED = 1024 * 2**20  # declared unpacked size of all members of a zip
MAX_RATIO = 100  # unpacked / packed size of one member: photos barely compress, a bomb packs ~1000x
NONE_NAMES = ("none", "none of the ten", "other", "not clothing")
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


class TeachError(ValueError):
    """Input that cannot teach a head; the message is one line that says how to fix it."""


@dataclass
class Photo:
    """One labelled photo: a name to show, its class folder, and how to read its bytes."""

    name: str
    folder: str
    read: Callable[[], bytes | Path]


@dataclass
class Collected:
    """The photos found, the files skipped (name, why) and folders that name no class."""

    photos: list[Photo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unknown_folders: list[str] = field(default_factory=list)


def class_of(folder: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(strict, also-acceptable) classes of a folder name; ((), ()) = none of the ten; None = unknown."""
    if " ".join(folder.lower().replace("_", " ").split()) in NONE_NAMES:
        return ((), ())
    return folder_classes(folder)


def _check_count(n: int, where: str) -> None:
    if n > MAX_PHOTOS:
        raise TeachError(
            f"{where} holds {n:,} photos; the limit is {MAX_PHOTOS:,} per head: teach with fewer (100 a class is plenty)"
        )


def from_folder(root: Path) -> Collected:
    """Photos under ``root/CLASS/`` (any depth below the class folder); links and non-images are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise TeachError(f"{root} is not a folder: give a folder of class folders or a .zip of them")
    out = Collected()
    real_root = root.resolve()
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if class_of(d.name) is None:
            out.unknown_folders.append(d.name)
            continue
        for f in sorted(d.rglob("*")):
            rel = str(f.relative_to(root))
            if f.name in IGNORED or f.is_dir() and not f.is_symlink():
                continue
            if f.is_symlink() or not f.resolve().is_relative_to(real_root):
                out.skipped.append((rel, "a link to somewhere else (skipped)"))
            elif f.suffix.lower() not in IMAGE_SUFFIXES:
                out.skipped.append((rel, f"not an image ({f.suffix or 'no suffix'})"))
            else:
                out.photos.append(Photo(rel, d.name, lambda p=f: p))
    _check_count(len(out.photos), str(root))
    return out


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be read (None: it may)."""
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path (skipped)"
    if ".." in parts:
        return "a path that leaves the zip's folder ('..', skipped)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link (skipped)"
    if info.flag_bits & 0x1:
        return "encrypted (skipped)"
    if info.file_size > MAX_BYTES:
        return f"over {MAX_BYTES // 2**20} MB unpacked (skipped)"
    if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return f"packed over {MAX_RATIO}x, like a zip bomb (skipped)"
    return None


def _folder_in(parts: tuple[str, ...]) -> tuple[str | None, str]:
    """The class folder of a member path: the first folder (from the top) that names a class."""
    for part in parts[:-1]:
        if class_of(part) is not None:
            return part, part
    return None, parts[-2] if len(parts) > 1 else ""


def from_zip(source: Path | bytes) -> Collected:
    """Photos in a zip of class folders (a single wrapping folder is fine), read in memory."""
    label = Path(source).name if isinstance(source, (str, Path)) else "the zip"
    try:
        data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise TeachError(f"{label} is not a readable zip ({exc}); zip the class folders again") from None
    if len(infos) > MAX_ENTRIES:
        raise TeachError(f"{label} has {len(infos):,} entries; the limit is {MAX_ENTRIES:,}")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNPACKED:
        raise TeachError(
            f"{label} unpacks to {unpacked / 2**20:,.0f} MB; the limit is {MAX_UNPACKED // 2**20:,} MB "
            "(possible zip bomb): send fewer or smaller photos"
        )
    out = Collected()
    unknown: set[str] = set()
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or not parts:
            continue
        shown = info.filename.encode("unicode_escape").decode("ascii")[:120]
        problem = _member_problem(info)
        if problem:
            out.skipped.append((shown, problem))
            continue
        if any(p in IGNORED or p.startswith(".") for p in parts):  # macOS resource forks, .DS_Store
            continue
        folder, nearest = _folder_in(parts)
        if folder is None:
            if len(parts) == 1:
                out.skipped.append((shown, "not inside a class folder (skipped)"))
            else:
                unknown.add(nearest)
            continue
        if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            out.skipped.append((shown, f"not an image ({PurePosixPath(parts[-1]).suffix or 'no suffix'})"))
            continue
        out.photos.append(Photo(shown, folder, lambda i=info: _read_member(zf, i)))
    out.unknown_folders = sorted(unknown)
    _check_count(len(out.photos), label)
    return out


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, never more than its declared size (zipfile stops there) nor MAX_BYTES + 1."""
    with zf.open(info) as f:
        return f.read(MAX_BYTES + 1)


def from_uploads(items: Iterable[tuple[str, bytes, str]]) -> Collected:
    """Uploads or camera shots as (file name, bytes, class name or folder name)."""
    out = Collected()
    for name, data, folder in items:
        if class_of(folder) is None:
            out.skipped.append((name, f"class {folder!r} is not one of the ten nor 'none' (skipped)"))
            continue
        out.photos.append(Photo(name, folder, lambda d=bytes(data): d))
    _check_count(len(out.photos), "the uploads")
    return out


def collect(source: Path | str) -> Collected:
    """A folder of class folders or a .zip file of them."""
    path = Path(source)
    if path.is_dir():
        return from_folder(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return from_zip(path)
    if path.exists():
        raise TeachError(f"{path} is neither a folder nor a zip: give a folder of class folders or a .zip of them")
    raise TeachError(f"{path} does not exist: give a folder of class folders or a .zip of them")

"""The durable store of taught heads: ``heads_dir()/<name>/head.npz`` + ``head.json`` (its card).

Kept like runs: each head records who taught it; a learner deletes (or replaces) only their own,
the teacher all (``access.can``, the rule runs use). A head is written into a temporary folder
beside the store and moved into place with one ``os.rename``, so a reader sees the whole head or
none, and a failure leaves nothing half-written; two people teaching the same name at once get
one head and one clear refusal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import access, head, runs

HEAD_FILE = "head.npz"
CARD_FILE = "head.json"  # = head.card_path(HEAD_FILE): save_head writes it


class HeadStoreError(RuntimeError):
    """A head name that is taken, unknown or invalid; the message says what to do."""


@dataclass(frozen=True)
class HeadInfo:
    """One taught head as the lists show it: its folder, its card and whether its files are sound."""

    name: str
    path: Path
    card: dict[str, Any]
    problem: str | None = None  # why it cannot be used (damaged card or head file), None if it can

    @property
    def owner(self) -> str:
        """Who taught it ('' for the command line)."""
        owner = self.card.get("owner")
        return owner if isinstance(owner, str) else ""

    @property
    def run_id(self) -> str:  # access.check names the object by this
        return self.name

    @property
    def created(self) -> float:
        t = self.card.get("created_at")
        return float(t) if isinstance(t, (int, float)) else 0.0

    @property
    def label(self) -> str:
        """A line for a picker: name, owner, photos, cross-validated accuracy."""
        if self.problem:
            return f"{self.name} (damaged)"
        acc = (self.card.get("overall") or {}).get("after")
        by = f" by {self.owner}" if self.owner else ""
        n = self.card.get("photos")
        return f"{self.name}{by}, {n} photos" + (f", CV {acc:.0%}" if isinstance(acc, (int, float)) else "")


def store_root(root: Path | None = None) -> Path:
    """The folder taught heads live in (``head.heads_dir()`` unless a test gives another)."""
    return Path(root) if root else head.heads_dir()


def validate_name(name: str) -> str:
    """``name`` if it is a safe folder name (the rule run ids follow), else HeadStoreError."""
    try:
        return runs.validate_run_id(name)
    except runs.RunError:
        raise HeadStoreError(f"invalid head name {name!r}: use 1-80 letters, digits, '_', '-' or '.'") from None


def head_path(name: str, root: Path | None = None) -> Path:
    """The folder of head ``name`` (validated: never outside the store, never a link)."""
    base = store_root(root)
    p = base / validate_name(name)
    if p.is_symlink() or (p.exists() and p.resolve().parent != base.resolve()):
        raise HeadStoreError(f"head {name!r} points outside {base}; remove that link")
    return p


def get(name: str, root: Path | None = None) -> HeadInfo:
    """The head called ``name``; HeadStoreError if there is none."""
    p = head_path(name, root)
    if not p.is_dir():
        known = [h.name for h in list_heads(root)]
        raise HeadStoreError(f"no taught head {name!r}; known: {', '.join(known) if known else 'none yet'}")
    return _info(p)


def _info(p: Path) -> HeadInfo:
    card = runs.read_json(p / CARD_FILE)
    problem = None
    if not isinstance(card, dict):
        card, problem = {}, f"its card {CARD_FILE} is missing or damaged"
    elif not (p / HEAD_FILE).is_file():
        problem = f"its {HEAD_FILE} is missing"
    return HeadInfo(p.name, p, card, problem)


def list_heads(root: Path | None = None) -> list[HeadInfo]:
    """Every taught head, newest first (damaged ones too, marked, so they can be deleted)."""
    base = store_root(root)
    if not base.is_dir():
        return []
    found = [
        _info(p)
        for p in base.iterdir()
        if runs.RUN_ID_RE.fullmatch(p.name) and not p.is_symlink() and p.is_dir() and not p.name.startswith(".")
    ]
    return sorted(found, key=lambda h: (h.created, h.name), reverse=True)


def exists(name: str, root: Path | None = None) -> bool:
    return head_path(name, root).exists()


def check_free(name: str, replace: bool, actor: access.Actor = access.ADMIN, root: Path | None = None) -> None:
    """Refuse early (before any work) a name that is taken, unless ``replace`` and the actor may."""
    if not exists(name, root):
        return
    if not replace:
        raise HeadStoreError(f"a head called {name!r} exists already: pick another name, or replace it")
    _check(actor, _info(head_path(name, root)), "replace")


def _check(actor: access.Actor, info: HeadInfo, action: str) -> None:
    # The rule of runs: learners act on their own, the teacher (and the command line) on all.
    if not access.can(actor, info, "delete"):  # type: ignore[arg-type] - duck-typed: owner, run_id
        whose = f"{info.owner}'s head" if info.owner else "a head that is not yours"
        raise access.AccessError(
            f"{actor.name or 'you'} cannot {action} {whose} {info.name!r}; only its owner or the teacher can"
        )


def save(
    name: str,
    photo_head: head.PhotoHead,
    card: dict[str, Any],
    actor: access.Actor = access.ADMIN,
    replace: bool = False,
    root: Path | None = None,
) -> HeadInfo:
    """Store a head and its card atomically; the owner is the actor's name."""
    base = store_root(root)
    base.mkdir(parents=True, exist_ok=True)
    target = head_path(name, root)
    card = {**photo_head.card, **card, "name": name, "owner": actor.name, "created_at": time.time()}
    tmp = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=base))
    old = None
    try:
        # save_head writes head.npz and its card head.json beside it (head.card_path).
        head.save_head(dataclasses.replace(photo_head, card=card), tmp / HEAD_FILE)
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders; heads are shared like runs
        if target.exists():
            check_free(name, replace, actor, root)
            old = base / f".old-{name}-{os.getpid()}-{time.time_ns()}"
            os.rename(target, old)
        try:
            os.rename(tmp, target)  # fails if someone else's head took the name meanwhile
        except OSError:
            if old is not None:
                os.rename(old, target)
                old = None
            raise HeadStoreError(f"a head called {name!r} was just taught by someone else; pick another name") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return _info(target)


def load(name: str, root: Path | None = None) -> head.PhotoHead:
    """The PhotoHead of a taught head (HeadError with one line if its file is damaged)."""
    info = get(name, root)
    if info.problem:
        raise head.HeadError(f"head {name!r} cannot be used: {info.problem}; delete it and teach it again")
    return head.load_head(info.path / HEAD_FILE)


def delete(name: str, actor: access.Actor = access.ADMIN, root: Path | None = None) -> None:
    """Remove a taught head: its owner or the teacher (AccessError otherwise)."""
    info = get(name, root)
    _check(actor, info, "delete")
    trash = info.path.with_name(f".del-{name}-{time.time_ns()}")
    os.rename(info.path, trash)  # gone from the list at once, even if the removal below is slow
    shutil.rmtree(trash, ignore_errors=True)

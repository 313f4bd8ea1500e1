"""Who may do what to a run: learners act on their own runs, a teacher on all of them.

Roles:

- ``admin``: single-user mode (no teacher password configured: everything allowed, as before
  there were classes) and the command line (whoever has a shell has the files anyway).
- ``teacher``: unlocked in the app with the password from Streamlit secrets or
  ``$FMNIST_TEACHER_PASSWORD``; may stop, cancel and delete every run, pin the class model and
  clear the queue.
- ``learner``: a display name typed once, no password. The name is claimed in the runs folder
  with a random per-browser key (only its hash is stored), so a second browser cannot take a
  name that is in use and act on its runs. The browser keeps its key in a cookie, never in a
  link (ui/browser_key.py); a key that travelled in an old link is replaced once (``rekey``),
  and the teacher can release a name (``release_name``) for a learner who changed computers.

The check (``check``) compares the actor with the owner recorded in the run's status.json on
disk; the page passes only the run id, never an owner, so nothing a browser sends can widen it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs

ROLES = ("learner", "teacher", "admin")
LEARNER_ACTIONS = ("stop", "cancel", "delete")  # on their own runs only
TEACHER_ONLY = ("pin", "clear_queue")
CLASS_DIR = ".class"  # inside the runs folder: learners.json, class.json
NAME_RE = re.compile(r"^[\w .'-]{1,40}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")  # what new_key makes: safe in a cookie as is


class AccessError(PermissionError):
    """The actor may not do this; the message says why in one line."""


@dataclass(frozen=True)
class Actor:
    """A person acting in the app (or the CLI)."""

    name: str
    role: str = "learner"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")

    @property
    def privileged(self) -> bool:
        return self.role in ("teacher", "admin")


ADMIN = Actor("", "admin")


def teacher_password(secret: str | None = None) -> str | None:
    """The configured teacher password: ``secret`` (from st.secrets, read by the page) or the env var."""
    value = secret if secret else os.environ.get("FMNIST_TEACHER_PASSWORD")
    return value or None


def class_mode(password: str | None) -> bool:
    """True when a teacher password is set: learners then act on their own runs only."""
    return bool(password)


def password_ok(typed: str, password: str | None) -> bool:
    """Constant-time comparison of a typed password with the configured one."""
    return bool(password) and hmac.compare_digest(str(typed).encode(), str(password).encode())


def can(actor: Actor, run: runs.RunInfo, action: str) -> bool:
    """May ``actor`` do ``action`` (stop, cancel, delete, pin) to ``run``? Reads the owner from disk."""
    if actor.privileged:
        return True
    if action in TEACHER_ONLY or action not in LEARNER_ACTIONS:
        return False
    return bool(actor.name) and run.owner == actor.name


def check(actor: Actor, run: runs.RunInfo, action: str) -> None:
    """Raise AccessError unless ``actor`` may do ``action`` to ``run``."""
    if not can(actor, run, action):
        whose = f"{run.owner}'s run" if run.owner else "a run that is not yours"
        if action in TEACHER_ONLY:
            raise AccessError(f"only the teacher can {action.replace('_', ' ')}")
        raise AccessError(
            f"{actor.name or 'you'} cannot {action} {whose} ({run.run_id}); only its owner or the teacher can"
        )


def check_role(actor: Actor, action: str) -> None:
    """Raise AccessError unless ``actor`` is the teacher (or admin): for class-wide actions."""
    if not actor.privileged:
        raise AccessError(f"only the teacher can {action.replace('_', ' ')}")


# ---------------------------------------------------------------- learners' names


def new_key() -> str:
    """A random per-browser key that proves a name belongs to this browser."""
    return secrets.token_urlsafe(18)


def valid_key(key: object) -> bool:
    """True for a string shaped like a key from ``new_key`` (a cookie or a link may hold anything)."""
    return isinstance(key, str) and bool(KEY_RE.fullmatch(key))


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def clean_name(name: str) -> str:
    """The display name as stored (trimmed, inner spaces collapsed), or raise ValueError."""
    name = " ".join(str(name).split())
    if not NAME_RE.fullmatch(name):
        raise ValueError("a name is 1-40 letters, digits, spaces, '.', ''' or '-'")
    return name


def _learners(root: Path) -> dict[str, Any]:
    table = runs.read_json(Path(root) / CLASS_DIR / "learners.json", {})
    return table if isinstance(table, dict) else {}


@contextlib.contextmanager
def _names_lock(root: Path) -> Iterator[None]:
    """Hold the lock of the names table: two browsers claiming at once see each other's claim."""
    folder = Path(root) / CLASS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "learners.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def claim_name(root: Path, name: str, key: str) -> Actor:
    """Claim ``name`` for the browser holding ``key`` and return the learner; AccessError if taken.

    The same key may claim its name again (after a page reload); another key may not.
    """
    name = clean_name(name)
    if not valid_key(key):
        raise ValueError("this browser's key is not one from new_key(); reload the page")
    with _names_lock(root):
        table = _learners(root)
        held = table.get(name.casefold())
        if held and not hmac.compare_digest(held.get("key", ""), _hash(key)):
            raise AccessError(f"the name {name!r} is already used in another browser; pick another name")
        table[name.casefold()] = {"name": name, "key": _hash(key), "at": time.time()}
        runs.write_json_atomic(Path(root) / CLASS_DIR / "learners.json", table)
    return Actor(name, "learner")


def _entry_for_key(table: dict[str, Any], key: str) -> str | None:
    """The table's entry (its casefolded name) whose stored hash is ``key``'s, or None."""
    if not valid_key(key):
        return None
    digest = _hash(key)
    for folded, entry in table.items():
        if isinstance(entry, dict) and hmac.compare_digest(str(entry.get("key", "")), digest):
            return folded
    return None


def name_for_key(root: Path, key: str) -> str | None:
    """The name this browser key claimed before (a reloaded page keeps its learner), or None."""
    table = _learners(root)
    folded = _entry_for_key(table, key)
    return table[folded].get("name") if folded else None


def rekey(root: Path, old_key: str, new: str) -> str | None:
    """Move the name claimed with ``old_key`` to the key ``new``; return the name, or None.

    For a key that travelled in a link (the app kept it in ``?me=`` before it used a cookie):
    the browser that opens the link keeps the name under a fresh key, and the old link, in a
    browser's history or a screenshot, names nobody from then on.
    """
    if not valid_key(new):
        raise ValueError("the new key is not one from new_key()")
    with _names_lock(root):
        table = _learners(root)
        folded = _entry_for_key(table, old_key)
        if folded is None:
            return None
        table[folded] = {**table[folded], "key": _hash(new), "at": time.time()}
        runs.write_json_atomic(Path(root) / CLASS_DIR / "learners.json", table)
    return table[folded].get("name")


def claimed_names(root: Path) -> list[str]:
    """Every name claimed in this runs folder, sorted (for the teacher's list)."""
    names = [e.get("name") for e in _learners(root).values() if isinstance(e, dict)]
    return sorted((n for n in names if isinstance(n, str)), key=str.casefold)


def release_name(root: Path, name: str, actor: Actor) -> bool:
    """The teacher frees ``name``: its browser key names nobody, and anyone may claim it again.

    For a learner who changed computers: the teacher releases the name, the learner claims it
    in the new browser. Returns False if the name was not claimed. Runs keep their owner.
    """
    check_role(actor, "release names")
    with _names_lock(root):
        table = _learners(root)
        if table.pop(" ".join(str(name).split()).casefold(), None) is None:
            return False
        runs.write_json_atomic(Path(root) / CLASS_DIR / "learners.json", table)
    return True


# ---------------------------------------------------------------- the class model


def pinned(root: Path) -> str | None:
    """The run id the teacher pinned as the class model, if any."""
    data = runs.read_json(Path(root) / CLASS_DIR / "class.json", {})
    value = data.get("pinned") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def set_pinned(root: Path, run_id: str, actor: Actor) -> None:
    """Record the class model (callers check the actor first: runqueue.pin)."""
    check_role(actor, "pin")
    folder = Path(root) / CLASS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"pinned": runs.validate_run_id(run_id), "by": actor.name, "at": time.time()}
    runs.write_json_atomic(folder / "class.json", data)


def unpin(root: Path) -> None:
    path = Path(root) / CLASS_DIR / "class.json"
    path.unlink(missing_ok=True)

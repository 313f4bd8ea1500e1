"""Who may do what to a run: learners act on their own runs, a teacher on all of them.

Roles:

- ``admin``: single-user mode (no teacher password configured: everything allowed, as before
  there were classes) and the command line (whoever has a shell has the files anyway).
- ``teacher``: unlocked in the app with the password from Streamlit secrets or
  ``$FMNIST_TEACHER_PASSWORD``; may stop, cancel and delete every run, pin the class model and
  clear the queue.
- ``learner``: a display name typed once, no password. The name is claimed in the runs folder
  with a random per-browser key (only its hash is stored), so a second browser cannot take a
  name that is in use and act on its runs.

The check (``check``) compares the actor with the owner recorded in the run's status.json on
disk; the page passes only the run id, never an owner, so nothing a browser sends can widen it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs

ROLES = ("learner", "teacher", "admin")
LEARNER_ACTIONS = ("stop", "cancel", "delete")  # on their own runs only
TEACHER_ONLY = ("pin", "clear_queue")
CLASS_DIR = ".class"  # inside the runs folder: learners.json, class.json
NAME_RE = re.compile(r"^[\w .'-]{1,40}$")


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


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def clean_name(name: str) -> str:
    """The display name as stored (trimmed, inner spaces collapsed), or raise ValueError."""
    name = " ".join(str(name).split())
    if not NAME_RE.fullmatch(name):
        raise ValueError("a name is 1-40 letters, digits, spaces, '.', ''' or '-'")
    return name


def claim_name(root: Path, name: str, key: str) -> Actor:
    """Claim ``name`` for the browser holding ``key`` and return the learner; AccessError if taken.

    The same key may claim its name again (after a page reload); another key may not.
    """
    name = clean_name(name)
    folder = Path(root) / CLASS_DIR
    with runs.queue_lock(Path(root)):
        folder.mkdir(parents=True, exist_ok=True)
        table = runs.read_json(folder / "learners.json", {})
        table = table if isinstance(table, dict) else {}
        held = table.get(name.casefold())
        if held and not hmac.compare_digest(held.get("key", ""), _hash(key)):
            raise AccessError(f"the name {name!r} is already used in another browser; pick another name")
        table[name.casefold()] = {"name": name, "key": _hash(key), "at": time.time()}
        runs.write_json_atomic(folder / "learners.json", table)
    return Actor(name, "learner")


def name_for_key(root: Path, key: str) -> str | None:
    """The name this browser key claimed before (a reloaded page keeps its learner), or None."""
    table = runs.read_json(Path(root) / CLASS_DIR / "learners.json", {})
    if not isinstance(table, dict) or not key:
        return None
    digest = _hash(key)
    for entry in table.values():
        if isinstance(entry, dict) and hmac.compare_digest(str(entry.get("key", "")), digest):
            return entry.get("name")
    return None


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

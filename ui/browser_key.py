"""This browser's key to its learner's name, kept in a cookie: never in a link, the page or a log.

Why a cookie set by a tiny built-in component: Streamlit reads the cookies a browser sent when
its session connected (``st.context.cookies``) but has no API to set one, and a link
(``st.query_params``) travels with every copy, screenshot and history entry of the address. A
component of Streamlit's own ``st.components.v2`` (no extra package; its JavaScript runs in the
app's page, not in an iframe) writes ``document.cookie`` for ``Path=/`` with ``SameSite=Strict``
(``Secure`` on https) and a 12-hour lifetime (a school day; a shared computer is clean the next
morning). The key reaches that script as the component's data over the session's websocket, so
it is never written into the page's HTML. ``HttpOnly`` is impossible: only a server response can
set it, and Streamlit lets an app add no response headers. The cookie is a random key, never the
name; the names table stores only its hash (fmnist_core/access.py).

A reload, a second tab and a page switch send the cookie (or keep the session); another browser
or a private window has none, whatever link it opens.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from fmnist_core import access

MAX_AGE_S = 12 * 3600

_JS = """
export default function ({ data }) {
  if (!data || !data.cookie) return;
  const prefix = data.cookie + "=";
  const held = document.cookie.split("; ").find((c) => c.startsWith(prefix));
  const attrs = "; Path=/; SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");
  if (data.key) {
    document.cookie = prefix + data.key + "; Max-Age=" + data.max_age + attrs;
  } else if (data.forget && held === prefix + data.forget) {
    // Only the key this session forgot: another tab may have claimed a name since.
    document.cookie = prefix + "; Max-Age=0" + attrs;
  }
}
"""
_writer = st.components.v2.component("fmnist_browser_key", js=_JS)


def cookie_name(root: Path) -> str:
    """The cookie of one runs folder: two class apps on one host (other ports) keep apart."""
    return "fmnist_key_" + hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]


def read_key(root: Path) -> str | None:
    """The key this browser sent in its cookie when the session connected, if it is a valid one."""
    value = st.context.cookies.get(cookie_name(root))
    return value if access.valid_key(value) else None


def keep_in_browser(root: Path, key: str | None, forget: str | None = None) -> None:
    """Set the cookie to ``key`` (a claimed name's key), or delete it if it still holds ``forget``.

    Drawn on every full run of the page (an invisible element): the write is idempotent, and
    a run that was superseded before the browser mounted it is made good by the next one.
    """
    for value in (key, forget):
        if value is not None and not access.valid_key(value):
            raise ValueError("not a browser key from access.new_key()")
    _writer(
        key="class_browser_key",
        data={"cookie": cookie_name(root), "key": key, "forget": forget, "max_age": MAX_AGE_S},
        height=0,
    )

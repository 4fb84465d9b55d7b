"""Pages rendered once and shared by everyone they are the same for (issue 17).

A wave offers one slot to several patients, and they open their mails at once: their offer
pages differ only in the link they were mailed, the language-switch's way back (the same
link) and their CSRF token. `SharedPages.render` renders a template once per (template,
locale, key) with a marker in place of each per-request value, keeps the HTML, and puts the
request's own values in on every use (HTML-escaped, as the template would have). The key
must hold everything else the template reads: the caller passes the facts themselves, never
an id, so a changed slot or practice is a new key and never an old page. The pages hold no
personal data beyond what their key holds, and the cache is bounded (least recently used
out first), one per app (its settings shape the layout) and worker process.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping

from flask import Flask, current_app, render_template
from flask_babel import get_locale
from markupsafe import escape

# A per-process nonce: no stored text (a practice's name, a policy) can forge a marker.
_NONCE = secrets.token_hex(8)


def _marker(name: str) -> str:
    return f"ptm-{_NONCE}-{name}-"


class SharedPages:
    def __init__(self, size: int = 256):
        self.size = size
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, template: str, key: Hashable, fills: Mapping[str, str], **context) -> str:
        """`template` with `context`; each name in `fills` is a context variable whose value
        differs per request (a callable for ``csrf_token``, whose template calls it)."""
        cache_key = (template, str(get_locale()), key, tuple(sorted(fills)))
        with self._lock:
            page = self._pages.get(cache_key)
            if page is not None:
                self._pages.move_to_end(cache_key)
        if page is None:
            markers = {
                name: (lambda m=_marker(name): m) if name == "csrf_token" else _marker(name)
                for name in fills
            }
            page = render_template(template, **context, **markers)
            with self._lock:
                self._pages[cache_key] = page
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)
        for name, value in fills.items():
            page = page.replace(_marker(name), str(escape(value)))
        return page

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


def init_app(app: Flask) -> None:
    app.extensions["ptmatch_shared_pages"] = SharedPages()


def shared_pages() -> SharedPages:
    """This app's shared pages."""
    return current_app.extensions["ptmatch_shared_pages"]

"""A tiny HTTP client for the benchmark (stdlib only): cookies, CSRF token and forms of a page."""

from __future__ import annotations

import html
import http.client
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from ptmatch.clock import pause

CSRF_RES = (
    re.compile(r'name="csrf_token"[^>]*value="([^"]+)"'),
    re.compile(r'value="([^"]+)"[^>]*name="csrf_token"'),
)
FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
ATTR_RE = re.compile(r'(\w[\w-]*)="([^"]*)"')
BUTTON_RE = re.compile(r"<button\b([^>]*)>", re.I)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def cookies(self) -> dict[str, str]:
        jar = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                jar[name.strip()] = rest.split(";", 1)[0]
        return jar


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 60,
    conn: http.client.HTTPConnection | None = None,
) -> Response:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def connect(port: int, timeout: float = 120) -> http.client.HTTPConnection:
    """An open connection (before a barrier: the POST then only sends)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    return conn


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


@dataclass
class Form:
    action: str
    fields: dict[str, str]


def find_form(
    page: str, base_path: str, prefer: tuple[str, ...] = ("accept", "annehmen", "zusagen")
) -> Form | None:
    """The POST form to submit: the one whose action or button mentions a `prefer` word, else
    the first.

    Hidden inputs (the CSRF token among them) and the chosen button's name/value are filled in.
    """
    candidates = []
    for attrs, inner in FORM_RE.findall(page):
        a = dict(ATTR_RE.findall(attrs))
        if a.get("method", "get").lower() != "post":
            continue
        fields = {}
        for inp in re.findall(r"<input\b([^>]*)>", inner, re.I):
            ia = dict(ATTR_RE.findall(inp))
            if ia.get("type", "text").lower() == "hidden" and "name" in ia:
                fields[ia["name"]] = html.unescape(ia.get("value", ""))
        buttons = [dict(ATTR_RE.findall(b)) for b in BUTTON_RE.findall(inner)]
        text = (a.get("action", "") + " " + inner).lower()
        score = any(word in text for word in prefer)
        for b in buttons:
            if "name" in b and any(
                word in (b.get("value", "") + b["name"]).lower() for word in prefer
            ):
                fields[b["name"]] = html.unescape(b.get("value", ""))
        candidates.append((not score, Form(html.unescape(a.get("action") or base_path), fields)))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1]


def csrf_token(page: str) -> str | None:
    for rx in CSRF_RES:
        match = rx.search(page)
        if match:
            return html.unescape(match.group(1))
    return None


def post_form(
    port: int,
    form: Form,
    jar: dict[str, str],
    conn: http.client.HTTPConnection | None = None,
    timeout: float = 60,
) -> tuple[Response, float]:
    body = urlencode(form.fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(jar)}
    started = time.perf_counter()
    resp = request(
        port, "POST", form.action, body=body, headers=headers, conn=conn, timeout=timeout
    )
    return resp, time.perf_counter() - started


def wait_until_up(port: int, path: str = "/healthz", timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", path, timeout=5).status == 200:
                return True
        except OSError:
            pass
        pause(0.2)
    return False

"""Bad input on every form: empty, 100 kB, NUL byte, unicode, <script> → never a 500,
never reflected unescaped. Forms are discovered from the pages each role can open, so new
forms are covered without touching this test."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from ptmatch.models import Role
from tests.factories import make_patient, make_practice, make_secretary, make_therapist, make_user

BAD_VALUES = {
    "empty": "",
    "huge": "A" * 100_000,
    "nul": "abc\x00def",
    "unicode": "Zoë Ünal 日本語 👩‍⚕️ \u202e",
    "script": "<script>alert('x')</script>",
}
SKIP_ACTIONS = ("/auth/logout", "/lang", "/loeschen", "/delete", "/konto-loeschen")


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._form = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self._form = {
                "action": a.get("action") or "",
                "method": (a.get("method") or "get").lower(),
                "text": [],
                "fixed": {},
            }
            self.forms.append(self._form)
        if self._form is None or not a.get("name"):
            return
        name = a["name"]
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in (
                "text",
                "email",
                "password",
                "search",
                "tel",
                "url",
                "number",
                "date",
                "time",
            ):
                self._form["text"].append(name)
            elif kind in ("hidden", "submit") or (kind in ("checkbox", "radio") and "checked" in a):
                self._form["fixed"].setdefault(name, a.get("value", "y"))
        elif tag == "textarea":
            self._form["text"].append(name)
        elif tag == "select":
            self._select = name
        elif tag == "button" and a.get("value") is not None:
            self._form["fixed"].setdefault(name, a["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        if tag == "select":
            self._select = None

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def _actors(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    patient = make_patient(session, lists=[practice])
    return {
        "anonymous": None,
        "patient": patient.user,
        "therapist": therapist.user,
        "secretary": make_secretary(session, [practice]),
        "admin": make_user(session, Role.ADMIN),
    }


def _pages(app) -> list[str]:
    pages = []
    for rule in app.url_map.iter_rules():
        if (
            "GET" in rule.methods
            and not rule.arguments
            and not rule.rule.startswith(("/static", "/bootstrap"))
        ):
            pages.append(rule.rule)
    return sorted(pages)


@pytest.mark.parametrize("role", ["anonymous", "patient", "therapist", "secretary", "admin"])
def test_bad_input_on_every_form(app, client, session, login_as, role):
    actor = _actors(session)[role]
    session.commit()
    tried = 0
    for page in _pages(app):
        if actor is not None:
            login_as(actor)
        resp = client.get(page)
        if resp.status_code != 200 or "html" not in resp.content_type:
            continue
        parser = FormParser()
        parser.feed(resp.get_data(as_text=True))
        for form in parser.forms:
            action = urljoin(page, form["action"]) if form["action"] else page
            if form["method"] != "post" or not form["text"] or urlsplit(action).netloc:
                continue
            if any(skip in action for skip in SKIP_ACTIONS):
                continue
            for label, bad in BAD_VALUES.items():
                if actor is not None:
                    login_as(actor)
                data = {**form["fixed"], **{name: bad for name in form["text"]}}
                data.pop("csrf_token", None)
                out = client.post(action, data=data)
                tried += 1
                assert out.status_code < 500, f"{role} {action} [{label}] → {out.status_code}"
                assert "<script>alert('x')</script>" not in out.get_data(as_text=True), (
                    f"{action} reflects script"
                )
    print(f"{role}: {tried} bad submissions")
    assert tried > 0, "expected forms to try (at least the password change or login form)"

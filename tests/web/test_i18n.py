"""The English UI: every German msgid of the source tree has an English translation, and
switching the language really shows English."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
EN_PO = ROOT / "ptmatch" / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def _pybabel() -> str:
    name = "pybabel.exe" if os.name == "nt" else "pybabel"
    return str(Path(sys.executable).with_name(name))


def _untranslated(message) -> bool:
    if isinstance(message.string, (tuple, list)):
        return not message.string or any(not s for s in message.string)
    return not message.string


def test_english_catalogue_covers_fresh_extraction(tmp_path):
    pot = tmp_path / "messages.pot"
    result = subprocess.run(
        [
            _pybabel(),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "N_",
            "-k",
            "lazy_gettext",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with pot.open("rb") as f:
        template = read_po(f)
    with EN_PO.open("rb") as f:
        english = read_po(f, locale="en")

    missing = []
    for msg in template:
        if not msg.id:
            continue
        translated = english.get(msg.id, msg.context)
        if translated is None or _untranslated(translated) or translated.fuzzy:
            missing.append(msg.id if isinstance(msg.id, str) else msg.id[0])
    missing = sorted(set(missing))
    if missing:
        print(f"{len(missing)} msgids without English translation; first 20:")
        for msgid in missing[:20]:
            print("  ", repr(msgid))
    assert not missing, f"{len(missing)} untranslated msgids, e.g. {missing[:20]}"

    # The other way round: an entry no code extracts any more is a stale translation.
    extracted = {msg.id for msg in template if msg.id}
    stale = sorted(
        msg.id if isinstance(msg.id, str) else msg.id[0]
        for msg in english
        if msg.id and msg.id not in extracted
    )
    assert not stale, f"{len(stale)} catalogue entries no code uses, e.g. {stale[:20]}"


def test_language_switch_shows_english_login(client):
    response = client.post("/lang", data={"lang": "en"})
    assert response.status_code in (302, 303)

    html = client.get("/auth/login").get_data(as_text=True)
    assert "Log in" in html
    assert "Anmelden" not in html


def test_builtin_wtforms_messages_follow_the_ui_language(app):
    """WTForms' own messages come from its catalogue in the UI language (cached per locale)."""
    from wtforms import IntegerField

    from ptmatch.web.forms import BaseForm

    class NumberForm(BaseForm):
        n = IntegerField("n")

    for lang, expected in (
        ("de", "Keine gültige, ganze Zahl"),
        ("en", "Not a valid integer value"),
    ):
        with app.test_request_context(
            "/", method="POST", data={"n": "zwölf"}, headers={"Accept-Language": lang}
        ):
            form = NumberForm(meta={"csrf": False})
            assert not form.validate()
            assert expected in form.n.errors[0], form.n.errors
